"""Switching language on a ticket form keeps what the visitor typed (the switcher posts it back)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core import db as core_db
from core.models import Message, Status, Ticket

from .test_browser import Console, browser, live_server  # noqa: F401 - fixtures
from .test_i18n_pages import LOGIN_FORM, _open, built_app, text_of

TYPED = {"name": "Siti Rahma", "email": "siti@example.test", "subject": "Tidak bisa masuk",
         "description": "Email verifikasi tidak pernah sampai", "extra_registered_email": ""}


@pytest.fixture
def desk_app(make_app: Any) -> Any:
    return built_app(make_app)


def _tickets(app: Any) -> int:
    with app.app_context(), core_db.connection():
        return Ticket.select().count()


def test_on_a_ticket_form_the_switcher_is_buttons_bound_to_the_form(desk_app: Any) -> None:
    page = desk_app.test_client().get(LOGIN_FORM + "?lang=en").get_data(as_text=True)
    assert '<form class="form" id="ticket-form"' in page
    buttons = re.findall(r'<button type="submit" form="ticket-form" formaction="([^"]+)" '
                         r'formnovalidate name="switch_language" value="(\w+)"', page)
    assert buttons == [("?lang=en", "en"), ("?lang=id", "id"), ("?lang=fil", "fil")]
    # Elsewhere it stays plain links.
    assert 'form="ticket-form"' not in desk_app.test_client().get("/help/member/").get_data(
        as_text=True)


def test_switching_after_a_failed_submission_keeps_the_typed_text_and_sends_nothing(
        desk_app: Any) -> None:
    client = desk_app.test_client()
    failed = client.post(LOGIN_FORM + "?lang=en", data=TYPED)  # registered email missing
    assert failed.status_code == 200 and "Please correct the fields" in text_of(failed)
    switched = client.post(LOGIN_FORM + "?lang=id", data={**TYPED, "switch_language": "id"})
    html = switched.get_data(as_text=True)
    assert switched.status_code == 200 and '<html lang="id">' in html
    assert "Kirimkan pertanyaan Anda" in text_of(switched)
    for value in ("Siti Rahma", "siti@example.test", "Tidak bisa masuk"):
        assert f'value="{value}"' in html
    assert "Email verifikasi tidak pernah sampai</textarea>" in html
    assert "flash-error" not in html  # a language switch is not a failed submission
    assert _tickets(desk_app) == 0
    # The language stays chosen; the next real submission is sent in it.
    sent = client.post(LOGIN_FORM, data={**TYPED, "extra_registered_email": "siti@example.test"})
    assert sent.status_code == 302
    with desk_app.app_context(), core_db.connection():
        assert Ticket.get().language == "id"


def test_a_switch_needs_the_forms_csrf_token_like_any_post(make_app: Any) -> None:
    from .factories import build_desk

    app = make_app()  # CSRF on
    with app.app_context(), core_db.connection():
        build_desk()
    response = app.test_client().post(LOGIN_FORM + "?lang=id",
                                      data={**TYPED, "switch_language": "id"})
    assert response.status_code == 400


def test_on_the_tracking_page_the_switcher_keeps_the_typed_reply(desk_app: Any) -> None:
    ticket = _open(desk_app, "en")
    tracking = f"/t/{ticket.id}/{ticket.access_key}"
    client = desk_app.test_client()
    page = client.get(tracking).get_data(as_text=True)
    assert '<form class="form" id="reply-form"' in page
    buttons = re.findall(r'<button type="submit" form="reply-form" formaction="([^"]+)" '
                         r'formnovalidate name="switch_language" value="(\w+)"', page)
    assert buttons == [(f"{tracking}/reply?lang={code}", code) for code in ("en", "id", "fil")]

    def messages() -> int:
        with desk_app.app_context(), core_db.connection():
            return Message.select().where(Message.ticket == ticket.id).count()

    before = messages()
    typed = "Saya masih belum bisa masuk"
    switched = client.post(f"{tracking}/reply?lang=id",
                           data={"text": typed, "switch_language": "id"})
    html = switched.get_data(as_text=True)
    assert switched.status_code == 200 and '<html lang="id">' in html
    assert f"{typed}</textarea>" in html and "Kirim balasan" in html
    assert "flash-error" not in html and "flash-success" not in html
    assert messages() == before  # a switch sends nothing
    # The reply is sent when the customer sends it, in the language now chosen.
    sent = client.post(f"{tracking}/reply", data={"text": typed})
    assert sent.status_code == 302 and messages() == before + 1
    assert "Kirim balasan" in text_of(client.get(tracking))
    # A closed ticket has no reply form: its switcher is plain links again.
    with desk_app.app_context(), core_db.connection():
        Ticket.update(status=Status.CLOSED).where(Ticket.id == ticket.id).execute()
    closed = client.get(tracking).get_data(as_text=True)
    assert 'form="reply-form"' not in closed and 'lang="fil" hreflang="fil"' in closed


@pytest.mark.browser
def test_in_a_browser_the_switcher_carries_the_typed_text_into_the_new_language(
        live_server: Any, browser: Any) -> None:  # noqa: F811
    base, app = live_server
    visitor = Console(browser, base, locale="en-US")
    visitor.go(LOGIN_FORM)
    page = visitor.page
    page.fill("#name", "Juan dela Cruz")
    page.fill("#subject", "Hindi makapag-login")
    page.fill("#description", "Hindi dumating ang verification email")
    # Required fields are still empty: the switch goes through anyway (formnovalidate).
    page.click("button[name=switch_language][value=fil]")
    page.wait_for_url("**lang=fil")
    assert page.locator("html").get_attribute("lang") == "fil"
    assert page.input_value("#name") == "Juan dela Cruz"
    assert page.input_value("#subject") == "Hindi makapag-login"
    assert page.input_value("#description") == "Hindi dumating ang verification email"
    assert page.locator(".flash-error").count() == 0
    assert visitor.problems == []
    with app.app_context(), core_db.connection():
        assert Ticket.select().count() == 0
