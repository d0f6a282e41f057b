"""What the desk tells a customer unprompted, in their language, and which channel carries it.

A notification is a message on the ticket (``Message.notification`` names its
template) that goes out through the outbox like an agent's reply. It is written
in the ticket's language (the language its contact wrote in), whoever or
whatever causes it: a web request in another language, an agent in the
console, a job. Core's own wording is below in English and in the catalogues
in every other language; an admin may reword any of them per language in the
console (``NotificationTemplate``). The fallbacks, in order: the admin's text
in the customer's language, core's text in that language, the admin's text in
the desk's default language, core's English.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from .channels import reachable_now
from .hookspecs import LiveChannelSpec
from .i18n import _, force_locale, language_of
from .models import Contact, ContactIdentity, IdentityKind, NotificationTemplate, Ticket
from .state import loket

TICKET_OPENED = "ticket_opened"
AGENT_REPLIED = "agent_replied"
WAITING_ON_CUSTOMER = "waiting_on_customer"
TICKET_RESOLVED = "ticket_resolved"

# What each template is for, shown to admins beside the placeholders it may use.
KINDS = {
    TICKET_OPENED: "A ticket was opened: its number and the private tracking link",
    AGENT_REPLIED: "An agent replied (sent when the ticket's own channel cannot carry replies, "
                   "or is a live chat the customer has left)",
    WAITING_ON_CUSTOMER: "The ticket waits on the customer (set without a reply)",
    TICKET_RESOLVED: "The ticket was resolved",
}
PLACEHOLDERS = ("name", "number", "subject", "tracking_url", "reply", "agent")


def N_(message: str) -> str:
    """Marks core's wording for extraction; it is translated when a notification is made."""
    return message


# Salutation when the contact gave no name ("Bapak/Ibu" in Indonesian, "po" in Filipino).
NO_NAME = N_("there")

# Core's wording, in English; the catalogues (core/translations) hold it in every other
# language, so that one source serves pages and notifications alike. Placeholders are
# ``{name}``: they are filled after translation, and an admin's wording uses the same.
DEFAULTS: dict[str, tuple[str, str]] = {
    TICKET_OPENED: (
        N_("[#{number}] We received your request: {subject}"),
        N_("Hello {name},\n\nThank you for contacting us. Your request is ticket #{number}.\n\n"
           "Follow it and reply at any time through your private link:\n{tracking_url}\n\n"
           "Keep this link to yourself: anyone who has it can read the ticket.\n\n"
           "The support team")),
    AGENT_REPLIED: (
        N_("[#{number}] New reply: {subject}"),
        N_("Hello {name},\n\n{agent} replied to your ticket #{number}:\n\n{reply}\n\n"
           "To answer, open your ticket:\n{tracking_url}\n\nThe support team")),
    WAITING_ON_CUSTOMER: (
        N_("[#{number}] We are waiting for your reply: {subject}"),
        N_("Hello {name},\n\nWe need more information from you to continue with ticket "
           "#{number}. Please reply through your ticket:\n{tracking_url}\n\nThe support team")),
    TICKET_RESOLVED: (
        N_("[#{number}] Your ticket is resolved: {subject}"),
        N_("Hello {name},\n\nWe marked ticket #{number} as resolved. If your problem is not "
           "solved yet, reply through your ticket and we will pick it up again:\n"
           "{tracking_url}\n\nThe support team")),
}


def core_wording(key: str, language: str) -> tuple[str, str] | None:
    """Core's (subject, body) of a template in ``language``, or None when the catalogue
    of that language does not translate it (English is core's own)."""
    subject, body = DEFAULTS[key]
    pair = (_translated(subject, language), _translated(body, language))
    if language != "en" and pair == (subject, body):
        return None
    return pair


_TRANSLATED_KEY = "notifications.translated"


def _translated(text: str, language: str) -> str:
    """``text`` from core's catalogue of ``language``; looked up once per app and language
    (the catalogues do not change while the app runs, and every new ticket asks)."""
    cache = loket().extras.setdefault(_TRANSLATED_KEY, {})
    found = cache.get((text, language))
    if found is None:
        with force_locale(language):
            found = cache[text, language] = _(text)
    return found


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    language: str  # the language the wording came in


def unknown_placeholders(text: str) -> list[str]:
    """Placeholders in an admin's wording that no notification fills in."""
    return sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})


def fill(text: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders; nothing else in the text is interpreted."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


# Admins' wording, read as a whole (a few dozen rows at most) and kept for a short while:
# a notification goes out with every new ticket, and this spares each one a query.
_CACHE_SECONDS = 30.0
_CACHE_KEY = "notifications.wording"
_cache_lock = threading.Lock()


def forget_wording() -> None:
    """Read admins' wording afresh next time (the console calls it after a change)."""
    with _cache_lock:
        loket().extras.pop(_CACHE_KEY, None)


def _admin_wording() -> dict[tuple[str, str], tuple[str, str]]:
    extras = loket().extras
    with _cache_lock:
        cached = extras.get(_CACHE_KEY)
        if cached is not None and time.monotonic() - cached[0] < _CACHE_SECONDS:
            return cached[1]
    rows = {(row.key, row.language): (row.subject, row.body)
            for row in NotificationTemplate.select()}
    with _cache_lock:
        extras[_CACHE_KEY] = (time.monotonic(), rows)
    return rows


def wording(key: str, language: str) -> tuple[str, str, str]:
    """(subject, body, language) for a template, after the fallbacks in the module docstring.

    An admin's change reaches other processes within ``_CACHE_SECONDS``.
    """
    default_language = loket().config["default_language"]
    rows = _admin_wording()
    if (key, language) in rows:
        return (*rows[key, language], language)
    core = core_wording(key, language)
    if core is not None:
        return (*core, language)
    if (key, default_language) in rows:
        return (*rows[key, default_language], default_language)
    return (*core_wording(key, "en"), "en")  # type: ignore[misc]


def render(key: str, ticket: Ticket, *, contact: Contact | None = None, reply_text: str = "",
           agent: str = "") -> Rendered:
    subject, body, language = wording(key, language_of(ticket.language))
    contact = contact if contact is not None else Contact.get_by_id(ticket.contact_id)
    no_name = _translated(NO_NAME, language)
    values = {
        # The name given with this ticket, as it was given (a shared address's contact
        # keeps the first writer's name).
        "name": ticket.requester_name or contact.name or no_name,
        "number": str(ticket.id),
        "subject": ticket.subject,
        "tracking_url": tracking_url(ticket),
        "reply": reply_text,
        "agent": agent,
    }
    return Rendered(fill(subject, values)[:250], fill(body, values), language)


def tracking_url(ticket: Ticket) -> str:
    """The private link every notification carries."""
    return f"{loket().config['public_url']}/t/{ticket.id}/{ticket.access_key}"


def recipient_on(contact_id: int, identity_kind: str) -> str:
    """The contact's identity of this kind (their address, their chat id), or ""."""
    if not identity_kind:
        return ""
    row = (ContactIdentity.select(ContactIdentity.value)
           .where((ContactIdentity.contact == contact_id)
                  & (ContactIdentity.kind == identity_kind))
           .order_by(ContactIdentity.verified.desc(), ContactIdentity.id.desc()).first())
    if row is not None:
        return row.value
    if identity_kind == IdentityKind.EMAIL:
        contact = Contact.get_or_none(Contact.id == contact_id)
        return (contact.email or "") if contact else ""
    return ""


def route(ticket: Ticket, contact: Contact | None = None,
          known: tuple[str, str] | None = None) -> tuple[str, str] | None:
    """(channel, recipient) a notification about this ticket goes by, or None when none can.

    The ticket's own channel when it can push (a messenger, email) and, for a
    live channel, the customer has it open now; otherwise a channel that writes
    to the contact's email address. ``contact`` and
    ``known`` (the identity the customer just wrote from, as (kind, value))
    spare the look-ups when the caller has them.
    """
    channels = loket().channels

    def identity(kind: str) -> str:
        if kind == IdentityKind.EMAIL and contact is not None and contact.email:
            return contact.email  # normalised when the contact was found or made
        if known is not None and known[0] == kind:
            return known[1]
        return recipient_on(ticket.contact_id, kind)

    own = channels.get(ticket.channel)
    if own is not None and own.can_push:
        recipient = identity(own.identity_kind) if own.identity_kind else ""
        if recipient and reachable_now(own, recipient):
            return own.name, recipient
    for spec in channels.pushing_to(IdentityKind.EMAIL):
        address = identity(IdentityKind.EMAIL)
        if address:
            return spec.name, address
    return None


def away(ticket: Ticket) -> bool:
    """The ticket's own channel is live (``core.hookspecs.LiveChannelSpec``) and its customer
    does not have it open now: an agent's reply then also goes out as a notification."""
    spec = loket().channels.get(ticket.channel)
    if not isinstance(spec, LiveChannelSpec) or not spec.can_push or not spec.identity_kind:
        return False  # no look-up for the channels that are not live (email, messengers)
    recipient = recipient_on(ticket.contact_id, spec.identity_kind)
    return bool(recipient) and not reachable_now(spec, recipient)


def email_reaches_customers() -> bool:
    """Whether an enabled channel writes to email addresses (what the web form may promise)."""
    return bool(loket().channels.pushing_to(IdentityKind.EMAIL))
