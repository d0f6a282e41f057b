"""The only code that changes tickets: open, thread, reply, note, status, assign, escalate.

Every function here runs in one write transaction, records an audit event,
and fires the event hooks after commit (see ``unit.py``). Views, the API,
plugins and the admin console call these; none of them writes ticket rows.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from .. import db, notifications
from ..attachments import StoredFile
from ..hookspecs import Routing
from ..i18n import _l
from ..jobs import OUTBOX_RELAY
from ..models import (
    Attachment,
    AuthorKind,
    Category,
    Channel,
    Contact,
    ContactIdentity,
    Delivery,
    Department,
    IdentityKind,
    Message,
    Priority,
    Staff,
    Status,
    Ticket,
    TicketEvent,
    TicketLink,
    TicketParticipant,
    utcnow,
)
from ..numbers import MAX_ID
from ..raw import KeptRaw, RawOriginal, keep
from ..sanitize import storable
from ..state import loket
from . import search_index
from .contacts import (
    NAME_MAX,
    find_normalised,
    find_or_create_normalised,
    fit,
    normalise_identity,
    remember_language,
)
from .unit import after_commit, emit, record, run_unit, unit_of_work

log = logging.getLogger(__name__)
T = TypeVar("T")

SUBJECT_MAX = 250
# The longest description, reply or note, on the web form, in the API and in the console.
TEXT_MAX = 50_000
EXTERNAL_ID_MAX = 255


class ServiceError(ValueError):
    """A request the desk refuses (an unknown status, a closed ticket); str() says why."""


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an agent, the customer, the system or a bot."""

    kind: str
    staff: Staff | None = None
    contact: Contact | None = None

    @classmethod
    def agent(cls, staff: Staff) -> Actor:
        return cls(AuthorKind.STAFF, staff=staff)

    @classmethod
    def customer(cls, contact: Contact) -> Actor:
        return cls(AuthorKind.CONTACT, contact=contact)

    @classmethod
    def system(cls) -> Actor:
        return cls(AuthorKind.SYSTEM)


SYSTEM = Actor.system()


@dataclass(frozen=True)
class Identity:
    """How the channel names the sender: (kind, value), plus what it tells of them."""

    kind: str
    value: str
    name: str = ""
    email: str | None = None
    verified: bool = False


@dataclass
class InboundResult:
    ticket: Ticket
    message: Message
    created: bool  # a new ticket was opened
    duplicate: bool  # this delivery was seen before; nothing was written


def _audit(ticket: Ticket, kind: str, actor: Actor, old: Any = "", new: Any = "",
           detail: str = "") -> None:
    _insert_event(TicketEvent(
        ticket=ticket, kind=kind, actor_kind=actor.kind,
        staff=actor.staff, contact=actor.contact,
        old_value=_short(old), new_value=_short(new), detail=detail))


def _short(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (Staff, Department)):
        return f"{value.id}:{value.name}"[:255]
    return str(value)[:255]


def _add_attachments(ticket: Ticket, message: Message, files: Iterable[StoredFile],
                     field_names: dict[str, str] | None = None) -> None:
    for f in files:
        _insert_attachment(Attachment(
            ticket=ticket.id, message=message.id, sha256=f.sha256, filename=f.filename,
            content_type=f.content_type, size=f.size,
            field_name=(field_names or {}).get(f.sha256, "")))


_insert_attachment = db.Insert("attachment.insert", Attachment)


def _subject_from(text: str) -> str:
    first = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    return (first[:80] or "(no subject)")


# -- Opening and threading -----------------------------------------------------------------
#
# Text from a channel is made storable once, where it enters (``open_ticket``,
# ``receive_message``); the helpers below trust it. ``route_ticket`` is plugin code, so it
# runs before the write transaction begins: on SQLite the write lock is shared by every
# process, and one slow plugin holding it would stall every writer.


def _storable_identity(identity: Identity) -> Identity:
    email = storable(identity.email) if identity.email is not None else None
    return Identity(identity.kind, normalise_identity(identity.kind, identity.value),
                    storable(identity.name).strip()[:NAME_MAX], email, identity.verified)


def _external_key(external_id: str | None) -> str | None:
    # The same delivery must match itself however odd its id: cleaned, then fitted.
    return fit(storable(external_id), EXTERNAL_ID_MAX) if external_id else None


@dataclass
class _Opening:
    """A new ticket and its first message as they will be saved, cleaned and routed.

    Built and routed before the write transaction; a unit that is run again (a
    unique-key race) makes its rows afresh from the same values.
    """

    subject: str
    text: str
    body_html: str
    channel: str
    category: Category | None
    user_type_id: int | None
    form_data: dict[str, Any]
    language: str | None  # None: the contact's own (known only inside the write)
    requester_name: str
    external_id: str | None
    raw: KeptRaw | None
    routing: Routing | None = None
    # The rows route_ticket saw, written by the write's first run; a run again (after
    # a unique-key race rolled the first back) builds its own.
    unsaved: tuple[Ticket, Message] | None = None

    def ticket(self, contact: Contact | None, now: dt.datetime) -> Ticket:
        ticket = Ticket(
            subject=self.subject, channel=self.channel, category=self.category,
            user_type=self.user_type_id, contact=contact,
            language=self.language or (contact.language if contact is not None
                                       else loket().config["default_language"]),
            form_data=self.form_data, created_at=now, updated_at=now,
            last_customer_message_at=now, priority=Priority.NORMAL, status=Status.NEW, tags=[],
            requester_name=self.requester_name)
        if self.routing is not None:
            _apply_routing(ticket, self.routing)
        return ticket

    def message(self, actor: Actor, contact: Contact | None, now: dt.datetime) -> Message:
        message = Message(
            author_kind=actor.kind, contact=contact if actor.kind == AuthorKind.CONTACT else None,
            staff=actor.staff, body_text=self.text, body_html=self.body_html,
            channel=self.channel, external_id=self.external_id, created_at=now)
        _set_raw(message, self.raw)
        return message

    def routed(self, category: Category | None, actor: Actor | None = None) -> _Opening:
        """This opening for ``category``, with ``route_ticket``'s decision (call it unlocked).

        ``actor`` is who writes the first message, when not the customer.
        """
        opening = replace(self, category=category, routing=None, unsaved=None)
        if opening.user_type_id is None and category is not None:
            opening.user_type_id = category.user_type_id
        now = utcnow()
        preview = opening.ticket(None, now)
        message = opening.message(actor or _CUSTOMER, None, now)
        routing = loket().hook.route_ticket(
            ticket=preview, message=message, category=category,
            form_data=opening.form_data, text=f"{opening.subject}\n{opening.text}")
        if routing is not None:
            _apply_routing(preview, routing)  # an unknown priority is refused before the write
        opening.routing = routing
        opening.unsaved = (preview, message)
        return opening


# The customer, before the write finds or creates their contact.
_CUSTOMER = Actor(AuthorKind.CONTACT)


def _opening(*, subject: str, text: str, html: str, channel: str, category: Category | None,
             user_type_id: int | None, form_data: dict[str, Any], language: str | None,
             requester_name: str, external_id: str | None, raw: RawOriginal | None) -> _Opening:
    """Clean what the channel gave once: the rows are made from this as it is."""
    text = storable(text)
    return _Opening(
        subject=storable(subject).strip()[:SUBJECT_MAX] or _subject_from(text), text=text,
        body_html=_clean(html), channel=channel, category=category, user_type_id=user_type_id,
        form_data=form_data, language=language, requester_name=requester_name,
        external_id=external_id, raw=keep(raw) if raw is not None else None)


def _once(channel: str, external_id: str | None, work: Callable[[], T],
          duplicate: Callable[[Message], T]) -> T:
    """Run ``work`` in a unit of work unless the channel delivered ``external_id`` already.

    The one de-duplication path of inbound messages. The look-up runs inside the
    write: on SQLite nobody else writes meanwhile; on PostgreSQL two deliveries
    can both pass it, the loser's insert fails on the unique index of (channel,
    external_id), and ``run_unit`` runs this again, when the look-up finds the
    winner's message.
    """

    return run_unit(_once_unit(channel, external_id, work, duplicate))


def _once_unit(channel: str, external_id: str | None, work: Callable[[], T],
               duplicate: Callable[[Message], T]) -> Callable[[], T]:
    """``_once``'s body, for the caller that runs it in a unit of its own choosing."""

    def unit() -> T:
        if external_id:
            seen = _find_duplicate(channel, external_id)
            if seen is not None:
                return duplicate(seen)
        return work()

    return unit


def open_ticket(*, identity: Identity, subject: str, text: str, channel: str = Channel.WEB,
                html: str = "", category: Category | None = None, user_type_id: int | None = None,
                form_data: dict[str, Any] | None = None, language: str | None = None,
                attachments: Iterable[StoredFile] = (), attachment_fields: dict[str, str] | None = None,
                external_id: str | None = None, actor: Actor | None = None,
                raw: RawOriginal | None = None, notify: bool = True) -> Ticket:
    """Open a ticket with its first message, for a contact found or created by identity.

    ``route_ticket`` decides department, priority and tags before the write begins.
    With an ``external_id`` (the channel's id for this submission) the same
    submission twice opens one ticket: the second call returns the first ticket.
    The customer is told the ticket's number and tracking link (see
    ``core.notifications``) unless ``notify`` is False. ``language`` is the one
    the customer wrote in; None (a channel that cannot tell) means the contact's
    known language, or the desk's default for a new contact. Every notification
    about the ticket uses the ticket's language.
    """
    attachments = list(attachments)
    identity = _storable_identity(identity)
    external_id = _external_key(external_id)
    opening = _opening(
        subject=subject, text=text, html=html, channel=channel, category=category,
        user_type_id=user_type_id, form_data=form_data or {}, language=language,
        requester_name=identity.name, external_id=external_id, raw=raw).routed(category, actor)

    def work() -> Ticket:
        contact = _contact_of(identity, language, user_type_id)
        ticket, _message = _create_ticket(
            opening, contact=contact, actor=actor or Actor.customer(contact),
            attachments=attachments, attachment_fields=attachment_fields, notify=notify,
            known=(identity.kind, identity.value))
        return ticket

    return _once(channel, external_id, work, lambda seen: seen.ticket)


def _contact_of(identity: Identity, language: str | None,
                user_type_id: int | None = None) -> Contact:
    """The identity's contact; a new one speaks ``language``, else the desk's default.

    A known contact who writes in another language now has that one as theirs.
    """
    contact, created = find_or_create_normalised(
        identity.kind, identity.value, name=identity.name, email=identity.email,
        language=language or loket().config["default_language"], user_type_id=user_type_id,
        verified=identity.verified)
    if language and not created and language in loket().config["languages"]:
        remember_language(contact, language)
    return contact


_insert_ticket = db.Insert("ticket.insert", Ticket)
_insert_message_row = db.Insert("message.insert", Message)


def _insert_message(message: Message) -> Message:
    """Insert a message. On PostgreSQL its ticket's row is locked first (as the ticket's
    own update would lock it later), so one ticket's messages commit in id order: a
    reader resuming a conversation "after id N" (live chat) never misses a lower id that
    commits later. SQLite has one writer at a time anyway; there the message's ticket is
    queued for its search document (0032), and a batch of queued documents is written after
    the commit once enough wait."""
    if not db.is_sqlite():
        db.database.obj.execute_sql("SELECT 1 FROM ticket WHERE id = %s FOR NO KEY UPDATE",
                                    (message.ticket_id,))
    else:
        after_commit(search_index.write_queued_when_due, once=True)
    return _insert_message_row(message)
_insert_event = db.Insert("ticket_event.insert", TicketEvent)

def _insert_ticket_and_message(ticket: Ticket, message: Message) -> None:
    """A ticket with its first message. Its search document: on SQLite the ticket is queued
    for one (0032; written with others after a commit, ``search_index``), on PostgreSQL
    written at the commit (0024)."""
    _insert_ticket(ticket)
    message.ticket = ticket
    _insert_message(message)


def _create_ticket(opening: _Opening, *, contact: Contact, actor: Actor,
                   attachments: list[StoredFile], attachment_fields: dict[str, str] | None,
                   notify: bool = True,
                   known: tuple[str, str] | None = None) -> tuple[Ticket, Message]:
    if opening.unsaved is not None:
        ticket, message = opening.unsaved
        opening.unsaved = None
        ticket.contact = contact
        if opening.language is None:
            ticket.language = contact.language
        message.contact = contact if actor.kind == AuthorKind.CONTACT else None
    else:
        now = utcnow()
        ticket, message = opening.ticket(contact, now), opening.message(actor, contact, now)
    _insert_ticket_and_message(ticket, message)
    _add_attachments(ticket, message, attachments, attachment_fields)
    _audit(ticket, "created", actor, new=ticket.status,
           detail=f"channel={opening.channel} department={ticket.department_id or ''} "
                  f"priority={ticket.priority}")
    routing = opening.routing
    if routing is not None and routing.escalate:
        _escalate(ticket, actor, routing.reason or "routing")
    if notify:
        _notify(ticket, notifications.TICKET_OPENED, contact=contact, known=known)
    record("record_new_ticket", ticket=ticket, message=message)
    emit("ticket_created", ticket=ticket, message=message)
    return ticket, message


def _set_raw(message: Message, raw: KeptRaw | None) -> None:
    if raw is not None:
        message.raw_path = raw.sha256
        message.raw_size = raw.size
        message.raw_type = raw.content_type + ("; truncated" if raw.truncated else "")


# -- The outbox: what goes out to the customer ---------------------------------------------


def _queue(message: Message, recipient: str) -> None:
    """Mark an unsaved outbound message for the outbox; it is sent after the commit."""
    message.delivery_state = Delivery.QUEUED
    message.delivery_key = secrets.token_hex(16)
    message.recipient = recipient[:254]
    message.delivery_updated_at = message.created_at or utcnow()


def _send_after_commit(message: Message) -> None:
    # The worker's relay finds it in the database; in the inline job mode it runs now.
    after_commit(lambda: loket().jobs.nudge(OUTBOX_RELAY))


def _notify(ticket: Ticket, key: str, *, reply: Message | None = None,
            contact: Contact | None = None,
            known: tuple[str, str] | None = None) -> Message | None:
    """Put a notification to the customer in the outbox, if any channel can reach them."""
    target = notifications.route(ticket, contact, known)
    if target is None:
        return None
    channel, recipient = target
    verdicts = loket().hook.notification_allowed(ticket=ticket, key=key, channel=channel,
                                                 recipient=recipient)
    if False in verdicts:
        _audit(ticket, "notification_withheld", SYSTEM, detail=f"{key} to {recipient}"[:2000])
        return None
    agent = reply.staff.name if reply is not None and reply.staff_id else ""
    rendered = notifications.render(key, ticket, contact=contact,
                                    reply_text=reply.body_text if reply else "", agent=agent)
    message = Message(ticket=ticket, author_kind=AuthorKind.SYSTEM, body_text=rendered.body,
                      subject=rendered.subject, channel=channel, notification=key,
                      created_at=utcnow())
    _queue(message, recipient)
    _insert_message(message)
    _send_after_commit(message)
    return message

def _apply_routing(ticket: Ticket, routing: Routing) -> None:
    if routing.department is not None:
        ticket.department = routing.department
    if routing.priority is not None:
        if routing.priority not in Priority.ALL:
            raise ServiceError(f"route_ticket returned an unknown priority {routing.priority!r}")
        ticket.priority = routing.priority
    if routing.tags:
        ticket.tags = sorted(set(ticket.tags or []) | set(routing.tags))


def _clean(html: str) -> str:
    if not html:
        return ""
    from ..sanitize import clean_html

    return clean_html(storable(html))




def receive_message(*, channel: str, identity: Identity, text: str, html: str = "",
                    external_id: str | None = None, thread_to: Ticket | None = None,
                    continue_open: bool = False, subject: str = "",
                    category: Category | None = None, user_type_id: int | None = None,
                    language: str | None = None, attachments: Iterable[StoredFile] = (),
                    raw: RawOriginal | None = None, notify: bool = True,
                    participants: Iterable[Identity] = (),
                    automatic: bool = False) -> InboundResult:
    """Take a customer's message from a channel: thread it, or open a ticket for it.

    * The same ``external_id`` on the same channel twice gives one message:
      the second call writes nothing and returns ``duplicate=True``.
    * ``thread_to`` is the ticket the channel matched (by reply address,
      headers, ticket number); ``continue_open`` threads onto the contact's
      latest unfinished ticket on this channel (messengers and chat).
    * A reply to a resolved ticket reopens it; a reply to a closed ticket
      opens a new one linked to the old as its follow-up.
    * ``raw`` is what the channel received (the whole email, the webhook
      body), kept privately for agents (see ``core.raw``).
    * A new ticket tells the customer its number and tracking link unless
      ``notify`` is False (an auto-reply must not be answered).
    * ``language``: as for ``open_ticket`` (None: the contact's own).
    * ``automatic`` marks a message a machine wrote for the sender (an
      out-of-office reply): it is recorded on the ticket it threads to
      without reopening it or counting as the customer's answer, and a new
      ticket it opens sends no notification.
    """
    return _prepare_inbound(
        channel=channel, identity=identity, text=text, html=html, external_id=external_id,
        thread_to=thread_to, continue_open=continue_open, subject=subject, category=category,
        user_type_id=user_type_id, language=language, attachments=attachments, raw=raw,
        notify=notify, participants=participants, automatic=automatic).receive()


@dataclass
class _Inbound:
    """An inbound message made ready for its write: cleaned, kept, routed (unlocked).

    ``unit`` is the write's body (the duplicate look-up, then threading or a new
    ticket); it raises ``_Unrouted`` when the ticket it must open was not routed,
    and ``route`` routes that one, outside any write.
    """

    unit: Callable[[], InboundResult]
    route: Callable[[Category | None], None]

    def receive(self) -> InboundResult:
        for _attempt in range(3):
            try:
                return run_unit(self.unit)
            except _Unrouted as unrouted:
                self.route(unrouted.category)
        raise RuntimeError("the thread of this message kept changing while it was routed")


def receive_messages(batch: list[dict[str, Any]]) -> list[InboundResult | Exception]:
    """``receive_message`` for each of ``batch`` (its keyword arguments), in one write.

    For a channel that reads many messages at once (a mailbox): one transaction,
    and its commit, serve them all, each message in a savepoint of its own. Each is
    routed before the write begins, as ``receive_message`` does. A message the
    write cannot take as prepared (a ticket closed meanwhile, a unique-key race, any
    error) is rolled back to its savepoint, leaving the others be, and is received
    on its own after the commit. Answers in ``batch``'s order: the result, or the
    exception ``receive_message`` raised for that message. Each answer stands only
    once the batch is committed: nothing is returned before. The caller keeps
    messages that depend on one another (a reply to a message of the same batch)
    in different batches: each message's threading was read before the write.
    """
    prepared: list[_Inbound | None] = []
    results: list[InboundResult | Exception | None] = []
    for kwargs in batch:
        try:
            prepared.append(_prepare_inbound(**kwargs))
            results.append(None)
        except Exception as exc:  # routing refused it: as receive_message would raise
            prepared.append(None)
            results.append(exc)
    pending = [i for i, inbound in enumerate(prepared) if inbound is not None]
    try:
        with unit_of_work():
            for i in pending:
                try:
                    with unit_of_work():  # a savepoint: a failure undoes this message alone
                        results[i] = prepared[i].unit()
                except Exception:
                    log.info("inbound message %d of a batch is received on its own", i)
    except Exception:  # the batch's commit failed: none of it was written
        log.warning("a batch of %d inbound messages failed; each is received on its own",
                    len(pending), exc_info=True)
        for i in pending:
            results[i] = None
    answers: list[InboundResult | Exception] = []
    for inbound, result in zip(prepared, results, strict=True):
        if result is None and inbound is not None:
            try:
                result = inbound.receive()
            except Exception as exc:
                result = exc
        answers.append(result)
    return answers


def _prepare_inbound(*, channel: str, identity: Identity, text: str, html: str = "",
                     external_id: str | None = None, thread_to: Ticket | None = None,
                     continue_open: bool = False, subject: str = "",
                     category: Category | None = None, user_type_id: int | None = None,
                     language: str | None = None, attachments: Iterable[StoredFile] = (),
                     raw: RawOriginal | None = None, notify: bool = True,
                     participants: Iterable[Identity] = (),
                     automatic: bool = False) -> _Inbound:
    attachments = list(attachments)
    notify = notify and not automatic
    identity = _storable_identity(identity)
    participants = [_storable_identity(p) for p in participants]
    external_id = _external_key(external_id)
    draft = _opening(
        subject=subject, text=text, html=html, channel=channel, category=category,
        user_type_id=user_type_id, form_data={}, language=language,
        requester_name=identity.name, external_id=external_id, raw=raw)

    def category_of(follow_up_of: Ticket | None) -> Category | None:
        return category if follow_up_of is None else follow_up_of.category

    # Whether the message opens a ticket is known only inside the write, but routing
    # (plugin code) must run before it. So a read decides first, and routes when it
    # will open one; should the write find otherwise (the ticket was closed meanwhile),
    # it stops before writing anything and runs once more, routed this time.
    routed: dict[int | None, _Opening] = {}
    if thread_to is not None:
        # The caller has just read it: good enough to decide whether to route (the
        # write reads it again, and stops to route should it have been closed since).
        target, follow_up_of = (None, thread_to) if thread_to.status == Status.CLOSED else (
            thread_to, None)
    else:
        contact = find_normalised(identity.kind, identity.value) if continue_open else None
        target, follow_up_of = _thread_target(None, continue_open, contact, channel)
    if target is None:
        opening = draft.routed(category_of(follow_up_of))
        routed[opening.category.id if opening.category else None] = opening

    def work() -> InboundResult:
        contact = _contact_of(identity, language, user_type_id)
        target, follow_up_of = _thread_target(thread_to, continue_open, contact, channel)
        if target is None:
            wanted = category_of(follow_up_of)
            opening = routed.get(wanted.id if wanted else None)
            if opening is None:
                raise _Unrouted(wanted)
            ticket, message = _create_ticket(
                opening, contact=contact, actor=Actor.customer(contact), attachments=attachments,
                attachment_fields=None, notify=notify, known=(identity.kind, identity.value))
            if follow_up_of is not None:
                TicketLink.create(ticket=ticket, other=follow_up_of, kind="follow_up_of")
            created = True
        else:
            ticket = target
            message = _customer_message(ticket, contact, draft.text, draft.body_html, channel,
                                        external_id, attachments, draft.raw,
                                        automatic=automatic)
            created = False
        _add_participants(ticket, contact, participants, language or contact.language)
        return InboundResult(ticket, message, created=created, duplicate=False)

    def duplicate(seen: Message) -> InboundResult:
        return InboundResult(seen.ticket, seen, created=False, duplicate=True)

    def route(category: Category | None) -> None:
        opening = draft.routed(category)
        routed[opening.category.id if opening.category else None] = opening

    return _Inbound(_once_unit(channel, external_id, work, duplicate), route)


class _Unrouted(Exception):
    """The write found it must open a ticket that was not routed; it stops to route it."""

    def __init__(self, category: Category | None):
        super().__init__("a new ticket needs routing first")
        self.category = category


_latest_on_channel = db.Select(
    "ticket.latest_unfinished_on_channel", Ticket,
    lambda contact_id, channel: (
        Ticket.select().where((Ticket.contact == contact_id) & (Ticket.channel == channel)
                              & (Ticket.status.in_(Status.ACTIVE + (Status.RESOLVED,))))
        .order_by(Ticket.updated_at.desc()).limit(1)))


def _thread_target(thread_to: Ticket | None, continue_open: bool, contact: Contact | None,
                   channel: str) -> tuple[Ticket | None, Ticket | None]:
    """(the ticket a message joins, the closed ticket a new one follows up); read afresh."""
    target = None
    if thread_to is not None:
        target = _ticket_by_id.first(thread_to.id)  # the caller's copy may be stale
    elif continue_open and contact is not None:
        # Read now, in this unit: fresh already. A compiled statement: a chat message
        # comes here twice, and building this SELECT of the wide ticket row each time was
        # most of a chat message's CPU.
        target = _latest_on_channel.first(contact.id, channel)
    if target is not None and target.status == Status.CLOSED:
        return None, target
    return target, None


def _find_duplicate(channel: str, external_id: str) -> Message | None:
    """The message this channel already delivered under ``external_id`` (its ticket loads lazily)."""
    return _by_external_id.first(channel, external_id)


def find_message(channel: str, external_id: str) -> Message | None:
    """The message a channel knows by ``external_id`` (inbound, or outbound once sent), or None."""
    if not external_id:
        return None
    return _find_duplicate(channel, _external_key(external_id))


def find_ticket(channel: str, external_id: str) -> Ticket | None:
    """The ticket holding the message a channel knows by ``external_id``, or None."""
    message = find_message(channel, external_id)
    return _ticket_by_id.first(message.ticket_id) if message is not None else None


def ticket_by_id(ticket_id: int) -> Ticket | None:
    """The ticket with this number, or None (a read through a compiled statement).

    A number no ticket can have (a customer's "#123456789012") is None without a query.
    """
    if not 0 < ticket_id <= MAX_ID:
        return None
    return _ticket_by_id.first(ticket_id)


def revise_message(channel: str, external_id: str, *, text: str | None = None,
                   deleted: bool = False) -> Message | None:
    """The customer edited (``text``) or deleted a message they sent on a channel.

    The stored text changes and the thread says so; the old text stays in the
    ticket's audit trail, for agents. Returns the message, or None when the
    channel never delivered one under ``external_id`` (nothing is written).
    Editing to the same text again (a redelivered edit) changes nothing.
    """
    key = _external_key(external_id) if external_id else None
    if key is None:
        return None

    def work() -> Message | None:
        message = _find_duplicate(channel, key)
        if message is None or message.author_kind != AuthorKind.CONTACT:
            return None
        old = message.body_text
        if deleted:
            marker = f"[{_l('The customer deleted this message.')}]"
            new, kind = f"{old}\n\n{marker}", "message_deleted"
            if old.endswith(marker):
                return message  # told twice
        else:
            marker = f"[{_l('Edited by the customer.')}]"
            new, kind = f"{storable(text or '')}\n\n{marker}", "message_edited"
            if old == new:
                return message
        message.body_text = new
        message.body_html = ""
        message.save(only=[Message.body_text, Message.body_html])
        ticket = Ticket.get_by_id(message.ticket_id)
        _audit(ticket, kind, Actor.customer(message.contact) if message.contact_id else SYSTEM,
               old, detail=f"message={message.id}")
        return message

    return run_unit(work)


_by_external_id = db.Select(
    "message.by_external_id", Message,
    lambda channel, external_id: (
        Message.select().where((Message.channel == channel)
                               & (Message.external_id == external_id)).limit(1)))


_participation = db.Select(
    "ticket_participant.of_ticket_and_contact", TicketParticipant,
    lambda ticket_id, contact_id: (
        TicketParticipant.select().where((TicketParticipant.ticket == ticket_id)
                                         & (TicketParticipant.contact == contact_id)).limit(1)))
_insert_participant = db.Insert("ticket_participant.insert", TicketParticipant)


def is_participant(ticket_id: int, contact_id: int) -> bool:
    """Whether the contact takes part in the ticket (copied on it), besides its own contact."""
    return _participation.first(ticket_id, contact_id) is not None


def _add_participants(ticket: Ticket, contact: Contact, participants: list[Identity],
                      language: str) -> None:
    for identity in participants:
        other = _contact_of(Identity(identity.kind, identity.value, identity.name), language)
        if other.id == contact.id or other.id == ticket.contact_id:
            continue
        if not is_participant(ticket.id, other.id):
            _insert_participant(TicketParticipant(ticket=ticket.id, contact=other.id))


def _customer_message(ticket: Ticket, contact: Contact, text: str, body_html: str, channel: str,
                      external_id: str | None, attachments: list[StoredFile],
                      raw: KeptRaw | None = None, automatic: bool = False) -> Message:
    now = utcnow()
    message = Message(
        ticket=ticket, author_kind=AuthorKind.CONTACT, contact=contact, body_text=text,
        body_html=body_html, channel=channel, external_id=external_id, created_at=now)
    _set_raw(message, raw)
    _insert_message(message)
    _add_attachments(ticket, message, attachments)
    actor = Actor.customer(contact)
    _audit(ticket, "message", actor,
           detail=f"message={message.id}" + (" automatic" if automatic else ""))
    old_status = ticket.status
    fields = [Ticket.updated_at]
    ticket.updated_at = now
    if not automatic:  # an auto-reply is not the customer answering
        fields.append(Ticket.last_customer_message_at)
        ticket.last_customer_message_at = now
    if not automatic and old_status in (Status.PENDING, Status.RESOLVED, Status.ON_HOLD):
        _set_status(ticket, Status.OPEN, actor)
        fields += [Ticket.status, Ticket.resolved_at, Ticket.closed_at]
    ticket.save(only=fields)
    emit("message_added", ticket=ticket, message=message)
    return message


def add_customer_reply(ticket: Ticket, text: str, attachments: Iterable[StoredFile] = (),
                       channel: str = Channel.WEB) -> Message:
    """The ticket's own contact writes again (the tracking page, the API with the key).

    Its refusals reach the customer, so their text is translated when shown.
    """
    if not (text or "").strip():
        raise ServiceError(_l("Please write a reply."))
    attachments = list(attachments)
    text = storable(text)

    def work() -> Message:
        fresh = Ticket.get_by_id(ticket.id)
        if fresh.status == Status.CLOSED:
            raise ServiceError(_l("This ticket is closed. Please open a new one."))
        return _customer_message(fresh, fresh.contact, text, "", channel, None, attachments)

    return run_unit(work)


# -- Agents --------------------------------------------------------------------------------


def reply(ticket: Ticket, staff: Staff, text: str, *, html: str = "",
          attachments: Iterable[StoredFile] = (), status: str | None = Status.PENDING,
          copy_to: Iterable[int] = ()) -> Message:
    """An agent answers the customer, through the ticket's own channel where it can push.

    On such a channel (email, a messenger) the reply is committed ``queued``
    and the outbox sends it after the commit. On the web form and the API it
    waits on the tracking page (``portal``) and the customer is notified where
    a channel can reach them (``core.notifications``). ``status`` is where the
    ticket goes next (waiting on the customer by default); ``None`` leaves it
    as it is. ``copy_to`` names participants (contact ids) the reply is copied to (an
    email's Cc); anyone not among ``copy_candidates`` is refused.
    """
    if not (text or "").strip():
        raise ServiceError("a reply needs some text")
    copy_to = list(dict.fromkeys(copy_to))
    if status is not None and status not in Status.ALL:
        raise ServiceError(f"unknown status {status!r}")
    attachments = list(attachments)
    actor = Actor.agent(staff)

    def work() -> Message:
        fresh = Ticket.get_by_id(ticket.id)
        now = utcnow()
        message = Message(
            ticket=fresh, author_kind=AuthorKind.STAFF, staff=staff, body_text=storable(text),
            body_html=_clean(html), channel=fresh.channel, delivery_state=Delivery.PORTAL,
            delivery_updated_at=now, created_at=now)
        pushed = _push_on_own_channel(fresh, message)
        if copy_to:
            message.copy_to = _copies(fresh, copy_to, pushed)
        _insert_message(message)
        _add_attachments(fresh, message, attachments)
        _audit(fresh, "reply", actor, detail=f"message={message.id}")
        fresh.updated_at = now
        fresh.last_agent_message_at = now
        if fresh.first_response_at is None:
            fresh.first_response_at = now
        if status is not None and status != fresh.status:
            _set_status(fresh, status, actor)
        elif fresh.status == Status.NEW:
            _set_status(fresh, Status.OPEN, actor)
        fresh.save()
        emit("message_added", ticket=fresh, message=message)
        if pushed:
            _send_after_commit(message)
        if not pushed or notifications.away(fresh):  # a live chat the customer left
            _notify(fresh, notifications.AGENT_REPLIED, reply=message)
        return message

    return run_unit(work)


def copy_candidates(ticket: Ticket) -> list[tuple[int, str, str]]:
    """Who a reply on this ticket may be copied to: (contact id, name, address) of each
    participant the ticket's channel can write to, the ticket's own contact left out.

    The one list both the console's choice and ``reply``'s check read, so a
    posted contact id that is not on it (a tampered form) is refused, not mailed.
    """
    spec = loket().channels.get(ticket.channel)
    if spec is None or not spec.can_push or not spec.identity_kind:
        return []
    rows = (Contact.select(Contact.id, Contact.name)
            .join(TicketParticipant, on=(TicketParticipant.contact == Contact.id))
            .where((TicketParticipant.ticket == ticket.id)
                   & (Contact.id != ticket.contact_id))
            .order_by(TicketParticipant.id))
    candidates = []
    for contact in rows:
        address = notifications.recipient_on(contact.id, spec.identity_kind)
        if address:
            candidates.append((contact.id, contact.name or "", address))
    return candidates


def _copies(ticket: Ticket, contact_ids: list[int], pushed: bool) -> str:
    """The addresses of the chosen participants, one a line; refuses anyone else."""
    if not pushed:
        raise ServiceError("this reply is not sent by a channel that can copy it to others")
    allowed = {contact_id: address for contact_id, _name, address in copy_candidates(ticket)}
    refused = [c for c in contact_ids if c not in allowed]
    if refused:
        raise ServiceError("a reply can be copied only to the ticket's participants")
    return "\n".join(allowed[c] for c in contact_ids)


def _push_on_own_channel(ticket: Ticket, message: Message) -> bool:
    """Queue a reply on the ticket's channel when that channel can reach the customer."""
    spec = loket().channels.get(ticket.channel)
    if spec is None:
        message.delivery_error = (f"No enabled plugin serves the {ticket.channel} channel; "
                                  "the reply waits on the tracking page.")
        return False
    if not spec.can_push:
        return False
    recipient = notifications.recipient_on(ticket.contact_id, spec.identity_kind)
    if not recipient:
        message.delivery_error = (f"The contact has no {spec.identity_kind} identity to write "
                                  "to; the reply waits on the tracking page.")
        return False
    _queue(message, recipient)
    return True


# Delivery states in the order they happen; a report never moves a message back.
_DELIVERY_ORDER = [Delivery.PENDING, Delivery.PORTAL, Delivery.QUEUED, Delivery.SENT,
                   Delivery.DELIVERED, Delivery.READ]


def record_delivery(message_id: int, state: str, *, external_id: str | None = None,
                    error: str = "") -> Message:
    """Store what happened to an outbound message (sent, delivered, read, failed).

    The one place delivery outcomes are written: the outbox, receipts and the
    console's retry all come here. States only move forward (a late
    "delivered" does not undo "read"); a failure is always recorded, with an
    audit row. A change fires ``message_delivery_changed`` after the commit.
    """
    if state not in Delivery.ALL:
        raise ServiceError(f"unknown delivery state {state!r}")
    order = _DELIVERY_ORDER
    with unit_of_work():
        message = Message.get_by_id(message_id)
        current = message.delivery_state
        forward = (state == Delivery.FAILED or current not in order or state not in order
                   or order.index(state) >= order.index(current))
        if not forward:
            return message
        message.delivery_state = state
        message.delivery_error = error[:2000]
        message.delivery_updated_at = utcnow()
        if state != Delivery.QUEUED:
            message.claimed_until = None
            message.next_attempt_at = None
        if external_id and not message.external_id:
            external_id = fit(storable(external_id), EXTERNAL_ID_MAX)
            if _find_duplicate(message.channel, external_id) is None:
                message.external_id = external_id
            else:
                log.warning("message %s: the %s channel reused id %r; receipts cannot find it",
                            message.id, message.channel, external_id)
        message.save()
        ticket = Ticket.get_by_id(message.ticket_id)
        if state == Delivery.FAILED and current != Delivery.FAILED:
            _audit(ticket, "delivery_failed", SYSTEM,
                   detail=f"message={message.id}: {error}"[:2000])
        if state != current:
            emit("message_delivery_changed", ticket=ticket, message=message, old=current,
                 new=state, error=message.delivery_error)
    return message


def record_receipt(channel: str, external_id: str, state: str, *, error: str = "") -> Message | None:
    """A platform's receipt (delivered, read, failed) for a message we sent under ``external_id``.

    Returns the message, or None when no outbound message has that id (a
    receipt for something else creates nothing).
    """
    message = find_message(channel, external_id)
    if message is None or message.author_kind == AuthorKind.CONTACT:
        return None
    return record_delivery(message.id, state, error=error)


def retry_delivery(message: Message, actor: Actor) -> Message:
    """Send a failed message again (the console's retry button), with the same idempotency key."""

    def work() -> Message:
        fresh = Message.get_by_id(message.id)
        if fresh.delivery_state != Delivery.FAILED:
            raise ServiceError("only a message that failed can be sent again")
        if loket().channels.owner(fresh.channel) is None:
            raise ServiceError(f"No enabled plugin serves the {fresh.channel} channel; "
                               "enable it first.")
        old = fresh.delivery_state
        fresh.delivery_state = Delivery.QUEUED
        fresh.delivery_attempts = 0
        fresh.next_attempt_at = None
        fresh.claimed_until = None
        fresh.delivery_error = ""
        fresh.delivery_updated_at = utcnow()
        fresh.delivery_key = fresh.delivery_key or secrets.token_hex(16)
        fresh.save()
        ticket = Ticket.get_by_id(fresh.ticket_id)
        _audit(ticket, "delivery_retry", actor, old, Delivery.QUEUED,
               detail=f"message={fresh.id}")
        emit("message_delivery_changed", ticket=ticket, message=fresh, old=old,
             new=Delivery.QUEUED, error="")
        _send_after_commit(fresh)
        return fresh

    return run_unit(work)


def add_note(ticket: Ticket, staff: Staff | None, text: str,
             attachments: Iterable[StoredFile] = ()) -> Message:
    """An internal note: seen by staff only, never delivered.

    ``staff`` None: the desk itself writes it for the agents (a plugin saying why it
    escalated, a channel telling them a mail bounced or a file was too large to keep).
    """
    if not (text or "").strip():
        raise ServiceError("a note needs some text")
    attachments = list(attachments)
    actor = Actor.agent(staff) if staff is not None else SYSTEM

    def work() -> Message:
        fresh = Ticket.get_by_id(ticket.id)
        message = Message.create(ticket=fresh, author_kind=actor.kind, staff=staff,
                                 body_text=storable(text), is_internal=True,
                                 channel=Channel.STAFF)
        _add_attachments(fresh, message, attachments)
        _audit(fresh, "note", actor, detail=f"message={message.id}")
        fresh.updated_at = utcnow()
        fresh.save(only=[Ticket.updated_at])
        emit("message_added", ticket=fresh, message=message)
        return message

    return run_unit(work)


def _email_out(to: str, no_channel: str) -> tuple[str, str]:
    """(the address, the channel that writes email) for a mail to someone by address;
    ``ServiceError`` for a bad address, or ``no_channel`` when no enabled channel sends email."""
    from .contacts import is_email_address

    to = (to or "").strip()
    if not is_email_address(to):
        raise ServiceError(f"{to!r} is not an email address")
    senders = loket().channels.pushing_to(IdentityKind.EMAIL)
    if not senders:
        raise ServiceError(no_channel)
    return to, senders[0].name


def forward_by_email(ticket: Ticket, staff: Staff, to: str, text: str,
                     subject: str = "") -> Message:
    """Send a ticket's case to someone outside the desk (a billing center) by email.

    The mail is an internal message of the ticket (staff see it with its
    delivery state; the customer never does), committed ``queued`` with an
    audit row and sent by the outbox through the channel that writes email.
    Refused (``ServiceError``) without text, with a bad address, or when no
    enabled channel can send email. Who may forward to whom is the caller's rule.
    """
    if not (text or "").strip():
        raise ServiceError("a forward needs some text")
    to, channel = _email_out(to, "No enabled channel sends email; forward it by hand.")
    actor = Actor.agent(staff)

    def work() -> Message:
        fresh = Ticket.get_by_id(ticket.id)
        now = utcnow()
        message = Message(
            ticket=fresh, author_kind=AuthorKind.STAFF, staff=staff, body_text=storable(text),
            is_internal=True, channel=channel, created_at=now,
            subject=storable(subject).strip()[:SUBJECT_MAX] or f"[#{fresh.id}] {fresh.subject}")
        _queue(message, to)
        _insert_message(message)
        _audit(fresh, "forwarded", actor, new=to, detail=f"message={message.id}")
        fresh.updated_at = now
        fresh.save(only=[Ticket.updated_at])
        emit("message_added", ticket=fresh, message=message)
        _send_after_commit(message)
        return message

    return run_unit(work)


def email_customer(ticket: Ticket, to: str, subject: str, text: str, *, kind: str) -> Message:
    """Mail the customer something they asked for (live chat's transcript) at ``to``.

    Kept on the ticket like a notification (``kind`` names it; agents see it with its
    state, the customer's pages do not show it), committed ``queued`` and sent by the
    outbox through the channel that writes email. Refused (``ServiceError``) with a bad
    address or when no enabled channel sends email. How often is the caller's rule.
    """
    to, channel = _email_out(to, "No enabled channel sends email.")

    def work() -> Message:
        fresh = Ticket.get_by_id(ticket.id)
        message = Message(ticket=fresh, author_kind=AuthorKind.SYSTEM, body_text=storable(text),
                          subject=storable(subject).strip()[:SUBJECT_MAX],
                          channel=channel, notification=kind, created_at=utcnow())
        _queue(message, to)
        _insert_message(message)
        _audit(fresh, "emailed", SYSTEM, new=to, detail=f"{kind} message={message.id}")
        _send_after_commit(message)
        return message

    return run_unit(work)


def _set_status(ticket: Ticket, new: str, actor: Actor) -> None:
    """Change status in memory, with its timestamps, audit row and event; caller saves."""
    old = ticket.status
    if old == new:
        return
    now = utcnow()
    ticket.status = new
    if new == Status.RESOLVED:
        ticket.resolved_at = now
    elif new == Status.CLOSED:
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    else:
        ticket.resolved_at = None
        ticket.closed_at = None
    _audit(ticket, "status", actor, old, new)
    emit("ticket_status_changed", ticket=ticket, old=old, new=new, actor=actor.staff)


def change_status(ticket: Ticket, new: str, actor: Actor) -> Ticket:
    """Move a ticket to another status. A closed ticket stays closed."""
    if new not in Status.ALL:
        raise ServiceError(f"unknown status {new!r}")

    def work() -> Ticket:
        fresh = Ticket.get_by_id(ticket.id)
        if fresh.status == Status.CLOSED and new != Status.CLOSED:
            raise ServiceError("a closed ticket cannot be reopened; open a follow-up instead")
        if fresh.status != new:
            _set_status(fresh, new, actor)
            fresh.updated_at = utcnow()
            fresh.save()
            if actor.kind != AuthorKind.CONTACT and new in _STATUS_NOTICES:
                _notify(fresh, _STATUS_NOTICES[new])
        return fresh

    return run_unit(work)


# Status changes the customer hears about (when someone other than they made them).
_STATUS_NOTICES = {Status.PENDING: notifications.WAITING_ON_CUSTOMER,
                   Status.RESOLVED: notifications.TICKET_RESOLVED}


def close_resolved(ticket_id: int, resolved_before: dt.datetime, actor: Actor = SYSTEM) -> bool:
    """Close a ticket still resolved since before ``resolved_before``; False when it is not.

    Autoclose's step: it re-reads the ticket inside the write, so a ticket the customer
    answered meanwhile stays open, and a second run (or a retry) finds nothing to do.
    """

    def work() -> bool:
        query = Ticket.select().where(Ticket.id == ticket_id)
        if not db.is_sqlite():
            # Two runs at once: the second waits here for the first's commit, then sees
            # it closed. (SQLite's write transaction holds the whole database already.)
            query = query.for_update()
        fresh = query.first()
        if (fresh is None or fresh.status != Status.RESOLVED or fresh.resolved_at is None
                or fresh.resolved_at >= resolved_before):
            return False
        _set_status(fresh, Status.CLOSED, actor)
        fresh.updated_at = utcnow()
        fresh.save()
        return True

    return run_unit(work)


def assign(ticket: Ticket, assignee: Staff | None, actor: Actor) -> Ticket:
    """Give the ticket to an agent, or to nobody."""

    def work() -> Ticket:
        fresh = Ticket.get_by_id(ticket.id)
        if fresh.assignee_id == (assignee.id if assignee else None):
            return fresh
        if assignee is not None and not assignee.active:
            raise ServiceError(f"{assignee.name} is not an active agent")
        old = fresh.assignee
        fresh.assignee = assignee
        fresh.updated_at = utcnow()
        fresh.save(only=[Ticket.assignee, Ticket.updated_at])
        _audit(fresh, "assignee", actor, old, assignee)
        emit("ticket_assigned", ticket=fresh, old=old, new=assignee, actor=actor.staff)
        return fresh

    return run_unit(work)


def update_ticket(ticket: Ticket, actor: Actor, *, priority: str | None = None,
                  department: Department | None = None, subject: str | None = None,
                  tags: list[str] | None = None) -> Ticket:
    """Change priority, department, subject or tags; one audit row per field."""
    if priority is not None and priority not in Priority.ALL:
        raise ServiceError(f"unknown priority {priority!r}")

    def work() -> Ticket:
        fresh = Ticket.get_by_id(ticket.id)
        changes: dict[str, tuple[Any, Any]] = {}
        if priority is not None and priority != fresh.priority:
            changes["priority"] = (fresh.priority, priority)
            fresh.priority = priority
        if department is not None and department.id != fresh.department_id:
            changes["department"] = (fresh.department, department)
            fresh.department = department
        if subject is not None and subject.strip() and subject.strip() != fresh.subject:
            changes["subject"] = (fresh.subject, subject.strip()[:SUBJECT_MAX])
            fresh.subject = subject.strip()[:SUBJECT_MAX]
        if tags is not None:
            clean = sorted({t.strip().lower() for t in tags if t.strip()})
            if clean != sorted(fresh.tags or []):
                changes["tags"] = (",".join(fresh.tags or []), ",".join(clean))
                fresh.tags = clean
        if not changes:
            return fresh
        fresh.updated_at = utcnow()
        fresh.save()
        for name, (old, new) in changes.items():
            _audit(fresh, name, actor, old, new)
        emit("ticket_updated", ticket=fresh, changes=changes, actor=actor.staff)
        return fresh

    return run_unit(work)


def _escalate(ticket: Ticket, actor: Actor, reason: str) -> None:
    old = ticket.department
    new = old.escalates_to if old is not None and old.escalates_to_id else old
    ticket.escalation_level += 1
    if new is not None and (old is None or new.id != old.id):
        ticket.department = new
    if ticket.priority in (Priority.LOW, Priority.NORMAL):
        ticket.priority = Priority.HIGH
    ticket.updated_at = utcnow()
    ticket.save()
    _audit(ticket, "escalated", actor, old, new, detail=reason[:2000])
    emit("ticket_escalated", ticket=ticket, old=old, new=new, level=ticket.escalation_level,
         reason=reason, actor=actor.staff)


def escalate(ticket: Ticket, actor: Actor, reason: str = "") -> Ticket:
    """Send a ticket up: to its department's escalation target, at least high priority."""

    def work() -> Ticket:
        fresh = Ticket.get_by_id(ticket.id)
        if fresh.status in Status.DONE:
            raise ServiceError("a resolved or closed ticket cannot be escalated")
        _escalate(fresh, actor, reason)
        return fresh

    return run_unit(work)


def customer_resolve(ticket: Ticket) -> Ticket:
    """The customer says their problem is solved (the tracking page's button)."""
    if Ticket.get_by_id(ticket.id).status == Status.CLOSED:
        raise ServiceError(_l("This ticket is closed. Please open a new one."))
    return change_status(ticket, Status.RESOLVED, Actor.customer(ticket.contact))


# -- Contacts --------------------------------------------------------------------------------


def merge_contacts(keep: Contact, duplicate: Contact, actor: Actor = SYSTEM) -> Contact:
    """Fold ``duplicate`` into ``keep``: identities, tickets and participations move over.

    Each ticket moves through the same path as any change to a ticket: an
    audit row on it and ``ticket_updated`` with ``{"contact": (old, new)}``.
    """
    if keep.id == duplicate.id:
        raise ServiceError("a contact cannot be merged into itself")

    def work() -> Contact:
        ContactIdentity.update(contact=keep).where(
            ContactIdentity.contact == duplicate).execute()
        for ticket in Ticket.select().where(Ticket.contact == duplicate):
            ticket.contact = keep
            ticket.updated_at = utcnow()
            ticket.save(only=[Ticket.contact, Ticket.updated_at])
            _audit(ticket, "contact", actor, f"{duplicate.id}:{duplicate}", f"{keep.id}:{keep}",
                   detail="contacts merged")
            emit("ticket_updated", ticket=ticket, changes={"contact": (duplicate, keep)},
                 actor=actor.staff)
        existing = {p.ticket_id for p in TicketParticipant.select().where(
            TicketParticipant.contact == keep)}
        for participation in TicketParticipant.select().where(
                TicketParticipant.contact == duplicate):
            if participation.ticket_id in existing:
                participation.delete_instance()
            else:
                participation.contact = keep
                participation.save()
        if not keep.email and duplicate.email:
            keep.email = duplicate.email
        if not keep.name and duplicate.name:
            keep.name = duplicate.name
        keep.save()
        duplicate.merged_into = keep
        duplicate.save()
        return keep

    return run_unit(work)


# -- Reading -------------------------------------------------------------------------------


_ticket_by_id = db.Select(
    "ticket.by_id", Ticket,
    lambda ticket_id: Ticket.select().where(Ticket.id == ticket_id).limit(1))

# Notifications repeat what the page already shows (the reply, the status).
_public_messages = db.Select(
    "message.public_of_ticket", Message,
    lambda ticket_id: (Message.select()
                       .where((Message.ticket == ticket_id) & (~Message.is_internal)
                              & (Message.notification == ""))
                       .order_by(Message.created_at, Message.id)))

_attachments_of_ticket = db.Select(
    "attachment.of_ticket", Attachment,
    lambda ticket_id: (Attachment.select().where(Attachment.ticket == ticket_id)
                       .order_by(Attachment.id)))


def key_matches(ticket: Ticket | None, key: str | None) -> bool:
    """Whether a tracking link's key is the ticket's (False for no ticket), compared in
    constant time: how long it takes tells nothing of the key."""
    return ticket is not None and hmac.compare_digest(ticket.access_key.encode(),
                                                      (key or "").encode())


def find_for_customer(number: int | str, key: str) -> Ticket | None:
    """The ticket for a tracking link, or None when number or key is wrong (same answer)."""
    try:
        ticket_id = int(number)
    except (TypeError, ValueError):
        return None
    if not 0 < ticket_id <= MAX_ID:
        return None
    ticket = _ticket_by_id.first(ticket_id)
    return ticket if key_matches(ticket, key) else None


def public_thread(ticket: Ticket) -> list[Message]:
    """The messages a customer sees, oldest first, each with ``attachments`` as a list.

    No internal notes and no notifications; two queries whatever the thread's length
    (what ``peewee.prefetch`` does, with statements compiled once).
    """
    messages = _public_messages.all(ticket.id)
    files: dict[int, list[Attachment]] = {}
    for attachment in _attachments_of_ticket.all(ticket.id):
        files.setdefault(attachment.message_id, []).append(attachment)
    for message in messages:
        message.attachments = files.get(message.id, [])
    return messages


# The private link every notification carries (kept here too: the views and API use it).
tracking_url = notifications.tracking_url


# -- Bots (live chat's first answer) -------------------------------------------------------


def add_bot_message(ticket: Ticket, text: str, *, channel: str) -> Message:
    """A bot answers in the ticket's thread (live chat's assistant): seen by the customer.

    The channel's own process shows it to the customer the moment it is committed
    (so it is stored ``sent``, never queued in the outbox); the customer's
    receipts move it on to delivered and read. It is no agent's first response.
    """
    if not (text or "").strip():
        raise ServiceError("a bot message needs some text")

    def work() -> Message:
        fresh = Ticket.get_by_id(ticket.id)
        now = utcnow()
        message = Message(ticket=fresh, author_kind=AuthorKind.BOT, body_text=storable(text),
                          channel=channel, delivery_state=Delivery.SENT,
                          delivery_updated_at=now, created_at=now)
        _insert_message(message)
        _audit(fresh, "bot", SYSTEM, detail=f"message={message.id}")
        fresh.updated_at = now
        fresh.save(only=[Ticket.updated_at])
        emit("message_added", ticket=fresh, message=message)
        return message

    return run_unit(work)
