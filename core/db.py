"""One database for SQLite or PostgreSQL, connection per request, and write transactions."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
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
        return _sqlite_write(db)
    return db.atomic()


@contextlib.contextmanager
def _sqlite_write(db: peewee.SqliteDatabase) -> Iterator[None]:
    """BEGIN IMMEDIATE, queued behind a file lock that every writing process shares.

    SQLite's own busy handler polls: a writer that finds the lock taken sleeps
    1, 2, 5, 10... ms before it looks again, so under load most of the time
    goes to sleeping. Queuing on flock() wakes the next writer the moment the
    last one commits. The busy timeout still covers writers that take no
    flock (another tool on the same file).
    """
    with _writer_lock(db.database):
        with db.atomic("IMMEDIATE"):
            yield


class _WriterLock:
    """One flock per process and database file, and a thread lock in front of it."""

    def __init__(self, path: str):
        self.path = path + ".writelock"
        self.thread_lock = threading.Lock()
        self.fd: int | None = None
        self.pid = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self.thread_lock:
            if self.fd is None or self.pid != os.getpid():  # new process after fork
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                self.pid = os.getpid()
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)


_writer_locks: dict[str, _WriterLock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(path: str) -> contextlib.AbstractContextManager:
    if not path or path == ":memory:" or path.startswith("file:"):
        return contextlib.nullcontext()
    with _writer_locks_guard:
        lock = _writer_locks.get(path)
        if lock is None:
            lock = _writer_locks[path] = _WriterLock(os.path.abspath(path))
    return lock()


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


# -- Statements compiled once ----------------------------------------------------------------
#
# Building SQL is most of the cost of a small write with peewee (about 0.15 ms of
# Python per INSERT, more than SQLite takes to run it). The hot path of the help
# center (open a ticket) runs the same few statements with new values, so their
# SQL is built by peewee once per database and shape, then reused. Each cache
# entry is checked against peewee's own parameters when it is made; a shape whose
# parameters do not line up is never cached, so the result is always what peewee
# itself would have run.

_statements: dict[tuple, str | None] = {}


def insert(instance: peewee.Model) -> peewee.Model:
    """INSERT a new model instance (defaults filled in), setting its primary key."""
    model = type(instance)
    meta = model._meta
    data = {name: value for name, value in instance.__data__.items()
            if not (name == meta.primary_key.name and value is None)}
    db = database.obj
    names = tuple(sorted(data))
    key = ("insert", id(db), model, names)
    sql = _statements.get(key, "")
    if sql:
        fields = _insert_fields.get(key)
        params = [field.db_value(data[field.name]) for field in fields]
    else:
        query = model.insert(**data)
        sql, params = query.sql()
        fields = sorted((meta.fields[name] for name in names),
                        key=lambda f: f._sort_key)
        ours = [field.db_value(data[field.name]) for field in fields]
        if key not in _statements:
            _statements[key] = sql if ours == list(params) else None
            _insert_fields[key] = fields
    cursor = db.execute_sql(sql, params)
    if getattr(db, "returning_clause", False) and "RETURNING" in sql:
        new_id = cursor.fetchone()[0]
    else:
        new_id = cursor.lastrowid
    if instance.__data__.get(meta.primary_key.name) is None:
        setattr(instance, meta.primary_key.name, new_id)
    instance._dirty.clear()
    return instance


_insert_fields: dict[tuple, list[peewee.Field]] = {}


def select_one(model: type[peewee.Model], name: str,
               build: Callable[..., peewee.ModelSelect], *args: object) -> peewee.Model | None:
    """The first row of a one-model SELECT whose parameters are exactly ``args``, in order.

    ``name`` identifies the query's shape; ``build(*args)`` makes it with peewee.
    """
    db = database.obj
    key = ("select", id(db), name)
    sql = _statements.get(key, "")
    if not sql:
        query = build(*args).limit(1)
        sql, params = query.sql()
        if key not in _statements:
            _statements[key] = sql if list(params) == [*args, 1] else None
        if not _statements[key]:
            return query.first()
    for row in model.raw(sql, *args, 1):
        return row
    return None


def select_all(model: type[peewee.Model], name: str,
               build: Callable[..., peewee.ModelSelect], *args: object) -> list[peewee.Model]:
    """All rows of a one-model SELECT whose parameters are exactly ``args``, in order."""
    db = database.obj
    key = ("select_all", id(db), name)
    sql = _statements.get(key, "")
    if not sql:
        query = build(*args)
        sql, params = query.sql()
        if key not in _statements:
            _statements[key] = sql if list(params) == list(args) else None
        if not _statements[key]:
            return list(query)
    return list(model.raw(sql, *args))


def clear_statements() -> None:
    """Forget compiled statements (a database object was replaced)."""
    _statements.clear()
    _insert_fields.clear()
