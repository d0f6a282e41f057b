"""A billing ticket's case: its details, kept in the plugin's table beside the ticket."""

from __future__ import annotations

from typing import Any

from peewee import IntegrityError

from core import db
from core.services import access
from core.services import tickets as service

from .models import BillingCase

_insert_case = db.Insert("billing_desk.case_insert", BillingCase)


def record(ticket: Any, message: Any) -> BillingCase | None:
    """Write the case of a ticket being opened, if it is a billing one (in its transaction).

    The truth of what the customer sent is in the ticket's form answers; this
    row makes it queryable (the report, the panel), and commits with the ticket
    (one write lock, one commit), so writing it again gives the same row. An
    escalated ticket gets an internal note saying why.
    """
    from . import is_billing_category
    from .routing import assess, charged_on

    # The category the ticket was opened with, as routing saw it (its parents loaded), when
    # the ticket still carries it; read by id otherwise.
    category = ticket.__rel__.get("category")
    if category is None or category.id != ticket.category_id:
        category = access.category_by_id(ticket.category_id)
    text = f"{ticket.subject}\n{message.body_text if message is not None else ''}"
    form_data = ticket.form_data or {}
    found = assess(category, form_data, text, is_billing_category)  # routing's own answer
    if not found.billing:
        return None
    escalated = bool(found.escalate_reason) and ticket.escalation_level > 0
    try:
        # A second run (none today: a ticket is opened once) loses on the unique ticket
        # and finds the first run's row.
        case = _insert_case(BillingCase(
            ticket=ticket.id, center=found.center, request_kind=found.request_kind,
            transaction_id=str(form_data.get("transaction_id") or "")[:120],
            amount=found.amount, currency=found.currency, charged_on=charged_on(form_data),
            matched=(found.descriptor or ", ".join(dict.fromkeys(found.matched)))[:255],
            escalation_reason=found.escalate_reason[:255] if escalated else "",
            created_at=ticket.created_at))
    except IntegrityError:
        return BillingCase.get(BillingCase.ticket == ticket.id)
    if escalated:
        service.add_note(ticket, None, f"Escalated at once by the billing desk: "
                                       f"{found.escalate_reason}.")
    return case
