"""Core's own hook implementations, registered as the plugin "core"; plugins may override them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import flask

from . import db, hookimpl
from .hookspecs import Routing
from .models import Category, Department, Status, Ticket, utcnow


def _department_by_id(department_id: int) -> Any:
    return Department.select().where(Department.id == department_id)


@hookimpl(trylast=True)
def route_ticket(category: Category | None) -> Routing | None:
    """Default routing: the category's department (or its nearest parent's) and priority."""
    if category is None:
        return None
    department = None
    node: Category | None = category
    seen: set[int] = set()
    while node is not None and node.id not in seen:
        seen.add(node.id)
        if node.default_department_id is not None:
            department = db.select_one(Department, "builtin.department", _department_by_id,
                                       node.default_department_id)
            break
        node = node.parent
    return Routing(department=department, priority=category.default_priority or None,
                   reason="category default")


@hookimpl
def register_blueprints(app: flask.Flask) -> list[flask.Blueprint]:
    from .api.v1 import bp as api_bp
    from .web.helpcenter import bp as web_bp

    return [web_bp, api_bp]


@hookimpl
def register_jobs(jobs: Any) -> None:
    from .jobs import crontab

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
    from .state import loket

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
