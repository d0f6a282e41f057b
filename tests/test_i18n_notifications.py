"""A ticket remembers its contact's language, and every notification about it uses that
language, whoever causes it: the web form, the API, a channel, an agent, a job."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from core import db as core_db
from core import hookimpl
from core.hookspecs import ChannelSpec, DeliveryResult
from core.models import IdentityKind, Message, NotificationTemplate, Status, Ticket
from core.notifications import DEFAULTS, TICKET_OPENED, core_wording
from core.services import tickets as svc

from .test_i18n_pages import _in, built_app

LOGIN_FORM = "/help/member/registration-and-login/new"


class Mailbox:
    """A channel that writes to email addresses and keeps what it was given to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []  # (notification, subject, body)

    @hookimpl
    def register_channels(self) -> list[ChannelSpec]:
        return [ChannelSpec("testmail", "Test mail", can_push=True,
                            identity_kind=IdentityKind.EMAIL)]

    @hookimpl
    def deliver_message(self, ticket: Any, message: Any, recipient: str,
                        idempotency_key: str) -> DeliveryResult | None:
        if message.channel != "testmail":
            return None
        self.sent.append((message.notification, message.subject, message.body_text))
        return DeliveryResult(state="sent")

    @hookimpl
    def register_jobs(self, jobs: Any) -> None:
        @jobs.task(name="tests.i18n.resolve")
        def resolve(ticket_id: int) -> None:
            """A job (no request, no visitor's language) that makes a notification."""
            ticket = Ticket.get_by_id(ticket_id)
            svc.change_status(ticket, Status.RESOLVED, svc.Actor.system())

        self.resolve = resolve


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def mail_app(make_app: Any, mailbox: Mailbox) -> Any:
    return built_app(make_app, extra_plugins=(mailbox,))


def _latest(app: Any) -> Ticket:
    return _in(app, lambda: Ticket.select().order_by(Ticket.id.desc()).get())


def _web_ticket(app: Any, language: str, email: str = "rina@example.com") -> Ticket:
    page = app.test_client().post(f"{LOGIN_FORM}?lang={language}", data={
        "name": "Rina", "email": email, "subject": "Tidak bisa masuk",
        "description": "Kata sandi saya ditolak.", "extra_registered_email": email})
    assert page.status_code == 302
    return _latest(app)


OPENED = {"id": "Permintaan Anda tercatat sebagai tiket",
          "fil": "Ang iyong request ay ticket",
          "en": "Your request is ticket"}
RESOLVED = {"id": "telah kami tandai sebagai selesai",
            "fil": "Minarkahan naming resolved ang ticket",
            "en": "We marked ticket"}


@pytest.mark.parametrize("language", ["id", "fil"])
def test_the_web_forms_language_reaches_the_ticket_and_its_acknowledgement(
        mail_app: Any, mailbox: Mailbox, language: str) -> None:
    ticket = _web_ticket(mail_app, language)
    assert ticket.language == language
    [(kind, subject, body)] = mailbox.sent
    assert kind == TICKET_OPENED
    assert OPENED[language] in body and f"#{ticket.id}" in subject
    assert "Thank you for contacting us" not in body


def test_an_agent_working_in_english_writes_to_the_customer_in_theirs(
        mail_app: Any, mailbox: Mailbox) -> None:
    ticket = _web_ticket(mail_app, "fil")
    # The agent's own request is in English; the notification is the ticket's.
    with mail_app.test_request_context("/admin/", headers={"Accept-Language": "en"}):
        core_db.bind(mail_app.extensions["loket"].database)
        with core_db.connection():
            svc.change_status(ticket, Status.PENDING,
                              svc.Actor.agent(mail_app.desk.agent))
    kind, _subject, body = mailbox.sent[-1]
    assert kind == "waiting_on_customer"
    assert "Kailangan namin ng karagdagang impormasyon" in body


def test_a_job_outside_any_request_writes_in_the_tickets_language(
        mail_app: Any, mailbox: Mailbox) -> None:
    ticket = _web_ticket(mail_app, "id")
    mailbox.resolve(ticket.id)  # the immediate queue runs it now, in an app context only
    kind, subject, body = mailbox.sent[-1]
    assert kind == "ticket_resolved"
    assert RESOLVED["id"] in body and "Tiket Anda telah diselesaikan" in subject


def test_the_apis_language_reaches_the_ticket_and_its_notification(
        mail_app: Any, mailbox: Mailbox) -> None:
    answer = mail_app.test_client().post("/api/v1/tickets", json={
        "user_type": "member", "category": "registration-and-login", "name": "Rina",
        "email": "rina@example.com", "subject": "Hindi maka-login",
        "description": "Ayaw tanggapin ang password ko.",
        "fields": {"registered_email": "rina@example.com"}, "language": "fil"},
        headers={"Accept-Language": "id"})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert _latest(mail_app).language == "fil"
    assert OPENED["fil"] in mailbox.sent[-1][2]


def test_the_apis_field_errors_follow_accept_language(mail_app: Any) -> None:
    answer = mail_app.test_client().post("/api/v1/tickets", json={
        "user_type": "member", "category": "registration-and-login", "name": "Rina",
        "email": "rina@example.com", "subject": "Masuk", "description": "x",
        "language": "de"}, headers={"Accept-Language": "id"})
    fields = answer.get_json()["error"]["fields"]
    assert fields["language"] == "Pilih salah satu dari: en, id, fil"
    assert fields["fields.registered_email"] == "Kolom ini wajib diisi."


def test_a_channel_that_cannot_tell_gets_the_contacts_known_language(
        mail_app: Any, mailbox: Mailbox) -> None:
    first = _web_ticket(mail_app, "id")

    def by_mail() -> Ticket:
        result = svc.receive_message(
            channel="testmail", identity=svc.Identity(IdentityKind.EMAIL, "rina@example.com"),
            text="Masih belum bisa masuk.", subject="Lagi", external_id="<m1@example.com>")
        return result.ticket
    ticket = _in(mail_app, by_mail)
    assert ticket.id != first.id and ticket.language == "id"
    assert OPENED["id"] in mailbox.sent[-1][2]

    def stranger() -> Ticket:
        return svc.receive_message(
            channel="testmail", identity=svc.Identity(IdentityKind.EMAIL, "new@example.com"),
            text="Hello", subject="Hi", external_id="<m2@example.com>").ticket
    assert _in(mail_app, stranger).language == "en"  # the desk's default


def test_an_admins_wording_in_the_language_wins_then_cores_then_the_default_language(
        mail_app: Any) -> None:
    def wordings() -> tuple[Any, ...]:
        from core.notifications import forget_wording, wording

        NotificationTemplate.create(key=TICKET_OPENED, language="fil",
                                    subject="Ticket {number}", body="Kumusta {name}")
        NotificationTemplate.create(key=TICKET_OPENED, language="en",
                                    subject="Got it {number}", body="Hi {name}")
        forget_wording()
        return (wording(TICKET_OPENED, "fil"), wording(TICKET_OPENED, "id"),
                wording(TICKET_OPENED, "en"))
    fil, ind, en = _in(mail_app, wordings)
    assert fil == ("Ticket {number}", "Kumusta {name}", "fil")
    assert ind[2] == "id" and ind[0].startswith("[#{number}] Permintaan Anda")
    assert en == ("Got it {number}", "Hi {name}", "en")


def test_cores_wording_comes_from_the_catalogues_in_every_language(mail_app: Any) -> None:
    def all_of() -> dict[str, Any]:
        return {language: [core_wording(key, language) for key in DEFAULTS]
                for language in ("en", "id", "fil")}
    found = _in(mail_app, all_of)
    assert found["en"] == [tuple(pair) for pair in DEFAULTS.values()]
    for language in ("id", "fil"):
        for (subject, body), (english_subject, english_body) in zip(
                found[language], DEFAULTS.values(), strict=True):
            assert subject != english_subject and body != english_body
            assert "{tracking_url}" in body and "{number}" in subject


def test_a_customer_without_a_name_is_greeted_the_way_each_language_does(
        mail_app: Any, mailbox: Mailbox) -> None:
    def nameless(language: str) -> None:
        svc.open_ticket(identity=svc.Identity(IdentityKind.EMAIL, f"{language}@example.com"),
                        subject="x", text="y", language=language, channel="testmail")
    for language in ("id", "fil"):
        _in(mail_app, lambda language=language: nameless(language))
    assert mailbox.sent[-2][2].startswith("Halo Bapak/Ibu,")
    assert mailbox.sent[-1][2].startswith("Hello po,")


def test_a_reply_mail_names_its_ticket_in_the_tickets_language(make_app: Any) -> None:
    from plugins.email_intake.outbound import build

    app = make_app(plugins=["email_intake"], **{"email_intake.address": "help@desk.test"})

    def mail_for(language: str) -> Any:
        ticket = svc.open_ticket(
            identity=svc.Identity(IdentityKind.EMAIL, f"{language}@example.com"),
            subject="Masuk", text="Tidak bisa.", language=language, notify=False)
        message = Message(ticket=ticket, author_kind="staff", body_text="Silakan coba lagi.",
                          channel="email", created_at=dt.datetime(2026, 1, 1))
        settings = app.extensions["loket"].config.plugin("email_intake")
        return build(settings, ticket, message, "x@example.com", "key", "http://desk.test/t/1/k")
    mail = _in(app, lambda: mail_for("id"))
    assert "Tiket #" in mail.get_body(("plain",)).get_content()
    mail = _in(app, lambda: mail_for("fil"))
    assert mail["Subject"].startswith("[#") and "Re: Masuk" in mail["Subject"]
    assert "Ticket #" in mail.get_body(("plain",)).get_content()
