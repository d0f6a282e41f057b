"""The ticket form suggests articles while the customer types, in a real Chromium (CSP on)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from core import db as core_db
from plugins.knowledge_base import demo
from plugins.knowledge_base.models import SuggestionShown, View

from .factories import build_desk
from .test_browser import Console, _skip_reason, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

FORM = "/help/member/registration-and-login/new"


@pytest.fixture
def kb_server(make_app: Any) -> Iterator[tuple[str, Any]]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from werkzeug.serving import make_server

    app = make_app(plugins=["knowledge_base"], secret_key="browser-test-secret-key-0123456789")
    app.config["TESTING"] = False
    with app.test_request_context("/"), core_db.connection():
        build_desk()
        demo.load()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_typing_a_question_shows_matching_articles_before_submitting(kb_server, browser):  # noqa: F811
    base, app = kb_server
    customer = Console(browser, base, locale="id-ID")
    customer.go(FORM + "?lang=id")
    page = customer.page
    live = page.locator(".live-suggestions")
    assert live.is_hidden()
    page.fill("#subject", "Tidak bisa masuk")
    page.locator("#description").press_sequentially("saya lupa kata sandi", delay=20)
    first = live.locator("li a").first
    first.wait_for(state="visible")
    assert first.text_content() == "Cara mengatur ulang kata sandi"
    assert live.is_visible()
    # Following it opens the article in a new tab and keeps the form as typed.
    with customer.context.expect_page() as opened:
        first.click()
    article = opened.value
    article.wait_for_load_state()
    assert "Cara mengatur ulang kata sandi" in article.title()
    assert page.input_value("#description") == "saya lupa kata sandi"
    assert customer.problems == []  # no console error, no CSP violation
    with app.app_context(), core_db.connection():
        assert SuggestionShown.select().count() >= 1
        assert View.select().where(View.source == "suggest").count() == 1


def test_without_javascript_the_form_links_to_the_search_page(kb_server, browser):  # noqa: F811
    base, _app = kb_server
    customer = Console(browser, base, java_script_enabled=False)
    customer.go(FORM + "?lang=en")
    page = customer.page
    assert page.locator(".live-suggestions").is_hidden()
    page.click("text=Search all help articles")
    page.fill("#kb-q", "verification email spam")
    page.click("form.kb-search button[type=submit]")
    assert page.locator(".kb-results li a").first.text_content() == (
        "The verification email never arrived")


def test_the_console_previews_unsaved_markdown_sanitised_under_its_csp(kb_server, browser):  # noqa: F811
    base, app = kb_server
    admin = Console(browser, base)
    admin.sign_in("admin@desk.test")
    admin.go("/admin/kb_articles/new/")
    page = admin.page
    page.fill("#body", "## Steps\n\n1. Open **Settings**\n\n<script>window.pwned = 1</script>"
                       "<img src=x onerror=\"window.pwned = 2\">")
    page.click("#kb-preview-button")
    preview = page.locator("#kb-preview")
    preview.locator("h2").wait_for(state="visible")
    assert preview.locator("h2").text_content() == "Steps"
    assert preview.locator("ol li strong").text_content() == "Settings"
    assert preview.locator("script, img").count() == 0
    assert "<script>window.pwned = 1</script>" in preview.text_content()  # shown as text
    assert page.evaluate("window.pwned === undefined")
    assert admin.problems == []  # the static script ran under the console's CSP
    with app.test_request_context("/"), core_db.connection():
        from plugins.knowledge_base.models import Article

        assert Article.select().where(Article.body.contains("pwned")).count() == 0  # unsaved
