"""Live chat: the embeddable widget over WebSocket, the bot's first answer, agents taking over.

Every chat is a ticket on the ``livechat`` channel whose thread is the
transcript. The sockets are served by a separate asyncio process (``loket
chat``, started by ``loket serve``; see ``server.py``); an agent's reply goes
out through the outbox like any channel's, and ``deliver_message`` hands it to
the visitor's socket (through Redis when ``LOKET_REDIS_URL`` is set; else the
chat process finds it in the database). The channel is live
(``core.hookspecs.LiveChannelSpec``): while the visitor has no socket open, core
also sends an agent's reply to their email address.
"""

from __future__ import annotations

import re
from typing import Any

from core import hookimpl
from core.hookspecs import (
    ChannelSpec,
    ContactOption,
    DeliveryError,
    DeliveryResult,
    LiveChannelSpec,
)
from core.i18n import _, _l
from core.models import AuthorKind, Delivery, IdentityKind
from core.settings import Setting, as_bool, as_int, as_list, as_seconds, as_str

PLUGIN = "livechat"
CHANNEL = "livechat"


def _bind(value: Any) -> str:
    text = as_str(value).strip()
    if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}", text):
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return text


def _hours(value: Any) -> str:
    from .hours import parse_hours

    text = as_str(value).strip()
    parse_hours(text)  # ValueError names what is wrong
    return text


def _url(value: Any) -> str:
    text = as_str(value).strip().rstrip("/")
    if text and not re.fullmatch(r"(https?|wss?)://[^\s/]+(/\S*)?", text):
        raise ValueError(f"expected a http(s):// or ws(s):// address, got {value!r}")
    return text


@hookimpl
def plugin_settings() -> list[Setting]:
    return [
        Setting("show_button", True, as_bool, "Show the chat entry on the help center."),
        Setting("bind", "127.0.0.1:8765", _bind,
                "Where `loket chat` (started by `loket serve`) listens for WebSockets."),
        Setting("socket_url", "", _url,
                "The ws(s):// address browsers connect to (behind a proxy: wss://desk/chat/ws); "
                "empty: the public URL's host on the bind port."),
        Setting("allowed_origins", [], as_list,
                "Web sites (https://shop.example) that may embed the widget; the desk's own "
                "public URL always may."),
        Setting("max_message", 2000, as_int, "The longest chat message, in characters."),
        Setting("rate_per_minute", 30, as_int, "Messages one connection may send per minute."),
        Setting("address_rate_per_minute", 120, as_int,
                "Messages one IP address may send per minute, over all its connections."),
        Setting("connections_per_address", 20, as_int,
                "Sockets one IP address may hold open at once."),
        Setting("idle_seconds", 1800.0, as_seconds,
                "A socket with no activity from the visitor this long is closed."),
        Setting("files_per_chat", 20, as_int,
                "Files a visitor may send in one chat (each within the desk's upload limits)."),
        Setting("max_chats_per_agent", 3, as_int,
                "Chats an agent takes at once (each agent may set their own)."),
        Setting("hours", "", _hours,
                "Chat hours in the desk's time zone (LOKET_TIMEZONE), per weekday: "
                "'mon-fri 08:00-17:00; sat 09:00-12:00' (a day not named has none; "
                "HH:MM-HH:MM alone: every day). Empty: always."),
        Setting("department", "", as_str,
                "The department (its slug) chats go to when routing gives them none; its "
                "agents are offered them. Empty: any available agent, and admins."),
        Setting("poll_seconds", 0.25, as_seconds,
                "Without Redis: how often the chat process looks for agents' replies."),
        Setting("redis_channel", "loket-livechat", as_str,
                "The Redis pub/sub channel chat processes share (with LOKET_REDIS_URL)."),
        Setting("db_threads", 8, as_int, "Threads the chat process talks to the database with."),
        Setting("llm_url", "", _url,
                "An OpenAI-compatible server (http://127.0.0.1:11434 for Ollama); empty: "
                "the bot lists articles without a model."),
        Setting("llm_model", "", as_str, "The model's name on that server."),
        Setting("llm_key", "", as_str, "The server's API key, if it needs one.", secret=True),
        Setting("llm_timeout", 8.0, as_seconds,
                "Seconds to wait for the model before listing the articles instead."),
    ]


@hookimpl
def register_models() -> list[type]:
    from .models import MODELS

    return MODELS


@hookimpl
def register_channels() -> list[ChannelSpec]:
    from .desk import visitor_present

    # Live: while the visitor has no socket open, core also sends an agent's reply by email.
    return [LiveChannelSpec(CHANNEL, _l("Live chat"), can_push=True, attachments=True,
                            max_text=2000, identity_kind=IdentityKind.CHAT, order=15,
                            reachable=visitor_present)]


@hookimpl
def register_blueprints(app: Any) -> list[Any]:
    from core.limits import KB, count_as_ticket_opening, register_body_limit

    from .views import bp

    # One file and its form; uploads count like ticket openings (each may open a chat).
    register_body_limit("livechat.upload", lambda cfg: cfg["upload_max_bytes"] + 64 * KB)
    count_as_ticket_opening("livechat.upload")
    return [bp]


@hookimpl
def register_commands() -> list[Any]:
    from .cli import chat

    return [chat]


@hookimpl
def register_admin_views(admin: Any) -> list[Any]:
    from .admin import LiveChatView

    return [LiveChatView(name="Live chat", endpoint="livechat_console", category=None)]


@hookimpl
def deliver_message(ticket: Any, message: Any, recipient: str,
                    idempotency_key: str) -> DeliveryResult:
    """The message is committed; the visitor's socket gets it through the event path.

    With Redis, a publish reaches whichever chat process holds the visitor's
    socket; without, the chat process finds it in the database. A visitor who
    is away gets it when the widget reconnects (it resumes from the last
    message it saw), so "sent" here means "on its way to the widget"; the
    widget's receipts then move it to delivered and read.
    """
    from . import bus, desk

    files = desk.files_of([message.id]).get(message.id)  # an agent's files: links
    if not bus.publish(recipient, desk.message_event(message, recipient, files=files)):
        # Stored, but no chat process heard of it: the outbox tries again later.
        raise DeliveryError("Redis did not take the chat event; trying again")
    return DeliveryResult(state=Delivery.SENT, external_id=f"out:{message.id}")


@hookimpl
def message_added(ticket: Any, message: Any) -> None:
    """An agent wrote in a chat: from now on the bot is silent, and the wait is measured."""
    if ticket.channel != CHANNEL or message.author_kind != AuthorKind.STAFF or message.is_internal:
        return
    from .models import Chat, ChatState

    chat = Chat.get_or_none(Chat.ticket == ticket.id)
    if chat is None:
        return
    if chat.first_human_reply_at is None:
        chat.first_human_reply_at = message.created_at
    if chat.state in (ChatState.BOT, ChatState.WAITING, ChatState.OFFLINE):
        chat.state = ChatState.ACTIVE
        chat.agent = message.staff_id
        chat.handed_over_at = chat.handed_over_at or message.created_at
        chat.handover_reason = chat.handover_reason or "agent"
    chat.save()


@hookimpl
def contact_channels(user_type: Any, category: Any, language: str) -> list[ContactOption]:
    from flask import url_for

    from core.state import loket

    if not loket().config.plugin(PLUGIN)["show_button"]:
        return []
    args = {}
    if user_type is not None:
        args["user_type"] = user_type.slug
    if category is not None:
        args["category"] = category.slug
    return [ContactOption(kind="chat", label=_("Chat with us"),
                          url=url_for("livechat.start", **args), order=10)]
