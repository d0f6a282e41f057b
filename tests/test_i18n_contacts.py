"""A contact's language follows the language they last wrote in; channels that cannot tell use it."""

from __future__ import annotations

from typing import Any

from core.models import Contact, IdentityKind, Ticket
from core.services import tickets as svc

from .test_i18n_notifications import (  # noqa: F401 - fixtures
    OPENED,
    Mailbox,
    _web_ticket,
    mail_app,
    mailbox,
)
from .test_i18n_pages import _in


def _contact_language(app: Any, email: str = "rina@example.com") -> str:
    return _in(app, lambda: Contact.get(Contact.email == email).language)


def _by_mail(app: Any, message_id: str) -> Ticket:
    def work() -> Ticket:
        return svc.receive_message(
            channel="testmail", identity=svc.Identity(IdentityKind.EMAIL, "rina@example.com"),
            text="Masih belum bisa.", subject="Lagi", external_id=message_id).ticket
    return _in(app, work)


def test_a_later_ticket_in_another_language_updates_the_contacts(
        mail_app: Any, mailbox: Mailbox) -> None:  # noqa: F811
    first = _web_ticket(mail_app, "id")
    assert _contact_language(mail_app) == "id"
    second = _web_ticket(mail_app, "fil")
    assert second.language == "fil" and _contact_language(mail_app) == "fil"
    assert _in(mail_app, lambda: Ticket.get_by_id(first.id).language) == "id"  # its own stays
    # Email cannot tell: the next mail is written to, and acknowledged in, Filipino now.
    by_mail = _by_mail(mail_app, "<later@example.com>")
    assert by_mail.language == "fil" and OPENED["fil"] in mailbox.sent[-1][2]


def test_a_message_whose_channel_cannot_tell_leaves_the_contacts_language(
        mail_app: Any, mailbox: Mailbox) -> None:  # noqa: F811
    _web_ticket(mail_app, "id")
    _by_mail(mail_app, "<m1@example.com>")
    assert _contact_language(mail_app) == "id"


def test_the_api_language_updates_the_contact_too(mail_app: Any) -> None:  # noqa: F811
    _web_ticket(mail_app, "id")
    answer = mail_app.test_client().post("/api/v1/tickets", json={
        "user_type": "member", "category": "registration-and-login", "name": "Rina",
        "email": "rina@example.com", "subject": "Login", "description": "Password rejected.",
        "fields": {"registered_email": "rina@example.com"}, "language": "en"})
    assert answer.status_code == 201
    assert _contact_language(mail_app) == "en"
