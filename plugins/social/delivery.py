"""The messenger side of the outbox: one queued message out through its platform's API."""

from __future__ import annotations

from core.attachments import Storage
from core.hookspecs import DeliveryError, DeliveryResult
from core.models import Attachment, Message, Ticket, utcnow
from core.state import loket

from . import accounts, platforms
from .platforms.base import Fetched


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
    chunks = _chunks(message.body_text, platform.max_text)
    files = _files(message)
    external_id = ""
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        external_id = platform.send(account, recipient, chunk, files if last else [],
                                    window_open=window_open, since_customer=since,
                                    idempotency_key=idempotency_key)
        if not window_open and platform.template_outside_window:
            break  # one template went instead of the text
    note = ""
    if not window_open and platform.template_outside_window:
        note = (f"Outside {platform.label}'s reply window: the approved template "
                f"{account.template_name!r} was sent instead of this text.")
    return DeliveryResult(state="sent", external_id=external_id, error=note)


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

