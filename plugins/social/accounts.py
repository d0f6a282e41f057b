"""Finding accounts: by webhook slug, by the ticket a reply goes to; their webhook URLs."""

from __future__ import annotations

import time
from typing import Any

import peewee as pw

from core.models import Message, Status, Ticket
from core.services import contacts
from core.state import loket

from .models import SocialAccount


def webhook_url(account: SocialAccount) -> str:
    return f"{loket().config['public_url']}/social/{account.platform}/{account.slug}"


# Webhooks hit the same few accounts thousands of times a second: each process keeps what it
# read for a few seconds (a disabled account or a new secret takes effect within that).
CACHE_SECONDS = 5.0
_cache: dict[tuple[str, str], tuple[float, SocialAccount | None]] = {}


def by_slug(platform: str, slug: str) -> SocialAccount | None:
    """The enabled account whose webhook this is, or None."""
    key = (platform, slug)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    account = (SocialAccount.select()
               .where((SocialAccount.slug == slug) & (SocialAccount.platform == platform)
                      & SocialAccount.enabled)
               .first())
    if len(_cache) > 1000:
        _cache.clear()  # slugs are guessed at random by scanners: keep it small
    _cache[key] = (now + CACHE_SECONDS, account)
    return account


def forget() -> None:
    """Drop what this process remembers of accounts (after a change in this process)."""
    _cache.clear()


def id_of(external_id: str | None) -> int | None:
    """The account id every external id of this plugin starts with (``<account>:...``)."""
    head = (external_id or "").split(":", 1)[0]
    return int(head) if head.isdigit() else None


def for_ticket(ticket: Ticket, platform: str) -> SocialAccount | None:
    """The account the customer wrote to on this ticket (their latest message says which)."""
    latest = (Message.select(Message.external_id)
              .where((Message.ticket == ticket) & (Message.channel == platform)
                     & Message.external_id.is_null(False))
              .order_by(Message.id.desc()).first())
    account_id = id_of(latest.external_id if latest else None)
    if account_id is not None:
        account = SocialAccount.get_or_none(SocialAccount.id == account_id)
        if account is not None and account.enabled:
            return account
    return (SocialAccount.select()
            .where((SocialAccount.platform == platform) & SocialAccount.enabled)
            .order_by(SocialAccount.id).first())


def threading_for(account: SocialAccount, channel: str,
                  sender: str) -> tuple[Ticket | None, bool]:
    """``(thread_to, continue_open)`` for a customer's new message to ``account``.

    Core's ``continue_open`` looks per channel, and two bots or two numbers of one platform
    are one channel: a message to one must not join a conversation held on the other. So
    the customer's latest unfinished ticket that came in through this account is named
    outright. With no unfinished ticket on the channel at all, core's own look-up is used,
    because it runs again inside the write: two first messages that race make one ticket.
    With an unfinished ticket only on another account, a new ticket opens.
    """
    contact = contacts.find_contact(channel, sender)
    if contact is None:
        return None, True
    unfinished = (Ticket.select()
                  .where((Ticket.contact == contact) & (Ticket.channel == channel)
                         & Ticket.status.in_(Status.ACTIVE + (Status.RESOLVED,)))
                  .order_by(Ticket.updated_at.desc()))
    through_account = Message.select(Message.id).where(
        (Message.ticket == Ticket.id) & (Message.channel == channel)
        & Message.external_id.startswith(f"{account.id}:"))
    mine = unfinished.where(pw.fn.EXISTS(through_account)).first()
    if mine is not None:
        return mine, False
    return None, unfinished.first() is None


def named(name_or_id: str) -> SocialAccount | None:
    query = SocialAccount.name == name_or_id
    if name_or_id.isdigit():
        query = query | (SocialAccount.id == int(name_or_id))
    return SocialAccount.select().where(query).first()


def describe(account: SocialAccount) -> dict[str, Any]:
    return {"id": account.id, "name": account.name, "platform": account.platform,
            "enabled": account.enabled, "webhook_url": webhook_url(account)}
