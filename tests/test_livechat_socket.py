"""Live chat over a real WebSocket against a real `loket chat` process: storage, identity, resume."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core import db
from core.models import AuthorKind, Delivery, Message, Ticket
from core.services import tickets
from plugins.livechat.models import Chat, ChatState
from plugins.livechat.tokens import new_visitor
from tests.factories import build_desk
from tests.livechat_support import ChatProcess, Visitor, in_app, running_chat


@pytest.fixture
def desk_app(make_app: Any) -> Any:
    app = make_app(plugins=["livechat"])
    with app.app_context(), db.connection():
        app.desk = build_desk()
    return app


@pytest.fixture
def chat(desk_app: Any, db_url: str, tmp_path: Any) -> Iterator[ChatProcess]:
    yield from running_chat(desk_app, db_url, tmp_path)


def test_a_message_is_stored_on_a_livechat_ticket_before_it_is_acknowledged(
        desk_app: Any, chat: ChatProcess) -> None:
    visitor = Visitor(chat.url, name="Sari")
    ack = visitor.say("My payout did not arrive")
    assert ack["type"] == "ack"

    def stored() -> tuple[Message, Ticket, Chat]:
        message = Message.get_by_id(ack["id"])
        return message, Ticket.get_by_id(message.ticket_id), Chat.get(Chat.ticket ==
                                                                       message.ticket_id)

    message, ticket, chat_row = in_app(desk_app, stored)
    assert message.body_text == "My payout did not arrive"
    assert message.author_kind == AuthorKind.CONTACT
    assert ticket.channel == "livechat" and ticket.requester_name == "Sari"
    assert chat_row.visitor and visitor.token and chat_row.visitor not in visitor.token[:0]
    # The visitor's own message comes back once, marked with its client id.
    echoed = visitor.message(lambda e: e["id"] == ack["id"])
    assert echoed["author"] == "visitor" and echoed["client_id"]


def test_the_same_client_message_id_sent_twice_gives_one_message(
        desk_app: Any, chat: ChatProcess) -> None:
    visitor = Visitor(chat.url)
    first = visitor.say("Hello there", client_id="c-1")
    again = visitor.say("Hello there", client_id="c-1")
    assert first["id"] == again["id"]
    count = in_app(desk_app, lambda: Message.select().where(
        Message.external_id.endswith(":c-1")).count())
    assert count == 1


def test_two_visitors_never_see_each_others_messages(desk_app: Any, chat: ChatProcess) -> None:
    ana = Visitor(chat.url, name="Ana")
    ben = Visitor(chat.url, name="Ben")
    a = ana.say("secret of Ana")
    b = ben.say("secret of Ben")
    ana.drain()
    ben.drain()
    assert all("Ben" not in e["text"] for e in ana.seen)
    assert all("Ana" not in e["text"] for e in ben.seen)
    assert a["id"] != b["id"]
    tickets_of = in_app(desk_app, lambda: {Message.get_by_id(a["id"]).ticket_id,
                                        Message.get_by_id(b["id"]).ticket_id})
    assert len(tickets_of) == 2
    # Ben reconnecting from the start sees only his own conversation.
    again = Visitor(chat.url, token=ben.token)
    again.drain()
    assert {e["id"] for e in again.seen} >= {b["id"]}
    assert a["id"] not in {e["id"] for e in again.seen}


def test_a_forged_or_altered_token_is_refused(desk_app: Any, chat: ChatProcess) -> None:
    ana = Visitor(chat.url)
    ana.say("mine")
    forged = in_app(desk_app, lambda: "v" + "A" * 24 + "." + "B" * 27)
    altered = ana.token[:-3] + ("abc" if not ana.token.endswith("abc") else "xyz")
    # A token signed with another desk's key is no better.
    foreign = in_app(desk_app, lambda: _other_key_token())
    for token in (forged, altered, foreign):
        with pytest.raises(ConnectionClosed) as closed:
            Visitor(chat.url, token=token)
        assert closed.value.rcvd.code == 4401


def _other_key_token() -> str:
    from itsdangerous import URLSafeSerializer

    from plugins.livechat.tokens import SALT

    visitor, _token = new_visitor()
    return URLSafeSerializer("another desk's key", salt=SALT).dumps(visitor)


def test_a_page_of_another_site_may_not_open_the_chat(desk_app: Any, chat: ChatProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        Visitor(chat.url, origin="https://evil.example")
    assert refused.value.response.status_code == 403


def test_reconnecting_resumes_every_missed_message_once(desk_app: Any, chat: ChatProcess) -> None:
    visitor = Visitor(chat.url)
    ack = visitor.say("Is anyone there?")
    visitor.drain()
    last = visitor.last_id()
    visitor.close()

    def agent_replies() -> list[int]:
        ticket = Ticket.get_by_id(Message.get_by_id(ack["id"]).ticket_id)
        agent = desk_app.desk.agent
        return [tickets.reply(ticket, agent, f"Answer {n}").id for n in (1, 2)]

    replies = in_app(desk_app, agent_replies)
    back = Visitor(chat.url, token=visitor.token, last_seen=last)
    back.drain(1.0)
    ids = [e["id"] for e in back.seen]
    assert [i for i in ids if i in replies] == replies  # both, in order, once each
    assert len(ids) == len(set(ids))
    assert all(i > last for i in ids)


def test_an_agent_reply_goes_through_the_outbox_to_the_open_socket_and_is_read(
        desk_app: Any, chat: ChatProcess) -> None:
    visitor = Visitor(chat.url)
    ack = visitor.say("Can a person help?")

    def reply() -> Message:
        ticket = Ticket.get_by_id(Message.get_by_id(ack["id"]).ticket_id)
        return tickets.reply(ticket, desk_app.desk.agent, "Hi, Agus here.")

    message = in_app(desk_app, reply)
    got = visitor.message(lambda e: e["id"] == message.id)
    assert got["author"] == "agent" and got["name"] == "Agus Agent"
    assert in_app(desk_app, lambda: Message.get_by_id(message.id).delivery_state) == Delivery.SENT
    visitor.send(type="read", id=got["id"])
    import time

    deadline = time.monotonic() + 10
    while in_app(desk_app, lambda: Message.get_by_id(message.id).delivery_state) != Delivery.READ:
        assert time.monotonic() < deadline, "the read receipt was not recorded"
        time.sleep(0.1)
    # A person has written: the chat is theirs.
    state = in_app(desk_app, lambda: Chat.get(Chat.ticket == message.ticket_id).state)
    assert state == ChatState.ACTIVE


def test_too_long_and_too_many_messages_are_refused_without_storing(
        desk_app: Any, db_url: str, tmp_path: Any) -> None:
    process = ChatProcess(desk_app, db_url, tmp_path / "limits.log",
                          LOKET_LIVECHAT_MAX_MESSAGE="50", LOKET_LIVECHAT_RATE_PER_MINUTE="8")
    try:
        visitor = Visitor(process.url)
        assert visitor.say("x" * 51)["code"] == "too_long"
        outcomes = [visitor.say(f"message {n}")["type"] for n in range(6)]
        assert outcomes[0] == "ack" and "error" in outcomes
        stored = in_app(desk_app, lambda: Message.select().where(
            Message.author_kind == AuthorKind.CONTACT).count())
        assert stored == outcomes.count("ack")
    finally:
        process.stop()


def test_idle_sockets_are_closed_and_one_address_holds_only_so_many(
        desk_app: Any, db_url: str, tmp_path: Any) -> None:
    process = ChatProcess(desk_app, db_url, tmp_path / "idle.log",
                          LOKET_LIVECHAT_IDLE_SECONDS="1.5",
                          LOKET_LIVECHAT_CONNECTIONS_PER_ADDRESS="2")
    try:
        first, second = Visitor(process.url), Visitor(process.url)
        with pytest.raises(InvalidStatus) as refused:
            Visitor(process.url)
        assert refused.value.response.status_code == 429
        second.close()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                first.recv(timeout=10)
        assert closed.value.rcvd.code == 4408  # idle
        Visitor(process.url).close()  # the address has room again
    finally:
        process.stop()


def test_the_visitor_address_behind_trusted_proxies_is_the_one_they_wrote() -> None:
    from plugins.livechat.server import client_address

    remote = ("10.0.0.5", 41000)  # the reverse proxy
    # No trusted proxy: what the client claims is never believed.
    assert client_address(remote, "203.0.113.9", 0) == "10.0.0.5"
    # One proxy: the last entry is the one it wrote; earlier ones may be forged.
    assert client_address(remote, "198.51.100.1, 203.0.113.9", 1) == "203.0.113.9"
    assert client_address(remote, "198.51.100.1, 203.0.113.9, 10.0.0.9", 2) == "203.0.113.9"
    # A request that bypassed the proxies (too few entries) counts as the connecting address.
    assert client_address(remote, "203.0.113.9", 2) == "10.0.0.5"
    assert client_address(remote, None, 1) == "10.0.0.5"
