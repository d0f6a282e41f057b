"""Telegram, WhatsApp and Messenger as support channels: signed webhooks in, replies out.

Each platform is an adapter module under ``platforms/``; accounts (bots,
numbers, pages) are rows with encrypted secrets; webhooks land in an inbox
table and a worker thread turns them into tickets (see ``inbox.py``).
"""

from __future__ import annotations

import re
from typing import Any

from core import hookimpl
from core.hookspecs import ChannelSpec, ContactOption, DeliveryResult, Routing
from core.i18n import _
from core.settings import Setting, as_int, as_list, as_seconds

PLUGIN = "social"

MEDIA_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf",
               "audio/ogg", "audio/mpeg", "audio/mp4", "audio/x-m4a", "video/mp4",
               "video/quicktime", "video/webm", "text/plain"]


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


def _api(default: str) -> Any:
    def parse(value: object) -> str:
        from core.settings import as_http_url

        return as_http_url(value or default)

    return parse


@hookimpl
def plugin_settings() -> list[Setting]:
    from .vault import check_key

    return [
        Setting("telegram_bot", "", _handle,
                "A Telegram bot's user name for the help center, when no account is set up."),
        Setting("whatsapp_number", "", _phone,
                "A WhatsApp number for the help center, when no account is set up."),
        Setting("messenger_page", "", _handle,
                "A Facebook page name for the help center, when no account is set up."),
        Setting("secrets_key", "", check_key,
                "Fernet key that encrypts account secrets; empty: derived from the secret key.",
                secret=True),
        Setting("telegram_api_url", "https://api.telegram.org",
                _api("https://api.telegram.org"),
                "Telegram Bot API base URL (a self-hosted Bot API server, or a test stand-in)."),
        Setting("whatsapp_api_url", "https://graph.facebook.com/v21.0",
                _api("https://graph.facebook.com/v21.0"), "WhatsApp Cloud API (Graph) base URL."),
        Setting("messenger_api_url", "https://graph.facebook.com/v21.0",
                _api("https://graph.facebook.com/v21.0"), "Messenger Send API (Graph) base URL."),
        Setting("max_body_bytes", 256 * 1024, as_int, "Largest webhook body accepted, in bytes."),
        Setting("media_types", MEDIA_TYPES, as_list,
                "File types kept from customers' messages (judged by content)."),
        Setting("media_attempts", 5, as_int,
                "Tries to fetch a customer's media before the message is stored with a note."),
        Setting("media_retry_seconds", 30, as_seconds,
                "First wait before fetching media again; doubles after each failure."),
        Setting("inbox_poll_seconds", 0.5, as_seconds,
                "How often an idle worker looks for new webhook updates."),
        Setting("inbox_keep_days", 7, as_int,
                "Days a handled webhook update stays in the inbox (0: for ever)."),
    ]


@hookimpl
def register_models() -> list[type]:
    from .models import SocialAccount, SocialInbox, SocialSend

    return [SocialAccount, SocialInbox, SocialSend]


@hookimpl
def register_channels() -> list[ChannelSpec]:
    from . import platforms

    return [platform.channel() for platform in platforms.all_platforms()]


@hookimpl
def register_blueprints(app: Any) -> list[Any]:
    from .views import bp

    return [bp]


@hookimpl
def register_jobs(jobs: Any) -> None:
    from core.jobs import crontab
    from core.state import loket

    from . import inbox

    settings = loket().config.plugin(PLUGIN)
    jobs.relay(inbox.relay, name=inbox.RELAY, idle_seconds=settings["inbox_poll_seconds"])

    @jobs.periodic(crontab(minute="41", hour="4"), name="social.prune_inbox")
    def prune_inbox() -> int:
        """Forget webhook updates handled long ago; failed ones stay for an admin to read."""
        return inbox.prune(loket().config.plugin(PLUGIN)["inbox_keep_days"])


@hookimpl
def register_admin_views(admin: Any) -> list[Any]:
    from .admin import views

    return views()


@hookimpl
def register_commands() -> list[Any]:
    from .cli import social

    return [social]


@hookimpl
def deliver_message(ticket: Any, message: Any, recipient: str,
                    idempotency_key: str) -> DeliveryResult:
    from .delivery import deliver

    return deliver(ticket, message, recipient, idempotency_key)


@hookimpl
def route_ticket(ticket: Any, message: Any) -> Routing | None:
    """A new ticket from an account with a default department goes there."""
    from . import accounts, platforms
    from .models import SocialAccount

    if message is None or platforms.get(ticket.channel) is None:
        return None
    account_id = accounts.id_of(message.external_id)
    account = SocialAccount.get_or_none(SocialAccount.id == account_id) if account_id else None
    if account is None or account.department_id is None:
        return None
    return Routing(department=account.department, reason=f"social account {account.name}")


def _labels() -> dict[str, str]:
    return {"telegram": _("Message us on Telegram"), "whatsapp": _("Message us on WhatsApp"),
            "messenger": _("Message us on Messenger")}


@hookimpl
def contact_channels(language: str) -> list[ContactOption]:
    from core.state import loket

    from . import platforms
    from .models import SocialAccount

    labels = _labels()
    options = []
    for account in (SocialAccount.select().where(SocialAccount.enabled & (SocialAccount.handle != ""))
                    .order_by(SocialAccount.id)):
        platform = platforms.get(account.platform)
        if platform is not None:
            options.append(ContactOption(
                kind=platform.name, label=labels.get(platform.name, platform.label),
                url=platform.link(account), order=40 + platforms.names().index(platform.name)))
    # The settings' links, for a desk that shows links without answering on the platform.
    settings = loket().config.plugin(PLUGIN)
    shown = {option.kind for option in options}
    fallback = {"telegram": f"https://t.me/{settings['telegram_bot']}",
                "whatsapp": f"https://wa.me/{settings['whatsapp_number']}",
                "messenger": f"https://m.me/{settings['messenger_page']}"}
    for order, (kind, key) in enumerate((("telegram", "telegram_bot"),
                                         ("whatsapp", "whatsapp_number"),
                                         ("messenger", "messenger_page"))):
        if settings[key] and kind not in shown:
            options.append(ContactOption(kind=kind, label=labels[kind], url=fallback[kind],
                                         order=40 + order))
    return options
