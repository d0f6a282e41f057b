"""One raw email in, whichever way it came (IMAP, the MTA pipe, the HTTP endpoint).

``ingest_raw`` parses once, tells machines from people (``loops``), threads,
and hands the message to ``core.services.tickets.receive_message`` with its raw
original. It answers ``stored=False`` only when nothing was kept, so that the
caller (the MTA, the provider, the IMAP poller) tries again later; everything
else is kept: as a ticket message, a note on the ticket it concerns, or a row
in the failed-mail list.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee

from core.attachments import AttachmentRejected, Storage, StoredFile
from core.models import AuthorKind, Delivery, Message, Ticket
from core.raw import RawOriginal
from core.services import contacts, tickets
from core.state import loket

from . import bounces, failed, loops
from .mailboxes import mailbox_addressed, note_arrivals
from .parse import MailFile, ParsedMail, parse

log = logging.getLogger(__name__)
PLUGIN = "email_intake"
CHANNEL = "email"
VIAS = ("imap", "pipe", "http")
# A database that is down or locked: the caller retries; nothing was written.
_TEMPORARY = (peewee.OperationalError, peewee.InterfaceError)
# The most mails ``ingest_batch`` writes in one transaction: on SQLite every other writer
# (the web's too) waits for it, a millisecond or two a mail. The bench's mails showed no
# further gain from 20 to 50 (bench/email_ingest.py --batch; NOTES-mail3.md).
WRITE_BATCH = 20


@dataclass
class Ingested:
    stored: bool  # True: the message is committed (or was already: duplicate)
    outcome: str  # "new_ticket", "reply", "duplicate", "bounce", "auto_reply",
    # "ignored_loop", "failed_mail", "tempfail"
    ticket_number: int | None = None
    reason: str = ""  # one line, for logs / the MTA / the failed-mail list


def ingest_raw(raw: bytes, *, via: str, mailbox: Any = None) -> Ingested:
    """Keep one raw mail; see the module docstring. Call inside an app context."""
    return _guarded(raw, via, mailbox, lambda: _ingest(raw, via, mailbox))


def ingest_batch(raws: list[bytes], *, via: str, mailbox: Any = None) -> list[Ingested]:
    """``ingest_raw`` for each of ``raws``, answered in order, with fewer commits.

    Mails that open tickets or join existing ones share a write transaction (up to
    ``WRITE_BATCH`` of them), each in a savepoint of its own
    (``tickets.receive_messages``): a mail that fails there is undone alone and taken
    again on its own, exactly as ``ingest_raw`` would take it. A mail is threaded
    before the write, so one whose threading could depend on a mail of the batch not
    yet written first commits the mails before it (``_depends``): each is threaded as
    if it came alone. Every answer is given once its mail is committed.
    """
    answers: list[Ingested | None] = [None] * len(raws)
    batch: list[tuple[int, _Ready]] = []
    pending_ids: set[str] = set()  # the Message-IDs of the batch's mails

    def flush() -> None:
        if not batch:
            return
        results = tickets.receive_messages([ready.call for _i, ready in batch])
        for (i, ready), result in zip(batch, results, strict=True):
            answers[i] = _guarded(raws[i], via, mailbox, lambda r=ready, x=result: r.finish(x))
        batch.clear()
        pending_ids.clear()

    for i, raw in enumerate(raws):
        mail = parse(raw)
        if len(batch) >= WRITE_BATCH or (batch and _depends(
                mail, pending_ids, any(ready.call["participants"] for _i, ready in batch))):
            flush()
        prepared = _guarded(raw, via, mailbox, lambda r=raw, m=mail: _prepare(r, via, mailbox, m))
        if isinstance(prepared, _Ready):
            batch.append((i, prepared))
            pending_ids.add(mail.external_id)
        else:
            answers[i] = prepared
    flush()
    done = [answer for answer in answers if answer is not None]
    if len(done) != len(raws):
        raise AssertionError("a mail of the batch was left unanswered")
    return done


def _guarded(raw: bytes, via: str, mailbox: Any, step: Callable[[], Any]) -> Any:
    """``step``'s answer, or what a failure means: try again later, or a failed mail kept."""
    mailbox_address = str(getattr(mailbox, "address", "") or "")
    try:
        return step()
    except _TEMPORARY as exc:
        log.warning("email via %s: the database refused the mail, it must come again: %s",
                    via, exc)
        return Ingested(False, "tempfail", reason=_line(f"database unavailable: {exc}"))
    except Exception as exc:
        log.exception("email via %s: the mail could not be made a message", via)
        reason = _line(f"{type(exc).__name__}: {exc}")
        try:
            mail = parse(raw)
            failed.keep(raw, via=via, outcome="failed_mail", reason=reason,
                        mailbox=mailbox_address, sender=mail.sender, subject=mail.subject,
                        message_id=mail.external_id)
        except Exception as again:  # not even the list could take it: the caller must retry
            return Ingested(False, "tempfail", reason=_line(f"{reason}; not kept: {again}"))
        return Ingested(True, "failed_mail", reason=reason)


def _line(text: str) -> str:
    return " ".join(str(text).split())[:300]


def _settings() -> dict[str, Any]:
    return loket().config.plugin(PLUGIN)


def own_addresses(mailbox: Any = None) -> frozenset[str]:
    """The desk's own addresses: the support address, extra ones, and this mailbox's."""
    settings = _settings()
    found = {settings["address"], *settings["own_addresses"],
             str(getattr(mailbox, "address", "") or "")}
    return frozenset(a.strip().lower() for a in found if a and "@" in a)


# -- Reply addresses ---------------------------------------------------------------------------


def _token(ticket_id: int) -> str:
    secret = str(loket().config["secret_key"]).encode()
    return hmac.new(secret, f"email-reply:{ticket_id}".encode(), hashlib.sha256).hexdigest()[:20]


def reply_address(ticket_id: int, address: str) -> str:
    """``support+t<number>-<token>@domain``: routes a reply home; the token cannot be guessed."""
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        return address
    return f"{local}+t{ticket_id}-{_token(ticket_id)}@{domain}"


_PLUS = re.compile(r"^[^@+]+\+t(\d{1,12})-([0-9a-f]{20})@", re.IGNORECASE)


def _ticket_by_reply_address(addresses: list[str], own: frozenset[str]) -> Ticket | None:
    for address in addresses:
        match = _PLUS.match(address)
        if match and loops.is_own(address, own) and hmac.compare_digest(
                match.group(2).lower(), _token(int(match.group(1)))):
            return tickets.ticket_by_id(int(match.group(1)))
    return None


# -- Threading ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"\[#(\d{1,12})\]|(?:ticket|tiket)\s*#?\s*(\d{1,12})|#(\d{1,12})\b",
                     re.IGNORECASE)


def _recipients(mail: ParsedMail) -> list[str]:
    """Whom the mail was for: To and Cc, and what the MTA says it delivered to."""
    return [a for _, a in mail.to + mail.cc] + [
        v.strip().strip("<>") for name in ("delivered-to", "x-original-to", "envelope-to")
        for v in mail.headers.get(name, [])]


def find_thread(mail: ParsedMail, own: frozenset[str]) -> tuple[Ticket | None, str]:
    """The ticket this mail answers and how it was found, or (None, "")."""
    ticket = _ticket_by_reply_address(_recipients(mail), own)
    if ticket is not None:
        return ticket, "reply address"
    for header, ids in (("In-Reply-To", mail.in_reply_to),
                        ("References", list(reversed(mail.references)))):
        for mid in ids:
            message = tickets.find_message(CHANNEL, mid)
            if message is None:
                continue
            ticket = tickets.ticket_by_id(message.ticket_id)
            # Our own Message-IDs carry an unguessable key: whoever answers one was sent it.
            # A customer's may be guessable, so answering it needs the ticket's people.
            if message.author_kind != AuthorKind.CONTACT or _is_party(ticket, mail.sender):
                return ticket, header
    match = _NUMBER.search(mail.subject or "")
    if match:
        ticket = tickets.ticket_by_id(int(next(g for g in match.groups() if g)))
        if ticket is not None and _is_party(ticket, mail.sender):
            return ticket, "ticket number in the subject"
    return None, ""


def _is_party(ticket: Ticket, sender: str) -> bool:
    """Whether ``sender`` is the ticket's contact or one of its participants."""
    contact = contacts.find_contact("email", sender) if sender else None
    return contact is not None and (ticket.contact_id == contact.id
                                    or tickets.is_participant(ticket.id, contact.id))


# -- Files -------------------------------------------------------------------------------------


def _store_files(files: list[MailFile]) -> tuple[list[StoredFile], list[str]]:
    """Store each file; a refused one (type, size) is named in a note, never silently lost."""
    config = loket().config
    storage = Storage(config["attachments_path"])
    stored: list[StoredFile] = []
    refused: list[str] = []
    for item in files:
        for name, data in _unpacked(item):
            try:
                stored.append(storage.save_bytes(
                    data, name, max_bytes=config["upload_max_bytes"],
                    allowed_types=config["upload_allowed_types"]))
            except AttachmentRejected as exc:
                refused.append(f"{name} ({len(data)} bytes): {exc}")
    return stored, refused


def _unpacked(item: MailFile) -> list[tuple[str, bytes]]:
    """winmail.dat (TNEF) opened into the files it carries; an Outlook .msg kept, with its
    text and files beside it; anything else as it came."""
    if item.content_type == "application/ms-tnef" or item.filename.lower() == "winmail.dat":
        from .tnef import unpack

        inner = unpack(item.data)
        if inner:
            return inner
    from . import outlook

    if outlook.is_outlook_msg(item.filename, item.content_type, item.data):
        return [(item.filename, item.data), *outlook.unpack(item.data, item.filename)]
    return [(item.filename, item.data)]


# -- The way in ----------------------------------------------------------------------------------


@dataclass
class _Ready:
    """A mail ready for ``receive_message``: its arguments, and what its result means."""

    call: dict[str, Any]
    finish: Callable[[tickets.InboundResult | Exception], Ingested]


def _ingest(raw: bytes, via: str, mailbox: Any) -> Ingested:
    prepared = _prepare(raw, via, mailbox, parse(raw))
    if isinstance(prepared, Ingested):
        return prepared
    return prepared.finish(tickets.receive_message(**prepared.call))


def _depends(mail: ParsedMail, pending_ids: set[str], pending_participants: bool) -> bool:
    """Whether threading ``mail`` could depend on mails not yet written (``pending_ids``):
    it answers one of them, or names a ticket number (the ticket may be one they open),
    or may thread at all while they add people to tickets (``pending_participants``).
    A reply address cannot name a ticket they open: its token goes out after the commit.
    """
    # One iterable: ``intersection(a, b)`` would keep only ids in both a and b.
    return bool(pending_ids.intersection([*mail.in_reply_to, *mail.references])
                or _NUMBER.search(mail.subject or "")
                or (pending_participants and _may_thread(mail)))


def _may_thread(mail: ParsedMail) -> bool:
    """Whether ``find_thread`` could find a ticket for this mail (cheaply, before it looks)."""
    return bool(mail.in_reply_to or mail.references or _NUMBER.search(mail.subject or "")
                or any(_PLUS.match(address) for address in _recipients(mail)))


def _prepare(raw: bytes, via: str, mailbox: Any, mail: ParsedMail) -> Ingested | _Ready:
    """Everything before the ticket's write: a final answer (a bounce, a loop, a failed
    mail kept), or the mail made ready, its files and original kept."""
    settings = _settings()
    if mailbox is None:
        # Piped or posted mail to a mailbox's address is that mailbox's, as if read from it:
        # its category and department, and replies from its address.
        mailbox = mailbox_addressed(_recipients(mail))
        if mailbox is not None:
            note_arrivals(mailbox.id, [raw])
    mailbox_address = str(getattr(mailbox, "address", "") or "")
    own = own_addresses(mailbox)
    verdict = loops.classify(mail, own)

    def keep(outcome: str, reason: str) -> Ingested:
        failed.keep(raw, via=via, outcome=outcome, reason=reason, mailbox=mailbox_address,
                    sender=mail.sender, subject=mail.subject, message_id=mail.external_id)
        return Ingested(True, outcome, reason=_line(reason))

    if verdict.kind in (loops.BOUNCE, loops.DELIVERED, loops.FEEDBACK):
        return _report(mail, verdict, keep)
    if verdict.kind == loops.OWN:
        return keep("ignored_loop", f"a mail from our own address ({verdict.why})")
    ticket, how = find_thread(mail, own)
    if verdict.kind == loops.AUTO_REPLY and ticket is None:
        return keep("auto_reply", f"an automatic reply that answers no ticket ({verdict.why})")

    notes: list[str] = []
    files = mail.files
    limit = settings["max_message_bytes"]
    if limit and len(raw) > limit:
        notes.append(f"This mail is {len(raw)} bytes, more than the {limit} bytes kept: its "
                     f"{len(files)} file(s) were not stored; the raw original has the rest.")
        files = []
    stored, refused = _store_files(files)
    if refused:
        notes.append("Files in this mail that were not kept:\n" + "\n".join(refused))
    sender = mail.sender
    notify = verdict.kind == loops.HUMAN
    if not sender:
        sender = f"unknown-sender+{mail.external_id[-12:].strip('<>')}@invalid"
        notify = False
    # A reply shows what the sender wrote this time; a new ticket keeps all (a forward).
    text, html = mail.text, mail.html
    if ticket is not None and mail.reply_text and mail.reply_text != mail.text.strip():
        # The console shows a message's HTML before its text, and the HTML still holds
        # the quoted thread: the trimmed text stands alone (the raw original has it all).
        text, html = mail.reply_text, ""
    participants = [tickets.Identity("email", address, name=name)
                    for name, address in mail.cc + mail.to
                    if address.lower() != sender.lower() and not loops.is_own(address, own)
                    and "@invalid" not in address]
    call = dict(
        channel=CHANNEL, identity=tickets.Identity("email", sender, name=mail.sender_name,
                                                   email=sender if mail.sender else None),
        text=text, html=html, external_id=mail.external_id, thread_to=ticket,
        subject=mail.subject, category=getattr(mailbox, "default_category", None),
        attachments=stored, raw=RawOriginal(raw, "message/rfc822"), notify=notify,
        participants=participants, automatic=verdict.kind == loops.AUTO_REPLY)

    def finish(result: tickets.InboundResult | Exception) -> Ingested:
        if isinstance(result, Exception):
            raise result
        number = result.ticket.id
        if result.duplicate:
            return Ingested(True, "duplicate", number, "this mail was received before")
        department = getattr(mailbox, "department", None)
        if (result.created and department is not None
                and result.ticket.department_id != department.id):
            tickets.update_ticket(result.ticket, tickets.SYSTEM, department=department)
        for note in notes:
            tickets.add_note(result.ticket, None, note)
        if verdict.kind == loops.AUTO_REPLY:
            return Ingested(True, "auto_reply", number, f"recorded, not answered ({verdict.why})")
        if result.created:
            reason = f"not answered automatically ({verdict.why})" if not notify else ""
            return Ingested(True, "new_ticket", number, reason)
        return Ingested(True, "reply", number, f"threaded by {how}")

    return _Ready(call, finish)


def _report(mail: ParsedMail, verdict: loops.Verdict, keep: Any) -> Ingested:
    """A delivery report: mark our outbound mail it names, with a note; never a ticket."""
    report = bounces.read(mail)
    outbound: Message | None = None
    for mid in report.original_ids:
        found = tickets.find_message(CHANNEL, mid)
        if found is not None and found.author_kind != AuthorKind.CONTACT:
            outbound = found
            break
    what = {loops.BOUNCE: "bounce", loops.DELIVERED: "delivery report",
            loops.FEEDBACK: "complaint"}[verdict.kind]
    if outbound is None:
        return keep("bounce", f"a {what} for no mail of ours that we can find: {report.reason}")
    to = ", ".join(report.recipients) or outbound.recipient
    status = f" ({report.status})" if report.status else ""
    if verdict.kind == loops.DELIVERED:
        tickets.record_delivery(outbound.id, Delivery.DELIVERED)
        return Ingested(True, "bounce", outbound.ticket_id, "delivered")
    if verdict.kind == loops.FEEDBACK:
        note = f"The mail to {to} was reported as spam by its recipient's provider."
    elif report.permanent:
        tickets.record_delivery(outbound.id, Delivery.FAILED,
                                error=f"bounced{status}: {report.reason}")
        note = (f"Our mail to {to} bounced{status}: {report.reason}\n"
                "Check the address with the customer through another channel.")
    else:
        note = f"Our mail to {to} is delayed{status}: {report.reason}"
    ticket = Ticket.get_by_id(outbound.ticket_id)
    if not Message.select().where((Message.ticket == ticket) & Message.is_internal
                                  & (Message.body_text == note)).exists():
        tickets.add_note(ticket, None, note)
    return Ingested(True, "bounce", ticket.id, _line(report.reason))


__all__ = ["Ingested", "VIAS", "find_thread", "ingest_batch", "ingest_raw", "own_addresses",
           "reply_address"]
