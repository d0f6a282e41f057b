"""What live chat does to the desk: blocking calls through core's services.

The chat process runs these in a thread pool, each inside an app context with
a database connection; the console calls the agent side directly. Every
message is committed here before the socket acknowledges it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flask_babel import force_locale

from core import db
from core.i18n import _
from core.models import (
    AuthorKind,
    Delivery,
    IdentityKind,
    Message,
    Staff,
    StaffDepartment,
    Status,
    Ticket,
    utcnow,
)
from core.services import contacts, tickets
from core.services.tickets import Actor, Identity, ServiceError
from core.state import loket

from .models import AgentPresence, Chat, ChatState

CHANNEL = "livechat"
PLUGIN = "livechat"
LANGUAGES = ("en", "id", "fil")


# Compiled once: the chat row is read two or three times for every visitor message, and
# building these SELECTs of its wide row cost more CPU than running them.
_chat_by_id = db.Select("livechat.chat_by_id", Chat,
                        lambda chat_id: Chat.select().where(Chat.id == chat_id).limit(1))
_chat_by_ticket = db.Select("livechat.chat_by_ticket", Chat,
                            lambda ticket_id: Chat.select().where(Chat.ticket == ticket_id)
                            .limit(1))


def fresh_chat(chat_id: int) -> Chat:
    chat = _chat_by_id.first(chat_id)
    if chat is None:
        raise Chat.DoesNotExist(f"chat {chat_id}")
    return chat


def settings() -> dict[str, Any]:
    return loket().config.plugin(PLUGIN)


def language(asked: Any) -> str:
    """The visitor's language if the desk speaks it, else the desk's default."""
    asked = str(asked or "").lower().split("-")[0]
    if asked == "tl":
        asked = "fil"
    return asked if asked in loket().config["languages"] else loket().config["default_language"]


# -- What the visitor's socket receives -------------------------------------------------------

_AUTHORS = {AuthorKind.CONTACT: "visitor", AuthorKind.STAFF: "agent", AuthorKind.BOT: "bot",
            AuthorKind.SYSTEM: "system"}


def files_of(message_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The files on these messages as the widget links them: downloads from the ticket's
    tracking page (never shown inline there), in one query."""
    from core.models import Attachment

    if not message_ids:
        return {}
    public = loket().config["public_url"]
    found: dict[int, list[dict[str, Any]]] = {}
    rows = (Attachment.select(Attachment.id, Attachment.message, Attachment.ticket,
                              Attachment.filename, Attachment.size, Ticket.access_key)
            .join(Ticket, on=(Attachment.ticket == Ticket.id))
            .where(Attachment.message.in_(message_ids)).order_by(Attachment.id).objects())
    for row in rows:
        found.setdefault(row.message_id, []).append({
            "name": row.filename, "size": row.size,
            "url": f"{public}/t/{row.ticket_id}/{row.access_key}/files/{row.id}"})
    return found


def message_event(message: Message, visitor: str, chat_state: str = "",
                  files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A message as the widget shows it. Plain text only: the widget never renders HTML.

    ``chat_state``: where the chat stood when the message was found, for a widget that
    hears of a change (an agent closed the chat) only through the message announcing it.
    """
    event = {"type": "message", "id": message.id, "author": _AUTHORS.get(message.author_kind,
                                                                        "system"),
             "text": message.body_text, "at": message.created_at.isoformat() + "Z",
             "delivery": message.delivery_state}
    if message.author_kind == AuthorKind.STAFF and message.staff_id:
        event["name"] = Staff.get_by_id(message.staff_id).name
    if chat_state:
        event["chat_state"] = chat_state
    if files:
        event["files"] = files
    prefix = f"{visitor}:"
    if message.external_id and message.external_id.startswith(prefix):
        event["client_id"] = message.external_id[len(prefix):]
    return event


def _public(query: Any) -> Any:
    return query.where((~Message.is_internal) & (Message.notification == ""))


def state_event(chat: Chat | None) -> dict[str, Any]:
    if chat is None:
        return {"type": "state", "state": "new"}
    event = {"type": "state", "state": chat.state, "step": chat.bot_step,
             "ticket": chat.ticket_id}
    if chat.agent_id:
        event["agent"] = Staff.get_by_id(chat.agent_id).name
    if chat.agent_read_id:
        event["seen"] = chat.agent_read_id
    return event


def seen_event(chat: Chat) -> dict[str, Any]:
    """An agent has read the visitor's messages up to this id."""
    return {"type": "seen", "upto": chat.agent_read_id}


def typing_event(chat: Chat) -> dict[str, Any]:
    """An agent is typing (the widget shows it for a few seconds)."""
    return {"type": "typing", "name": Staff.get_by_id(chat.agent_id).name if chat.agent_id
            else "", "at": (chat.agent_typing_at or utcnow()).isoformat() + "Z"}


@dataclass
class Outcome:
    """What a visitor's action produced: events for the visitor's sockets, in order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ack: dict[str, Any] | None = None


def current_chat(visitor: str) -> Chat | None:
    return Chat.select().where(Chat.visitor == visitor).order_by(Chat.id.desc()).first()


def resume(visitor: str, last_seen: int) -> Outcome:
    """Everything of the visitor's current chat after ``last_seen``, and where it stands."""
    chat = current_chat(visitor)
    outcome = Outcome()
    if chat is not None:
        rows = _public(Message.select().where((Message.ticket == chat.ticket_id)
                                              & (Message.id > max(int(last_seen), 0))))
        messages = list(rows.order_by(Message.id))
        files = files_of([m.id for m in messages])
        outcome.events = [message_event(m, visitor, files=files.get(m.id)) for m in messages]
    outcome.events.append(state_event(chat))
    return outcome


def greeting(name: str, lang: str) -> str:
    with force_locale(lang):
        if name:
            return _("Hello %(name)s! I am the help desk's assistant. What can I help you with?",
                     name=name)
        return _("Hello! I am the help desk's assistant. What can I help you with?")


# -- The visitor writes ---------------------------------------------------------------------


def post(visitor: str, client_id: str, text: str, *, name: str = "", email: str | None = None,
         lang: str = "en", attachments: list[Any] | None = None) -> Outcome:
    """Store the visitor's message (once per client id), then let the bot answer if it may
    (not to a file: the bot reads words)."""
    from . import bot

    result = tickets.receive_message(
        channel=CHANNEL, identity=Identity(IdentityKind.CHAT, visitor, name=name, email=email),
        text=text, external_id=f"{visitor}:{client_id}", continue_open=True, language=lang,
        notify=False, attachments=attachments or ())
    chat = chat_of(result.ticket, visitor, lang)
    outcome = Outcome(ack={"type": "ack", "client_id": client_id, "id": result.message.id})
    files = files_of([result.message.id]).get(result.message.id) if attachments else None
    outcome.events.append(message_event(result.message, visitor, files=files))
    if result.duplicate:
        return outcome
    if chat.state == ChatState.CLOSED:
        # The visitor wrote again after the chat ended: it reopens with the person who had
        # it, never with the bot again, so a reopened chat does not loop through hand-offs.
        chat.state = ChatState.WAITING if chat.handed_over_at else ChatState.BOT
        chat.closed_at = None
        chat.save()
        if chat.state == ChatState.WAITING:
            outcome.events += [message_event(m, visitor) for m in offer(chat)]
    elif chat.state == ChatState.BOT and not attachments:
        outcome.events += [message_event(m, visitor) for m in bot.respond(chat, text)]
    outcome.events.append(state_event(fresh_chat(chat.id)))
    return outcome


def files_sent(visitor: str) -> int:
    """Files the visitor sent in their current chat."""
    from core.models import Attachment

    chat = current_chat(visitor)
    if chat is None:
        return 0
    return (Attachment.select().join(Message, on=(Attachment.message == Message.id))
            .where((Attachment.ticket == chat.ticket_id)
                   & (Message.author_kind == AuthorKind.CONTACT)).count())


def chat_of(ticket: Ticket, visitor: str, lang: str) -> Chat:
    """The chat beside this ticket, made with it (a follow-up of a closed chat gets a new one)."""
    chat = _chat_by_ticket.first(ticket.id)
    if chat is not None:
        return chat
    if ticket.department_id is None and settings()["department"]:
        from core.models import Department

        department = Department.get_or_none(Department.slug == settings()["department"])
        if department is not None:
            ticket = tickets.update_ticket(ticket, tickets.SYSTEM, department=department)
    try:
        # Made while the visitor writes on a socket: present until the chat process's
        # next renewal says otherwise.
        return Chat.create(ticket=ticket.id, visitor=visitor, language=lang,
                           department=ticket.department_id, created_at=utcnow(),
                           present_until=utcnow() + PRESENCE)
    except Exception:  # the same first message raced in twice: the other made it
        return Chat.get(Chat.ticket == ticket.id)


def human_replied(chat: Chat) -> bool:
    """A person has written in this chat: from then on the bot says nothing."""
    if chat.first_human_reply_at is not None:
        return True
    return Message.select().where((Message.ticket == chat.ticket_id)
                                  & (Message.author_kind == AuthorKind.STAFF)
                                  & (~Message.is_internal)).exists()


def say(chat: Chat, text: str) -> Message:
    """The bot (or the desk, announcing a hand-off) writes in the thread."""
    return tickets.add_bot_message(Ticket.get_by_id(chat.ticket_id), text, channel=CHANNEL)


def ask_for_person(visitor: str) -> Outcome:
    """The visitor pressed "talk to a person"."""
    from . import bot

    chat = current_chat(visitor)
    outcome = Outcome()
    if chat is None or chat.state != ChatState.BOT:
        return outcome
    outcome.events = [message_event(m, visitor) for m in bot.hand_over(chat, "asked")]
    outcome.events.append(state_event(fresh_chat(chat.id)))
    return outcome


def leave_email(visitor: str, email: str) -> Outcome:
    """Nobody was online: the visitor leaves an address the ticket continues by."""
    chat = current_chat(visitor)
    outcome = Outcome()
    if chat is None:
        return outcome
    ticket = Ticket.get_by_id(chat.ticket_id)
    email = (email or "").strip()
    with force_locale(chat.language):
        if not contacts.is_email_address(email):
            outcome.events.append({"type": "error", "code": "email",
                                   "text": _("Please enter a valid email address.")})
            return outcome
        try:
            contacts.add_identity(ticket.contact, IdentityKind.EMAIL, email)
        except ValueError:
            pass  # another contact has it: we do not join them on a visitor's word
        text = _("Thank you. We will answer at %(email)s. You can also follow your request "
                 "here: %(link)s", email=email, link=tickets.tracking_url(ticket))
    outcome.events.append(message_event(say(chat, text), visitor))
    return outcome


def rate(visitor: str, score: int) -> Outcome:
    chat = current_chat(visitor)
    if chat is not None and 1 <= int(score) <= 5:
        Chat.update(rating=int(score)).where(Chat.id == chat.id).execute()
    return Outcome()


TRANSCRIPT = "chat_transcript"  # the kind of message a transcript is kept as on the ticket
TRANSCRIPTS_PER_CHAT = 3  # a visitor may not use the desk to mail any address at will


def transcript_text(chat: Chat, lang: str) -> str:
    """The chat as the visitor saw it: every public message, with its time in the desk's
    time zone and who wrote it."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(loket().config["timezone"])
    rows = _public(Message.select().where(Message.ticket == chat.ticket_id)).order_by(Message.id)
    lines = []
    with force_locale(lang):
        names = {AuthorKind.CONTACT: _("You"), AuthorKind.BOT: _("Assistant"),
                 AuthorKind.SYSTEM: _("Help desk")}
        for m in rows:
            who = (Staff.get_by_id(m.staff_id).name if m.author_kind == AuthorKind.STAFF
                   and m.staff_id else names.get(m.author_kind, _("Help desk")))
            at = m.created_at.replace(tzinfo=dt.UTC).astimezone(zone)
            lines.append(f"[{at:%Y-%m-%d %H:%M}] {who}:\n{m.body_text}\n")
    return "\n".join(lines)


def send_transcript(visitor: str, email: str) -> Outcome:
    """The visitor asked for the ended chat by email, in their language."""
    chat = current_chat(visitor)
    outcome = Outcome()
    if chat is None:
        return outcome
    email = (email or "").strip()
    ticket = Ticket.get_by_id(chat.ticket_id)
    with force_locale(chat.language):
        if not contacts.is_email_address(email):
            outcome.events.append({"type": "error", "code": "email",
                                   "text": _("Please enter a valid email address.")})
            return outcome
        sent = Message.select().where((Message.ticket == chat.ticket_id)
                                      & (Message.notification == TRANSCRIPT)).count()
        if sent >= TRANSCRIPTS_PER_CHAT:
            outcome.events.append({"type": "error", "code": "transcript_limit",
                                   "text": _("The transcript was already sent.")})
            return outcome
        subject = _("[#%(number)s] Your chat with us", number=ticket.id)
        body = (_("Hello,\n\nHere is your chat with us (ticket #%(number)s). You can follow "
                  "and continue it through your private link:\n%(link)s\n\n",
                  number=ticket.id, link=tickets.tracking_url(ticket))
                + transcript_text(chat, chat.language))
        try:
            tickets.email_customer(ticket, email, subject, body, kind=TRANSCRIPT)
        except ServiceError:
            outcome.events.append({"type": "error", "code": "transcript",
                                   "text": _("We cannot send email right now, sorry.")})
            return outcome
        outcome.events.append({"type": "transcript", "email": email,
                               "text": _("We sent the transcript to %(email)s.", email=email)})
    return outcome


def end_chat(visitor: str) -> Outcome:
    """The visitor ends the chat; the ticket is resolved (writing again reopens it)."""
    chat = current_chat(visitor)
    if chat is None or chat.state == ChatState.CLOSED:
        return Outcome()
    close(chat, Actor.customer(Ticket.get_by_id(chat.ticket_id).contact))
    return Outcome(events=[state_event(Chat.get_by_id(chat.id))])


def receipt(visitor: str, message_id: int, state: str) -> None:
    """The widget showed (read) or received (delivered) the desk's messages up to an id."""
    chat = current_chat(visitor)
    if chat is None or state not in (Delivery.DELIVERED, Delivery.READ):
        return
    moving = (Delivery.QUEUED, Delivery.SENT) + ((Delivery.DELIVERED,) if state == Delivery.READ
                                                 else ())
    rows = (Message.select(Message.id)
            .where((Message.ticket == chat.ticket_id) & (Message.id <= int(message_id))
                   & (Message.author_kind != AuthorKind.CONTACT)
                   & (Message.delivery_state.in_(moving))))
    for row in rows:
        tickets.record_delivery(row.id, state)


def typing(visitor: str) -> None:
    chat = current_chat(visitor)
    if chat is not None:
        Chat.update(visitor_typing_at=utcnow()).where(Chat.id == chat.id).execute()


# -- Whether the visitor is there ------------------------------------------------------------

# How long one renewal of a visitor's presence lasts; the chat process renews every third
# of it for every visitor it holds a socket of, so a process that died stops vouching for
# its visitors within this time.
PRESENCE = dt.timedelta(seconds=90)
RENEW_SECONDS = 30.0
_CHUNK = 500


def mark_present(visitors: list[str], present: bool) -> None:
    """Record that these visitors have a socket open (or that the last one closed)."""
    until = utcnow() + PRESENCE if present else utcnow()
    for start in range(0, len(visitors), _CHUNK):
        (Chat.update(present_until=until)
         .where(Chat.visitor.in_(visitors[start:start + _CHUNK])).execute())


def visitor_present(visitor: str) -> bool:
    """The visitor has the widget open now (``core.hookspecs.LiveChannelSpec.reachable``)."""
    row = (Chat.select(Chat.present_until).where(Chat.visitor == visitor)
           .order_by(Chat.id.desc()).first())
    return row is not None and row.present_until is not None and row.present_until > utcnow()


# -- Agents -----------------------------------------------------------------------------------


def capacity(staff: Staff) -> int:
    presence = AgentPresence.get_or_none(AgentPresence.staff == staff.id)
    limit = presence.max_chats if presence is not None and presence.max_chats else 0
    return limit or settings()["max_chats_per_agent"]


def active_count(staff_id: int) -> int:
    return Chat.select().where((Chat.agent == staff_id)
                               & (Chat.state == ChatState.ACTIVE)).count()


def within_hours(now: dt.datetime | None = None) -> bool:
    """Inside the configured chat hours (per weekday, the desk's time zone; see ``hours``)."""
    from .hours import open_at, parse_hours

    return open_at(parse_hours(settings()["hours"]), now or utcnow(),
                   loket().config["timezone"])


def available_agents(department_id: int | None) -> list[Staff]:
    """Agents who are available, active, of the chat's department, with room for a chat."""
    query = (Staff.select().join(AgentPresence, on=(AgentPresence.staff == Staff.id))
             .where(AgentPresence.available & Staff.active))
    if department_id is not None:
        members = StaffDepartment.select(StaffDepartment.staff).where(
            StaffDepartment.department == department_id)
        query = query.where(Staff.id.in_(members))
    return [s for s in query if active_count(s.id) < capacity(s)]


def offer(chat: Chat) -> list[Message]:
    """Offer a waiting chat to the available agent who has the fewest chats and waited longest
    since their last offer; with nobody available (or outside hours) it falls back to a ticket."""
    agents = available_agents(chat.department_id) if within_hours() else []
    with force_locale(chat.language):
        if not agents:
            chat.state = ChatState.OFFLINE
            chat.offered_to = None
            chat.save()
            return [say(chat, _("Nobody from our team is available right now, sorry. Please "
                                "leave your email address below: your chat stays open as a "
                                "ticket and we will answer you by email."))]
        presence = {p.staff_id: p for p in AgentPresence.select().where(
            AgentPresence.staff.in_([a.id for a in agents]))}
        never = dt.datetime.min
        chosen = min(agents, key=lambda a: (active_count(a.id),
                                            presence[a.id].last_offered_at or never, a.id))
        AgentPresence.update(last_offered_at=utcnow()).where(
            AgentPresence.staff == chosen.id).execute()
        chat.state = ChatState.WAITING
        chat.offered_to = chosen.id
        chat.save()
        return [say(chat, _("I am passing you to a person from our team now. Please stay "
                            "here; they will answer in this chat."))]


def accept(chat: Chat, staff: Staff) -> Chat:
    """An agent takes a waiting (or offline) chat, within their limit of concurrent chats."""
    fresh = Chat.get_by_id(chat.id)
    if fresh.state not in (ChatState.WAITING, ChatState.OFFLINE, ChatState.BOT):
        raise ServiceError("this chat is not waiting for an agent")
    if active_count(staff.id) >= capacity(staff):
        raise ServiceError(f"you already have {capacity(staff)} chats, your limit")
    updated = (Chat.update(state=ChatState.ACTIVE, agent=staff.id, accepted_at=utcnow(),
                           handed_over_at=fresh.handed_over_at or utcnow(),
                           handover_reason=fresh.handover_reason or "agent")
               .where((Chat.id == fresh.id) & (Chat.state == fresh.state)).execute())
    if not updated:
        raise ServiceError("another agent took this chat first")
    ticket = Ticket.get_by_id(fresh.ticket_id)
    tickets.assign(ticket, staff, Actor.agent(staff))
    with force_locale(fresh.language):
        joined = say(fresh, _("%(name)s has joined the chat.", name=staff.name))
    accepted = Chat.get_by_id(fresh.id)
    announce(accepted, joined)
    return accepted


def agent_reply(chat: Chat, staff: Staff, text: str, attachments: list[Any] | None = None
                ) -> Message:
    """The agent writes to the visitor: committed queued, delivered by the outbox to the socket
    (files as download links)."""
    return tickets.reply(Ticket.get_by_id(chat.ticket_id), staff, text, status=Status.OPEN,
                         attachments=attachments or ())


def transfer(chat: Chat, staff: Staff, *, to_agent: Staff | None = None,
             to_department: int | None = None) -> Chat:
    """Hand an active chat to another agent, or back to the queue of another department."""
    fresh = Chat.get_by_id(chat.id)
    ticket = Ticket.get_by_id(fresh.ticket_id)
    actor = Actor.agent(staff)
    if to_department is not None:
        from core.models import Department

        tickets.update_ticket(ticket, actor, department=Department.get_by_id(to_department))
        fresh.department = to_department
    if to_agent is not None:
        if active_count(to_agent.id) >= capacity(to_agent):
            raise ServiceError(f"{to_agent.name} has no room for another chat")
        fresh.agent = to_agent.id
        fresh.state = ChatState.ACTIVE
        fresh.save()
        tickets.assign(ticket, to_agent, actor)
        with force_locale(fresh.language):
            joined = say(fresh, _("%(name)s has joined the chat.", name=to_agent.name))
        announce(fresh, joined)
        return fresh
    fresh.agent = None
    fresh.save()
    tickets.assign(ticket, None, actor)
    said = offer(fresh)
    requeued = Chat.get_by_id(fresh.id)
    announce(requeued, said[-1] if said else None)
    return requeued


def close(chat: Chat, actor: Actor) -> None:
    """End the chat: the ticket is resolved, so the visitor writing again reopens it.

    The visitor is told in the thread, so the widget hears of it by the same path as
    any message (and may then rate the chat).
    """
    Chat.update(state=ChatState.CLOSED, closed_at=utcnow()).where(Chat.id == chat.id).execute()
    ticket = Ticket.get_by_id(chat.ticket_id)
    if ticket.status not in (Status.RESOLVED, Status.CLOSED):
        tickets.change_status(ticket, Status.RESOLVED, actor)
    fresh = Chat.get_by_id(chat.id)
    with force_locale(fresh.language):
        notice = say(fresh, _("This chat has ended. Thank you for contacting us."))
    announce(fresh, notice)


def announce(chat: Chat, message: Message | None = None) -> None:
    """With Redis, tell the visitor's sockets at once of a change made outside the chat
    process (an agent accepted, transferred or closed); without, the chat process finds the
    change with the message that announced it."""
    from . import bus

    if message is not None:
        bus.publish(chat.visitor, message_event(message, chat.visitor, chat.state))
    bus.publish(chat.visitor, state_event(chat))


def agent_typing(chat: Chat, staff: Staff) -> None:
    """The chat's agent is typing: the visitor sees it."""
    from . import bus

    if chat.agent_id != staff.id or chat.state != ChatState.ACTIVE:
        return
    now = utcnow()
    Chat.update(agent_typing_at=now, agent_event_at=now).where(Chat.id == chat.id).execute()
    bus.publish(chat.visitor, typing_event(chat))


def agent_read(chat: Chat, staff: Staff) -> None:
    """The chat's agent has its page open: the visitor's messages so far are read ("Seen")."""
    from . import bus

    if chat.agent_id != staff.id:
        return
    newest = (Message.select(Message.id)
              .where((Message.ticket == chat.ticket_id)
                     & (Message.author_kind == AuthorKind.CONTACT))
              .order_by(Message.id.desc()).first())
    if newest is None or newest.id <= chat.agent_read_id:
        return
    moved = (Chat.update(agent_read_id=newest.id, agent_event_at=utcnow())
             .where((Chat.id == chat.id) & (Chat.agent_read_id < newest.id)).execute())
    if moved:
        bus.publish(chat.visitor, seen_event(Chat.get_by_id(chat.id)))


def agent_events_since(since: dt.datetime, visitors: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """Without Redis: agents' typing and reading since then, for visitors held here."""
    rows = Chat.select().where(Chat.agent_event_at >= since)
    found = []
    for chat in rows:
        if chat.visitor not in visitors:
            continue
        if chat.agent_read_id:
            found.append((chat.visitor, seen_event(chat)))
        if chat.agent_typing_at is not None and chat.agent_typing_at >= since:
            found.append((chat.visitor, typing_event(chat)))
    return found


def day_range(first: str, last: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The report's dates (YYYY-MM-DD, both days included, in the desk's time zone) as naive
    UTC bounds; a missing or malformed date leaves that side open."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(loket().config["timezone"])

    def bound(text: str, days: int) -> dt.datetime | None:
        try:
            day = dt.date.fromisoformat((text or "").strip())
        except ValueError:
            return None
        local = dt.datetime.combine(day + dt.timedelta(days=days), dt.time(), tzinfo=zone)
        return local.astimezone(dt.UTC).replace(tzinfo=None)

    return bound(first, 0), bound(last, 1)


def set_available(staff: Staff, available: bool, max_chats: int | None = None) -> AgentPresence:
    presence, _created = AgentPresence.get_or_create(staff=staff.id,
                                                     defaults={"updated_at": utcnow()})
    presence.available = available
    if max_chats is not None:
        presence.max_chats = max(0, int(max_chats))
    presence.updated_at = utcnow()
    presence.save()
    return presence


def report(since: dt.datetime | None = None, until: dt.datetime | None = None
           ) -> dict[str, Any]:
    """Bot-resolved chats, hand-off rate and time to the first human reply (median, seconds)
    of the chats begun from ``since`` to before ``until`` (naive UTC)."""
    query = Chat.select()
    if since is not None:
        query = query.where(Chat.created_at >= since)
    if until is not None:
        query = query.where(Chat.created_at < until)
    chats = list(query)
    total = len(chats)
    handed = [c for c in chats if c.handed_over_at is not None]
    waits = sorted((c.first_human_reply_at - c.handed_over_at).total_seconds()
                   for c in handed if c.first_human_reply_at is not None)
    return {"chats": total, "bot_resolved": sum(1 for c in chats if c.bot_resolved),
            "handed_over": len(handed),
            "handoff_rate": (len(handed) / total) if total else 0.0,
            "first_human_reply_median": waits[len(waits) // 2] if waits else None}
