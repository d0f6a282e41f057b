"""End to end in a real Chromium: the console and the help center working together."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from core.models import Category, CategoryField, Delivery, Message, Ticket

from .factories import PASSWORD
from .samples import PNG

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None


def _skip_reason() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed"
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (install Debian's chromium; never `playwright install`)"
    return None


@pytest.fixture
def live_server(make_app: Any) -> Iterator[tuple[str, Any]]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from werkzeug.serving import make_server

    from core import db as core_db

    from .factories import build_desk

    app = make_app(secret_key="browser-test-secret-key-0123456789")
    app.config["TESTING"] = False
    with app.app_context(), core_db.connection():
        build_desk()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu",
                  "--disable-component-update", "--disable-sync"])
        try:
            yield chromium
        finally:
            chromium.close()


class Console:
    """A browser page that records console errors and CSP violations."""

    def __init__(self, browser: Any, base: str, **options: Any):
        self.context = browser.new_context(**options)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.base = base
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("dialog", lambda dialog: dialog.accept())

    def _console(self, message: Any) -> None:
        text = message.text
        if (message.location or {}).get("url", "").endswith("/favicon.ico"):
            return  # the browser's own guess; Loket serves none
        if message.type == "error" or "Content Security Policy" in text:
            self.problems.append(f"{message.type}: {text} ({self.page.url})")

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def sign_in(self, email: str) -> None:
        self.go("/admin/login")
        self.page.fill("#email", email)
        self.page.fill("#password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(re.compile(r"/admin/$"))


def test_category_ticket_reply_round_trip(live_server: tuple[str, Any], browser: Any,
                                          tmp_path: Any) -> None:
    base, app = live_server

    # 1. An admin creates a category with an extra, required field.
    admin = Console(browser, base)
    admin.sign_in("admin@desk.test")
    assert admin.page.locator("svg.loket-chart").count() == 5  # the dashboard
    admin.go("/admin/categories/new/")
    page = admin.page
    page.select_option("#user_type", label="Member")
    page.fill("#name", "Account recovery")
    page.fill("#slug", "account-recovery")
    page.fill("#position", "5")
    page.select_option("#default_department", label="Support")
    page.click("#fields-button")  # "Add Category Field": loket_admin.js, no inline handler
    page.fill("#fields-0-name", "recovery_code")
    page.fill("#fields-0-label", "Recovery code")
    page.check("#fields-0-required")
    page.select_option("#fields-0-kind", "text")
    page.click("input[type=submit][value=Save]")
    page.wait_for_url(re.compile(r"/admin/categories/"))
    assert "Account recovery" in page.content()
    with app.app_context():
        category = Category.get(Category.slug == "account-recovery")
        field = CategoryField.get(CategoryField.category == category)
        assert field.required and field.label == "Recovery code"

    # 2. The public form shows the field and refuses a ticket without it.
    customer = Console(browser, base)
    customer.go("/help/member/account-recovery/new")
    form_page = customer.page
    code = form_page.get_by_label(re.compile("Recovery code"))
    assert code.count() == 1
    form_page.fill("[name=name]", "Cora Customer")
    form_page.fill("[name=email]", "cora@example.test")
    form_page.fill("[name=subject]", "Locked out of my account")
    form_page.fill("[name=description]", "I lost my phone and my second factor.")
    # The server refuses it too, not only the browser's own check.
    code.evaluate("el => el.removeAttribute('required')")
    form_page.locator("form button[type=submit], form input[type=submit]").last.click()
    form_page.wait_for_load_state()
    assert "/new" in form_page.url
    with app.app_context():
        assert Ticket.select().count() == 0
    form_page.get_by_label(re.compile("Recovery code")).fill("RC-1234")
    form_page.locator("form button[type=submit], form input[type=submit]").last.click()
    form_page.wait_for_url(re.compile(r"/t/\d+/"))
    tracking_url = form_page.url
    with app.app_context():
        ticket = Ticket.get()
        assert ticket.category_id == category.id
        assert ticket.department_id is not None
        assert "RC-1234" in str(ticket.form_data)

    # 3. An agent of the department finds it in the inbox and replies from the ticket page.
    agent = Console(browser, base)
    agent.sign_in("agent@desk.test")
    agent.go("/admin/tickets/")
    agent.page.click(f"a[href='/admin/ticket/{ticket.id}/'] >> nth=0")
    agent.page.wait_for_url(re.compile(rf"/admin/ticket/{ticket.id}/"))
    assert "RC-1234" in agent.page.content()
    agent.page.fill("#reply-text", "We have reset your second factor; sign in with your code.")
    steps = tmp_path / "steps.png"
    steps.write_bytes(PNG)
    agent.page.set_input_files("#reply-files", str(steps))
    agent.page.click("#reply-form button[type=submit]")
    agent.page.wait_for_selector("text=No channel can reach this customer")
    with app.app_context():
        reply = Message.get((Message.ticket == ticket.id) & (Message.author_kind == "staff"))
        assert reply.delivery_state == Delivery.PORTAL
        assert [a.filename for a in reply.attachments] == ["steps.png"]
    # A bulk action through the list's menu (loket_admin.js wires Flask-Admin's actions).
    agent.go("/admin/tickets/")
    agent.page.check("input.action-checkbox")
    agent.page.click("text=With selected")
    agent.page.click("[data-loket-action=assign_me]")
    agent.page.wait_for_selector("text=Assigned to you")
    with app.app_context():
        assert Ticket.get_by_id(ticket.id).assignee.email == "agent@desk.test"

    # 4. The customer sees the answer on the tracking page.
    customer.page.goto(tracking_url)
    assert "We have reset your second factor" in customer.page.content()
    assert customer.page.locator("a", has_text="steps.png").count() == 1

    # No page of the console broke its Content Security Policy or threw.
    assert admin.problems == [], admin.problems
    assert agent.problems == [], agent.problems
