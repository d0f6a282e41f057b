"""The messenger side of the outbox: one queued message out through its platform's API.

At most once: no platform takes an idempotency key, so each part is marked in flight in
a committed row (``SocialSend``) before the platform is called. A part found still in
flight when its message comes round again (its worker died, or the platform never
answered) may have arrived: the message fails saying so instead of sending it again,
and the agent's Retry on the ticket sends it again on purpose.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee as pw

from core.attachments import Storage
from core.hookspecs import DeliveryError, DeliveryResult
from core.models import Attachment, Message, Ticket, TicketEvent, utcnow
from core.state import loket

from . import accounts, platforms, templates
from .models import SendState, SocialSend
from .platforms.base import Fetched, OutcomeUnknown


def deliver(ticket: Ticket, message: Message, recipient: str,
            idempotency_key: str) -> DeliveryResult:
    platform = platforms.get(message.channel)
    if platform is None:
        raise DeliveryError(f"the social plugin has no {message.channel} platform",
                            permanent=True)
    account = accounts.for_ticket(ticket, platform.name)
    if account is None:
        raise DeliveryError(f"no enabled {platform.label} account to send from", permanent=True)
    since = (utcnow() - ticket.last_customer_message_at
             if ticket.last_customer_message_at else None)
    window = platform.reply_window
    window_open = window is None or (since is not None and since <= window)
    # Each part is one message on the platform (a piece of the text, or one file), so the
    # ledger knows which of them the customer has: a refused file never resends the text.
    chunks = _chunks(message.body_text, platform.max_text)
    files = _files(message)
    values = None
    if not window_open and platform.template_outside_window:
        parts: list[tuple[str, list[Fetched]]] = [(chunks[0], [])]  # the template instead
        values = templates.fill(account.template_parameters, ticket, message)
    else:
        texts = [chunk for chunk in chunks if chunk] if files else chunks
        parts = [(chunk, []) for chunk in texts] + [("", [file]) for file in files]
    retries = _retries(message)
    external_id = ""
    for index, (text, attached) in enumerate(parts):
        external_id = _send_once(
            message, index, len(parts), retries, platform.label,
            lambda text=text, attached=attached: platform.send(
                account, recipient, text, attached, window_open=window_open,
                since_customer=since, idempotency_key=idempotency_key,
                template_values=values))
    note = ""
    if not window_open and platform.template_outside_window:
        note = (f"Outside {platform.label}'s reply window: the approved template "
                f"{account.template_name!r} was sent instead of this text.")
    return DeliveryResult(state="sent", external_id=external_id, error=note)


def _retries(message: Message) -> int:
    """How often an agent pressed Retry on the message: each press may send an unknown part."""
    return (TicketEvent.select()
            .where((TicketEvent.ticket == message.ticket_id)
                   & (TicketEvent.kind == "delivery_retry")
                   & (TicketEvent.detail == f"message={message.id}"))
            .count())


def unknown_reason(platform: str, part: int, parts: int) -> str:
    which = f" (part {part + 1} of {parts})" if parts > 1 else ""
    return (f"Outcome unknown: sending to {platform}{which} was interrupted after the request "
            "went out, so the customer may or may not have it. It is not sent again by "
            "itself; press Retry to send it again.")


def _send_once(message: Message, part: int, parts: int, retries: int, platform: str,
               send: Callable[[], str]) -> str:
    """Send one part unless the ledger says it was sent, or may have been."""
    row = SocialSend.get_or_none((SocialSend.message == message.id) & (SocialSend.part == part))
    if row is not None and row.state == SendState.SENT:
        return row.external_id  # sent before a later part failed: never twice
    if row is not None and row.retries >= retries:
        raise DeliveryError(unknown_reason(platform, part, parts), permanent=True)
    # Committed before the platform hears of it (each statement commits on its own). The
    # outbox's claim keeps other workers off this message; the conditions make it certain.
    if row is None:
        try:
            SocialSend.insert(message=message.id, part=part, retries=retries,
                              state=SendState.IN_FLIGHT, started_at=utcnow()).execute()
            taken = True
        except pw.IntegrityError:
            taken = False  # another worker's row, made since we looked
    else:
        taken = (SocialSend.update(retries=retries, started_at=utcnow())
                 .where((SocialSend.id == row.id) & (SocialSend.retries == row.retries)
                        & (SocialSend.state == SendState.IN_FLIGHT))
                 .execute()) == 1
    if not taken:
        raise DeliveryError(unknown_reason(platform, part, parts), permanent=True)
    where = (SocialSend.message == message.id) & (SocialSend.part == part)
    try:
        external_id = send()
    except OutcomeUnknown as exc:
        # Left in flight: at most once. The agent decides.
        raise DeliveryError(f"{unknown_reason(platform, part, parts)} ({exc})",
                            permanent=True) from None
    except DeliveryError:
        # The platform answered no, or was never reached: nothing went out.
        SocialSend.delete().where(where).execute()
        raise
    (SocialSend.update(state=SendState.SENT, external_id=external_id or "")
     .where(where).execute())
    return external_id


def _chunks(text: str, limit: int) -> list[str]:
    """The text in pieces the platform takes, split at line breaks where it can."""
    text = text or ""
    pieces = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return pieces + [text] if text or not pieces else pieces


def _files(message: Message) -> list[Fetched]:
    storage = Storage(loket().config["attachments_path"])
    files = []
    for attachment in Attachment.select().where(Attachment.message == message.id):
        with storage.open(attachment.sha256) as fh:
            files.append(Fetched(fh.read(), attachment.filename, attachment.content_type))
    return files

