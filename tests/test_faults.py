"""Faults: the database goes away (503 with Retry-After, one log line per outage, CSS still served)."""

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
