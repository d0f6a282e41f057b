"""The visitor sees the agent typing and "Seen" on their messages, over a real socket against a
real chat process; with the database alone and through Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core import db
from core.models import Message
from plugins.livechat import desk
from plugins.livechat.models import Chat
from tests.factories import build_desk, make_staff
from tests.livechat_support import ChatProcess, Visitor
from tests.test_admin_helpers import csrf_token, sign_in

REDIS_URL = os.environ.get("LOKET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_ok() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


@pytest.fixture(params=["database", "redis"])
def setup(request: Any, make_app: Any, db_url: str, tmp_path: Any
          ) -> Iterator[tuple[Any, ChatProcess]]:
    if request.param == "redis":
        if not _redis_ok():
            pytest.skip(f"no Redis at {REDIS_URL}")
        channel = f"loket-livechat-test-{uuid.uuid4().hex}"
        app = make_app(plugins=["livechat"], redis_url=REDIS_URL,
                       **{"livechat.redis_channel": channel})
        settings = {"LOKET_REDIS_URL": REDIS_URL, "LOKET_LIVECHAT_REDIS_CHANNEL": channel,
                    "LOKET_LIVECHAT_POLL_SECONDS": "3600"}
    else:
        app = make_app(plugins=["livechat"])
        settings = {}
    with app.app_context(), db.connection():
        app.desk = build_desk()
        make_staff("other@desk.test", "Odi Other", departments=(app.desk.support,))
    process = ChatProcess(app, db_url, tmp_path / "chat.log", **settings)
    yield app, process
    process.stop()


def _in(app: Any, fn: Any) -> Any:
    with app.app_context(), db.connection():
        return fn()


def test_the_visitor_sees_the_agent_typing_and_seen_on_read_messages(
        setup: tuple[Any, ChatProcess]) -> None:
    app, chat = setup
    visitor = Visitor(chat.url, name="Sari")
    first = visitor.say("Hello, anyone?")
    row = _in(app, lambda: Chat.get(Chat.ticket == Message.get_by_id(first["id"]).ticket_id))
    _in(app, lambda: desk.accept(Chat.get_by_id(row.id), app.desk.agent))
    second = visitor.say("My payout is late")
    url = f"/admin/livechat_console/{row.id}"

    # A colleague looking at the chat is not its agent: nothing is marked seen.
    other = app.test_client()
    sign_in(other, "other@desk.test")
    assert other.get(url).status_code in (200, 404)
    assert _in(app, lambda: Chat.get_by_id(row.id).agent_read_id) == 0

    agent = app.test_client()
    sign_in(agent, "agent@desk.test")
    assert agent.get(url).status_code == 200
    seen = visitor.next(lambda e: e["type"] == "seen")
    assert seen == {"type": "seen", "upto": second["id"]}

    # Typing needs the session's CSRF token (the page sends it in X-CSRFToken).
    assert agent.post(url + "/typing").status_code == 400
    token = csrf_token(agent, url)
    assert agent.post(url + "/typing", headers={"X-CSRFToken": token}).status_code == 204
    typing = visitor.next(lambda e: e["type"] == "typing")
    assert typing["name"] == "Agus Agent"
    # Only the chat's agent types into it.
    other_token = csrf_token(other, "/admin/profile/")
    assert other.post(url + "/typing", headers={"X-CSRFToken": other_token}).status_code \
        in (204, 404)
    visitor.drain()
    assert [e["name"] for e in visitor.events if e["type"] == "typing"] == ["Agus Agent"]

    # Back after a reload: the state says how far the agent has read.
    visitor.close()
    again = Visitor(chat.url, token=visitor.token)
    state = again.next(lambda e: e["type"] == "state")
    assert state["seen"] == second["id"]
    again.close()
