"""A visitor who left the chat hears an agent's reply by email (a real SMTP server), once,
and still finds it in the widget on return; a visitor who is there gets no email."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from core import db
from core.models import Delivery, Message, Staff
from plugins.livechat import desk
from plugins.livechat.models import Chat
from tests.factories import build_desk
from tests.livechat_support import ChatProcess, Visitor
from tests.test_email_out import Mailbox, smtp, text_of  # noqa: F401 (smtp: a fixture)


@pytest.fixture
def desk_app(make_app: Any, smtp: tuple[Mailbox, int]) -> Any:  # noqa: F811
    _, port = smtp
    app = make_app(plugins=["livechat", "email_intake"], **{
        "email_intake.address": "help@desk.test", "email_intake.from_name": "Desk Support",
        "email_intake.smtp_host": "127.0.0.1", "email_intake.smtp_port": port,
        "email_intake.smtp_security": "none", "outbox_max_attempts": 1})
    with app.app_context(), db.connection():
        app.desk = build_desk()
    return app


@pytest.fixture
def chat(desk_app: Any, db_url: str, tmp_path: Any,
         smtp: tuple[Mailbox, int]) -> Iterator[ChatProcess]:  # noqa: F811
    # The chat process runs with the desk's plugins, the email channel among them.
    process = ChatProcess(desk_app, db_url, tmp_path / "chat.log", **{
        "LOKET_PLUGINS": "livechat,email_intake", "LOKET_EMAIL_INTAKE_ADDRESS": "help@desk.test",
        "LOKET_EMAIL_INTAKE_SMTP_HOST": "127.0.0.1", "LOKET_EMAIL_INTAKE_SMTP_PORT": str(smtp[1]),
        "LOKET_EMAIL_INTAKE_SMTP_SECURITY": "none", "LOKET_OUTBOX_MAX_ATTEMPTS": "1"})
    yield process
    process.stop()


def _in(app: Any, fn: Any) -> Any:
    with app.app_context(), db.connection():
        return fn()


def _wait_presence(app: Any, visitor: str, present: bool) -> None:
    """The chat process writes arrivals and departures each second."""
    deadline = time.monotonic() + 15
    while _in(app, lambda: desk.visitor_present(visitor)) != present:
        assert time.monotonic() < deadline, f"presence never became {present}"
        time.sleep(0.1)


def _offline_chat_with_email(desk_app: Any, chat: ChatProcess, lang: str = "en"
                             ) -> tuple[Visitor, Chat]:
    visitor = Visitor(chat.url, name="Sari", lang=lang)
    ack = visitor.say("My payout is late")
    visitor.send(type="handover")
    visitor.next(lambda e: e["type"] == "state" and e["state"] == "offline")
    visitor.send(type="email", email="sari@example.com")
    visitor.message(lambda e: "sari@example.com" in e["text"])
    row = _in(desk_app, lambda: Chat.get(Chat.ticket == Message.get_by_id(ack["id"]).ticket_id))
    return visitor, row


def _reply(app: Any, row: Chat, text: str) -> Message:
    def work() -> Message:
        agent = Staff.get(Staff.email == "agent@desk.test")
        return desk.agent_reply(Chat.get_by_id(row.id), agent, text)

    return _in(app, work)


def test_a_reply_to_a_visitor_who_left_goes_by_email_once_and_waits_in_the_widget(
        desk_app: Any, chat: ChatProcess, smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    mailbox, _ = smtp
    visitor, row = _offline_chat_with_email(desk_app, chat, lang="id")
    last = visitor.last_id()
    visitor.close()
    _wait_presence(desk_app, row.visitor, False)

    reply = _reply(desk_app, row, "Your payout left our bank today.")
    assert len(mailbox.mails) == 1
    envelope, mail = mailbox.mails[0]
    assert envelope.rcpt_tos == ["sari@example.com"]
    body = text_of(mail)
    assert "Your payout left our bank today." in body
    ticket_id = row.ticket_id
    access_key = _in(desk_app, lambda: Message.get_by_id(reply.id).ticket.access_key)
    assert f"http://desk.test/t/{ticket_id}/{access_key}" in body
    assert mail["Subject"].startswith(f"[#{ticket_id}] Balasan baru")  # the visitor's language

    def states() -> dict[str, str]:
        return {m.channel + ":" + (m.notification or "reply"): m.delivery_state
                for m in Message.select().where(Message.ticket == ticket_id)
                if m.id >= reply.id}

    assert _in(desk_app, states) == {"livechat:reply": Delivery.SENT,
                                     "email:agent_replied": Delivery.SENT}

    # Back in the widget: the reply is there once, the email notice is not shown.
    back = Visitor(chat.url, token=visitor.token, lang="id", last_seen=last)
    back.drain()
    replies = [e for e in back.seen if e["author"] == "agent"]
    assert [e["text"] for e in replies] == ["Your payout left our bank today."]
    assert all("Balasan baru" not in e["text"] for e in back.seen)
    _wait_presence(desk_app, row.visitor, True)

    # While the visitor is there, the next reply reaches the widget and no mail is sent.
    _reply(desk_app, row, "Anything else?")
    back.message(lambda e: e["text"] == "Anything else?")
    assert len(mailbox.mails) == 1
    back.close()


def test_a_visitor_without_an_email_address_gets_no_mail_when_away(
        desk_app: Any, chat: ChatProcess, smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    mailbox, _ = smtp
    visitor = Visitor(chat.url, name="Ben")
    ack = visitor.say("Hello?")
    row = _in(desk_app, lambda: Chat.get(Chat.ticket == Message.get_by_id(ack["id"]).ticket_id))
    visitor.close()
    _wait_presence(desk_app, row.visitor, False)
    _reply(desk_app, row, "Sorry for the wait")
    assert mailbox.mails == []
    back = Visitor(chat.url, token=visitor.token)
    assert back.message(lambda e: e["text"] == "Sorry for the wait")["author"] == "agent"
    back.close()


def test_the_chat_process_stopping_marks_its_visitors_away(
        desk_app: Any, db_url: str, tmp_path: Any) -> None:
    process = ChatProcess(desk_app, db_url, tmp_path / "chat.log")
    try:
        visitor = Visitor(process.url)
        ack = visitor.say("Hi")
        row = _in(desk_app, lambda: Chat.get(
            Chat.ticket == Message.get_by_id(ack["id"]).ticket_id))
        _wait_presence(desk_app, row.visitor, True)
    finally:
        process.stop()
    assert not _in(desk_app, lambda: desk.visitor_present(row.visitor))


def test_the_ended_chat_is_mailed_to_the_visitor_on_request_in_their_language(
        desk_app: Any, chat: ChatProcess, smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    from core.services import tickets
    from core.services.tickets import Actor

    mailbox, _ = smtp
    visitor = Visitor(chat.url, name="Rina", lang="id")
    ack = visitor.say("Pembayaran saya <b>terlambat</b>")
    row = _in(desk_app, lambda: Chat.get(Chat.ticket == Message.get_by_id(ack["id"]).ticket_id))

    def accept_note_and_close() -> None:
        agent = Staff.get(Staff.email == "agent@desk.test")
        desk.accept(Chat.get_by_id(row.id), agent)
        desk.agent_reply(Chat.get_by_id(row.id), agent, "Sudah kami proses.")
        tickets.add_note(Message.get_by_id(ack["id"]).ticket, agent, "internal: VIP customer")
        desk.close(Chat.get_by_id(row.id), Actor.agent(agent))

    _in(desk_app, accept_note_and_close)
    visitor.message(lambda e: e.get("chat_state") == "closed")
    before = len(mailbox.mails)  # the resolved notice went on the chat, not by mail
    visitor.send(type="transcript", email="not an address")
    assert visitor.next(lambda e: e["type"] in ("error", "transcript"))["code"] == "email"
    visitor.send(type="transcript", email="rina@example.com")
    done = visitor.next(lambda e: e["type"] in ("error", "transcript"))
    assert done == {"type": "transcript", "email": "rina@example.com",
                    "text": "Kami telah mengirim transkrip ke rina@example.com."}
    assert len(mailbox.mails) == before + 1
    envelope, mail = mailbox.mails[-1]
    assert envelope.rcpt_tos == ["rina@example.com"]
    assert mail["Subject"] == f"[#{row.ticket_id}] Chat Anda dengan kami"
    body = text_of(mail).replace("\r\n", "\n")
    assert "Berikut riwayat chat Anda dengan kami" in body
    assert "Anda:\nPembayaran saya <b>terlambat</b>" in body  # as written, plain text
    assert "Agus Agent:\nSudah kami proses." in body
    assert "VIP customer" not in body  # internal notes stay internal
    access_key = _in(desk_app, lambda: Message.get_by_id(ack["id"]).ticket.access_key)
    assert f"http://desk.test/t/{row.ticket_id}/{access_key}" in body
    # The widget never shows the mail itself, and the visitor rates the chat.
    visitor.send(type="rate", score=4)
    visitor.drain()
    assert all("Berikut riwayat chat" not in e["text"] for e in visitor.seen)
    assert _in(desk_app, lambda: Chat.get_by_id(row.id).rating) == 4

    # Not a way to mail any address at will: three transcripts per chat, then refused.
    for n in (2, 3):
        visitor.send(type="transcript", email=f"copy{n}@example.com")
        assert visitor.next(lambda e: e["type"] in ("error", "transcript"))["type"] == \
            "transcript"
    visitor.send(type="transcript", email="copy4@example.com")
    refused = visitor.next(lambda e: e["type"] in ("error", "transcript"))
    assert refused["code"] == "transcript_limit"
    assert [env.rcpt_tos for env, _m in mailbox.mails[before:]] == [
        ["rina@example.com"], ["copy2@example.com"], ["copy3@example.com"]]
