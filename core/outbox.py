"""The outbox: what must reach a customer is committed first, then sent by a job.

The database is the truth, and no job queue stands between it and the send
(a queue may lose a job; huey hands each to a worker once). A message to send
is a row with ``delivery_state = queued``, committed with the change that
caused it; the request writes nothing else. Each ``loket worker`` runs relay
threads that poll for due rows (an indexed query, every
``outbox_poll_seconds`` while idle), claim each with one conditional UPDATE
(so two workers never send it at the same time), ask the channel's owner to
send it outside any transaction, and record the outcome through
``core.services.tickets.record_delivery``. Retries are rows with a later
``next_attempt_at``. A worker that died after the platform accepted a message
leaves it claimed; once the claim expires it is handed to the channel again
with the same idempotency key. A channel whose platform honours such a key
passes it on, so the customer gets it once; one whose platform has none (the
messengers) keeps its own record of what it began sending, and fails a send
whose outcome it cannot know ("outcome unknown", for an agent to retry)
rather than sending it twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

from . import db
from .hookspecs import DeliveryError
from .jobs import OUTBOX_RELAY
from .models import Delivery, Message, Ticket, utcnow
from .state import loket

log = logging.getLogger(__name__)

RELAY = OUTBOX_RELAY
MAX_BACKOFF = 3600


def copies_of(message: Message) -> list[str]:
    """The identities a queued message is copied to (an email's Cc), as stored with it."""
    return [line for line in (message.copy_to or "").splitlines() if line.strip()]


def _claim(message_id: int, now: dt.datetime) -> bool:
    lease = dt.timedelta(seconds=max(loket().config["outbox_lease_seconds"], 1))
    with db.write_transaction():
        claimed = (Message.update(claimed_until=now + lease,
                                  delivery_attempts=Message.delivery_attempts + 1)
                   .where((Message.id == message_id)
                          & (Message.delivery_state == Delivery.QUEUED)
                          & (Message.claimed_until.is_null() | (Message.claimed_until < now))
                          & (Message.next_attempt_at.is_null()
                             | (Message.next_attempt_at <= now)))
                   .execute())
    return claimed == 1


def send(message_id: int) -> str:
    """Send one queued message, if it is due and nobody else holds it. Returns what happened.

    Safe to run twice, or at once in two workers: only the worker whose claim
    succeeds sends.
    """
    from .services.tickets import record_delivery

    now = utcnow()
    if not _claim(message_id, now):
        return "not due"
    message = Message.get_by_id(message_id)
    ticket = Ticket.get_by_id(message.ticket_id)
    channels = loket().channels
    owner = channels.owner(message.channel)
    implementation = _deliverer(owner) if owner else None
    if implementation is None:
        reason = (f"No enabled plugin serves the {message.channel} channel any more; "
                  "enable it and retry, or answer on another channel.")
        record_delivery(message.id, Delivery.FAILED, error=reason)
        return "failed"
    try:
        result = implementation(ticket=ticket, message=message, recipient=message.recipient,
                                idempotency_key=message.delivery_key or f"loket-{message.id}",
                                copies=copies_of(message))
    except DeliveryError as exc:
        return _failed(message, str(exc) or type(exc).__name__, exc.permanent, exc.retry_after)
    except Exception as exc:  # a plugin's bug or a network error: try again later
        log.exception("channel %s failed to send message %s", message.channel, message.id)
        return _failed(message, f"{type(exc).__name__}: {exc}", False, None)
    if result is None:
        return _failed(message, f"the {message.channel} plugin did not say whether it sent "
                                "the message", False, None)
    state = result.state if result.state in (Delivery.SENT, Delivery.DELIVERED,
                                             Delivery.READ) else Delivery.SENT
    record_delivery(message.id, state, external_id=result.external_id, error=result.error)
    return state


def _deliverer(owner: str) -> Any:
    """The owner's ``deliver_message``: only the plugin that declared the channel is asked."""
    for impl in loket().pm.hook.deliver_message.get_hookimpls():
        if impl.plugin_name == owner:
            return functools.partial(_call_with_its_arguments, impl.function, impl.argnames)
    return None


def _call_with_its_arguments(function: Any, argnames: tuple[str, ...], **kwargs: Any) -> Any:
    return function(**{k: v for k, v in kwargs.items() if k in argnames})


def _failed(message: Message, reason: str, permanent: bool,
            retry_after: float | None) -> str:
    from .services.tickets import record_delivery

    config = loket().config
    attempts = Message.get_by_id(message.id).delivery_attempts
    if permanent or attempts >= max(config["outbox_max_attempts"], 1):
        record_delivery(message.id, Delivery.FAILED, error=reason)
        return "failed"
    delay = retry_after if retry_after is not None else min(
        config["outbox_retry_seconds"] * 2 ** (attempts - 1), MAX_BACKOFF)
    due = utcnow() + dt.timedelta(seconds=max(delay, 0))
    with db.write_transaction():
        (Message.update(claimed_until=None, next_attempt_at=due, delivery_error=reason[:2000],
                        delivery_updated_at=utcnow())
         .where(Message.id == message.id).execute())
    return "retry"


def due_messages(limit: int = 200, now: dt.datetime | None = None) -> list[int]:
    """Queued messages nobody holds that are due: new ones, retries, expired claims."""
    now = now or utcnow()
    query = (Message.select(Message.id)
             .where((Message.delivery_state == Delivery.QUEUED)
                    & (Message.next_attempt_at.is_null() | (Message.next_attempt_at <= now))
                    & (Message.claimed_until.is_null() | (Message.claimed_until < now)))
             .order_by(Message.id).limit(limit))
    return [row.id for row in query]


def sweep(limit: int = 200, shard: int = 0, shards: int = 1) -> dict[str, int]:
    """Send due queued messages; with ``shards`` > 1 only this shard's (relay threads split
    the work by message id, so they rarely race for the same claim)."""
    outcomes: dict[str, int] = {}
    for message_id in due_messages(limit):
        if message_id % shards != shard:
            continue
        try:
            outcome = send(message_id)
        except Exception:
            log.exception("outbox: message %s", message_id)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def relay(shard: int, shards: int) -> int:
    """One pass of a worker's relay thread: how many messages it handled (0: none was due)."""
    outcomes = sweep(shard=shard, shards=shards)
    return sum(count for outcome, count in outcomes.items() if outcome != "not due")
