"""Messenger channels (Telegram, WhatsApp, Messenger): links now; webhooks and replies come next."""

from __future__ import annotations

import re

from core import hookimpl
from core.hookspecs import ContactOption
from core.i18n import _
from core.settings import Setting

PLUGIN = "social"


def _handle(value: object) -> str:
    text = str(value or "").strip().lstrip("@")
    if text and not re.fullmatch(r"[A-Za-z0-9_.]{3,64}", text):
        raise ValueError(f"expected a user name of letters, digits, _ or ., got {value!r}")
    return text


def _phone(value: object) -> str:
    text = str(value or "").strip()
    digits = re.sub(r"[\s()+-]", "", text)
    if digits and not re.fullmatch(r"\d{7,15}", digits):
        raise ValueError(f"expected an international phone number, got {value!r}")
    return digits


@hookimpl
def plugin_settings() -> list[Setting]:
    return [
        Setting("telegram_bot", "", _handle, "The Telegram bot's user name (without @)."),
        Setting("whatsapp_number", "", _phone, "The WhatsApp business number, with country code."),
        Setting("messenger_page", "", _handle, "The Facebook page name for Messenger."),
    ]


@hookimpl
def contact_channels(language: str) -> list[ContactOption]:
    from core.state import loket

    settings = loket().config.plugin(PLUGIN)
    options = []
    if settings["telegram_bot"]:
        options.append(ContactOption(kind="telegram", label=_("Message us on Telegram"),
                                     url=f"https://t.me/{settings['telegram_bot']}", order=40))
    if settings["whatsapp_number"]:
        options.append(ContactOption(kind="whatsapp", label=_("Message us on WhatsApp"),
                                     url=f"https://wa.me/{settings['whatsapp_number']}", order=41))
    if settings["messenger_page"]:
        options.append(ContactOption(kind="messenger", label=_("Message us on Messenger"),
                                     url=f"https://m.me/{settings['messenger_page']}", order=42))
    return options
