"""The shapes of JSON API v1, each declared once: what a request may carry, what an answer holds.

Request models are read by ``core.api.declare`` (and their errors answered
as 422); answer models are built from rows by their ``of`` constructors and
serialised by pydantic; the OpenAPI document is generated from both. The
customer's view of a ticket never carries internal notes, staff email
addresses, departments, assignees, tags or delivery details; the agent's
view carries all of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from flask import url_for
from peewee import prefetch
from pydantic import AfterValidator, BaseModel, Field, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from ..i18n import localized
from ..models import (
    Attachment,
    AuthorKind,
    Delivery,
    FieldKind,
    Message,
    Priority,
    Status,
    Ticket,
)
from ..services.access import Node
from ..services.answers import (
    BAD_EMAIL,
    EMAIL_MAX,
    NAME_MAX,
    SUBJECT_MAX,
    TEXT_MAX,
    Question,
)
from ..services.contacts import is_email_address
from .declare import MAX_ID, Answer, Query, Request, Text, text


def iso(value: dt.datetime) -> str:
    """Naive UTC from the database as RFC 3339 with a Z."""
    return value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


Timestamp = Annotated[dt.datetime, PlainSerializer(iso, return_type=str),
                      WithJsonSchema({"type": "string", "format": "date-time"})]
StatusName = Literal[Status.ALL]  # type: ignore[valid-type]
PriorityName = Literal[Priority.ALL]  # type: ignore[valid-type]
AuthorName = Literal["customer", "agent", "system", "bot"]
AUTHOR_NAMES = {AuthorKind.CONTACT: "customer", AuthorKind.STAFF: "agent",
                AuthorKind.SYSTEM: "system", AuthorKind.BOT: "bot"}
DeliveryState = Literal[tuple(s for s in Delivery.ALL if s)]  # type: ignore[valid-type]


# -- Errors ------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable machine-readable code.")
    message: str
    fields: dict[str, str] | None = Field(
        default=None, description="Field name -> message. Extra fields are named "
                                  "`fields.<name>`, files `attachments[<i>]`.")
    model_config = {"extra": "forbid"}


class Error(BaseModel):
    """Every error answer: ``core.errors.api_error`` writes it."""

    error: ErrorDetail
    model_config = {"extra": "forbid"}


def _email(value: str) -> str:
    if not is_email_address(value):
        raise PydanticCustomError("email", str(BAD_EMAIL))
    return value


# -- Requests ----------------------------------------------------------------------------------

Slug = text(min_length=1, max_length=64)
FileName = text(min_length=1, max_length=255)
QuestionName = text(max_length=64)
PersonName = text(min_length=1, max_length=NAME_MAX)
EmailAddress = Annotated[text(min_length=1, max_length=EMAIL_MAX,
                              json_schema_extra={"format": "email"}), AfterValidator(_email)]
Subject = text(min_length=1, max_length=SUBJECT_MAX)
Body = text(min_length=1, max_length=TEXT_MAX)
LanguageCode = text(max_length=8)
Tag = text(max_length=64)
ChannelName = text(max_length=32)
AssigneeChoice = text(pattern=r"^(me|none|[1-9][0-9]{0,8})$")
Words = text(max_length=200)
DateTimeText = text(json_schema_extra={"format": "date-time"})
AgentId = Annotated[int, Field(ge=1, le=MAX_ID)]
# A field that may be left out but not sent as null is typed without None and
# defaults to None (pydantic does not check defaults): null is then refused.


class AttachmentUpload(Request):
    filename: FileName
    content_base64: str = Field(description="The file's bytes in standard base64.",
                                json_schema_extra={"contentEncoding": "base64"})
    field: QuestionName = Field(
        default=None, description="The name of the category's `file` question this file "
                                  "answers.")


class OpenTicket(Request):
    user_type: Slug = Field(description="A user type's slug.")
    category: Slug = Field(description="A visible category's slug within that user type.")
    name: PersonName
    email: EmailAddress
    subject: Subject
    description: Body
    fields: dict[str, Text] = Field(default=None,
                                    description="Answers to the category's questions by name.")
    language: LanguageCode = Field(
        default=None, description="One of the desk's languages; its default when left out.")
    attachments: list[AttachmentUpload] = None


class NewMessage(Request):
    text: Body
    internal: bool = Field(default=False, description="Agents only: an internal note.")
    status: StatusName | None = Field(
        default=None, description="Agents only: where the ticket goes next. Left out, a "
                                  "reply leaves it `pending`; `null` keeps its status.")
    attachments: list[AttachmentUpload] = None


class TicketChange(Request):
    status: StatusName = None
    priority: PriorityName = None
    department: Slug = Field(default=None, description="A department slug.")
    tags: Annotated[list[Tag], Field(max_length=50)] = None
    subject: Subject = None
    assignee: AgentId | None = Field(default=None,
                                     description="An agent id, or null for nobody.")


class CategoriesQuery(Query):
    user_type: Text = Field(default=None,
                            description="A user type's slug; all active ones when left out.")


class InboxQuery(Query):
    status: StatusName = None
    priority: PriorityName = None
    channel: ChannelName = Field(default=None, description=(
        "A channel's name, as the enabled plugins declare them (core's own: web, api, "
        "staff; email, messengers and chat come with their plugins)."))
    department: Text = Field(default=None, description="A department slug.")
    assignee: AssigneeChoice = Field(default=None, description='"me", "none", or an agent id.')
    category: Text = Field(default=None, description="A category slug.")
    q: Words = Field(default=None,
                     description="Words that must each match the ticket number, subject, "
                                 "message text, or the contact's name or address (as the "
                                 "console's search): a word's letters and digits match the "
                                 "start of words there, so `sari@exa` finds "
                                 "sari@example.com.")
    updated_since: DateTimeText = None
    active: bool | None = Field(default=None, description=(
        "true: new, open, pending or on hold (the console's default view); false: resolved "
        "or closed."))
    tag: Text = Field(default=None, description="A tag the ticket carries.")
    waiting: bool | None = Field(default=None, description=(
        "true: the customer wrote last and no agent has answered since."))
    overdue: bool | None = Field(default=None, description=(
        "true: active and past its due time."))
    limit: Annotated[int, Field(ge=1, le=100)] = 25
    cursor: Text = Field(default=None, description="`next_cursor` of the previous page.")


# -- Answers: the help center's data --------------------------------------------------------


class UserTypeOut(Answer):
    slug: str
    name: str
    description: str

    @classmethod
    def localized(cls, row: Any) -> UserTypeOut:
        """In the caller's language (Accept-Language), as the help center shows it."""
        return cls(slug=row.slug, name=localized(row, "name"),
                   description=localized(row, "description"))


class UserTypeList(Answer):
    user_types: list[UserTypeOut]


class QuestionOut(Answer):
    name: str
    label: str
    kind: Literal[FieldKind.ALL]  # type: ignore[valid-type]
    required: bool
    choices: list[str] = Field(description="The allowed answers of a `choice` question.")
    help_text: str

    @classmethod
    def of(cls, question: Question) -> QuestionOut:
        return cls(name=question.name, label=question.label, kind=question.kind,
                   required=question.required, choices=list(question.choices),
                   help_text=question.help_text)


class CategoryOut(Answer):
    slug: str
    name: str
    description: str
    user_type: str = Field(description="The user type's slug.")
    fields: list[QuestionOut]
    children: list[CategoryOut]

    @classmethod
    def of(cls, node: Node, slugs: dict[int, str],
           questions: dict[int, list[Question]]) -> CategoryOut:
        row = node.category
        # In the caller's language (Accept-Language), as the help center shows them.
        return cls(slug=row.slug, name=localized(row, "name"),
                   description=localized(row, "description"), user_type=slugs[row.user_type_id],
                   fields=[QuestionOut.of(q) for q in questions.get(row.id, [])],
                   children=[cls.of(child, slugs, questions) for child in node.children])


class CategoryList(Answer):
    categories: list[CategoryOut]


# -- Answers: tickets ------------------------------------------------------------------------


class CategoryRef(Answer):
    slug: str
    name: str


class DepartmentOut(Answer):
    id: int
    slug: str
    name: str


class StaffOut(Answer):
    id: int
    name: str
    email: str


class ContactOut(Answer):
    id: int
    name: str
    email: str | None


class AttachmentOut(Answer):
    id: int
    filename: str
    content_type: str = Field(description="Sniffed from the content.")
    size: int
    field: str | None = Field(description="The question this file answers, if any.")
    download_url: str = Field(description="Where to fetch the file, with the same "
                                          "credentials as the ticket.",
                              json_schema_extra={"format": "uri"})

    @classmethod
    def of(cls, row: Attachment) -> AttachmentOut:
        return cls(id=row.id, filename=row.filename, content_type=row.content_type,
                   size=row.size, field=row.field_name or None,
                   download_url=url_for("api_v1.get_attachment", number=row.ticket_id,
                                        attachment_id=row.id, _external=True))


class Author(Answer):
    kind: AuthorName
    name: str


class AgentAuthor(Author):
    staff: StaffOut | None
    contact: ContactOut | None


def _author_name(message: Message, ticket: Ticket | None = None) -> str:
    if message.author_kind == AuthorKind.STAFF:
        return message.staff.name if message.staff_id else ""
    if message.author_kind == AuthorKind.CONTACT:
        # The ticket's customer goes by the name given with the ticket (``requester``).
        if ticket is not None and message.contact_id == ticket.contact_id:
            return ticket.requester
        return message.contact.name if message.contact_id else ""
    return ""


class MessageOut(Answer):
    """A message of the customer's thread."""

    id: int
    author: Author
    text: str
    html: str = Field(description="Sanitised HTML, or empty.")
    created_at: Timestamp
    attachments: list[AttachmentOut]

    @classmethod
    def of(cls, message: Message, ticket: Ticket | None = None) -> MessageOut:
        return cls(**_message_common(message),
                   author=Author(kind=AUTHOR_NAMES.get(message.author_kind, "system"),
                                 name=_author_name(message, ticket)))


def _message_common(message: Message) -> dict[str, Any]:
    # prefetch() fills ``attachments`` as a list; a lone message queries it.
    return {"id": message.id, "text": message.body_text, "html": message.body_html,
            "created_at": message.created_at,
            "attachments": [AttachmentOut.of(a) for a in message.attachments]}


class AgentMessage(MessageOut):
    """A message as an agent sees it: notes too, and how delivery went."""

    author: AgentAuthor
    internal: bool = Field(description="An internal note, never shown to the customer.")
    channel: str
    delivery_state: DeliveryState | None
    delivery_error: str | None
    delivery_updated_at: Timestamp | None

    @classmethod
    def of(cls, message: Message, ticket: Ticket | None = None) -> AgentMessage:
        author = AgentAuthor(
            kind=AUTHOR_NAMES.get(message.author_kind, "system"),
            name=_author_name(message, ticket),
            staff=StaffOut.of_row(message.staff) if message.staff_id else None,
            contact=ContactOut.of_row(message.contact) if message.contact_id else None)
        return cls(**_message_common(message), author=author, internal=message.is_internal,
                   channel=message.channel, delivery_state=message.delivery_state or None,
                   delivery_error=message.delivery_error or None,
                   delivery_updated_at=message.delivery_updated_at)


class TicketCommon(Answer):
    """What customers and agents both see of a ticket."""

    number: int
    subject: str
    status: StatusName
    category: CategoryRef | None
    language: str
    created_at: Timestamp
    updated_at: Timestamp


def _common(ticket: Ticket) -> dict[str, Any]:
    return {"number": ticket.id, "subject": ticket.subject, "status": ticket.status,
            "category": CategoryRef.of_row(ticket.category) if ticket.category_id else None,
            "language": ticket.language, "created_at": ticket.created_at,
            "updated_at": ticket.updated_at}


class TicketOut(TicketCommon):
    """What the customer sees: no internal notes, no staff email addresses."""

    fields: dict[str, Any] = Field(description="Answers to the category's questions.")
    messages: list[MessageOut]

    @classmethod
    def of(cls, ticket: Ticket, **extra: Any) -> Any:
        from ..services.tickets import public_thread

        return cls(**_common(ticket), fields=ticket.form_data or {},
                   messages=[MessageOut.of(m, ticket) for m in public_thread(ticket)],
                   **extra)


class CreatedTicket(TicketOut):
    access_key: str = Field(description="The secret for X-Ticket-Key; shown only here.")
    tracking_url: str = Field(json_schema_extra={"format": "uri"})


class TicketSummary(TicketCommon):
    """An agent's inbox row: everything but the thread (related rows joined by the caller)."""

    priority: PriorityName
    channel: str
    department: DepartmentOut | None
    assignee: StaffOut | None
    contact: ContactOut
    tags: list[str]
    escalation_level: int
    first_response_at: Timestamp | None
    resolved_at: Timestamp | None
    closed_at: Timestamp | None
    due_at: Timestamp | None

    @classmethod
    def of(cls, ticket: Ticket) -> TicketSummary:
        return cls(**_summary(ticket))


def _summary(ticket: Ticket) -> dict[str, Any]:
    return {**_common(ticket), "priority": ticket.priority, "channel": ticket.channel,
            "department": DepartmentOut.of_row(ticket.department) if ticket.department_id else None,
            "assignee": StaffOut.of_row(ticket.assignee) if ticket.assignee_id else None,
            "contact": ContactOut.of_row(ticket.contact).model_copy(
                update={"name": ticket.requester}),
            "tags": list(ticket.tags or []),
            "escalation_level": ticket.escalation_level,
            "first_response_at": ticket.first_response_at, "resolved_at": ticket.resolved_at,
            "closed_at": ticket.closed_at, "due_at": ticket.due_at}


def _when(value: dt.datetime | None) -> str | None:
    return None if value is None else iso(value)


# Names of related rows by id (``core.services.names.Names.api``): categories as
# (slug, name), departments as (slug, name), staff as (name, email).
RelatedNames = tuple[dict[int, tuple[str, str]], dict[int, tuple[str, str]],
                     dict[int, tuple[str, str]]]


def summary_json(row: Any, names: RelatedNames) -> dict[str, Any]:
    """``TicketSummary.of(ticket).model_dump(mode="json")``, from a list row of plain values.

    The agents' list answers up to 100 of these a page; building four peewee rows and five
    pydantic models per ticket, to serialise them again, was most of its CPU. ``row`` holds
    the ticket's own columns under their names (related rows as ids) and its contact's as
    ``contact_name`` and ``contact_email`` (``core.api.v1.SUMMARY_COLUMNS``); ``names`` the
    related rows' names. tests/test_api.py holds it to the model's own answer for every
    kind of ticket.
    """
    categories, departments, staff = names
    contact_name = row.contact_name or row.contact_email or f"contact {row.contact}"
    category = categories.get(row.category) if row.category else None
    department = departments.get(row.department) if row.department else None
    assignee = staff.get(row.assignee) if row.assignee else None
    return {
        "number": row.id, "subject": row.subject, "status": row.status,
        "category": {"slug": category[0], "name": category[1]} if category else None,
        "language": row.language, "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at), "priority": row.priority, "channel": row.channel,
        "department": ({"id": row.department, "slug": department[0], "name": department[1]}
                       if department else None),
        "assignee": ({"id": row.assignee, "name": assignee[0], "email": assignee[1]}
                     if assignee else None),
        "contact": {"id": row.contact, "name": row.requester_name or contact_name,
                    "email": row.contact_email},
        "tags": list(row.tags or []), "escalation_level": row.escalation_level,
        "first_response_at": _when(row.first_response_at),
        "resolved_at": _when(row.resolved_at), "closed_at": _when(row.closed_at),
        "due_at": _when(row.due_at)}


class AgentTicket(TicketSummary):
    """The whole ticket as an agent sees it."""

    fields: dict[str, Any]
    user_type: str | None
    messages: list[AgentMessage]

    @classmethod
    def of(cls, ticket: Ticket) -> AgentTicket:
        messages = (Message.select().where(Message.ticket == ticket)
                    .order_by(Message.created_at, Message.id))
        return cls(**_summary(ticket), fields=ticket.form_data or {},
                   user_type=ticket.user_type.slug if ticket.user_type_id else None,
                   messages=[AgentMessage.of(m, ticket)
                             for m in prefetch(messages, Attachment.select())])


class TicketPage(Answer):
    tickets: list[TicketSummary]
    next_cursor: str | None
