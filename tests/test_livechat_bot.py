"""The chat bot over a real socket: articles, hand-over, silence after a person, offline fallback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core import db, hookimpl
from core.hookspecs import Suggestion
from core.models import AuthorKind, ContactIdentity, IdentityKind, Message, Ticket
from core.services import tickets
from plugins.livechat import desk
from plugins.livechat.models import Chat, ChatState
from tests.factories import build_desk
from tests.livechat_support import ChatProcess, Visitor


class Articles:
    """A knowledge base stand-in: one article about payouts."""

    @hookimpl
    def suggest_answers(self, query: str, language: str, limit: int) -> list[Suggestion]:
        if "payout" not in query.lower():
            return []
        return [Suggestion(title="When payouts arrive", url="http://desk.test/kb/payouts",
                           excerpt="Payouts arrive within 3 business days.", score=1.0)]


def chat_main(host: str, port: int) -> None:
    """The chat process with the article stand-in, as a knowledge-base plugin would add it."""
    from core import create_app
    from plugins.livechat.server import run

    run(create_app(extra_plugins=(Articles(),)), host, port)


MAIN = "from tests.test_livechat_bot import chat_main; chat_main"


@pytest.fixture
def desk_app(make_app: Any) -> Any:
    app = make_app(plugins=["livechat"], extra_plugins=(Articles(),))
    with app.app_context(), db.connection():
        app.desk = build_desk()
    return app


def _chat(desk_app: Any, db_url: str, tmp_path: Any, **settings: str) -> ChatProcess:
    return ChatProcess(desk_app, db_url, tmp_path / "chat.log", main=MAIN, **settings)


@pytest.fixture
def chat(desk_app: Any, db_url: str, tmp_path: Any) -> Iterator[ChatProcess]:
    process = _chat(desk_app, db_url, tmp_path)
    yield process
    process.stop()


def _in(app: Any, fn: Any) -> Any:
    with app.app_context(), db.connection():
        return fn()


def _chat_of(app: Any, message_id: int) -> Chat:
    return _in(app, lambda: Chat.get(Chat.ticket == Message.get_by_id(message_id).ticket_id))


def _bot_says(visitor: Visitor, words: str) -> dict[str, Any]:
    return visitor.message(lambda e: e["author"] == "bot" and words in e["text"])


def test_the_bot_offers_articles_then_hands_over_after_two_unhelpful_answers_offline(
        desk_app: Any, chat: ChatProcess) -> None:
    visitor = Visitor(chat.url)
    assert "What can I help you with?" in visitor.greeting
    ack = visitor.say("My payout is late")
    offered = _bot_says(visitor, "When payouts arrive")
    assert "http://desk.test/kb/payouts" in offered["text"]
    assert "talk to a person" in offered["text"]
    visitor.send(type="answer", solved=False)
    _bot_says(visitor, "describe the problem in other words")
    visitor.say("payout still missing")
    _bot_says(visitor, "When payouts arrive")
    visitor.say("no")
    # Two unhelpful answers: the bot says it hands over; nobody is online, and it says so.
    _bot_says(visitor, "did not help")
    _bot_says(visitor, "Nobody from our team is available")
    state = visitor.next(lambda e: e["type"] == "state" and e["state"] == ChatState.OFFLINE)
    assert state["state"] == "offline"
    row = _chat_of(desk_app, ack["id"])
    assert row.handover_reason == "unhelpful" and row.handed_over_at is not None
    # Offline fallback: the visitor leaves an address; the ticket stays open for it.
    visitor.send(type="email", email="sari@example.com")
    thanks = _bot_says(visitor, "sari@example.com")
    assert f"http://desk.test/t/{_chat_of(desk_app, ack['id']).ticket_id}/" in thanks["text"]

    def identity() -> Any:
        ticket = Ticket.get_by_id(row.ticket_id)
        return ticket.status, ContactIdentity.get_or_none(
            (ContactIdentity.contact == ticket.contact_id)
            & (ContactIdentity.kind == IdentityKind.EMAIL))

    status, email = _in(desk_app, identity)
    assert status in ("new", "open") and email.value == "sari@example.com"


def test_nothing_matching_hands_over_at_once_to_an_available_agent(
        desk_app: Any, chat: ChatProcess) -> None:
    _in(desk_app, lambda: desk.set_available(desk_app.desk.admin, True))
    visitor = Visitor(chat.url)
    ack = visitor.say("I cannot change my avatar")
    _bot_says(visitor, "could not find an answer")
    _bot_says(visitor, "passing you to a person")
    row = _chat_of(desk_app, ack["id"])
    assert row.state == ChatState.WAITING and row.offered_to_id == desk_app.desk.admin.id


def test_the_bot_is_silent_once_a_person_replied_and_a_reopened_chat_does_not_loop(
        desk_app: Any, chat: ChatProcess) -> None:
    admin = desk_app.desk.admin
    _in(desk_app, lambda: desk.set_available(admin, True))
    visitor = Visitor(chat.url)
    ack = visitor.say("a person please")
    _bot_says(visitor, "passing you to a person")
    row = _chat_of(desk_app, ack["id"])
    _in(desk_app, lambda: desk.accept(row, admin))
    visitor.message(lambda e: "has joined the chat" in e["text"])
    reply = _in(desk_app, lambda: desk.agent_reply(Chat.get_by_id(row.id), admin, "Hello!"))
    visitor.message(lambda e: e["id"] == reply.id)
    visitor.say("My payout is late")  # would match an article: the bot must stay quiet
    visitor.drain(1.5)
    later = _in(desk_app, lambda: Message.select().where(
        (Message.ticket == row.ticket_id) & (Message.author_kind == AuthorKind.BOT)
        & (Message.id > reply.id)).count())
    assert later == 0  # nothing from the bot after the person wrote
    # Closed, then the visitor writes again: back to the queue, without the bot or a
    # second hand-over notice.
    _in(desk_app, lambda: desk.close(Chat.get_by_id(row.id), tickets.Actor.agent(admin)))
    visitor.say("one more thing about my payout")
    visitor.drain(1.5)
    after = _in(desk_app, lambda: list(Message.select().where(
        (Message.ticket == row.ticket_id) & (Message.author_kind == AuthorKind.BOT))))
    assert not any("When payouts arrive" in m.body_text for m in after)
    assert _in(desk_app, lambda: Chat.get_by_id(row.id).state) in (ChatState.WAITING,
                                                                    ChatState.OFFLINE)


def test_a_visitor_who_solved_it_with_an_article_counts_as_bot_resolved(
        desk_app: Any, chat: ChatProcess) -> None:
    visitor = Visitor(chat.url)
    ack = visitor.say("where is my payout")
    _bot_says(visitor, "When payouts arrive")
    visitor.say("yes thanks")
    _bot_says(visitor, "glad that helped")
    assert _chat_of(desk_app, ack["id"]).bot_resolved
    report = _in(desk_app, desk.report)
    assert report["bot_resolved"] == 1 and report["handoff_rate"] == 0.0


class Model(BaseHTTPRequestHandler):
    """An OpenAI-compatible stand-in: answers per the question, or never (to time out)."""

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = body["messages"][-1]["content"]
        self.server.requests.append(body)  # type: ignore[attr-defined]
        if "slow" in question:
            time.sleep(5)
        if "beyond" in question:
            content = "Payouts are instant if you pay a fee."  # no citation: made up
        elif "uncovered" in question:
            content = "NOT_COVERED"
        else:
            content = "Payouts arrive within 3 business days [1]."
        data = json.dumps({"choices": [{"message": {"role": "assistant",
                                                    "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def model() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Model)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_a_language_model_answers_from_articles_with_citations_and_hands_over_otherwise(
        desk_app: Any, db_url: str, tmp_path: Any, model: Any) -> None:
    process = _chat(desk_app, db_url, tmp_path,
                    LOKET_LIVECHAT_LLM_URL=f"http://127.0.0.1:{model.server_port}",
                    LOKET_LIVECHAT_LLM_MODEL="stand-in", LOKET_LIVECHAT_LLM_TIMEOUT="1")
    try:
        cited = Visitor(process.url)
        cited.say("when does my payout arrive")
        answer = _bot_says(cited, "3 business days [1]")
        assert "[1] When payouts arrive: http://desk.test/kb/payouts" in answer["text"]
        sent = model.requests[-1]["messages"][0]["content"]
        assert "Payouts arrive within 3 business days." in sent and "NOT_COVERED" in sent

        beyond = Visitor(process.url)
        beyond.say("payout beyond the rules?")
        _bot_says(beyond, "do not cover that")  # an uncited answer is not shown
        assert all("fee" not in e["text"] for e in beyond.seen)

        slow = Visitor(process.url)
        slow.say("slow payout question")
        # The model timed out: the bot lists the articles instead of waiting.
        listed = slow.message(lambda e: e["author"] == "bot" and "These articles" in e["text"],
                              timeout=15)
        assert "http://desk.test/kb/payouts" in listed["text"]
    finally:
        process.stop()
