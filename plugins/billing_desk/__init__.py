"""Billing desk: payment problems reach the people who can fix them.

Billing centers (payment processors as statements name them) with their
contacts; a public billing page with a statement search and a billing form;
routing of tickets to the billing department by category, form or words in
English, Indonesian and Filipino; escalation of large disputes and chargebacks;
a panel on the ticket page with the case and the center's contact, forwarding
to the center by email; a report in the console.
"""

from __future__ import annotations

import logging
from typing import Any

from core import hookimpl, opens_tickets
from core.hookspecs import ContactOption, Panel, Routing
from core.i18n import _
from core.models import Department, Priority
from core.services import access
from core.settings import Setting, as_list, as_str

PLUGIN = "billing_desk"
# The category question whose answers are the active billing centers.
CENTER_FIELD = "billing_center"

log = logging.getLogger(__name__)


@hookimpl
def plugin_settings() -> list[Setting]:
    return [
        Setting("department", "billing", as_str,
                "Slug of the department that works billing tickets."),
        Setting("categories", ["payments-and-subscriptions"], as_list,
                "Category slugs (and their sub-categories) that are billing questions; the "
                "first is the billing form's category."),
        Setting("email", "", as_str, "Billing support address shown on the billing page."),
    ]


def settings() -> dict[str, Any]:
    from core.state import loket

    return loket().config.plugin(PLUGIN)


def is_billing_category(category: Any) -> bool:
    slugs = set(settings()["categories"])
    node, seen = category, set()
    while node is not None and node.id not in seen:
        if node.slug in slugs:
            return True
        seen.add(node.id)
        node = node.parent
    return False


@hookimpl
def register_models() -> list[type]:
    from .models import MODELS

    return MODELS


@hookimpl
def register_blueprints(app: Any) -> list[Any]:
    from .views import bp

    opens_tickets("billing_desk.new")  # the help center form's rate limits apply
    return [bp]


@hookimpl
def register_admin_views(admin: Any) -> list[Any]:
    from .admin import views

    return views()


@hookimpl
def load_demo_data() -> None:
    from .demo import load

    load()


def _department(center: Any) -> Department | None:
    if center is not None and center.department_id is not None:
        department = access.department_by_id(center.department_id)
        if department is not None and department.active:
            return department
    return access.department_by_slug(settings()["department"])


@hookimpl(tryfirst=True)
def route_ticket(category: Any, form_data: dict[str, Any], text: str) -> Routing | None:
    """Billing by category, by the billing form, or by words; large disputes escalate."""
    from .routing import assess

    found = assess(category, form_data, text, is_billing_category)
    if not found.billing:
        return None
    department = _department(found.center)
    if department is None:
        return None  # no billing department on this desk: core's default applies
    tags = ["billing"] + ([found.center.slug] if found.center else [])
    if found.chargeback:
        tags.append("chargeback")
    priority = category.default_priority if category is not None else None
    if found.escalate_reason:
        return Routing(department=department, priority=Priority.HIGH, tags=tags, escalate=True,
                       reason=f"billing: {found.escalate_reason}")
    return Routing(department=department, priority=priority or None, tags=tags,
                   reason=found.why)


@hookimpl
def record_new_ticket(ticket: Any, message: Any) -> None:
    """Record the billing details of a billing ticket, and say why it was escalated, in
    the ticket's own transaction."""
    from .cases import record

    record(ticket, message)


@hookimpl
def contact_channels(category: Any) -> list[ContactOption]:
    from flask import url_for

    if category is not None and not is_billing_category(category):
        return []
    return [ContactOption(kind="billing", label=_("Billing support"),
                          url=url_for("billing_desk.page"),
                          description=_("Who charged you, refunds, cancelling or renewing a "
                                        "subscription"),
                          order=20)]


@hookimpl
def field_choices(field: Any) -> list[str] | None:
    if field.name != CENTER_FIELD:
        return None
    from .centers import active_centers

    return [center.name for center in active_centers()]


@hookimpl
def ticket_panels(ticket: Any, staff: Any) -> list[Panel]:
    from .admin import billing_panel

    panel = billing_panel(ticket, staff)
    return [panel] if panel is not None else []
