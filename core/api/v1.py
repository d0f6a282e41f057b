"""JSON API v1: customers open and follow tickets; agents list, read, answer and change them.

Authentication uses no cookies, so the blueprint is exempt from CSRF:

* agents send ``Authorization: Bearer <token>`` (``Staff.api_token_hash`` holds
  its SHA-256; see ``core.passwords.new_api_token``);
* a customer sends ``X-Ticket-Key: <access key>`` for their one ticket.

A wrong key, a missing ticket and a ticket outside an agent's departments all
answer the same 404, so the API never tells whether a ticket exists. Errors
use ``core.errors.api_error``'s shape everywhere. The OpenAPI document lives
in ``core/api/openapi.py`` and is served at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, g, jsonify, request, url_for
from peewee import JOIN, SQL, NodeList, Value, fn

from ..app import csrf
from ..errors import api_error
from ..models import (
    Category,
    CategoryField,
    Channel,
    Contact,
    Department,
    FieldKind,
    Message,
    Priority,
    Staff,
    Status,
    Ticket,
    UserType,
)
from ..passwords import hash_token
from ..services import access
from ..services import tickets as ticket_service
from ..services.contacts import is_email_address
from ..services.tickets import Actor, Identity, ServiceError
from ..services.unit import unit_of_work
from ..state import loket
from . import serialize
from .validation import (
    BadRequest,
    Errors,
    Invalid,
    category_fields,
    check_answers,
    json_body,
    parse_datetime,
    parse_id,
    read_attachments,
    storable,
    store_attachments,
    string_list,
    text,
)

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
TEXT_MAX = 50_000
OPEN_TICKET_KEYS = {"user_type", "category", "name", "email", "subject", "description",
                    "fields", "language", "attachments"}


# -- Plumbing ------------------------------------------------------------------------------


@bp.errorhandler(BadRequest)
def _bad_request(exc: BadRequest) -> Any:
    return api_error(400, exc.code, str(exc))


@bp.errorhandler(Invalid)
def _invalid(exc: Invalid) -> Any:
    return api_error(422, "invalid", str(exc), exc.fields)


@bp.errorhandler(ServiceError)
def _refused(exc: ServiceError) -> Any:
    return api_error(409, "conflict", str(exc))


@bp.after_request
def _private(response: Any) -> Any:
    # Bodies carry access keys, customer data and staff data: never cache them.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _not_found() -> Any:
    return api_error(404, "not_found", "No such ticket, or not yours to see.")


def _unauthorized(message: str = "An agent API token is required.") -> Any:
    response = api_error(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="loket"'
    return response


def _bearer_token() -> str | None:
    """The token of ``Authorization: Bearer ...``; "" when the header is there but not Bearer."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()


def _agent_from_token() -> Staff | None:
    token = _bearer_token()
    if not token or not storable(token):
        return None
    return Staff.get_or_none((Staff.api_token_hash == hash_token(token)) & (Staff.active == True))  # noqa: E712


def agent_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let only an active agent with a valid token in; ``g.agent`` is the Staff row."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        staff = _agent_from_token()
        if staff is None:
            if _bearer_token() is None:
                return _unauthorized()
            return _unauthorized("The API token is not valid.")
        g.agent = staff
        return view(*args, **kwargs)

    return wrapper


def _ticket_for_agent(staff: Staff, number: int) -> Ticket | None:
    if parse_id(number) is None:
        return None
    ticket = Ticket.get_or_none(Ticket.id == number)
    if ticket is None or not access.can_see(staff, ticket):
        return None
    return ticket


def _created(body: dict[str, Any], location: str) -> Any:
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


# -- Public: what a client needs to build a ticket form -------------------------------------


@bp.get("/user-types")
def list_user_types() -> Any:
    rows = (UserType.select().where(UserType.active == True)  # noqa: E712
            .order_by(UserType.position, UserType.id))
    return jsonify({"user_types": [serialize.user_type(row) for row in rows]})


@bp.get("/categories")
def list_categories() -> Any:
    user_types = {row.id: row for row in UserType.select().where(UserType.active == True)}  # noqa: E712
    slug = request.args.get("user_type")
    query = Category.select().where(Category.visible == True)  # noqa: E712
    if slug is not None:
        chosen = next((row for row in user_types.values() if row.slug == slug), None)
        if chosen is None:
            raise Invalid({"user_type": "No such user type."})
        query = query.where(Category.user_type == chosen)
    elif user_types:
        query = query.where(Category.user_type.in_(list(user_types)))
    else:
        return jsonify({"categories": []})
    categories = list(query.order_by(Category.position, Category.id))
    fields = list(CategoryField.select()
                  .where(CategoryField.category.in_([c.id for c in categories] or [0]))
                  .order_by(CategoryField.position, CategoryField.id))
    return jsonify({"categories": serialize.category_tree(categories, fields, user_types)})


# -- Customers: open a ticket -------------------------------------------------------------


def _find_category(errors: Errors, user_type_slug: str | None,
                   category_slug: str | None) -> Category | None:
    """The visible category of an active user type; hidden ancestors hide it too."""
    user_type = None
    if user_type_slug is not None:
        user_type = UserType.get_or_none((UserType.slug == user_type_slug)
                                         & (UserType.active == True))  # noqa: E712
        if user_type is None:
            errors.add("user_type", "No such user type.")
    if user_type is None or category_slug is None:
        return None
    category = Category.get_or_none((Category.user_type == user_type)
                                    & (Category.slug == category_slug))
    node, seen = category, set()
    while node is not None and node.id not in seen:
        if not node.visible:
            category = None
            break
        seen.add(node.id)
        node = node.parent
    if category is None:
        errors.add("category", "No such category for this user type.")
    return category


@bp.post("/tickets")
def open_ticket() -> Any:
    body = json_body()
    cfg = loket().config
    errors = Errors()
    name = text(errors, body, "name", required=True, max_length=200)
    email = text(errors, body, "email", required=True, max_length=254)
    if email is not None and not is_email_address(email):
        errors.add("email", "Enter a valid email address.")
    subject = text(errors, body, "subject", required=True, max_length=250)
    description = text(errors, body, "description", required=True, max_length=TEXT_MAX)
    language = text(errors, body, "language", max_length=8)
    if language is not None and language not in cfg["languages"]:
        errors.add("language", "Choose one of: " + ", ".join(cfg["languages"]))
    category = _find_category(
        errors,
        text(errors, body, "user_type", required=True, max_length=64),
        text(errors, body, "category", required=True, max_length=64))
    fields = category_fields(category) if category is not None else []
    file_fields = {f.name for f in fields if f.kind == FieldKind.FILE}
    uploads = read_attachments(errors, body.get("attachments"),
                               max_files=cfg["upload_max_files"],
                               max_bytes=cfg["upload_max_bytes"], file_fields=file_fields)
    form_data: dict[str, Any] = {}
    if category is not None:
        form_data = check_answers(errors, fields, body.get("fields"),
                                  {u.field for u in uploads if u.field})
    elif body.get("fields") is not None and not isinstance(body.get("fields"), dict):
        errors.add("fields", "Must be an object of answers by field name.")
    for name in sorted(set(body) - OPEN_TICKET_KEYS):
        errors.add(name, "Unknown field.")
    errors.raise_any()
    stored, by_field = store_attachments(errors, uploads, cfg)
    errors.raise_any()
    assert category is not None and email is not None
    ticket = ticket_service.open_ticket(
        identity=Identity("email", email, name=name or ""), subject=subject or "",
        text=description or "", channel=Channel.API, category=category,
        user_type_id=category.user_type_id, form_data=form_data,
        language=language or cfg["default_language"], attachments=stored,
        attachment_fields=by_field)
    body = serialize.customer_ticket(Ticket.get_by_id(ticket.id))
    body.update(access_key=ticket.access_key, tracking_url=ticket_service.tracking_url(ticket))
    return _created(body, url_for(".get_ticket", number=ticket.id))


# -- One ticket: a customer with its key, or an agent ---------------------------------------


def _customer_ticket(number: int) -> Ticket:
    """The ticket named by X-Ticket-Key; aborts with 401 without a key, 404 for a wrong one."""
    key = request.headers.get("X-Ticket-Key")
    if key is None:
        abort(_unauthorized("Send X-Ticket-Key with the ticket's access key, "
                            "or an agent's Authorization: Bearer token."))
    ticket = ticket_service.find_for_customer(number, key) if parse_id(number) else None
    if ticket is None:
        abort(_not_found())
    return ticket


@bp.get("/tickets/<int:number>")
def get_ticket(number: int) -> Any:
    if _bearer_token() is not None:
        return _agent_ticket(number)
    ticket = _customer_ticket(number)
    return jsonify(serialize.customer_ticket(ticket))


@agent_required
def _agent_ticket(number: int) -> Any:
    ticket = _ticket_for_agent(g.agent, number)
    if ticket is None:
        return _not_found()
    return jsonify(serialize.agent_ticket(ticket))


@bp.post("/tickets/<int:number>/messages")
def add_message(number: int) -> Any:
    if _bearer_token() is not None:
        return _agent_message(number)
    ticket = _customer_ticket(number)
    body = json_body()
    errors = Errors()
    message_text = text(errors, body, "text", required=True, max_length=TEXT_MAX)
    extra = set(body) - {"text", "attachments"}
    for name in sorted(extra):
        errors.add(name, "Customers may send only text and attachments.")
    stored = _message_attachments(errors, body)
    message = ticket_service.add_customer_reply(ticket, message_text or "", stored,
                                                channel=Channel.API)
    message = Message.get_by_id(message.id)
    return _created(serialize.public_message(message),
                    url_for(".get_ticket", number=ticket.id))


def _message_attachments(errors: Errors, body: dict[str, Any]) -> list[Any]:
    cfg = loket().config
    uploads = read_attachments(errors, body.get("attachments"),
                               max_files=cfg["upload_max_files"],
                               max_bytes=cfg["upload_max_bytes"], file_fields=set())
    errors.raise_any()
    stored, _ = store_attachments(errors, uploads, cfg)
    errors.raise_any()
    return stored


@agent_required
def _agent_message(number: int) -> Any:
    ticket = _ticket_for_agent(g.agent, number)
    if ticket is None:
        return _not_found()
    body = json_body()
    errors = Errors()
    message_text = text(errors, body, "text", required=True, max_length=TEXT_MAX)
    internal = body.get("internal", False)
    if not isinstance(internal, bool):
        errors.add("internal", "Must be true or false.")
    status = body.get("status")
    if status is not None and status not in Status.ALL:
        errors.add("status", "Choose one of: " + ", ".join(Status.ALL))
    for name in sorted(set(body) - {"text", "internal", "status", "attachments"}):
        errors.add(name, "Unknown field.")
    stored = _message_attachments(errors, body)
    staff = g.agent
    if internal:
        with unit_of_work():
            message = ticket_service.add_note(ticket, staff, message_text or "", stored)
            if status is not None:
                ticket_service.change_status(ticket, status, Actor.agent(staff))
    else:
        # Left out: the ticket waits on the customer (pending); null: its status stays.
        next_status = body["status"] if "status" in body else Status.PENDING
        message = ticket_service.reply(ticket, staff, message_text or "", attachments=stored,
                                       status=next_status)
    # Re-read: delivery ran after the commit and recorded its outcome.
    message = Message.get_by_id(message.id)
    return _created(serialize.agent_message(message), url_for(".get_ticket", number=ticket.id))


@bp.patch("/tickets/<int:number>")
@agent_required
def update_ticket(number: int) -> Any:
    ticket = _ticket_for_agent(g.agent, number)
    if ticket is None:
        return _not_found()
    body = json_body()
    errors = Errors()
    known = {"status", "priority", "department", "assignee", "tags", "subject"}
    for name in sorted(set(body) - known):
        errors.add(name, "Unknown field.")
    status = body.get("status")
    if "status" in body and status not in Status.ALL:
        errors.add("status", "Choose one of: " + ", ".join(Status.ALL))
    priority = body.get("priority")
    if "priority" in body and priority not in Priority.ALL:
        errors.add("priority", "Choose one of: " + ", ".join(Priority.ALL))
    department = None
    if "department" in body:
        slug = text(errors, body, "department", required=True, max_length=64)
        if slug is not None:
            department = Department.get_or_none((Department.slug == slug)
                                                & (Department.active == True))  # noqa: E712
            if department is None:
                errors.add("department", "No such department.")
    tags = string_list(errors, body["tags"], "tags") if "tags" in body else None
    subject = (text(errors, body, "subject", required=True, max_length=250)
               if "subject" in body else None)
    assignee: Staff | None = None
    if body.get("assignee") is not None:
        staff_id = parse_id(body["assignee"])
        assignee = Staff.get_or_none(Staff.id == staff_id) if staff_id else None
        if assignee is None or not assignee.active:
            errors.add("assignee", "No such active agent.")
        elif not access.can_see(assignee, _as_routed(ticket, department)):
            errors.add("assignee", "This agent does not work the ticket's department.")
    errors.raise_any()
    actor = Actor.agent(g.agent)
    with unit_of_work():
        if priority is not None or department is not None or tags is not None or subject:
            ticket_service.update_ticket(ticket, actor, priority=priority,
                                         department=department, tags=tags, subject=subject)
        if "assignee" in body:
            ticket_service.assign(ticket, assignee, actor)
        if status is not None:
            ticket_service.change_status(ticket, status, actor)
    return jsonify(serialize.agent_ticket(Ticket.get_by_id(ticket.id)))


def _as_routed(ticket: Ticket, department: Department | None) -> Ticket:
    """The ticket as it will be once moved to ``department`` (for the assignee check)."""
    if department is None:
        return ticket
    moved = Ticket(id=ticket.id, department=department.id, assignee=None)
    return moved


# -- Agents: the inbox ----------------------------------------------------------------------


def _encode_cursor(ticket: Ticket) -> str:
    raw = f"{ticket.updated_at.isoformat()}|{ticket.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(value: str) -> tuple[dt.datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        when, _, ident = raw.partition("|")
        ticket_id = parse_id(ident)
        return (dt.datetime.fromisoformat(when), ticket_id) if ticket_id else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def _contains(column: Any, needle: str) -> Any:
    """Case-insensitive substring match with LIKE wildcards escaped, on SQLite and PostgreSQL."""
    escaped = needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return NodeList((fn.LOWER(column), SQL("LIKE"), Value(f"%{escaped}%"),
                     SQL("ESCAPE '\\'")))


@bp.get("/tickets")
@agent_required
def list_tickets() -> Any:
    staff: Staff = g.agent
    args = request.args
    errors = Errors()
    for name, value in args.items(multi=True):
        if not storable(value):
            errors.add(name, "Contains characters that cannot be stored.")
    errors.raise_any()
    query = (Ticket.select(Ticket, Category, Department, Staff, Contact)
             .join(Category, JOIN.LEFT_OUTER, on=Ticket.category)
             .switch(Ticket).join(Department, JOIN.LEFT_OUTER, on=Ticket.department)
             .switch(Ticket).join(Staff, JOIN.LEFT_OUTER, on=Ticket.assignee)
             .switch(Ticket).join(Contact, on=Ticket.contact))
    scope = access.ticket_scope(staff)
    if scope is not None:
        query = query.where(scope)

    status = args.get("status")
    if status is not None:
        if status not in Status.ALL:
            errors.add("status", "Choose one of: " + ", ".join(Status.ALL))
        query = query.where(Ticket.status == status)
    priority = args.get("priority")
    if priority is not None:
        if priority not in Priority.ALL:
            errors.add("priority", "Choose one of: " + ", ".join(Priority.ALL))
        query = query.where(Ticket.priority == priority)
    channel = args.get("channel")
    if channel is not None:
        query = query.where(Ticket.channel == channel[:32])
    if (slug := args.get("department")) is not None:
        department = Department.get_or_none(Department.slug == slug)
        if department is None:
            errors.add("department", "No such department.")
        else:
            query = query.where(Ticket.department == department)
    if (assignee := args.get("assignee")) is not None:
        if assignee == "me":
            query = query.where(Ticket.assignee == staff)
        elif assignee == "none":
            query = query.where(Ticket.assignee.is_null())
        elif (staff_id := parse_id(assignee)) is not None:
            query = query.where(Ticket.assignee == staff_id)
        else:
            errors.add("assignee", 'Use "me", "none" or an agent id.')
    if (slug := args.get("category")) is not None:
        query = query.where(Ticket.category.in_(
            Category.select(Category.id).where(Category.slug == slug)))
    if (needle := args.get("q")) is not None and needle.strip():
        query = query.where(_contains(Ticket.subject, needle.strip()[:200]))
    if (since := args.get("updated_since")) is not None:
        when = parse_datetime(since)
        if when is None:
            errors.add("updated_since", "Use an ISO 8601 date-time, e.g. 2024-05-01T00:00:00Z.")
        else:
            query = query.where(Ticket.updated_at >= when)
    limit = DEFAULT_LIMIT
    if (raw_limit := args.get("limit")) is not None:
        limit = parse_id(raw_limit) or 0
        if not 1 <= limit <= MAX_LIMIT:
            errors.add("limit", f"A whole number from 1 to {MAX_LIMIT}.")
    if (cursor := args.get("cursor")) is not None:
        position = _decode_cursor(cursor)
        if position is None:
            errors.add("cursor", "Not a cursor this API gave out.")
        else:
            when, last_id = position
            query = query.where((Ticket.updated_at < when)
                                | ((Ticket.updated_at == when) & (Ticket.id < last_id)))
    errors.raise_any()

    rows = list(query.order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(limit + 1))
    page, more = rows[:limit], len(rows) > limit
    return jsonify({
        "tickets": [serialize.ticket_summary(row) for row in page],
        "next_cursor": _encode_cursor(page[-1]) if more else None,
    })


@bp.get("/openapi.json")
def openapi_document() -> Any:
    from .openapi import document

    return jsonify(document())
