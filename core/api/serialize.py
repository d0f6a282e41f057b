"""The API's JSON shapes: what a customer sees of a ticket, and what an agent sees.

The customer view never carries internal notes, staff email addresses,
departments, assignees, tags or delivery details; the agent view carries all
of them. ``core/api/openapi.py`` describes these shapes; keep the two together.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from peewee import prefetch

from ..models import (
    Attachment,
    AuthorKind,
    Category,
    CategoryField,
    Contact,
    Department,
    Message,
    Staff,
    Ticket,
    UserType,
)

AUTHOR_NAMES = {AuthorKind.CONTACT: "customer", AuthorKind.STAFF: "agent",
                AuthorKind.SYSTEM: "system", AuthorKind.BOT: "bot"}


def iso(value: dt.datetime | None) -> str | None:
    """Naive UTC from the database as RFC 3339 with a Z."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


def _category(category: Category | None) -> dict[str, Any] | None:
    if category is None:
        return None
    return {"slug": category.slug, "name": category.name}


def _department(department: Department | None) -> dict[str, Any] | None:
    if department is None:
        return None
    return {"id": department.id, "slug": department.slug, "name": department.name}


def _staff(staff: Staff | None) -> dict[str, Any] | None:
    if staff is None:
        return None
    return {"id": staff.id, "name": staff.name, "email": staff.email}


def _contact(contact: Contact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {"id": contact.id, "name": contact.name, "email": contact.email}


def _attachment(attachment: Attachment) -> dict[str, Any]:
    return {"id": attachment.id, "filename": attachment.filename,
            "content_type": attachment.content_type, "size": attachment.size,
            "field": attachment.field_name or None}


def _attachments_of(message: Message) -> list[dict[str, Any]]:
    # prefetch() fills ``attachments`` as a list; a lone message queries it.
    return [_attachment(a) for a in message.attachments]


def public_message(message: Message) -> dict[str, Any]:
    if message.author_kind == AuthorKind.STAFF:
        author_name = message.staff.name if message.staff_id else ""
    elif message.author_kind == AuthorKind.CONTACT:
        author_name = message.contact.name if message.contact_id else ""
    else:
        author_name = ""
    return {
        "id": message.id,
        "author": {"kind": AUTHOR_NAMES.get(message.author_kind, message.author_kind),
                   "name": author_name},
        "text": message.body_text,
        "html": message.body_html,
        "created_at": iso(message.created_at),
        "attachments": _attachments_of(message),
    }


def agent_message(message: Message) -> dict[str, Any]:
    body = public_message(message)
    body["author"]["staff"] = _staff(message.staff) if message.staff_id else None
    body["author"]["contact"] = _contact(message.contact) if message.contact_id else None
    body.update({
        "internal": message.is_internal,
        "channel": message.channel,
        "delivery_state": message.delivery_state or None,
        "delivery_error": message.delivery_error or None,
        "delivery_updated_at": iso(message.delivery_updated_at),
    })
    return body


def public_ticket(ticket: Ticket, messages: list[Message]) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "category": _category(ticket.category) if ticket.category_id else None,
        "language": ticket.language,
        "fields": ticket.form_data or {},
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "messages": _as_asked(ticket, messages, [public_message(m) for m in messages]),
    }


def _as_asked(ticket: Ticket, messages: list[Message],
              bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ticket's customer appears under the name given with the ticket (``requester``)."""
    for message, body in zip(messages, bodies, strict=True):
        if message.author_kind == AuthorKind.CONTACT and message.contact_id == ticket.contact_id:
            body["author"]["name"] = ticket.requester
    return bodies


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    """An agent's list row: everything but the thread (related rows joined by the caller)."""
    return {
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "channel": ticket.channel,
        "category": _category(ticket.category) if ticket.category_id else None,
        "department": _department(ticket.department) if ticket.department_id else None,
        "assignee": _staff(ticket.assignee) if ticket.assignee_id else None,
        "contact": {**_contact(ticket.contact), "name": ticket.requester},
        "tags": list(ticket.tags or []),
        "language": ticket.language,
        "escalation_level": ticket.escalation_level,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "first_response_at": iso(ticket.first_response_at),
        "resolved_at": iso(ticket.resolved_at),
        "closed_at": iso(ticket.closed_at),
        "due_at": iso(ticket.due_at),
    }


def agent_ticket(ticket: Ticket) -> dict[str, Any]:
    messages = (Message.select().where(Message.ticket == ticket)
                .order_by(Message.created_at, Message.id))
    body = ticket_summary(ticket)
    body["fields"] = ticket.form_data or {}
    body["user_type"] = ticket.user_type.slug if ticket.user_type_id else None
    thread = list(prefetch(messages, Attachment.select()))
    body["messages"] = _as_asked(ticket, thread, [agent_message(m) for m in thread])
    return body


def customer_ticket(ticket: Ticket) -> dict[str, Any]:
    from ..services.tickets import public_thread

    return public_ticket(ticket, public_thread(ticket))


def user_type(row: UserType) -> dict[str, Any]:
    return {"slug": row.slug, "name": row.name, "description": row.description}


def category_field(row: CategoryField) -> dict[str, Any]:
    return {"name": row.name, "label": row.label, "kind": row.kind, "required": row.required,
            "choices": row.choice_list() if row.kind == "choice" else [],
            "help_text": row.help_text}


def category_tree(categories: list[Category], fields: list[CategoryField],
                  user_types: dict[int, UserType]) -> list[dict[str, Any]]:
    """Visible categories as a tree; a hidden category hides its subtree."""
    fields_by_category: dict[int, list[dict[str, Any]]] = {}
    for row in fields:
        fields_by_category.setdefault(row.category_id, []).append(category_field(row))
    children: dict[int | None, list[Category]] = {}
    for row in categories:
        children.setdefault(row.parent_id, []).append(row)

    def build(parent_id: int | None) -> list[dict[str, Any]]:
        return [{
            "slug": row.slug,
            "name": row.name,
            "description": row.description,
            "user_type": user_types[row.user_type_id].slug,
            "fields": fields_by_category.get(row.id, []),
            "children": build(row.id),
        } for row in children.get(parent_id, [])]

    return build(None)
