"""Mail out through a real SMTP server (aiosmtpd): replies and notifications from the outbox."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from core import db
from core.models import Delivery, IdentityKind, Message
from core.plugins import PluginError
from core.services import tickets
from core.services.tickets import Identity
from tests.factories import build_desk

aiosmtpd = pytest.importorskip("aiosmtpd", reason="aiosmtpd is in the test extras")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import Envelope  # noqa: E402


class Mailbox:
    """Keeps every mail the server accepted; refuses recipients listed in ``refuse``."""

    def __init__(self) -> None:
        self.mails: list[tuple[Envelope, email.message.EmailMessage]] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:  # noqa: N802 (aiosmtpd's name)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.append((envelope, parsed))
        return "250 Message accepted"


def mail_in(address: str, subject: str, text: str, message_id: str,
            notify: bool = True) -> Any:
    """A customer's mail as the email channel receives it."""
    return tickets.receive_message(
        channel="email", identity=Identity(IdentityKind.EMAIL, address, email=address),
        subject=subject, text=text, external_id=message_id, notify=notify)


def text_of(mail: email.message.EmailMessage) -> str:
    return mail.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    with socket.socket() as probe:  # a free port: aiosmtpd checks it can connect to it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def mail_app(make_app: Any, smtp: tuple[Mailbox, int]) -> Any:
    _, port = smtp
    return make_app(plugins=["email_intake"], **{
        "email_intake.address": "help@desk.test", "email_intake.from_name": "Desk Support",
        "email_intake.smtp_host": "127.0.0.1", "email_intake.smtp_port": port,
        "email_intake.smtp_security": "none", "outbox_max_attempts": 1})


def test_web_ticket_acknowledgement_and_reply_arrive_by_smtp(mail_app: Any,
                                                             smtp: tuple[Mailbox, int]) -> None:
    mailbox, _ = smtp
    with mail_app.app_context(), db.connection():
        desk = build_desk()
        ticket = tickets.open_ticket(
            identity=Identity(IdentityKind.EMAIL, "rina@example.test", name="Rina",
                              email="rina@example.test"),
            subject="Verification email never came", text="Nothing arrived",
            category=desk.login, language="id")
        tickets.reply(ticket, desk.agent, "Silakan periksa folder spam Anda.")
        sent = [m for m in Message.select().where(Message.ticket == ticket.id)
                if m.notification]
    assert [m.delivery_state for m in sent] == [Delivery.SENT, Delivery.SENT]
    (env1, ack), (env2, reply) = mailbox.mails
    assert env1.rcpt_tos == ["rina@example.test"] and env1.mail_from == "help@desk.test"
    assert ack["From"] == "Desk Support <help@desk.test>"
    assert ack["Subject"] == f"[#{ticket.id}] Permintaan Anda telah kami terima: " \
                             "Verification email never came"
    assert ack["Auto-Submitted"] == "auto-generated"
    assert ack["Message-ID"] == sent[0].external_id
    assert ack["Message-ID"] == f"<{sent[0].delivery_key}@desk.test>"
    body = text_of(ack)
    assert f"http://desk.test/t/{ticket.id}/{ticket.access_key}" in body
    assert "Silakan periksa folder spam Anda." in text_of(reply)
    assert reply["Subject"].startswith(f"[#{ticket.id}] Balasan baru")


def test_reply_to_an_email_ticket_threads_in_the_customers_mail_program(
        mail_app: Any, smtp: tuple[Mailbox, int]) -> None:
    mailbox, _ = smtp
    with mail_app.app_context(), db.connection():
        desk = build_desk()
        inbound = mail_in("ana@example.test", "Refund", "Please refund",
                          "<abc@mail.example.test>")
        tickets.reply(inbound.ticket, desk.agent, "Refunded.")
        reply = Message.select().where((Message.ticket == inbound.ticket.id)
                                       & (Message.body_text == "Refunded.")).get()
    assert reply.channel == "email" and reply.delivery_state == Delivery.SENT
    _, mail = mailbox.mails[-1]
    assert mail["In-Reply-To"] == "<abc@mail.example.test>"
    assert mail["Subject"] == f"[#{inbound.ticket.id}] Re: Refund"
    assert "Auto-Submitted" not in mail  # a person wrote this one
    assert f"/t/{inbound.ticket.id}/" in text_of(mail)


def test_an_agents_files_and_an_html_part_go_with_the_reply(mail_app: Any,
                                                           smtp: tuple[Mailbox, int]) -> None:
    from core.attachments import Storage
    from core.state import loket

    mailbox, _ = smtp
    pdf = b"%PDF-1.4 refund statement"
    with mail_app.app_context(), db.connection():
        desk = build_desk()
        inbound = mail_in("f@example.test", "Refund", "hi", "<f@e.test>", notify=False)
        stored = Storage(loket().config["attachments_path"]).save_bytes(
            pdf, "statement.pdf", max_bytes=10_000, allowed_types=["application/pdf"])
        tickets.reply(inbound.ticket, desk.agent, "See the <statement> attached.",
                      attachments=[stored])
    ((_, mail),) = mailbox.mails
    html_part = mail.get_body(preferencelist=("html",))
    assert "See the &lt;statement&gt; attached." in html_part.get_content()
    assert mail.get_body(preferencelist=("plain",)).get_content().startswith(
        "See the <statement> attached.")
    (attached,) = list(mail.iter_attachments())
    assert attached.get_filename() == "statement.pdf"
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_content() == pdf


def test_a_subject_with_line_breaks_cannot_add_headers(mail_app: Any,
                                                       smtp: tuple[Mailbox, int]) -> None:
    mailbox, _ = smtp
    with mail_app.app_context(), db.connection():
        desk = build_desk()
        inbound = mail_in("e@example.test", "Help\r\nBcc: victim@example.test", "hi",
                          "<x@e.test>", notify=False)
        tickets.reply(inbound.ticket, desk.agent, "Hello")
    ((envelope, mail),) = mailbox.mails
    assert envelope.rcpt_tos == ["e@example.test"] and "Bcc" not in mail
    assert mail["Subject"] == f"[#{inbound.ticket.id}] Re: Help Bcc: victim@example.test"


def test_a_refused_address_fails_the_message_with_the_servers_reason(
        mail_app: Any, smtp: tuple[Mailbox, int]) -> None:
    mailbox, _ = smtp
    mailbox.refuse["gone@example.test"] = "550 5.1.1 No such user"
    with mail_app.app_context(), db.connection():
        build_desk()
        ticket = tickets.open_ticket(identity=Identity(IdentityKind.EMAIL, "gone@example.test",
                                                       email="gone@example.test"),
                                     subject="s", text="t")
        (ack,) = [m for m in Message.select().where(Message.ticket == ticket.id)
                  if m.notification]
    assert ack.delivery_state == Delivery.FAILED
    assert "550" in ack.delivery_error and "No such user" in ack.delivery_error
    assert mailbox.mails == []


def test_an_unreachable_smtp_server_leaves_the_mail_queued_for_a_retry(make_app: Any) -> None:
    app = make_app(plugins=["email_intake"], **{
        "email_intake.address": "help@desk.test", "email_intake.smtp_host": "127.0.0.1",
        "email_intake.smtp_port": 9, "email_intake.smtp_security": "none",
        "email_intake.smtp_timeout": 2})
    with app.app_context(), db.connection():
        ticket = tickets.open_ticket(identity=Identity(IdentityKind.EMAIL, "a@example.test",
                                                       email="a@example.test"),
                                     subject="s", text="t")
        (ack,) = [m for m in Message.select().where(Message.ticket == ticket.id)
                  if m.notification]
    assert ack.delivery_state == Delivery.QUEUED and ack.next_attempt_at is not None
    assert "127.0.0.1:9" in ack.delivery_error


def test_without_smtp_the_email_channel_cannot_push_and_nothing_is_promised(
        make_app: Any) -> None:
    app = make_app(plugins=["email_intake"], **{"email_intake.address": "help@desk.test"})
    channels = app.extensions["loket"].channels
    assert channels.owner("email") == "email_intake" and not channels.get("email").can_push
    with pytest.raises(PluginError, match="ADDRESS is empty"):
        make_app(plugins=["email_intake"], **{"email_intake.smtp_host": "127.0.0.1"})
