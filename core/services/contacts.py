"""Contacts: find a customer by any channel identity, or create them; merge duplicates."""

from __future__ import annotations

import re

from .. import db
from ..models import Contact, ContactIdentity, IdentityKind
from ..sanitize import storable
from .unit import emit, unit_of_work

_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_EMAIL = re.compile(rf"^[^\s@<>()\[\]\\,;:\"]+@{_LABEL}(?:\.{_LABEL})*\.[^\W\d_]{{2,}}$")


def is_email_address(value: str) -> bool:
    """A plain address (local@domain.tld); no display names, no IP-literal domains."""
    return len(value) <= 254 and bool(_EMAIL.match(value))


def normalise_identity(kind: str, value: str) -> str:
    value = storable(value).strip()
    if kind == IdentityKind.EMAIL:
        value = value.lower()
    elif kind == IdentityKind.WHATSAPP:
        value = "".join(ch for ch in value if ch.isdigit())
    return fit(value, IDENTITY_MAX)


IDENTITY_MAX = 254
NAME_MAX = 200  # Contact.name


def fit(value: str, limit: int) -> str:
    """A value that fits its column: too long, it keeps its start and a digest of the whole,
    so the same long value always maps to the same short one."""
    if len(value) <= limit:
        return value
    import hashlib

    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    return f"{value[: limit - 34]}~{digest}"


def find_contact(kind: str, value: str) -> Contact | None:
    """The contact a channel identity belongs to, following merges."""
    return find_normalised(kind, normalise_identity(kind, value))


def find_normalised(kind: str, value: str) -> Contact | None:
    """``find_contact`` for a value ``normalise_identity`` made already (a service's boundary)."""
    contact = _by_identity.first(kind, value)
    if contact is None:
        return None
    seen = {contact.id}
    while contact.merged_into_id is not None and contact.merged_into_id not in seen:
        contact = Contact.get_by_id(contact.merged_into_id)
        seen.add(contact.id)
    return contact


_by_identity = db.Select(
    "contact.by_identity", Contact,
    lambda kind, value: (Contact.select().join(ContactIdentity)
                         .where((ContactIdentity.kind == kind) & (ContactIdentity.value == value))
                         .limit(1)))
_insert_contact = db.Insert("contact.insert", Contact)
_insert_identity = db.Insert("contact_identity.insert", ContactIdentity)


def find_or_create_contact(kind: str, value: str, *, name: str = "", email: str | None = None,
                           language: str = "en", user_type_id: int | None = None,
                           verified: bool = False) -> tuple[Contact, bool]:
    """Return (contact, created). Must run inside a unit of work.

    A known identity keeps its contact, name and all: whoever types an address on
    a form names their ticket (``Ticket.requester_name``), not the address's owner.
    A new identity creates a contact with ``name``. A race with another request
    creating the same identity surfaces as an IntegrityError, which ``run_unit``
    retries.
    """
    return find_or_create_normalised(
        kind, normalise_identity(kind, value), name=storable(name),
        email=storable(email) if email is not None else None, language=language,
        user_type_id=user_type_id, verified=verified)


def find_or_create_normalised(kind: str, value: str, *, name: str = "",
                              email: str | None = None, language: str = "en",
                              user_type_id: int | None = None,
                              verified: bool = False) -> tuple[Contact, bool]:
    """``find_or_create_contact`` for text its caller made storable and normalised already."""
    if not value:
        raise ValueError(f"an empty {kind} identity")
    contact = find_normalised(kind, value)
    if contact is not None:
        return contact, False
    if email is None and kind == IdentityKind.EMAIL:
        email = value
    if email is not None and (len(email) > IDENTITY_MAX or not is_email_address(email)):
        email = None  # the identity keeps what the channel said; this column holds real addresses
    contact = _insert_contact(Contact(name=name[:NAME_MAX], email=email, language=language,
                                      user_type=user_type_id))
    _insert_identity(ContactIdentity(contact=contact, kind=kind, value=value, verified=verified))
    emit("contact_identified", contact=contact, identity_kind=kind, value=value)
    return contact, True


def remember_language(contact: Contact, language: str) -> None:
    """The contact wrote in ``language`` (a form, the API, a chat): keep it as theirs.

    Must run inside a unit of work. What a channel that cannot tell a language (email)
    sends later is then written to, and notified in, the language they last used.
    """
    if language and contact.language != language:
        Contact.update(language=language).where(Contact.id == contact.id).execute()
        contact.language = language


def add_identity(contact: Contact, kind: str, value: str, verified: bool = False) -> None:
    """Give a contact another identity (refused if it already belongs to someone else).

    The one way an identity is added, by a channel or in the console: the
    value is normalised as channels do, and ``contact_identified`` fires.
    """
    value = normalise_identity(kind, value)
    if not kind or not value:
        raise ValueError("an identity needs a kind and a value")
    if kind == IdentityKind.EMAIL and not is_email_address(value):
        raise ValueError(f"{value!r} is not an email address")
    with unit_of_work():
        owner = find_normalised(kind, value)
        if owner is not None:
            if owner.id != contact.id:
                raise ValueError(f"{kind} {value} already belongs to contact {owner.id}")
            return
        ContactIdentity.create(contact=contact, kind=kind, value=value, verified=verified)
        emit("contact_identified", contact=contact, identity_kind=kind, value=value)
