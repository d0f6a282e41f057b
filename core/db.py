"""One database for SQLite or PostgreSQL, connection per request, and write transactions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import peewee
from playhouse.db_url import connect

# Every model binds to this proxy; create_app points it at the app's database.
database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "synchronous": "normal",
    "cache_size": -16000,
}


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


def open_database(url: str) -> peewee.Database:
    """Build the database object for a URL; SQLite gets WAL, foreign keys, a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return connect(url, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    scheme, rest = url.split("://", 1)
    if scheme in ("postgres", "postgresql"):
        # A pool: opening a PostgreSQL connection costs more than most requests.
        return connect(f"postgresql+pool://{rest}", max_connections=32, stale_timeout=300,
                       timeout=10)
    return connect(url)


def close_all(db: peewee.Database) -> None:
    """Close every connection this database object holds (pooled ones included)."""
    if hasattr(db, "close_all"):
        db.close_all()
    elif not db.is_closed():
        db.close()


def bind(db: peewee.Database) -> None:
    database.initialize(db)


def is_sqlite(db: peewee.Database | None = None) -> bool:
    db = db or database.obj
    return isinstance(db, peewee.SqliteDatabase)


def write_transaction() -> contextlib.AbstractContextManager:
    """A transaction that will write.

    On SQLite it begins IMMEDIATE, taking the write lock up front: a deferred
    transaction that reads and then writes fails at once with "database is
    locked" when another process wrote in between, whatever the busy timeout.
    On PostgreSQL the argument would be read as an isolation level, so it is
    decided here, once.
    """
    db = database.obj
    if is_sqlite(db):
        # Nested calls (a savepoint) cannot take a lock mode.
        if db.in_transaction():
            return db.atomic()
        return db.atomic("IMMEDIATE")
    return db.atomic()


@contextlib.contextmanager
def connection() -> Iterator[peewee.Database]:
    """Open a connection for a unit of work outside a request (CLI, jobs)."""
    db = database.obj
    opened = db.connect(reuse_if_open=True)
    try:
        yield db
    finally:
        if opened and not db.is_closed():
            db.close()
