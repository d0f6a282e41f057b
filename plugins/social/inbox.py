"""The webhook inbox: verified updates are stored, acknowledged, then turned into messages.

The webhook's request does one cheap insert (the platform gets its 200 in
milliseconds, and the same update delivered twice is one row); the worker's
relay thread claims each row, fetches its media and hands it to
``core.services.tickets``. The row is the truth: a worker that dies mid-way
leaves it claimed, and when the claim runs out another worker does it again,
which the services' external-id de-duplication makes safe.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from core.attachments import AttachmentRejected, Storage, StoredFile
from core.hookspecs import DeliveryError
from core.i18n import _
from core.models import Delivery, Message, utcnow
from core.raw import RawOriginal
from core.services import contacts, tickets
from core.state import loket

from . import accounts, platforms
from .models import InboxState, SocialAccount, SocialInbox, due
from .platforms.base import Event, Platform, TooLarge

log = logging.getLogger(__name__)

RELAY = "social.inbox"
LEASE = dt.timedelta(minutes=5)


def settings() -> dict[str, Any]:
    return loket().config.plugin("social")


_ACCEPT_SQL: dict[str, str] = {}


def accept(account: SocialAccount, update_key: str, body: bytes) -> bool:
    """Store a verified update (one statement, committed); False when it was stored before."""
    database = SocialInbox._meta.database
    sql = _ACCEPT_SQL.get(database.param)
    if sql is None:
        # Plain SQL, built once: this runs for every update, and building peewee's query took
        # longer than the insert itself. SQLite and PostgreSQL both read ON CONFLICT DO NOTHING.
        param = database.param
        sql = _ACCEPT_SQL[param] = (
            "INSERT INTO social_inbox (account_id, update_key, body, state, attempts, error, "
            f"received_at) VALUES ({param}, {param}, {param}, 'pending', 0, '', {param}) "
            "ON CONFLICT (account_id, update_key) DO NOTHING")
    cursor = database.execute_sql(sql, (account.id, update_key[:100],
                                        SocialInbox.body.db_value(body), utcnow()))
    return cursor.rowcount == 1


def relay(shard: int, shards: int) -> int:
    """One pass of the worker's inbox thread: how many updates it handled."""
    done = 0
    for inbox_id in due(utcnow(), 100):
        if inbox_id % shards != shard:
            continue
        try:
            if process(inbox_id) != "not due":
                done += 1
        except Exception:
            log.exception("social inbox: update %s", inbox_id)
    return done


class _Later(Exception):
    """Something the platform may give us later (a media file); try the update again."""


def _claim(inbox_id: int, now: dt.datetime) -> bool:
    return (SocialInbox.update(claimed_until=now + LEASE, attempts=SocialInbox.attempts + 1)
            .where((SocialInbox.id == inbox_id) & (SocialInbox.state == InboxState.PENDING)
                   & (SocialInbox.claimed_until.is_null() | (SocialInbox.claimed_until < now))
                   & (SocialInbox.next_attempt_at.is_null()
                      | (SocialInbox.next_attempt_at <= now)))
            .execute()) == 1


def process(inbox_id: int) -> str:
    """Turn one stored update into messages, edits and receipts. Safe to run twice."""
    now = utcnow()
    if not _claim(inbox_id, now):
        return "not due"
    row = SocialInbox.get_by_id(inbox_id)
    account = SocialAccount.get_by_id(row.account_id)
    platform = platforms.get(account.platform)
    last_try = row.attempts >= max(settings()["media_attempts"], 1)
    try:
        data = json.loads(bytes(row.body))
        for event in platform.parse(account, data):
            _apply(account, platform, event, bytes(row.body), last_try)
    except _Later as exc:
        delay = min(settings()["media_retry_seconds"] * 2 ** (row.attempts - 1), 3600)
        _finish(row, InboxState.PENDING, str(exc), utcnow() + dt.timedelta(seconds=delay))
        return "retry"
    except Exception as exc:
        log.exception("social inbox: update %s of %s", row.id, account.name)
        if last_try:
            _finish(row, InboxState.FAILED, f"{type(exc).__name__}: {exc}")
            return "failed"
        delay = min(settings()["media_retry_seconds"] * 2 ** (row.attempts - 1), 3600)
        _finish(row, InboxState.PENDING, f"{type(exc).__name__}: {exc}",
                utcnow() + dt.timedelta(seconds=delay))
        return "retry"
    _finish(row, InboxState.DONE, "")
    return "done"


def _finish(row: SocialInbox, state: str, error: str,
            next_attempt_at: dt.datetime | None = None) -> None:
    (SocialInbox.update(state=state, error=error[:2000], claimed_until=None,
                        next_attempt_at=next_attempt_at,
                        processed_at=utcnow() if state != InboxState.PENDING else None)
     .where(SocialInbox.id == row.id).execute())


def _apply(account: SocialAccount, platform: Platform, event: Event, body: bytes,
           last_try: bool) -> None:
    channel = platform.name
    if event.kind == "status":
        tickets.record_receipt(channel, event.external_id, event.status, error=event.error)
    elif event.kind == "edit":
        tickets.revise_message(channel, event.external_id, text=event.text)
    elif event.kind == "delete":
        tickets.revise_message(channel, event.external_id, deleted=True)
    elif event.kind == "read":
        _read_up_to(account, channel, event.sender, event.read_up_to)
    elif event.kind == "message":
        if tickets.find_message(channel, event.external_id) is not None:
            return  # delivered before: its media were fetched then
        files, notes = _fetch_all(account, platform, event, last_try)
        name = event.name or _asked_name(account, platform, channel, event.sender)
        text = "\n".join(filter(None, [event.text, *notes]))
        thread_to, continue_open = accounts.threading_for(account, channel, event.sender)
        tickets.receive_message(
            channel=channel, identity=tickets.Identity(channel, event.sender, name=name),
            text=text, external_id=event.external_id, thread_to=thread_to,
            continue_open=continue_open, category=account.category, attachments=files,
            raw=RawOriginal(body, "application/json"))


def _asked_name(account: SocialAccount, platform: Platform, channel: str, sender: str) -> str:
    """A new contact's name from the platform (Messenger's profile API); "" when it will not
    say. A contact we know keeps the name it has, and is not asked about again."""
    if contacts.find_contact(channel, sender) is not None:
        return ""
    try:
        return platform.sender_name(account, sender)
    except DeliveryError as exc:
        log.info("social: no name for %s sender %s: %s", channel, sender, exc)
        return ""


def _read_up_to(account: SocialAccount, channel: str, sender: str,
                watermark: dt.datetime | None) -> None:
    """A read watermark: our messages to ``sender`` from this account, sent (or delivered)
    no later than ``watermark``, were read."""
    if watermark is None:
        return
    read = (Message.select(Message.id)
            .where((Message.channel == channel) & (Message.recipient == sender)
                   & Message.delivery_state.in_((Delivery.SENT, Delivery.DELIVERED))
                   & (Message.delivery_updated_at <= watermark)
                   & Message.external_id.startswith(f"{account.id}:"))
            .order_by(Message.id).limit(500))
    for message in read:
        tickets.record_delivery(message.id, Delivery.READ)


def _fetch_all(account: SocialAccount, platform: Platform, event: Event,
               last_try: bool) -> tuple[list[StoredFile], list[str]]:
    """The event's files, stored; a file that cannot be had leaves a note in the text."""
    config = loket().config
    max_bytes = config["upload_max_bytes"]
    storage = Storage(config["attachments_path"])
    files, notes = [], []
    for media in event.media:
        what = media.filename or media.kind
        try:
            fetched = platform.fetch_media(account, media, max_bytes)
            files.append(storage.save_bytes(
                fetched.data, fetched.filename or media.kind, max_bytes=max_bytes,
                allowed_types=settings()["media_types"]))
        except TooLarge:
            notes.append("[" + _("%(file)s not stored: larger than %(size)s MB", file=what,
                                 size=max_bytes // (1024 * 1024)) + "]")
        except AttachmentRejected as exc:
            notes.append("[" + _("%(file)s not stored: %(reason)s", file=what,
                                 reason=str(exc)) + "]")
        except DeliveryError as exc:
            if not exc.permanent and not last_try:
                raise _Later(f"{what}: {exc}") from None
            notes.append("[" + _("%(file)s could not be fetched: %(reason)s", file=what,
                                 reason=str(exc)) + "]")
    return files, notes


def prune(days: int) -> int:
    """Delete done updates older than ``days`` (each message keeps its raw original)."""
    if not days:
        return 0
    cutoff = utcnow() - dt.timedelta(days=days)
    return (SocialInbox.delete()
            .where((SocialInbox.state == InboxState.DONE) & (SocialInbox.processed_at < cutoff))
            .execute())
