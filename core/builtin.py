"""Core's own hook implementations, registered as the plugin "core"; plugins may override them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import flask

from .hooks import hookimpl
from .hookspecs import ChannelSpec, Routing
from .i18n import _l
from .models import Category, Channel, IdentityKind, Status, Ticket, utcnow
from .services import access
from .state import loket


@hookimpl(trylast=True)
def route_ticket(category: Category | None) -> Routing | None:
    """Default routing: the category's department (or its nearest parent's) and priority.

    A ticket no category places (a mail or a chat message that arrived without
    one) goes to the ``default_department``, when one is set; otherwise it
    waits for an admin to triage it.
    """
    department = None
    node: Category | None = category
    seen: set[int] = set()
    while node is not None and node.id not in seen:
        seen.add(node.id)
        if node.default_department_id is not None:
            department = access.department_by_id(node.default_department_id)
            break
        node = node.parent
    if department is None and loket().config["default_department"]:
        department = access.department_by_slug(loket().config["default_department"])
    if category is None:
        return Routing(department=department, reason="default department") \
            if department is not None else None
    return Routing(department=department, priority=category.default_priority or None,
                   reason="category default")


@hookimpl
def register_channels() -> list[ChannelSpec]:
    """Core's own channels: the help center's form, the API, and agents opening on one's behalf.

    None of them can reach the customer unprompted: answers wait on the
    tracking page, and notifications go out through a channel that can push
    (email, when a plugin serves it).
    """
    return [
        ChannelSpec(Channel.WEB, _l("Web form"), attachments=True,
                    identity_kind=IdentityKind.EMAIL, order=10),
        ChannelSpec(Channel.API, _l("API"), attachments=True,
                    identity_kind=IdentityKind.EMAIL, order=11),
        ChannelSpec(Channel.STAFF, _l("Console"), attachments=True, order=90),
    ]


@hookimpl
def register_blueprints(app: flask.Flask) -> list[flask.Blueprint]:
    from .api.v1 import bp as api_bp
    from .web.helpcenter import bp as web_bp

    return [web_bp, api_bp]


@hookimpl
def register_jobs(jobs: Any) -> None:
    from . import outbox
    from .jobs import crontab

    config = loket().config
    jobs.relay(outbox.relay, name=outbox.RELAY, threads=config["outbox_threads"],
               idle_seconds=config["outbox_poll_seconds"])

    @jobs.periodic(crontab(minute="17", hour="3"), name="core.sweep_orphan_files")
    def sweep_orphan_files() -> dict[str, int]:
        """Remove stored files of refused or duplicate submissions (a day old, unreferenced)."""
        from .orphans import sweep_orphans

        return sweep_orphans()

    @jobs.periodic(crontab(minute="*"), name="core.mark_late")
    def mark_late() -> int:
        """Mark late the active tickets that fell due (``services.late``): every minute, so a
        "not overdue" or overdue page passes at most a minute's worth of them."""
        from .services import late

        return late.mark()

    @jobs.periodic(crontab(minute="*"), name="core.write_search_documents")
    def write_search_documents() -> int:
        """SQLite: write the search documents still queued (0032). A write's commit writes a
        batch once enough wait; a quiet desk's last few are written here, within a minute (a
        search finds them from their rows meanwhile)."""
        from .services import search_index

        return search_index.write_all_queued()

    @jobs.periodic(crontab(minute="*/15"), name="core.autoclose_resolved")
    def autoclose_resolved() -> int:
        """Close tickets resolved long enough ago that the customer has moved on."""
        return close_stale_resolved()


def close_stale_resolved(now: dt.datetime | None = None) -> int:
    """Close tickets resolved more than ``autoclose_days`` ago; returns how many.

    Safe to run twice or at once with another run: the work is read from the
    database each time, and each ticket is re-checked inside its own write.
    """
    from .services.tickets import close_resolved

    days = loket().config["autoclose_days"]
    if not days:
        return 0
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    # The ids first, then one write each: iterating a SELECT while writing would hold
    # SQLite's read snapshot across the writes ("database is locked" when another
    # process wrote in between).
    stale = [row.id for row in Ticket.select(Ticket.id)
             .where((Ticket.status == Status.RESOLVED) & (Ticket.resolved_at < cutoff))
             .order_by(Ticket.id).limit(500)]
    return sum(close_resolved(ticket_id, cutoff) for ticket_id in stale)
