"""The social plugin's tables: channel accounts (with encrypted secrets) and the webhook inbox."""

from __future__ import annotations

import datetime as dt
import secrets

import peewee as pw

from core.models import BaseModel, Category, Department, Message, utcnow


def new_slug() -> str:
    """The account's part of its webhook URL: random, so nobody can guess where to post."""
    return secrets.token_urlsafe(18)


class SocialAccount(BaseModel):
    """One bot, WhatsApp number or page the desk answers on.

    ``handle`` is public (the bot's user name, the number, the page name: the
    help center's link); ``external_id`` is the platform's id for it (the
    WhatsApp phone number id, the page id). Secrets (tokens, app secret,
    verify token, Telegram's webhook secret) live encrypted in ``secrets``
    (see ``plugins.social.vault``) and are never shown back.
    """

    platform = pw.CharField(max_length=32)
    name = pw.CharField(max_length=100, unique=True)
    slug = pw.CharField(max_length=64, unique=True, default=new_slug)
    handle = pw.CharField(max_length=100, default="")
    external_id = pw.CharField(max_length=100, default="")
    secrets = pw.TextField(default="")
    enabled = pw.BooleanField(default=True)
    category = pw.ForeignKeyField(Category, null=True, on_delete="SET NULL")
    department = pw.ForeignKeyField(Department, null=True, on_delete="SET NULL")
    # WhatsApp: the approved template sent instead of free text outside the 24-hour window.
    template_name = pw.CharField(max_length=100, default="")
    template_language = pw.CharField(max_length=20, default="en")
    # The ticket values that fill the template's body variables {{1}}, {{2}}, ... in order,
    # comma-separated (see ``templates.VALUES``); empty: a template without variables.
    template_parameters = pw.CharField(max_length=200, default="")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "social_account"

    def __str__(self) -> str:
        return f"{self.name} ({self.platform})"


class InboxState:
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class SocialInbox(BaseModel):
    """A verified webhook body, stored before it is acknowledged; the worker turns it into
    messages. The row is the truth: a worker that dies mid-way leaves it claimed, and once
    the claim runs out another takes it (media fetching included)."""

    account = pw.ForeignKeyField(SocialAccount, on_delete="CASCADE")
    # The platform's delivery key (Telegram's update_id; a digest of a Meta body): the same
    # delivery twice is one row.
    update_key = pw.CharField(max_length=100)
    body = pw.BlobField()
    state = pw.CharField(max_length=16, default=InboxState.PENDING)
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.DateTimeField(null=True)
    claimed_until = pw.DateTimeField(null=True)
    error = pw.TextField(default="")
    received_at = pw.DateTimeField(default=utcnow)
    processed_at = pw.DateTimeField(null=True)

    class Meta:
        table_name = "social_inbox"
        indexes = (
            (("account", "update_key"), True),
            (("state", "next_attempt_at"), False),
        )


def due(now: dt.datetime, limit: int) -> list[int]:
    """Inbox rows nobody holds that are due: new ones, retries, expired claims."""
    query = (SocialInbox.select(SocialInbox.id)
             .where((SocialInbox.state == InboxState.PENDING)
                    & (SocialInbox.next_attempt_at.is_null()
                       | (SocialInbox.next_attempt_at <= now))
                    & (SocialInbox.claimed_until.is_null() | (SocialInbox.claimed_until < now)))
             .order_by(SocialInbox.id).limit(limit))
    return [row.id for row in query]


class SendState:
    IN_FLIGHT = "in_flight"
    SENT = "sent"


class SocialSend(BaseModel):
    """The send ledger: one row per part of an outbound message, committed before the
    platform is called.

    The platforms take no idempotency key, so a worker that dies between the platform's
    answer and the outbox's record would otherwise send the part again when its claim runs
    out. A row still ``in_flight`` when the message comes round again means the outcome is
    unknown: the message fails saying so, and only an agent's Retry (``retries`` counts
    them) sends it again. ``sent`` parts are never sent twice.
    """

    message = pw.ForeignKeyField(Message, on_delete="CASCADE")
    part = pw.IntegerField()
    retries = pw.IntegerField(default=0)  # the agent's Retry presses it was sent under
    state = pw.CharField(max_length=16)
    external_id = pw.CharField(max_length=255, default="")
    started_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "social_send"
        indexes = ((("message", "part"), True),)
