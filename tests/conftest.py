"""Fixtures: one app and one database per test, on SQLite or (LOKET_TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from core import create_app
from core import db as core_db
from core.migrate import upgrade

from .spies import Spy

PG_URL = os.environ.get("LOKET_TEST_DATABASE_URL", "")
# ../shared beside the checkout; LOKET_TEST_SHARED points elsewhere (a git worktree's tree).
SHARED = Path(os.environ.get("LOKET_TEST_SHARED")
              or Path(__file__).resolve().parents[2] / "shared")


def _pg_admin_connect() -> Any:
    import psycopg2
    from playhouse.db_url import parse

    params = parse(PG_URL)
    return psycopg2.connect(dbname=params["database"], user=params.get("user"),
                            host=params.get("host"), port=params.get("port"),
                            password=params.get("password"))


class FreshContextClient(FlaskClient):
    """Each request gets its own app context, as in production, even inside ``ctx``.

    Flask reuses an app context that is already pushed, so without this a test
    holding ``ctx`` would share ``g`` (and the locale Flask-Babel caches on it)
    between all its requests.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if self.preserve_context:
            return super().open(*args, **kwargs)
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for this test: a SQLite file, or a PostgreSQL schema."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'loket.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = _pg_admin_connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


@pytest.fixture
def make_app(tmp_path: Path, db_url: str) -> Iterator[Any]:
    """``make_app(plugins=[...], extra_plugins=[spy], **config)``: an app on a migrated database."""
    built: list[Any] = []

    def factory(plugins: list[str] | tuple[str, ...] = (), extra_plugins: tuple[Any, ...] = (),
                migrate: bool = True, **config: Any) -> Any:
        settings = {
            "instance_path": str(tmp_path / "instance"),
            "database_url": db_url,
            "jobs": "immediate",
            "plugins": list(plugins),
            "secret_key": "test-secret-key",
            "public_url": "http://desk.test",
            # Abuse limits would trip tests that open many tickets at once; test_limits.py
            # and test_admin_login.py turn them on.
            "rate_limits": False,
            "form_min_seconds": 0,
        }
        settings.update(config)
        app = create_app(settings, extra_plugins=extra_plugins)
        app.config["TESTING"] = True
        app.test_client_class = FreshContextClient
        if migrate:
            upgrade(app.extensions["loket"])
        built.append(app)
        return app

    yield factory
    for app in built:
        core_db.close_all(app.extensions["loket"].database)


@pytest.fixture
def spy() -> Spy:
    return Spy()


@pytest.fixture
def app(make_app: Any, spy: Spy) -> Any:
    return make_app(extra_plugins=(spy,))


@pytest.fixture
def ctx(app: Any) -> Iterator[Any]:
    """An app context with an open connection, for calling services directly."""
    with app.app_context(), core_db.connection():
        yield app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def desk(ctx: Any) -> Any:
    """A small desk: user types, departments with escalation, categories, staff."""
    from .factories import build_desk

    return build_desk()


@pytest.fixture
def web(make_app: Any, spy: Spy) -> Any:
    """An app whose forms skip CSRF (the CSRF tests keep it on with ``make_app``)."""
    app = make_app(extra_plugins=(spy,))
    app.config["WTF_CSRF_ENABLED"] = False
    return app


@pytest.fixture
def site(web: Any) -> Any:
    return web.test_client()


@pytest.fixture
def built(web: Any) -> Iterator[Any]:
    """The small desk of ``tests/factories.py`` in ``web``'s database."""
    from .factories import build_desk

    with web.app_context(), core_db.connection():
        yield build_desk()


def shared_corpus(*parts: str) -> Path:
    """A folder of ../shared/corpora, or skip the test when this checkout has none."""
    path = SHARED.joinpath("corpora", *parts)
    if not path.exists():
        pytest.skip(f"test corpus {path} is not present (it lives beside the repository)")
    return path
