"""Live chat: the help center's chat entry, which falls back to a ticket while no agent is online.

The WebSocket widget, the bot and the agent console come in a later issue; until
then nobody is ever online, so the chat page offers the ticket form straight
away (the same offline fallback the full chat will use).
"""

from __future__ import annotations

from typing import Any

from core import hookimpl
from core.hookspecs import ContactOption
from core.i18n import _
from core.settings import Setting, as_bool

PLUGIN = "livechat"


@hookimpl
def plugin_settings() -> list[Setting]:
    return [Setting("show_button", True, as_bool,
                    "Show the chat entry on the help center.")]


@hookimpl
def register_blueprints(app: Any) -> list[Any]:
    from .views import bp

    return [bp]


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
