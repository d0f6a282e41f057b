"""Email channel: the support address on the help center, mail in and mail out.

Mail comes in through IMAP mailboxes (read by ``loket worker``, set up in the console),
the MTA pipe (``loket email ingest``) and the HTTP endpoint (``POST /email/inbound``),
all through ``ingest.ingest_raw``; replies and notifications go out through the outbox
over SMTP, as the mailbox a ticket came in through.
"""

from __future__ import annotations

from typing import Any

from core import hookimpl
from core.attachments import Storage
from core.hookspecs import ChannelSpec, ContactOption, DeliveryResult
from core.i18n import _, _l
from core.models import IdentityKind
from core.settings import Setting, as_int, as_list, as_rate, as_seconds
from core.state import loket

PLUGIN = "email_intake"


def _address(value: object) -> str:
    text = str(value or "").strip()
    if text and ("@" not in text or " " in text or text.startswith("@") or text.endswith("@")):
        raise ValueError(f"expected an email address, got {text!r}")
    return text


def _text(value: object) -> str:
    return str(value or "").strip()


def _port(value: object) -> int:
    try:
        port = int(str(value))
    except ValueError:
        raise ValueError(f"expected a port number, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"expected a port number, got {value!r}")
    return port


def imap_settings() -> list[Setting]:
    from .imap import settings

    return settings()


def _security(value: object) -> str:
    from .outbound import SECURITY

    text = _text(value).lower()
    if text not in SECURITY:
        raise ValueError(f"expected one of {', '.join(SECURITY)}, got {value!r}")
    return text


@hookimpl
def plugin_settings() -> list[Setting]:
    return [
        Setting("address", "", _address,
                "The support address customers may write to; empty hides the option. "
                "Mail to customers is sent from it."),
        Setting("from_name", "Support", _text, "The name mail to customers is sent under."),
        Setting("smtp_host", "", _text,
                "SMTP server for mail to customers; empty: no mail is sent."),
        Setting("smtp_port", 0, _port, "SMTP port (0: 465 with ssl, else 587)."),
        Setting("smtp_security", "starttls", _security, "none, starttls or ssl."),
        Setting("smtp_user", "", _text, "SMTP user name; empty: no sign-in."),
        Setting("smtp_password", "", _text, "SMTP password.", secret=True),
        Setting("smtp_timeout", 20.0, as_seconds, "Seconds to wait for the SMTP server."),
        *_inbound_settings(),
        *imap_settings(),
    ]


# -- Mail in: the pipe, the HTTP endpoint, loops and the failed-mail list ----------------


def _inbound_settings() -> list[Setting]:
    return [
        Setting("inbound_token", "", _text,
                "Bearer token a mail provider sends to POST /email/inbound; empty: off.",
                secret=True),
        Setting("rate_limit_inbound", "600/minute;20000/hour", as_rate,
                "Mails one inbound token may post to /email/inbound (a provider posts from "
                "many addresses, so the token is what is counted); empty: no limit."),
        Setting("rate_limit_inbound_failures", "10/minute;50/hour", as_rate,
                "Posts to /email/inbound without the right token from one client address; "
                "once used up, that address is refused even with the right token."),
        Setting("max_message_bytes", 30 * 1024 * 1024, as_int,
                "Largest raw mail taken whole; a larger one keeps its text, not its files "
                "(the HTTP endpoint answers 413)."),
        Setting("own_addresses", [], as_list,
                "More addresses of this desk (besides the support address and mailboxes): "
                "mail from them is a loop and is not answered."),
        Setting("auto_mail_cap", 5, as_int,
                "Most automatic mails (acknowledgements, notices) to one address per window."),
        Setting("auto_mail_window", 3600.0, as_seconds,
                "The window of auto_mail_cap, in seconds."),
    ]


@hookimpl
def register_models() -> list[type]:
    from .failed import FailedMail
    from .mailboxes import Mailbox, MailboxArrival

    return [FailedMail, Mailbox, MailboxArrival]


@hookimpl
def register_blueprints(app: Any) -> list[Any]:
    from core.limits import register_body_limit

    from .inbound import bp

    # A raw mail with its attachments: up to max_message_bytes, not the default 1 MB.
    register_body_limit("email_intake.inbound",
                        lambda cfg: cfg.plugin(PLUGIN)["max_message_bytes"])
    return [bp]


@hookimpl
def register_commands() -> list[Any]:
    from .cli import email_group
    from .mailbox_cli import add_mailbox_commands

    add_mailbox_commands(email_group)  # `loket email mailboxes` and `loket email fetch`
    return [email_group]


@hookimpl
def register_admin_views(admin: Any) -> list[Any]:
    from .admin_views import MailboxView
    from .failed_admin import FailedMailView
    from .mailboxes import Mailbox

    return [MailboxView(Mailbox, name="Mailboxes", category="Set-up", endpoint="mailbox"),
            FailedMailView(name="Failed mail", endpoint="failed_mail", category="Email")]


@hookimpl
def notification_allowed(ticket: Any, key: str, channel: str, recipient: str) -> bool | None:
    """No automatic mail to our own addresses, to daemons, or past the per-address cap."""
    if channel != "email":
        return None
    from .loops import may_auto_mail

    return may_auto_mail(recipient, _settings(), getattr(ticket, "contact_id", None))


def _settings() -> dict[str, Any]:
    return loket().config.plugin(PLUGIN)


def sends_mail() -> bool:
    settings = _settings()
    return bool(settings["smtp_host"] and settings["address"])


@hookimpl
def app_ready() -> None:
    settings = _settings()
    if settings["smtp_host"] and not settings["address"]:
        raise ValueError("LOKET_EMAIL_INTAKE_SMTP_HOST is set but LOKET_EMAIL_INTAKE_ADDRESS "
                         "is empty: mail needs an address to come from")


@hookimpl
def register_channels() -> list[ChannelSpec]:
    # Without an SMTP server the channel still exists (mail-born tickets keep their
    # channel), but it cannot reach anyone: replies then wait on the tracking page.
    return [ChannelSpec("email", _l("Email"), can_push=sends_mail(), attachments=True,
                        identity_kind=IdentityKind.EMAIL, order=20)]


@hookimpl
def deliver_message(ticket: Any, message: Any, recipient: str, idempotency_key: str,
                    copies: list[str]) -> DeliveryResult:
    from core.services.tickets import tracking_url

    from .outbound import deliver

    return deliver(_settings(), ticket, message, recipient, idempotency_key,
                   tracking_url(ticket), Storage(loket().config["attachments_path"]),
                   copies=copies)


@hookimpl
def contact_channels(language: str) -> list[ContactOption]:
    address = loket().config.plugin(PLUGIN)["address"]
    if not address:
        return []
    return [ContactOption(kind="email", label=_("Email us"), url=f"mailto:{address}",
                          description=address, order=30)]


# -- Mailboxes read over IMAP (imap.py, mailboxes.py, admin_views.py, mailbox_cli.py) ----


@hookimpl
def register_jobs(jobs: Any) -> None:
    from .imap import RELAY, supervise

    # Every worker looks for enabled mailboxes every few seconds and reads each in a
    # thread of its own; a mailbox's lease lets only one worker read it at a time.
    jobs.relay(supervise, name=RELAY, threads=1, idle_seconds=5.0)
