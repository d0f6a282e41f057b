"""End to end in Chromium: a visitor chats with the bot, asks for a person, an agent answers."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from core import db
from core.models import CannedReply
from plugins.livechat.models import Chat
from tests.factories import build_desk
from tests.livechat_support import ChatProcess, free_port
from tests.test_browser import Console, _skip_reason
from tests.test_livechat_bot import MAIN, Articles

pytestmark = pytest.mark.browser


@pytest.fixture
def desk_site(make_app: Any, db_url: str, tmp_path: Any) -> Iterator[tuple[str, Any]]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from werkzeug.serving import make_server

    port, chat_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    app = make_app(plugins=["livechat"], extra_plugins=(Articles(),), public_url=base,
                   secret_key="browser-test-secret-key-0123456789",
                   **{"livechat.bind": f"127.0.0.1:{chat_port}"})
    app.config["TESTING"] = False
    with app.app_context(), db.connection():
        build_desk()
        CannedReply.create(title="Greeting", body="Hi, thanks for waiting.")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    chat = ChatProcess(app, db_url, tmp_path / "chat.log", main=MAIN, port=chat_port,
                       LOKET_SECRET_KEY="browser-test-secret-key-0123456789")
    try:
        yield base, app
    finally:
        chat.stop()
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from tests.test_browser import CHROMIUM, sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


def test_visitor_bot_hand_over_agent_accepts_and_replies(desk_site: tuple[str, Any],
                                                         browser: Any) -> None:
    base, app = desk_site
    agent = Console(browser, base)
    agent.sign_in("admin@desk.test")
    agent.go("/admin/livechat_console/")
    agent.page.click("text=Set me available")
    agent.page.wait_for_selector("text=You are")
    assert "You are available" in agent.page.inner_text("#livechat-availability")

    visitor = Console(browser, base)
    visitor.go("/chat/?lang=en")
    page = visitor.page
    page.fill("#lkc-name", "Sari")
    page.click(".lkc-intro button[type=submit]")
    page.fill("#lkc-text", "My payout is late")
    page.keyboard.press("Enter")
    page.wait_for_selector(".lkc-bot >> text=When payouts arrive")
    page.click("button.lkc-person")
    page.wait_for_selector(".lkc-bot >> text=passing you to a person")
    page.wait_for_selector(".lkc-status >> text=Waiting for a person")

    agent.page.reload()
    agent.page.click("#livechat-waiting >> text=Accept")
    page.wait_for_selector(".lkc-bot >> text=Ada Admin has joined the chat")
    agent.page.goto(base + "/admin/livechat_console/")
    agent.page.click("#livechat-active a")
    agent.page.wait_for_selector("#livechat-transcript >> text=My payout is late")
    agent.page.click("button.livechat-canned >> text=Greeting")  # a canned reply, inserted
    assert agent.page.input_value("#livechat-text") == "Hi, thanks for waiting."
    agent.page.fill("#livechat-text", "Hi Sari, Ada here. Let me check your payout.")
    agent.page.click("#livechat-reply button[value=reply]")
    agent.page.wait_for_url(re.compile(r"/admin/livechat_console/\d+$"))

    page.wait_for_selector(".lkc-agent >> text=Let me check your payout")
    assert "Ada Admin" in page.inner_text(".lkc-agent")
    # The agent's open page shows the visitor's answer without a reload.
    page.fill("#lkc-text", "Thank you, Ada!")
    page.keyboard.press("Enter")
    agent.page.wait_for_selector("#livechat-transcript >> text=Thank you, Ada!")
    # A reload keeps the conversation, each message once.
    page.reload()
    page.wait_for_selector(".lkc-agent >> text=Let me check your payout")
    assert page.locator(".lkc-agent").count() == 1
    assert page.locator(".lkc-visitor").count() == 2
    # The agent closes the chat; the visitor may rate it.
    agent.page.click("button[value=close]")
    page.click(".lkc-rating >> text=5")
    page.wait_for_selector(".lkc-status >> text=Thank you for your rating.")
    deadline = time.monotonic() + 10
    while True:
        with app.app_context(), db.connection():
            if Chat.select().where(Chat.rating == 5).exists():
                break
        assert time.monotonic() < deadline, "the rating was not stored"
        time.sleep(0.1)
    assert visitor.problems == [] and agent.problems == []
