"""Billing desk: payment, subscription and refund tickets go to the billing department.

Billing centers, the billing page and routing by words come in a later issue;
this first part routes by category and shows the billing contact.
"""

from __future__ import annotations

from typing import Any

from core import hookimpl
from core.hookspecs import ContactOption, Routing
from core.i18n import _
from core.settings import Setting, as_list, as_str

PLUGIN = "billing_desk"


@hookimpl
def plugin_settings() -> list[Setting]:
    return [
        Setting("department", "billing", as_str,
                "Slug of the department that works billing tickets."),
        Setting("categories", ["payments-and-subscriptions"], as_list,
                "Category slugs (and their sub-categories) that are billing questions."),
        Setting("email", "", as_str, "Billing support address shown on billing categories."),
    ]


def _settings() -> dict[str, Any]:
    from core.state import loket

    return loket().config.plugin(PLUGIN)


def is_billing_category(category: Any) -> bool:
    slugs = set(_settings()["categories"])
    node, seen = category, set()
    while node is not None and node.id not in seen:
        if node.slug in slugs:
            return True
        seen.add(node.id)
        node = node.parent
    return False


@hookimpl(tryfirst=True)
def route_ticket(category: Any) -> Routing | None:
    from core.models import Department

    if category is None or not is_billing_category(category):
        return None
    department = Department.get_or_none(Department.slug == _settings()["department"])
    if department is None:
        return None  # no billing department on this desk: core's default applies
    return Routing(department=department, priority=category.default_priority or None,
                   tags=["billing"], reason="billing category")


@hookimpl
def contact_channels(category: Any) -> list[ContactOption]:
    address = _settings()["email"]
    if category is None or not address or not is_billing_category(category):
        return []
    return [ContactOption(kind="billing", label=_("Billing support"), url=f"mailto:{address}",
                          description=_("Questions about a charge, a subscription or a refund"),
                          order=20)]
