"""The core models: who asks (contacts), what about (categories), and the tickets themselves."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import secrets
from collections.abc import Iterator
from typing import Any

import peewee as pw

from .db import BaseModel

_clock: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar(
    "loket_clock", default=None)


def utcnow() -> dt.datetime:
    """Naive UTC: stored the same way on SQLite and PostgreSQL.

    Inside ``clock_at(when)`` it answers ``when``: demo data and imports record
    what happened at the time it happened, through the same services.
    """
    fixed = _clock.get()
    if fixed is not None:
        return fixed
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@contextlib.contextmanager
def clock_at(when: dt.datetime) -> Iterator[None]:
    """Make ``utcnow()`` answer ``when`` (naive UTC) in this context."""
    token = _clock.set(when)
    try:
        yield
    finally:
        _clock.reset(token)


class JSONField(pw.TextField):
    """JSON stored as text, so the same column works on SQLite and PostgreSQL."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class Status:
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"  # waiting on the customer
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"
    ALL = (NEW, OPEN, PENDING, ON_HOLD, RESOLVED, CLOSED)
    ACTIVE = (NEW, OPEN, PENDING, ON_HOLD)
    DONE = (RESOLVED, CLOSED)


class Priority:
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"
    ALL = (LOW, NORMAL, HIGH, URGENT)


class Channel:
    """Channels known to core; plugins may use other names."""

    WEB = "web"
    API = "api"
    EMAIL = "email"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    CHAT = "chat"
    STAFF = "staff"  # opened by an agent on a customer's behalf


class IdentityKind:
    """Kinds of contact identity: how a channel names a person."""

    EMAIL = "email"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    CHAT = "chat"  # live-chat visitor id
    PLATFORM = "platform"  # the organisation's own user id, from a signed identity


class AuthorKind:
    CONTACT = "contact"
    STAFF = "staff"
    SYSTEM = "system"
    BOT = "bot"


class Delivery:
    """Delivery state of a message that goes out to the customer."""

    NONE = ""  # inbound messages and internal notes
    PENDING = "pending"  # kept for rows written before the outbox; no longer set
    QUEUED = "queued"  # committed in the outbox; a job hands it to the channel's plugin
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    PORTAL = "portal"  # no plugin sends on this channel: it waits on the tracking page
    ALL = (NONE, PENDING, QUEUED, SENT, DELIVERED, READ, FAILED, PORTAL)


class Role:
    ADMIN = "admin"
    AGENT = "agent"
    ALL = (ADMIN, AGENT)


class FieldKind:
    TEXT = "text"
    TEXTAREA = "textarea"
    EMAIL = "email"
    DATETIME = "datetime"
    CHOICE = "choice"
    FILE = "file"
    ALL = (TEXT, TEXTAREA, EMAIL, DATETIME, CHOICE, FILE)
    # Longest answer each kind takes, the same on the web form and the API.
    MAX_LENGTH = {TEXT: 500, TEXTAREA: 10_000, EMAIL: 254, CHOICE: 200, DATETIME: 64}


class UserType(BaseModel):
    """Who the customer is to the organisation: member, independent model, studio..."""

    slug = pw.CharField(max_length=64, unique=True)
    name = pw.CharField(max_length=120)
    description = pw.TextField(default="")
    position = pw.IntegerField(default=0)
    active = pw.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class Department(BaseModel):
    """A team that works tickets; may escalate to another department."""

    slug = pw.CharField(max_length=64, unique=True)
    name = pw.CharField(max_length=120)
    email = pw.CharField(max_length=254, default="")
    escalates_to = pw.ForeignKeyField("self", null=True, backref="escalated_from",
                                      on_delete="SET NULL")
    active = pw.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class Category(BaseModel):
    """What the question is about; a tree per user type, in the admin's order."""

    user_type = pw.ForeignKeyField(UserType, backref="categories", on_delete="RESTRICT")
    parent = pw.ForeignKeyField("self", null=True, backref="children", on_delete="RESTRICT")
    slug = pw.CharField(max_length=64)
    name = pw.CharField(max_length=120)
    description = pw.TextField(default="")
    position = pw.IntegerField(default=0)
    default_department = pw.ForeignKeyField(Department, null=True, backref="categories",
                                            on_delete="RESTRICT")
    default_priority = pw.CharField(max_length=16, default=Priority.NORMAL)
    visible = pw.BooleanField(default=True)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user_type", "slug"), True), (("user_type", "parent", "position"), False))

    def __str__(self) -> str:
        return self.name


class CategoryField(BaseModel):
    """An extra question the ticket form asks for one category."""

    category = pw.ForeignKeyField(Category, backref="fields", on_delete="CASCADE")
    name = pw.CharField(max_length=64)  # key in Ticket.form_data
    label = pw.CharField(max_length=200)
    kind = pw.CharField(max_length=16, default=FieldKind.TEXT)
    required = pw.BooleanField(default=False)
    choices = pw.TextField(default="")  # one per line, for kind=choice
    help_text = pw.CharField(max_length=300, default="")
    position = pw.IntegerField(default=0)

    class Meta:
        indexes = ((("category", "name"), True),)

    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.choices.splitlines() if line.strip()]


class Staff(BaseModel):
    """An agent or admin of the desk."""

    email = pw.CharField(max_length=254, unique=True)
    name = pw.CharField(max_length=120)
    password_hash = pw.CharField(max_length=255, default="")
    role = pw.CharField(max_length=16, default=Role.AGENT)
    active = pw.BooleanField(default=True)
    language = pw.CharField(max_length=8, default="en")
    failed_logins = pw.IntegerField(default=0)
    locked_until = pw.DateTimeField(null=True)
    last_login_at = pw.DateTimeField(null=True)
    api_token_hash = pw.CharField(max_length=64, null=True, unique=True)
    created_at = pw.DateTimeField(default=utcnow)

    def __str__(self) -> str:
        return self.name

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def department_ids(self) -> set[int]:
        return {row.department_id for row in self.memberships}


class StaffDepartment(BaseModel):
    staff = pw.ForeignKeyField(Staff, backref="memberships", on_delete="CASCADE")
    department = pw.ForeignKeyField(Department, backref="memberships", on_delete="CASCADE")

    class Meta:
        indexes = ((("staff", "department"), True),)


class StaffSession(BaseModel):
    """A console sign-in. The cookie holds a random id whose hash is ``token_hash``:
    deleting the row ends that session on the server, whatever copies of the cookie exist."""

    token_hash = pw.CharField(max_length=64, unique=True)
    staff = pw.ForeignKeyField(Staff, backref="sessions", on_delete="CASCADE")
    # The password it was opened with: a new password (console, CLI, anywhere) ends it.
    password_fingerprint = pw.CharField(max_length=16)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField(index=True)


class Contact(BaseModel):
    """A customer, however many channels they write from."""

    name = pw.CharField(max_length=200, default="")
    email = pw.CharField(max_length=254, null=True, index=True)
    language = pw.CharField(max_length=8, default="en")
    user_type = pw.ForeignKeyField(UserType, null=True, on_delete="SET NULL")
    merged_into = pw.ForeignKeyField("self", null=True, on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)

    def __str__(self) -> str:
        return self.name or self.email or f"contact {self.id}"


class ContactIdentity(BaseModel):
    """How one channel names a contact: an email address, a Telegram chat id, a phone number."""

    contact = pw.ForeignKeyField(Contact, backref="identities", on_delete="CASCADE")
    kind = pw.CharField(max_length=32)
    value = pw.CharField(max_length=254)
    verified = pw.BooleanField(default=False)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "value"), True),)


def new_access_key() -> str:
    return secrets.token_urlsafe(24)


class Ticket(BaseModel):
    """One customer's request. Its id is the public ticket number."""

    access_key = pw.CharField(max_length=64, default=new_access_key)
    subject = pw.CharField(max_length=250)
    status = pw.CharField(max_length=16, default=Status.NEW)
    priority = pw.CharField(max_length=16, default=Priority.NORMAL)
    channel = pw.CharField(max_length=32, default=Channel.WEB)
    category = pw.ForeignKeyField(Category, null=True, backref="tickets", on_delete="RESTRICT")
    user_type = pw.ForeignKeyField(UserType, null=True, backref="tickets", on_delete="RESTRICT")
    department = pw.ForeignKeyField(Department, null=True, backref="tickets",
                                    on_delete="RESTRICT")
    assignee = pw.ForeignKeyField(Staff, null=True, backref="assigned_tickets",
                                  on_delete="SET NULL")
    # Indexed by (contact, created_at) below; an index of its own was dropped (0014).
    contact = pw.ForeignKeyField(Contact, backref="tickets", on_delete="RESTRICT", index=False)
    language = pw.CharField(max_length=8, default="en")
    form_data = JSONField(default=dict)  # answers to the category's extra fields
    tags = JSONField(default=list)
    escalation_level = pw.IntegerField(default=0)
    merged_into = pw.ForeignKeyField("self", null=True, on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    # Times the SLA, reports and the 24-hour messaging window need.
    first_response_at = pw.DateTimeField(null=True)
    last_customer_message_at = pw.DateTimeField(null=True)
    last_agent_message_at = pw.DateTimeField(null=True)
    resolved_at = pw.DateTimeField(null=True)
    closed_at = pw.DateTimeField(null=True)
    due_at = pw.DateTimeField(null=True)
    # Past its due time, as the periodic job ``services.late.mark`` found it (migration
    # 0027): true only if ``due_at`` has passed; a change of ``due_at`` clears it (a trigger).
    late = pw.BooleanField(default=False)
    # The name the customer gave with this ticket. Anyone may type any email address
    # on a form, so a name given there is this ticket's, never a rename of the contact.
    requester_name = pw.CharField(max_length=200, default="")

    class Meta:
        # The migrations create these and the inbox's partial indexes (0005: one ordered
        # range per inbox view); keep the two lists alike. The foreign keys' own indexes
        # on merged_into (here and on Contact), and on Message's and TicketEvent's staff and
        # contact, hold only rows that have one (0030).
        indexes = (
            (("updated_at", "id"), False),
            (("status", "updated_at", "id"), False),
            (("department", "updated_at", "id"), False),
            (("assignee", "updated_at", "id"), False),
            (("contact", "created_at"), False),
            (("channel", "status"), False),
            (("due_at",), False),
        )

    @property
    def number(self) -> int:
        return self.id

    @property
    def is_done(self) -> bool:
        return self.status in Status.DONE

    @property
    def requester(self) -> str:
        """Who asked, as shown on this ticket: the name given with it, else the contact's."""
        return self.requester_name or str(self.contact)

    def __str__(self) -> str:
        return f"#{self.id} {self.subject}"


class TicketParticipant(BaseModel):
    """Someone besides the contact who follows a ticket (an email CC, say)."""

    ticket = pw.ForeignKeyField(Ticket, backref="participants", on_delete="CASCADE")
    contact = pw.ForeignKeyField(Contact, backref="participations", on_delete="CASCADE")
    role = pw.CharField(max_length=16, default="cc")

    class Meta:
        indexes = ((("ticket", "contact"), True),)


class TicketLink(BaseModel):
    """A relation between two tickets: merged into, follow-up of, same incident."""

    ticket = pw.ForeignKeyField(Ticket, backref="links", on_delete="CASCADE")
    other = pw.ForeignKeyField(Ticket, backref="linked_from", on_delete="CASCADE")
    kind = pw.CharField(max_length=32)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("ticket", "other", "kind"), True),)


class Message(BaseModel):
    """One entry of a ticket's thread."""

    # Indexed by (ticket, created_at) below (0014).
    ticket = pw.ForeignKeyField(Ticket, backref="messages", on_delete="CASCADE", index=False)
    author_kind = pw.CharField(max_length=16)
    contact = pw.ForeignKeyField(Contact, null=True, on_delete="SET NULL")
    staff = pw.ForeignKeyField(Staff, null=True, on_delete="SET NULL")
    body_text = pw.TextField(default="")
    body_html = pw.TextField(default="")  # sanitised before it is stored
    is_internal = pw.BooleanField(default=False)
    channel = pw.CharField(max_length=32, default=Channel.WEB)
    external_id = pw.CharField(max_length=255, null=True)  # the channel's id for de-duplication
    delivery_state = pw.CharField(max_length=16, default=Delivery.NONE)
    delivery_error = pw.TextField(default="")
    delivery_updated_at = pw.DateTimeField(null=True)
    # The original as received (raw MIME, webhook JSON): a private blob, see core.raw.
    raw_path = pw.CharField(max_length=255, default="")
    raw_size = pw.IntegerField(default=0)
    raw_type = pw.CharField(max_length=100, default="")
    # The outbox (core.outbox): what must reach the customer, and how far it got.
    notification = pw.CharField(max_length=32, default="")  # template key; "" for a message
    subject = pw.CharField(max_length=250, default="")  # of an outbound email, say
    recipient = pw.CharField(max_length=254, default="")  # the identity it goes to
    # Participants the agent copied the reply to (one identity a line; an email's Cc).
    copy_to = pw.TextField(default="")
    delivery_key = pw.CharField(max_length=64, null=True, unique=True)  # idempotency key
    delivery_attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.DateTimeField(null=True)
    claimed_until = pw.DateTimeField(null=True)  # a worker holds it until then
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("channel", "external_id"), True),
            (("ticket", "created_at"), False),
            (("delivery_state", "next_attempt_at"), False),
        )

    @property
    def is_notification(self) -> bool:
        return bool(self.notification)


class Attachment(BaseModel):
    """A file on a message; the bytes live on disk under their SHA-256."""

    ticket = pw.ForeignKeyField(Ticket, backref="attachments", on_delete="CASCADE")
    message = pw.ForeignKeyField(Message, null=True, backref="attachments", on_delete="CASCADE")
    sha256 = pw.CharField(max_length=64, index=True)
    filename = pw.CharField(max_length=255)
    content_type = pw.CharField(max_length=127)
    size = pw.IntegerField()
    field_name = pw.CharField(max_length=64, default="")  # the form field it answered, if any
    created_at = pw.DateTimeField(default=utcnow)


class TicketEvent(BaseModel):
    """The audit trail: who changed what on a ticket, and when."""

    # Indexed by (ticket, created_at) below (0014).
    ticket = pw.ForeignKeyField(Ticket, backref="events", on_delete="CASCADE", index=False)
    kind = pw.CharField(max_length=32)
    actor_kind = pw.CharField(max_length=16)
    staff = pw.ForeignKeyField(Staff, null=True, on_delete="SET NULL")
    contact = pw.ForeignKeyField(Contact, null=True, on_delete="SET NULL")
    old_value = pw.CharField(max_length=255, default="")
    new_value = pw.CharField(max_length=255, default="")
    detail = pw.TextField(default="")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("ticket", "created_at"), False), (("kind", "created_at"), False))


class CannedReply(BaseModel):
    """A prepared answer agents insert into a reply."""

    title = pw.CharField(max_length=200)
    body = pw.TextField()
    department = pw.ForeignKeyField(Department, null=True, on_delete="CASCADE")
    language = pw.CharField(max_length=8, default="en")
    created_by = pw.ForeignKeyField(Staff, null=True, on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)


class NotificationTemplate(BaseModel):
    """An admin's wording of one notification in one language (core's own text otherwise)."""

    key = pw.CharField(max_length=32)
    language = pw.CharField(max_length=8)
    subject = pw.CharField(max_length=250, default="")
    body = pw.TextField()
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("key", "language"), True),)


class Translation(BaseModel):
    """What an admin typed (a category's name, a question's label), in one more language.

    One generic table for every model a customer reads, keyed by the model's class
    name, the row and the field; the row's own column holds the desk's default
    language. A help center page reads the rows of its language once
    (``core.i18n.localized``), never one query per label.
    """

    model = pw.CharField(max_length=64)
    row_id = pw.IntegerField()
    field = pw.CharField(max_length=64)
    language = pw.CharField(max_length=8)
    text = pw.TextField()
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("language", "model", "row_id", "field"), True),)

    # The fields admins may translate, by model: what a customer reads of each.
    FIELDS = {
        "UserType": ("name", "description"),
        "Category": ("name", "description"),
        "CategoryField": ("label", "help_text", "choices"),
    }


CORE_MODELS: list[type[BaseModel]] = [
    UserType, Department, Category, CategoryField, Staff, StaffDepartment, Contact,
    ContactIdentity, Ticket, TicketParticipant, TicketLink, Message, Attachment, TicketEvent,
    CannedReply, NotificationTemplate, StaffSession, Translation,
]
