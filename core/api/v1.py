"""JSON API v1: customers open and follow tickets; agents list, read, answer and change them.

Authentication uses no cookies, so the blueprint is exempt from CSRF:

* agents send ``Authorization: Bearer <token>`` (``Staff.api_token_hash`` holds
  its SHA-256; see ``core.passwords.new_api_token``);
* a customer sends ``X-Ticket-Key: <access key>`` for their one ticket.

A wrong key, a missing ticket and a ticket outside an agent's scope all
answer the same 404, so the API never tells whether a ticket exists. Each
operation is declared once (``api.operation`` with the models of
``core/api/schemas.py``); the OpenAPI document at ``/api/v1/openapi.json`` is
generated from those declarations.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, abort, g, jsonify, request, url_for

from .. import db
from ..attachments import (
    AttachmentRejected,
    Storage,
    StoredFile,
    download,
    find_attachment,
    rejection_message,
)
from ..errors import api_error
from ..i18n import _, localized_questions
from ..models import (
    Channel,
    Contact,
    Department,
    FieldKind,
    Message,
    Staff,
    Status,
    Ticket,
)
from ..passwords import hash_token
from ..security import csrf
from ..services import access, names
from ..services import tickets as ticket_service
from ..services.answers import check_answers, questions_by_category, questions_of, storable
from ..services.tickets import Actor, Identity, ServiceError
from ..services.unit import unit_of_work
from ..state import loket
from . import schemas as s
from .declare import (
    MAX_ID,
    Api,
    ErrorKind,
    Invalid,
    read_body,
    read_query,
    register_error_answers,
    respond,
)

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

PUBLIC: tuple[str, ...] = ()
AGENT = ("bearerAuth",)
AGENT_OR_CUSTOMER = ("bearerAuth", "ticketKey")

api = Api(
    bp, title="Loket JSON API", version="1",
    description=(
        "Customers open tickets and follow them with the ticket's access key "
        "(`X-Ticket-Key`). Agents list, read, answer and change the tickets of "
        "their departments with a personal API token (`Authorization: Bearer`). "
        "Every error has the shape `{\"error\": {\"code\", \"message\", "
        "\"fields\"?}}`; a wrong key, a missing ticket and a ticket outside the "
        "agent's departments answer the same 404. An unknown query parameter is a 400."),
    tags=["help center", "tickets", "agents", "meta"],
    security_schemes={
        "bearerAuth": {"type": "http", "scheme": "bearer",
                       "description": "An agent's API token."},
        "ticketKey": {"type": "apiKey", "in": "header", "name": "X-Ticket-Key",
                      "description": "The access key returned when the ticket was opened "
                                     "(also in the tracking link)."},
    },
    error_model=s.Error,
    errors={
        "BadRequest": ErrorKind(400, "The body is not a JSON object or not sent as "
                                     "application/json, or a query parameter is unknown."),
        "Unauthorized": ErrorKind(
            401, "No agent token (or ticket key) was sent, or the token is not valid.",
            {"WWW-Authenticate": {"description": 'Always `Bearer realm="loket"`.',
                                  "schema": {"type": "string"}}}),
        "NotFound": ErrorKind(404, "No such ticket, a wrong key, or a ticket outside the "
                                   "agent's scope: the same answer for each."),
        "Conflict": ErrorKind(409, "The desk refuses the change in the ticket's present state "
                                   "(e.g. a closed ticket cannot be reopened)."),
        "TooLarge": ErrorKind(413, "The request body is larger than the attachments allowed."),
        "Invalid": ErrorKind(422, "Some fields are not valid; `error.fields` maps each to a "
                                  "message."),
    },
)
register_error_answers(api)

DEFAULT_LIMIT = 25


# -- Plumbing ------------------------------------------------------------------------------


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
    return api_error(404, "not_found", _("No such ticket, or not yours to see."))


def _unauthorized(message: str | None = None) -> Any:
    # Messages in the caller's language (Accept-Language); the codes are what programs read.
    response = api_error(401, "unauthorized", message or _("An agent API token is required."))
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
    found = _staff_by_token.all(hash_token(token))
    if not found:
        return None
    g.names_stamp, *values = found[0]
    return Staff(**{name: convert(value)
                    for (name, convert), value in zip(_STAFF_FIELDS, values, strict=True)})


# Every agent request looks its token up, with the stamp of the names the lists show
# (core.services.names keeps them under it): one statement, its SQL built once (core.db.Rows).
# The staff member's row is made from its columns as peewee would read them.
_STAFF_FIELDS = [(field.name, field.python_value) for field in Staff.select().selected_columns]
_staff_by_token = db.Rows(
    "api.staff_by_token",
    lambda token_hash: Staff.select(names.STAMP, *Staff.select().selected_columns).where(
        (Staff.api_token_hash == token_hash) & (Staff.active == True)).limit(1))  # noqa: E712


def agent_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let only an active agent with a valid token in; ``g.agent`` is the Staff row."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        staff = _agent_from_token()
        if staff is None:
            if _bearer_token() is None:
                return _unauthorized()
            return _unauthorized(_("The API token is not valid."))
        g.agent = staff
        return view(*args, **kwargs)

    return wrapper


def _ticket_for_agent(staff: Staff, number: int) -> Ticket | None:
    if not 1 <= number <= MAX_ID:
        return None
    ticket = Ticket.get_or_none(Ticket.id == number)
    if ticket is None or not access.can_see(staff, ticket):
        return None
    return ticket


def _customer_ticket(number: int) -> Ticket:
    """The ticket named by X-Ticket-Key; aborts with 401 without a key, 404 for a wrong one."""
    key = request.headers.get("X-Ticket-Key")
    if key is None:
        abort(_unauthorized(_("Send X-Ticket-Key with the ticket's access key, "
                              "or an agent's Authorization: Bearer token.")))
    ticket = ticket_service.find_for_customer(number, key) if 1 <= number <= MAX_ID else None
    if ticket is None:
        abort(_not_found())
    return ticket


# -- Public: what a client needs to build a ticket form -------------------------------------


@api.operation("GET", "/user-types", operation_id="listUserTypes", tags=["help center"],
               summary="The user types a customer chooses from",
               ok=(200, s.UserTypeList, "Active user types in the admin's order."))
def list_user_types() -> Any:
    return respond(s.UserTypeList(
        user_types=[s.UserTypeOut.localized(row) for row in access.active_user_types()]))


@api.operation("GET", "/categories", operation_id="listCategories", tags=["help center"],
               summary="Visible categories as a tree, with the questions each asks",
               description="Build a ticket form from this: each category lists its `fields` "
                           "(kind text, textarea, email, datetime, choice or file).",
               query=s.CategoriesQuery, errors=("Invalid",),
               ok=(200, s.CategoryList, "Top-level categories, each with its children."))
def list_categories() -> Any:
    query: s.CategoriesQuery = read_query()
    user_types = access.active_user_types()
    if query.user_type is not None:
        user_types = [row for row in user_types if row.slug == query.user_type]
        if not user_types:
            raise Invalid({"user_type": "No such user type."})
    slugs = {row.id: row.slug for row in user_types}
    tree = access.category_tree(list(slugs))
    questions, _words = localized_questions(
        questions_by_category([node.category.id for node in access.walk(tree)]))
    return respond(s.CategoryList(categories=[s.CategoryOut.of(node, slugs, questions)
                                              for node in tree]))


# -- Customers: open a ticket -------------------------------------------------------------


@dataclass
class Upload:
    filename: str
    data: bytes
    field: str


def _read_uploads(errors: dict[str, str], items: list[s.AttachmentUpload] | None,
                  file_questions: set[str]) -> list[Upload]:
    """Decode base64 uploads (nothing is stored yet); errors go to ``attachments[<i>]...``."""
    if not items:
        return []
    cfg = loket().config
    max_bytes = cfg["upload_max_bytes"]
    if len(items) > cfg["upload_max_files"]:
        errors["attachments"] = f"At most {cfg['upload_max_files']} files per message."
        return []
    uploads = []
    for index, item in enumerate(items):
        key = f"attachments[{index}]"
        if item.field and item.field not in file_questions:
            errors[f"{key}.field"] = "This category has no file question of that name."
            continue
        if len(item.content_base64) > (max_bytes + 2) // 3 * 4 + 4:
            errors[f"{key}.content_base64"] = f"The file is larger than {max_bytes} bytes."
            continue
        try:
            data = base64.b64decode(item.content_base64.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            errors[f"{key}.content_base64"] = "Not valid base64."
            continue
        uploads.append(Upload(item.filename, data, item.field or ""))
    return uploads


def _store_uploads(uploads: list[Upload]) -> tuple[list[StoredFile], dict[str, str]]:
    """Store decoded uploads (type sniffed, size checked); files and sha256 -> question."""
    cfg = loket().config
    storage = Storage(cfg["attachments_path"])
    errors: dict[str, str] = {}
    stored: list[StoredFile] = []
    by_field: dict[str, str] = {}
    for index, upload in enumerate(uploads):
        try:
            saved = storage.save_bytes(upload.data, upload.filename,
                                       max_bytes=cfg["upload_max_bytes"],
                                       allowed_types=cfg["upload_allowed_types"])
        except AttachmentRejected as exc:
            errors[f"attachments[{index}]"] = rejection_message(
                exc, upload.filename, cfg["upload_max_bytes"], cfg["upload_allowed_types"])
            continue
        stored.append(saved)
        if upload.field:
            by_field[saved.sha256] = upload.field
    if errors:
        raise Invalid(errors)
    return stored, by_field


OPEN_EXAMPLE = {
    "user_type": "member", "category": "registration-and-login",
    "name": "Rina", "email": "rina@example.com", "subject": "Cannot sign in",
    "description": "The code never arrives.",
    "fields": {"registered_email": "rina@example.com"}, "language": "en"}


@api.operation(
    "POST", "/tickets", operation_id="openTicket", tags=["tickets"],
    summary="Open a ticket (customers; no authentication)",
    description=(
        "Answers to the category's questions go in `fields` by name and are checked by "
        "the same function as the web form's: required, email, date-time (stored as "
        "`2024-05-01T14:30:00`, or in UTC with a `Z` when sent with an offset), choice "
        "among its choices, length. A `file` question is answered by an entry of "
        "`attachments` whose `field` names it. Files are sniffed; types and sizes follow "
        "the desk's upload settings. Keep the returned `access_key`: it is the only way "
        "to read the ticket again."),
    body=s.OpenTicket, example=OPEN_EXAMPLE, errors=("TooLarge", "Invalid"),
    ok=(201, s.CreatedTicket, "The ticket, opened."))
def open_ticket() -> Any:
    body: s.OpenTicket = read_body()
    cfg = loket().config
    errors: dict[str, str] = {}
    if body.language is not None and body.language not in cfg["languages"]:
        errors["language"] = _("Choose one of: %(choices)s",
                               choices=", ".join(cfg["languages"]))
    category = None
    if access.user_type_by_slug(body.user_type) is None:
        errors["user_type"] = "No such user type."
    else:
        category = access.visible_category(body.user_type, body.category)
        if category is None:
            errors["category"] = "No such category for this user type."
    questions = questions_of(category.id) if category is not None else []
    file_questions = {q.name for q in questions if q.kind == FieldKind.FILE}
    uploads = _read_uploads(errors, body.attachments, file_questions)
    form_data: dict[str, Any] = {}
    if category is not None:
        form_data, answer_errors = check_answers(questions, body.fields or {},
                                                 {u.field for u in uploads if u.field})
        errors.update({f"fields.{name}": message for name, message in answer_errors.items()})
    if errors:
        raise Invalid(errors)
    assert category is not None
    stored, by_field = _store_uploads(uploads)
    for saved in stored:
        if saved.sha256 in by_field:  # as the web form stores a file question's answer
            form_data[by_field[saved.sha256]] = saved.filename
    ticket = ticket_service.open_ticket(
        identity=Identity("email", body.email, name=body.name), subject=body.subject,
        text=body.description, channel=Channel.API, category=category,
        user_type_id=category.user_type_id, form_data=form_data,
        language=body.language or cfg["default_language"], attachments=stored,
        attachment_fields=by_field)
    created = s.CreatedTicket.of(Ticket.get_by_id(ticket.id), access_key=ticket.access_key,
                                 tracking_url=ticket_service.tracking_url(ticket))
    return respond(created, 201, url_for(".get_ticket", number=ticket.id))


# -- One ticket: a customer with its key, or an agent ---------------------------------------


@api.operation(
    "GET", "/tickets/<int:number>", operation_id="getTicket", tags=["tickets", "agents"],
    security=AGENT_OR_CUSTOMER,
    summary="One ticket: the customer's view with X-Ticket-Key, the full view with an agent "
            "token",
    errors=("Unauthorized", "NotFound"),
    ok=(200, (s.TicketOut, s.AgentTicket),
        "`TicketOut` for the customer, `AgentTicket` (internal notes, department, assignee, "
        "tags, delivery states) for an agent."))
def get_ticket(number: int) -> Any:
    if _bearer_token() is not None:
        return _agent_ticket(number)
    return respond(s.TicketOut.of(_customer_ticket(number)))


@agent_required
def _agent_ticket(number: int) -> Any:
    ticket = _ticket_for_agent(g.agent, number)
    if ticket is None:
        return _not_found()
    return respond(s.AgentTicket.of(ticket))


@api.operation(
    "GET", "/tickets/<int:number>/attachments/<int:attachment_id>",
    operation_id="getAttachment", tags=["tickets", "agents"], security=AGENT_OR_CUSTOMER,
    summary="A file of the ticket, always as a download (the `download_url` of an attachment)",
    description="The customer (X-Ticket-Key) gets the files of their thread, an agent every "
                "file of a ticket they may see; headers as on the help center.",
    errors=("Unauthorized", "NotFound"), binary=True,
    ok=(200, None, "The file's bytes."))
def get_attachment(number: int, attachment_id: int) -> Any:
    if _bearer_token() is not None:
        return _agent_attachment(number, attachment_id)
    ticket = _customer_ticket(number)
    return _download(ticket, attachment_id, public=True)


@agent_required
def _agent_attachment(number: int, attachment_id: int) -> Any:
    ticket = _ticket_for_agent(g.agent, number)
    if ticket is None:
        return _not_found()
    return _download(ticket, attachment_id, public=False)


def _download(ticket: Ticket, attachment_id: int, *, public: bool) -> Any:
    found = (find_attachment(ticket.id, attachment_id, public=public)
             if attachment_id <= MAX_ID else None)
    if found is None:
        return api_error(404, "not_found", _("No such file on this ticket."))
    return download(found, loket().config["attachments_path"])


@api.operation(
    "POST", "/tickets/<int:number>/messages", operation_id="addMessage",
    tags=["tickets", "agents"], security=AGENT_OR_CUSTOMER,
    summary="Write on a ticket: the customer replies, an agent replies or notes",
    description=(
        "With X-Ticket-Key only `text` and `attachments` are accepted. An agent sends a reply "
        "(delivered through the ticket's channel, or left on the tracking page) or, with "
        "`internal: true`, a note. `status` is where the ticket goes next: for a reply it "
        "defaults to `pending` and `null` keeps the present status."),
    body=s.NewMessage, errors=("Unauthorized", "NotFound", "Conflict", "TooLarge", "Invalid"),
    ok=(201, (s.MessageOut, s.AgentMessage),
        "The message written: `MessageOut` for the customer, `AgentMessage` for an agent."))
def add_message(number: int) -> Any:
    if _bearer_token() is not None:
        return _agent_message(number)
    ticket = _customer_ticket(number)
    body: s.NewMessage = read_body()
    errors = {name: "Customers may send only text and attachments."
              for name in sorted(body.model_fields_set - {"text", "attachments"})}
    uploads = _read_uploads(errors, body.attachments, set())
    if errors:
        raise Invalid(errors)
    stored, _ = _store_uploads(uploads)
    message = ticket_service.add_customer_reply(ticket, body.text, stored, channel=Channel.API)
    return respond(s.MessageOut.of(Message.get_by_id(message.id), ticket), 201,
                   url_for(".get_ticket", number=ticket.id))


@agent_required
def _agent_message(number: int) -> Any:
    ticket = _ticket_for_agent(g.agent, number)
    if ticket is None:
        return _not_found()
    body: s.NewMessage = read_body()
    errors: dict[str, str] = {}
    uploads = _read_uploads(errors, body.attachments, set())
    if errors:
        raise Invalid(errors)
    stored, _ = _store_uploads(uploads)
    staff = g.agent
    if body.internal:
        with unit_of_work():
            message = ticket_service.add_note(ticket, staff, body.text, stored)
            if body.status is not None:
                ticket_service.change_status(ticket, body.status, Actor.agent(staff))
    else:
        # Left out: the ticket waits on the customer (pending); null: its status stays.
        next_status = body.status if "status" in body.model_fields_set else Status.PENDING
        message = ticket_service.reply(ticket, staff, body.text, attachments=stored,
                                       status=next_status)
    # Re-read: delivery ran after the commit and recorded its outcome.
    return respond(s.AgentMessage.of(Message.get_by_id(message.id), ticket), 201,
                   url_for(".get_ticket", number=ticket.id))


@api.operation(
    "PATCH", "/tickets/<int:number>", operation_id="updateTicket", tags=["agents"],
    security=AGENT,
    summary="Change status, priority, department, tags, subject or assignee",
    description="Everything is checked first; then all changes apply together in one "
                "transaction, or none do (and no event hook fires). Each change writes an "
                "audit event. The assignee must be an admin or an agent of the department the "
                "ticket is in, or is moved to by the same change.",
    body=s.TicketChange,
    errors=("Unauthorized", "NotFound", "Conflict", "TooLarge", "Invalid"),
    ok=(200, s.AgentTicket, "The ticket, changed."))
@agent_required
def update_ticket(number: int) -> Any:
    ticket = _ticket_for_agent(g.agent, number)
    if ticket is None:
        return _not_found()
    body: s.TicketChange = read_body()
    given = body.model_fields_set
    errors: dict[str, str] = {}
    department = None
    if body.department is not None:
        department = Department.get_or_none((Department.slug == body.department)
                                            & (Department.active == True))  # noqa: E712
        if department is None:
            errors["department"] = "No such department."
    assignee: Staff | None = None
    if body.assignee is not None:
        assignee = Staff.get_or_none(Staff.id == body.assignee)
        refusal = (access.assignment_refusal(ticket, assignee, department)
                   if assignee is not None else str(access.NOT_ACTIVE))
        if refusal is not None:
            errors["assignee"] = refusal
    if errors:
        raise Invalid(errors)
    actor = Actor.agent(g.agent)
    with unit_of_work():
        if body.priority or department or body.tags is not None or body.subject:
            ticket_service.update_ticket(ticket, actor, priority=body.priority,
                                         department=department, tags=body.tags,
                                         subject=body.subject)
        if "assignee" in given:
            ticket_service.assign(ticket, assignee, actor)
        if body.status is not None:
            ticket_service.change_status(ticket, body.status, actor)
    return respond(s.AgentTicket.of(Ticket.get_by_id(ticket.id)))


# -- Agents: the inbox ----------------------------------------------------------------------


def _parse_datetime(value: str) -> dt.datetime | None:
    """An ISO 8601 date-time; aware values are turned into naive UTC. None when unreadable."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip().upper())
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    return parsed


# What ``TicketSummary`` reads of a ticket and its contact (``schemas.summary_json``): not
# every column (answers, descriptions), and as plain values, not peewee rows.
SUMMARY_COLUMNS = (
    Ticket.id, Ticket.subject, Ticket.status, Ticket.category, Ticket.language,
    Ticket.created_at, Ticket.updated_at, Ticket.priority, Ticket.channel, Ticket.department,
    Ticket.assignee, Ticket.contact, Ticket.requester_name, Ticket.tags,
    Ticket.escalation_level, Ticket.first_response_at, Ticket.resolved_at, Ticket.closed_at,
    Ticket.due_at, Contact.name.alias("contact_name"), Contact.email.alias("contact_email"))


@api.operation(
    "GET", "/tickets", operation_id="listTickets", tags=["agents"], security=AGENT,
    summary="The agent's tickets, most recently updated first",
    description="Only tickets the agent may see (admins: all; agents: their departments' and "
                "those assigned to them). Pages follow `next_cursor`; there is no total "
                "count.",
    query=s.InboxQuery, errors=("Unauthorized", "Invalid"),
    ok=(200, s.TicketPage, "One page of tickets."))
@agent_required
def list_tickets() -> Any:
    staff: Staff = g.agent
    query: s.InboxQuery = read_query()
    errors: dict[str, str] = {}
    wanted = access.InboxFilter(status=query.status, priority=query.priority,
                                channel=query.channel, category_slug=query.category,
                                text=query.q, tag=query.tag, waiting=query.waiting,
                                overdue=query.overdue, active=query.active)
    if query.assignee is not None:
        wanted.assignee = query.assignee
    channels = loket().channels
    if query.channel is not None and query.channel not in channels:
        errors["channel"] = "No such channel here; one of: " + ", ".join(channels.names()) + "."
    if query.department is not None:
        department = Department.get_or_none(Department.slug == query.department)
        if department is None:
            errors["department"] = "No such department."
        else:
            wanted.department_id = department.id
    if query.updated_since is not None:
        wanted.updated_since = _parse_datetime(query.updated_since)
        if wanted.updated_since is None:
            errors["updated_since"] = "Use an ISO 8601 date-time, e.g. 2024-05-01T00:00:00Z."
    position = None
    if query.cursor is not None:
        position = access.decode_cursor(query.cursor)
        if position is None:
            errors["cursor"] = "Not a cursor this API gave out."
    if errors:
        raise Invalid(errors)
    if access.searched(wanted):
        rows = (access.filter_inbox(access.inbox(staff, related=False), staff, wanted)
                .select(*SUMMARY_COLUMNS))
        page = access.inbox_page(rows, cursor=position, size=query.limit,
                                 ids_first=access.walks_far(wanted), make=SimpleNamespace)
    else:
        # SQL built once per shape of the list (access.inbox_rows).
        page = access.inbox_rows(
            "api", SUMMARY_COLUMNS, access.scope_terms(staff) + access.filter_terms(staff, wanted),
            cursor=position, size=query.limit, ids_first=access.walks_far(wanted),
            make=SimpleNamespace)
    # The categories, departments and assignees by id, kept by the process while the stamp
    # the token's look-up read holds (a statement of their own on every list before).
    shown = names.read(g.get("names_stamp")).api()
    # TicketPage's JSON, written without its models (s.summary_json says why).
    return jsonify({"tickets": [s.summary_json(row, shown) for row in page.tickets],
                    "next_cursor": page.next_cursor})


@api.operation("GET", "/openapi.json", operation_id="getOpenApi", tags=["meta"],
               summary="This document", ok=(200, None, "The OpenAPI 3.1 document."))
def openapi_document() -> Any:
    return jsonify(api.document())

