"""Mail out: agent replies and notifications over SMTP, from the outbox's jobs."""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

from core.attachments import Storage
from core.hookspecs import DeliveryError, DeliveryResult
from core.i18n import _, force_locale, language_of
from core.models import Attachment, AuthorKind, Message

SECURITY = ("none", "starttls", "ssl")


def message_id(idempotency_key: str, sender: str) -> str:
    """The same outbox entry always gets the same Message-ID, so a resend is recognisably one."""
    domain = sender.rpartition("@")[2] or "loket.invalid"
    return f"<{idempotency_key}@{domain}>"


def _one_line(text: str) -> str:
    """Header text: a subject from the API or a mail may hold line breaks; a header may not."""
    return " ".join((text or "").split())


def _html(text: str) -> str:
    """The text as HTML (escaped, line breaks kept) for mail programs that prefer it."""
    escaped = html.escape(text).replace("\r\n", "\n").replace("\n", "<br>\n")
    return ('<!doctype html><html><body><div style="font-family: sans-serif; '
            f'line-height: 1.5">{escaped}</div></body></html>')


def build(settings: dict[str, Any], ticket: Any, message: Message, recipient: str,
          idempotency_key: str, tracking_url: str, storage: Storage | None = None,
          copies: list[str] | tuple[str, ...] = ()) -> EmailMessage:
    sender = settings["address"]
    mail = EmailMessage()
    mail["From"] = formataddr((_one_line(settings["from_name"]), sender))
    mail["To"] = recipient
    copies = [c for c in copies if c.strip() and c.strip().lower() != recipient.lower()]
    if copies:
        # Stored as single addresses, chosen among the ticket's participants; joined here.
        mail["Cc"] = ", ".join(_one_line(c) for c in copies)
    # Written in the ticket's language, whoever sends it (a relay thread has no request).
    with force_locale(language_of(ticket.language)):
        subject = message.subject or _("[#%(number)s] Re: %(subject)s", number=ticket.id,
                                       subject=ticket.subject)
        footer = _("Ticket #%(number)s: %(link)s", number=ticket.id, link=tracking_url)
    mail["Subject"] = _one_line(subject)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = message_id(idempotency_key, sender)
    # Routes the customer's answer to this ticket whatever their mail program keeps.
    from .ingest import reply_address

    mail["Reply-To"] = reply_address(ticket.id, sender)
    # Threads in the customer's mail program: the last mail they sent us on this ticket.
    earlier = (Message.select(Message.external_id)
               .where((Message.ticket == ticket.id) & (Message.channel == "email")
                      & (Message.author_kind == AuthorKind.CONTACT)
                      & Message.external_id.is_null(False))
               .order_by(Message.id.desc()).first())
    # A forward to someone outside the desk (an internal message) is no reply to the customer.
    if earlier is not None and earlier.external_id.startswith("<") and not message.is_internal:
        mail["In-Reply-To"] = earlier.external_id
        mail["References"] = earlier.external_id
    if message.notification:
        # RFC 3834: automatic mail says so, so that auto-responders do not answer it.
        mail["Auto-Submitted"] = "auto-generated"
        mail["X-Auto-Response-Suppress"] = "All"
    mail["X-Loket-Ticket"] = str(ticket.id)
    body = message.body_text
    # The tracking link is the customer's key: never in a forward to a third party, nor
    # in a reply copied to others (they get the number, and answer by the reply address).
    if copies:
        with force_locale(language_of(ticket.language)):
            footer = _("Ticket #%(number)s", number=ticket.id)
    if not message.notification and not message.is_internal and tracking_url not in body:
        body = f"{body}\n\n--\n{footer}"
    mail.set_content(body)
    mail.add_alternative(_html(body), subtype="html")
    # The agent's files go with the reply, as they were stored (type sniffed on upload).
    if storage is not None:
        for row in Attachment.select().where(Attachment.message == message.id):
            with storage.open(row.sha256) as fh:
                data = fh.read()
            maintype, _slash, subtype = (row.content_type or "application/octet-stream").partition("/")
            mail.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream",
                                filename=row.filename)
    return mail


def send(settings: dict[str, Any], mail: EmailMessage) -> None:
    """Hand one mail to the SMTP server; a refusal the server calls permanent is permanent."""
    host, port = settings["smtp_host"], settings["smtp_port"]
    security, timeout = settings["smtp_security"], settings["smtp_timeout"]
    try:
        if security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=timeout,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port or 587, timeout=timeout)
        with client:
            if security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings["smtp_user"]:
                client.login(settings["smtp_user"], settings["smtp_password"])
            client.send_message(mail)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        reason = "; ".join(f"{addr}: {code} {text.decode(errors='replace')}"
                           for addr, (code, text) in exc.recipients.items())
        raise DeliveryError(f"recipient refused: {reason}",
                            permanent=all(code >= 500 for code in codes)) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        raise DeliveryError(f"SMTP {exc.smtp_code}: {text}",
                            permanent=exc.smtp_code >= 500
                            and not isinstance(exc, smtplib.SMTPAuthenticationError)) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP server {host}:{port}: {exc}") from None


def deliver(settings: dict[str, Any], ticket: Any, message: Message, recipient: str,
            idempotency_key: str, tracking_url: str, storage: Storage,
            copies: list[str] | tuple[str, ...] = ()) -> DeliveryResult:
    from .mailboxes import sending_identity

    # A ticket that came in through a mailbox is answered as that mailbox (billing as billing).
    identity = sending_identity(ticket.id, settings)
    settings = {**settings, "from_name": identity.from_name, "address": identity.address,
                **identity.smtp}
    mail = build(settings, ticket, message, recipient, idempotency_key, tracking_url, storage,
                 copies=copies)
    send(settings, mail)
    return DeliveryResult(state="sent", external_id=mail["Message-ID"])


__all__ = ["SECURITY", "build", "deliver", "message_id", "send"]
