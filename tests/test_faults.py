"""Faults and abuse: the database goes away; a stranger names someone else's contact.

A database outage answers 503 with Retry-After (styled page, JSON for the API),
logs one line when it starts and one when it ends, and static files still load.
A name typed on a form belongs to that ticket, never to the address's contact.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from core import db as core_db

from .conftest import PG_URL


@pytest.fixture
def unreachable(make_app: Any, tmp_path: Path) -> Any:
    """An app on a migrated database, and a way to swap in one that cannot be reached."""
    app = make_app()
    state = app.extensions["loket"]
    good = state.database
    if PG_URL:
        pytest.importorskip("psycopg2")
        # Nothing listens on port 1: the connection is refused at once.
        bad_url = "postgresql://postgres@127.0.0.1:1/loket"
    else:
        folder = tmp_path / "not-a-file.db"
        folder.mkdir()  # SQLite cannot open a folder as its database
        bad_url = f"sqlite:///{folder}"
    bad = core_db.open_database(bad_url)

    def down(is_down: bool) -> None:
        state.database = bad if is_down else good

    yield app, down
    down(False)
    core_db.close_all(bad)


def test_a_database_outage_answers_503_with_retry_after_on_pages(unreachable: Any) -> None:
    app, down = unreachable
    down(True)
    client = app.test_client()
    for path in ("/", "/help/member/", "/t/1/somekey", "/admin/"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert int(response.headers["Retry-After"]) > 0
        html = response.get_data(as_text=True)
        assert "/static/loket/loket.css" in html  # the page is styled...
    css = client.get("/static/loket/loket.css")
    assert css.status_code == 200 and b"{" in css.get_data()  # ...and the CSS loads


def test_a_database_outage_answers_the_api_with_a_json_503(unreachable: Any) -> None:
    app, down = unreachable
    down(True)
    client = app.test_client()
    for method, path in (("GET", "/api/v1/user-types"), ("GET", "/api/v1/tickets/1"),
                         ("POST", "/api/v1/tickets")):
        response = client.open(path, method=method, json={})
        assert response.status_code == 503, path
        assert response.headers["Retry-After"]
        assert response.get_json()["error"]["code"] == "unavailable"


def test_an_outage_is_logged_once_and_its_end_once(unreachable: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    app, down = unreachable
    client = app.test_client()
    caplog.set_level(logging.INFO)
    down(True)
    for _ in range(25):
        assert client.get("/").status_code == 503
    down(False)
    assert client.get("/").status_code == 200
    assert client.get("/").status_code == 200
    records = [r for r in caplog.records if r.name == "core.errors"]
    assert [r.levelname for r in records] == ["ERROR", "WARNING"]
    assert "database unavailable" in records[0].getMessage()
    assert "back" in records[1].getMessage()
    assert not any(r.exc_info for r in caplog.records)  # no traceback per request
    # A second outage is a new one: it is told again.
    down(True)
    assert client.get("/").status_code == 503
    assert sum(r.levelname == "ERROR" for r in caplog.records if r.name == "core.errors") == 2


def test_static_files_are_served_without_opening_a_connection(unreachable: Any) -> None:
    app, down = unreachable
    down(True)
    client = app.test_client()
    assert client.get("/static/loket/loket.css").status_code == 200
    assert app.extensions["loket"].database.is_closed()


# -- Contact names: a name given on a form is the ticket's -----------------------------------


def test_a_name_typed_with_someone_elses_address_stays_on_that_ticket(make_app: Any) -> None:
    from core.models import Contact, IdentityKind, Ticket
    from core.passwords import new_api_token
    from core.services.tickets import Identity, open_ticket, receive_message

    from .factories import PASSWORD, build_desk

    app = make_app()
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), core_db.connection():
        desk = build_desk()
        victim = "rina@example.id"
        # A stranger writes first with Rina's address, under a name of their choosing...
        first = open_ticket(identity=Identity(IdentityKind.EMAIL, victim, name="Mallory"),
                            subject="Hello", text="I am Rina, honest.")
        # ...then Rina herself writes, from the form and by email.
        mine = open_ticket(identity=Identity(IdentityKind.EMAIL, victim, name="Rina Real"),
                           subject="Refund", text="Where is my refund?", category=desk.login)
        mailed = receive_message(channel="email",
                                 identity=Identity(IdentityKind.EMAIL, victim, name="R. Real"),
                                 text="Me again.", subject="Still waiting").ticket
        contact = Contact.get_by_id(mine.contact_id)
        assert contact.id == first.contact_id == mailed.contact_id  # one customer...
        assert contact.name == "Mallory"  # ...named once, when it was created, never renamed
        assert Ticket.get_by_id(first.id).requester == "Mallory"
        assert Ticket.get_by_id(mine.id).requester == "Rina Real"
        assert Ticket.get_by_id(mailed.id).requester == "R. Real"

        # A contact made without a name is not named by whoever writes next either.
        open_ticket(identity=Identity(IdentityKind.EMAIL, "quiet@example.id"), subject="Hi",
                    text="No name given.")
        open_ticket(identity=Identity(IdentityKind.EMAIL, "quiet@example.id", name="Someone"),
                    subject="Hi again", text="A name now.")
        assert Contact.get(Contact.email == "quiet@example.id").name == ""

        token, hashed = new_api_token()
        desk.agent.api_token_hash = hashed
        desk.agent.save()

    # The console and the API show Rina's ticket under the name she gave.
    console = app.test_client()
    console.post("/admin/login", data={"email": "admin@desk.test", "password": PASSWORD})
    page = console.get(f"/admin/ticket/{mine.id}/").get_data(as_text=True)
    assert "Rina Real" in page and "Mallory" not in page
    listing = console.get("/admin/tickets/").get_data(as_text=True)
    assert "Rina Real" in listing
    body = app.test_client().get(f"/api/v1/tickets/{mine.id}",
                                 headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["contact"]["name"] == "Rina Real"
    assert {m["author"]["name"] for m in body["messages"]} == {"Rina Real"}


def test_the_help_center_form_names_the_ticket_not_the_contact(make_app: Any) -> None:
    from core.models import Contact, Ticket

    from .factories import build_desk

    app = make_app()
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), core_db.connection():
        build_desk()
    client = app.test_client()
    url = "/help/member/refunds/new"
    client.get(url)  # the form's session secret
    for name in ("First Writer", "Real Owner"):
        response = client.post(url, data={
            "name": name, "email": "owner@example.id", "subject": f"From {name}",
            "description": "I was charged twice for one month."},
            content_type="multipart/form-data")
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context(), core_db.connection():
        assert Contact.get(Contact.email == "owner@example.id").name == "First Writer"
        assert {t.subject: t.requester for t in Ticket.select()} == {
            "From First Writer": "First Writer", "From Real Owner": "Real Owner"}
