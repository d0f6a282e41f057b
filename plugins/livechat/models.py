"""Live chat's own tables: each chat's state beside its ticket, and the agents' availability."""

from __future__ import annotations

import peewee as pw

from core.models import Department, Staff, Ticket, utcnow


class ChatState:
    BOT = "bot"  # the assistant is answering
    WAITING = "waiting"  # handed over, waiting for an agent to accept
    ACTIVE = "active"  # an agent accepted it
    OFFLINE = "offline"  # nobody was available: it continues as a ticket
    CLOSED = "closed"
    OPEN = (BOT, WAITING, ACTIVE)


class _LivechatModel(pw.Model):
    class Meta:
        # The desk's database (a proxy bound when the app is built), as core's models use.
        database = Ticket._meta.database


class Chat(_LivechatModel):
    """One live chat: its ticket (the transcript), its visitor, and where it stands."""

    ticket = pw.ForeignKeyField(Ticket, unique=True, on_delete="CASCADE")
    visitor = pw.CharField(max_length=64, index=True)
    state = pw.CharField(max_length=16, default=ChatState.BOT, index=True)
    language = pw.CharField(max_length=8, default="en")
    department = pw.ForeignKeyField(Department, null=True, on_delete="SET NULL")
    agent = pw.ForeignKeyField(Staff, null=True, on_delete="SET NULL")
    offered_to = pw.ForeignKeyField(Staff, null=True, on_delete="SET NULL",
                                    column_name="offered_to_id")
    bot_step = pw.CharField(max_length=16, default="ask")
    unhelpful = pw.IntegerField(default=0)
    bot_resolved = pw.BooleanField(default=False)
    handed_over_at = pw.DateTimeField(null=True)
    handover_reason = pw.CharField(max_length=32, default="")
    accepted_at = pw.DateTimeField(null=True)
    first_human_reply_at = pw.DateTimeField(null=True)
    closed_at = pw.DateTimeField(null=True)
    visitor_typing_at = pw.DateTimeField(null=True)
    # The visitor has the widget open until then (the chat process renews it while a
    # socket is open and ends it when the last one closes): an agent's reply after it
    # also goes by email.
    present_until = pw.DateTimeField(null=True)
    agent_read_id = pw.IntegerField(default=0)  # agents have read the visitor's messages to it
    agent_typing_at = pw.DateTimeField(null=True)
    # When an agent last typed or read here: the chat process without Redis looks for these.
    agent_event_at = pw.DateTimeField(null=True, index=True)
    rating = pw.IntegerField(null=True)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "livechat_chat"


class AgentPresence(_LivechatModel):
    """Whether an agent takes chats now, how many at once, and when they were last offered one."""

    staff = pw.ForeignKeyField(Staff, unique=True, on_delete="CASCADE")
    available = pw.BooleanField(default=False)
    max_chats = pw.IntegerField(default=0)  # 0: the desk's default
    last_offered_at = pw.DateTimeField(null=True)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "livechat_agent"


MODELS = [Chat, AgentPresence]
