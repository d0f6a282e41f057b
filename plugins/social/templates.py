"""WhatsApp template variables: which ticket values fill ``{{1}}``, ``{{2}}``, ... of a template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.models import Message, Ticket


def _name(ticket: Ticket, message: Message) -> str:
    return ticket.requester_name or (ticket.contact.name if ticket.contact_id else "")


def _agent(ticket: Ticket, message: Message) -> str:
    return message.staff.name if message.staff_id else ""


VALUES: dict[str, Callable[[Ticket, Message], str]] = {
    "name": _name,
    "number": lambda ticket, message: str(ticket.number),
    "subject": lambda ticket, message: ticket.subject or "",
    "agent": _agent,
    "department": lambda ticket, message: ticket.department.name if ticket.department_id else "",
    "reply": lambda ticket, message: message.body_text or "",
}
MAX_PARAMETER = 1024  # WhatsApp's limit for one text parameter


def parse(value: Any) -> str:
    """The setting as stored: known value names, comma-separated; a wrong name is refused."""
    names = [n.strip().lower() for n in str(value or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in VALUES]
    if unknown:
        raise ValueError(f"unknown template value(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(VALUES)}")
    return ",".join(names)


def fill(parameters: str, ticket: Ticket, message: Message) -> list[str]:
    """The variables' texts, in order. WhatsApp refuses line breaks, tabs, runs of spaces and
    empty parameters, so each is folded to one line and an empty one becomes "-"."""
    texts = []
    for name in filter(None, parameters.split(",")):
        text = " ".join(VALUES[name](ticket, message).split())
        if len(text) > MAX_PARAMETER:
            text = text[:MAX_PARAMETER - 1] + "…"
        texts.append(text or "-")
    return texts
