"""On PostgreSQL one conversation's messages commit in id order, so a widget resuming "after
id N" never misses a lower id that commits later (SQLite has one writer at a time)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from core import db
from core.models import Message
from core.services import tickets
from core.services.unit import unit_of_work
from plugins.livechat import desk
from plugins.livechat.models import Chat
from plugins.livechat.tokens import new_visitor
from tests.factories import build_desk


@pytest.fixture
def desk_app(make_app: Any) -> Any:
    app = make_app(plugins=["livechat"])
    with app.app_context(), db.connection():
        if db.is_sqlite():
            pytest.skip("SQLite serialises every writer; the window is PostgreSQL's")
        app.desk = build_desk()
    return app


def _waiting_on_a_lock() -> bool:
    cursor = db.database.obj.execute_sql(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE %s AND pid <> pg_backend_pid()", ("%FOR NO KEY UPDATE%",))
    return cursor.fetchone()[0] > 0


def test_a_later_message_of_a_chat_waits_for_an_earlier_uncommitted_one(desk_app: Any) -> None:
    with desk_app.app_context(), db.connection():
        visitor, _token = new_visitor()
        first = desk.post(visitor, "c-1", "hello", name="Sari")
        chat = Chat.get(Chat.ticket == Message.get_by_id(first.ack["id"]).ticket_id)
        ticket = chat.ticket
        before = [e for e in desk.resume(visitor, 0).events if e["type"] == "message"]
    inserted, release = threading.Event(), threading.Event()
    ids: dict[str, int] = {}

    def slow_writer() -> None:  # an agent's reply whose transaction is still open
        with desk_app.app_context(), db.connection(), unit_of_work():
            ids["slow"] = tickets.add_bot_message(ticket, "slow", channel="livechat").id
            inserted.set()
            release.wait(30)

    def fast_writer() -> None:  # the bot answering meanwhile
        with desk_app.app_context(), db.connection():
            ids["fast"] = tickets.add_bot_message(ticket, "fast", channel="livechat").id

    slow = threading.Thread(target=slow_writer)
    slow.start()
    assert inserted.wait(30)
    fast = threading.Thread(target=fast_writer)
    fast.start()
    try:
        with desk_app.app_context(), db.connection():
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock():
                # Without the lock the fast writer commits a higher id while the slow one's
                # lower id is not visible yet: a widget resuming then would miss it.
                assert fast.is_alive(), "a later message committed before an earlier one"
                assert time.monotonic() < deadline
                time.sleep(0.02)
            seen_now = desk.resume(visitor, 0).events
            assert [e for e in seen_now if e["type"] == "message"] == before
    finally:
        release.set()
        slow.join(30)
        fast.join(30)
    assert ids["slow"] < ids["fast"]
    with desk_app.app_context(), db.connection():
        after_first = desk.resume(visitor, before[-1]["id"]).events
    assert [e["text"] for e in after_first if e["type"] == "message"] == ["slow", "fast"]
