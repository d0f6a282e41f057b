"""Two chat processes sharing Redis deliver to each other's sockets (skipped without Redis)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from core import db
from core.models import Message, Ticket
from core.services import tickets
from tests.factories import build_desk
from tests.livechat_support import ChatProcess, Visitor

REDIS_URL = os.environ.get("LOKET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_or_skip() -> None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        pytest.skip(f"no Redis at {REDIS_URL} ({exc})")


def test_two_chat_processes_deliver_to_each_others_sockets_through_redis(
        make_app: Any, db_url: str, tmp_path: Any) -> None:
    _redis_or_skip()
    channel = f"loket-livechat-test-{uuid.uuid4().hex}"
    app = make_app(plugins=["livechat"], redis_url=REDIS_URL, jobs="immediate",
                   jobs_name=f"test-{uuid.uuid4().hex}", **{"livechat.redis_channel": channel})
    with app.app_context(), db.connection():
        desk = build_desk()
    settings = {"LOKET_REDIS_URL": REDIS_URL, "LOKET_LIVECHAT_REDIS_CHANNEL": channel,
                # Polling would find the messages without Redis: make it too slow to matter.
                "LOKET_LIVECHAT_POLL_SECONDS": "3600"}
    one = ChatProcess(app, db_url, tmp_path / "one.log", **settings)
    two = ChatProcess(app, db_url, tmp_path / "two.log", **settings)
    try:
        first_tab = Visitor(one.url)
        second_tab = Visitor(two.url, token=first_tab.token)
        ack = first_tab.say("written on process one")
        # The other process's socket gets the visitor's own message and the bot's answer.
        seen = second_tab.message(lambda e: e["id"] == ack["id"])
        assert seen["text"] == "written on process one"
        second_tab.message(lambda e: e["author"] == "bot")

        def reply() -> Message:
            ticket = Ticket.get_by_id(Message.get_by_id(ack["id"]).ticket_id)
            return tickets.reply(ticket, desk.agent, "from the web process")

        with app.app_context(), db.connection():
            answer = reply()
        # The agent's reply, published by deliver_message, reaches both processes' sockets.
        for tab in (first_tab, second_tab):
            got = tab.message(lambda e, answer=answer: e["id"] == answer.id)
            assert got["text"] == "from the web process"
        for tab in (first_tab, second_tab):
            tab.drain()
            ids = [e["id"] for e in tab.seen]
            assert len(ids) == len(set(ids))
    finally:
        one.stop()
        two.stop()
