"""One database for SQLite or PostgreSQL: connections, write transactions, named statements."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import itertools
import logging
import os
import re
import select
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee
from playhouse.db_url import connect, parse
from playhouse.pool import PooledPostgresqlDatabase

log = logging.getLogger(__name__)

# Every model binds to this proxy; create_app points it at the app's database.
database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "synchronous": "normal",
    "cache_size": -16000,
    # Temporary files in memory. A statement that fires triggers in a transaction
    # keeps a statement journal (so that it alone can be undone); inserting a message
    # (its search index trigger) journals a dozen pages, and with the default store
    # SQLite writes them to a file under /var/tmp each time: a third of the write
    # calls of an inbound mail. Sorts that need a temporary table use memory too.
    "temp_store": "memory",
    # The writers checkpoint the WAL themselves after they let the writers' queue go
    # (``_sqlite_write``); SQLite's own, run inside the commit that passes this many pages,
    # is then only the bound for writes that skip the queue (another tool on the file).
    "wal_autocheckpoint": 10000,
}

# A writer runs a passive checkpoint after every this many of its process's commits, once it
# has let the writers' queue go. Each checkpoint syncs the WAL and the database file
# (two fdatasyncs, which also write back the pages it copied) and copies every page written
# since the last one: a submission writes about 74 pages at 1M tickets, but the same few
# dozen (each index's newest leaf) again and again, so a rarer checkpoint copies each of
# them once for more commits. Every 8 commits cost 0.28 fdatasyncs a submission (2% of a
# worker's CPU under wrk, perf); every 32, 0.06 and about 10 fewer write calls a
# submission. Two workers then leave about 16 commits (1,200 pages, 5 MB) between
# checkpoints, far under ``wal_autocheckpoint``.
CHECKPOINT_EVERY = 32


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
        params = postgres_params(rest)
        prepares = _flag(params.pop("prepare", True), "prepare")
        # A pool: opening a PostgreSQL connection costs more than most requests.
        pool = PooledPostgres(**params, max_connections=32, stale_timeout=300, timeout=10)
        pool.prepares_statements = prepares
        return pool
    return connect(url)


def _flag(value: object, name: str) -> bool:
    """A URL's yes-or-no parameter (``playhouse.db_url`` makes true/false/1/0 Python values);
    anything else is refused by name rather than read as yes."""
    if isinstance(value, str):
        value = {"yes": True, "on": True, "no": False, "off": False}.get(value.lower(), value)
    if value in (True, False):  # 1 and 0 too
        return bool(value)
    raise ValueError(f"the database URL's {name}= must be true or false, not {value!r}")


def postgres_params(rest: str) -> dict[str, Any]:
    """The connection's parameters from a URL (after ``postgresql://``), with PostgreSQL's
    JIT compiler off unless the URL's ``options`` set ``jit`` themselves.

    The JIT compiles a statement whose estimated cost passes ``jit_above_cost``. The desk's
    statements are short, but an estimate can be far off: the planner priced a search's
    walk (which stops after a page) as a full pass and compiled it, 0.5–1.6 s for a page
    that runs in 20 ms. Off, a statement is only ever planned and run.
    ``?options=-c%20jit%3Don`` in the URL turns it back on.
    """
    params = parse(f"postgresql://{rest}")
    options = params.get("options") or ""
    if "jit" not in options:
        params["options"] = f"{options} -c jit=off".strip()
    return params


class _ChecksTheSocket:
    """How the pool learns, as it hands out an idle connection, that the server has closed
    it: from the socket, without a round trip. peewee's own check runs ``SELECT 1`` on every
    check-out (once a request: a round trip and a statement for the server to run). A server
    that restarts, ends a session (``pg_terminate_backend``, ``idle_session_timeout``) or
    shuts down writes a last message and closes the socket, which then reads as ready; only
    then (or when anything else waits on it) is the connection asked, as peewee asks it, and
    a dead one is replaced. A connection with nothing to read is handed out as it is.
    """

    def is_connection_closed(self, conn: Any) -> bool:
        if conn.closed:
            return True
        if self.txn_status(conn) == self.txn_idle and not _readable(conn.fileno()):
            return False
        return super().is_connection_closed(conn)


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


class _Psycopg2Check(_ChecksTheSocket, peewee.Psycopg2Adapter):
    pass


class _Psycopg3Check(_ChecksTheSocket, peewee.Psycopg3Adapter):
    pass


class PooledPostgres(PooledPostgresqlDatabase):
    """peewee's pool of PostgreSQL connections, checking a connection it hands out by its
    socket (``_ChecksTheSocket``).

    ``prepares_statements``: whether named statements run prepared (``_run_prepared``);
    ``?prepare=false`` in the database URL turns it off, for a pooler between the desk and
    the server that hands each transaction a different server connection (PgBouncer's
    transaction pooling), where a statement prepared on one is unknown on the next.
    """

    prepares_statements = True

    psycopg2_adapter = _Psycopg2Check
    psycopg3_adapter = _Psycopg3Check


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

    The WAL is checkpointed after the queue is let go: SQLite's automatic checkpoint runs
    inside the commit that passes its threshold, so the writer that met it copied the WAL
    into the database (and synced both) with every other writer queued behind it. A passive
    checkpoint copies what it can beside later writers and readers, and blocks none of them.
    """
    with _writer_lock(db.database):
        with db.atomic("IMMEDIATE"):
            yield
    if next(_commits) % CHECKPOINT_EVERY == 0:
        try:
            db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except peewee.DatabaseError:  # committed all the same; the next one, or SQLite's own
            log.warning("a WAL checkpoint failed", exc_info=True)


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


_commits = itertools.count(1)
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


# -- Named statements ---------------------------------------------------------------------
#
# Building SQL is most of the cost of a small write with peewee (about 0.3 ms of
# Python per INSERT, more than SQLite takes to run it; bench/README.md has the
# figures). The help center's submission runs the same few statements with new
# values, so those few are named here, their SQL built once per kind of database
# with peewee's public query API and reused. Each argument goes in as a marker
# object that peewee passes through untouched, so the compiled SQL's parameter
# list says exactly where each argument goes: nothing is matched by position or
# by value. tests/test_db.py writes distinct values through every statement.

STATEMENTS: dict[str, Statement] = {}


class _Slot:
    """Stands in for the n-th argument while peewee builds a statement's SQL."""

    def __init__(self, index: int):
        self.index = index


def _as_given(value: object) -> object:
    return value


class Statement:
    """A named statement whose SQL is built once per kind of database, and on PostgreSQL
    prepared once per connection (``prepare=False`` plans it each time, see ``run``)."""

    # Whether an argument may appear more than once in the SQL (``Shapes``: a page's
    # conditions written again in its subquery).
    repeats = False

    def __init__(self, name: str, *, prepare: bool = True, named: bool = True):
        if named and name in STATEMENTS:
            raise ValueError(f"a statement named {name!r} exists already")
        if '"' in name or len(name.encode()) > 63:  # a PostgreSQL identifier, quoted
            raise ValueError(f"a statement's name must fit a prepared statement's: {name!r}")
        if named:
            STATEMENTS[name] = self
        self.name = name
        self.prepare = prepare
        # (PREPARE ..., EXECUTE ...) for PostgreSQL, made at the first run
        self._prepared: tuple[str, str] | None = None
        # (type(database), its RETURNING setting) -> (sql, where each parameter comes from:
        # a slot's index or a constant)
        self._compiled: dict[tuple[type, bool], tuple[str, list[tuple[bool, object]]]] = {}

    def build(self, *slots: peewee.Node) -> peewee.Query:
        raise NotImplementedError

    @property
    def arity(self) -> int:
        """How many arguments the statement takes."""
        raise NotImplementedError

    def compile(self, arity: int) -> tuple[str, list[tuple[bool, object]]]:
        kind = (type(database.obj), bool(database.obj.returning_clause))
        compiled = self._compiled.get(kind)
        if compiled is None:
            slots = [_Slot(n) for n in range(arity)]
            sql, params = self.build(*(peewee.Value(s, converter=_as_given) for s in slots)).sql()
            plan = [(True, p.index) if isinstance(p, _Slot) else (False, p) for p in params]
            used = [i for is_slot, i in plan if is_slot]
            if sorted(set(used) if self.repeats else used) != list(range(arity)):
                raise ValueError(f"statement {self.name}: each argument must appear once")
            compiled = self._compiled[kind] = (sql, plan)
        return compiled

    def bind(self, args: tuple[object, ...]) -> tuple[str, list[object]]:
        sql, plan = self.compile(len(args))
        return sql, [args[value] if is_slot else value for is_slot, value in plan]

    def run(self, args: tuple[object, ...]) -> Any:
        """Run the statement with these arguments; its cursor.

        On PostgreSQL (psycopg2) it runs as a prepared statement of the connection
        (``_run_prepared``): parsed once per connection, and planned once for all its
        arguments when PostgreSQL settles on a generic plan (after five runs, when that plan
        costs no more than the ones made for each run's values).
        """
        db = database.obj
        if self.prepare and _prepares(db):
            return _run_prepared(db, self, args)
        sql, params = self.bind(args)
        return db.execute_sql(sql, params)

    def prepared(self, conn: Any, arity: int) -> tuple[str, str]:
        """``PREPARE "name" AS ...`` and ``EXECUTE "name"(%s, ...)`` for psycopg2: each
        argument becomes ``$n`` (its slot's place) and each constant of the query is written
        into the PREPARE as a literal, so that every plan, generic ones included, knows it
        (a partial index whose predicate names a constant is used for it)."""
        if self._prepared is None:
            sql, plan = self.compile(arity)
            places = iter(plan)

            def placeholder(found: re.Match) -> str:
                if found.group() == "%%":
                    return "%"
                is_slot, value = next(places)
                if is_slot:
                    return f"${value + 1}"
                with conn.cursor() as cursor:
                    return cursor.mogrify("%s", (value,)).decode()

            body = re.sub(r"%%|%s", placeholder, sql)
            markers = ", ".join(["%s"] * arity)
            self._prepared = (f'PREPARE "{self.name}" AS {body}',
                              f'EXECUTE "{self.name}"({markers})' if arity
                              else f'EXECUTE "{self.name}"')
        return self._prepared


class Insert(Statement):
    """INSERT one row of ``model`` with a value for every column, returning its id."""

    def __init__(self, name: str, model: type[peewee.Model], *, prepare: bool = True):
        super().__init__(name, prepare=prepare)
        self.model = model
        self.fields = [f for f in model.select().selected_columns if not f.primary_key]
        self.pk = _primary_key(model)

    @property
    def arity(self) -> int:
        return len(self.fields)

    def build(self, *slots: peewee.Node) -> peewee.Query:
        query = self.model.insert_many([slots], fields=self.fields)
        # SQLite before 3.35 has no RETURNING; its cursor's lastrowid says the same.
        return query.returning(self.pk) if database.obj.returning_clause else query

    def __call__(self, instance: peewee.Model) -> peewee.Model:
        """Save a new instance (its defaults were filled in when it was made); sets its id."""
        values = []
        for f in self.fields:
            # A foreign key's id, never the related row (reading it could run a query).
            name = f.object_id_name if isinstance(f, peewee.ForeignKeyField) else f.name
            values.append(f.db_value(getattr(instance, name)))
        db = database.obj
        if is_sqlite(db) and not db.in_transaction():
            # On its own (a plugin's row written after the ticket's commit), as a writer in
            # the queue: autocommitted, it would take SQLite's write lock past the flock,
            # and it and the queued writers would poll each other in SQLite's busy handler.
            with _sqlite_write(db):
                cursor = self.run(tuple(values))
        else:
            cursor = self.run(tuple(values))
        new_id = cursor.fetchone()[0] if db.returning_clause else cursor.lastrowid
        setattr(instance, self.pk.name, new_id)
        return instance


class _Built(Statement):
    """A statement made by a function of its arguments (``build``), each argument once."""

    def __init__(self, name: str, build: Callable[..., peewee.Query], *, prepare: bool = True):
        super().__init__(name, prepare=prepare)
        self._build = build

    @property
    def arity(self) -> int:
        return len(inspect.signature(self._build).parameters)


class Select(_Built):
    """A SELECT of ``model`` rows; ``build(*args)`` makes it with peewee, each argument once.

    Arguments go to the database as they are given (str, int): no field converts them.
    """

    def __init__(self, name: str, model: type[peewee.Model],
                 build: Callable[..., peewee.ModelSelect], *, prepare: bool = True):
        super().__init__(name, build, prepare=prepare)
        self.model = model
        # Each column's field name and converter, from the statement's own select list,
        # learnt when its SQL is built: peewee's raw() works this out again from the
        # cursor for every query it runs (a third of the help center's read of a ticket).
        self._columns: list[tuple[int, str, Callable[[Any], Any]]] = []

    def build(self, *slots: peewee.Node) -> peewee.Query:
        query = self._build(*slots)
        (self._columns,) = _columns_by_model(self.name, query, (self.model,)).values()
        return query

    def _made(self, row: tuple[Any, ...]) -> peewee.Model:
        return self.model(**{name: convert(row[at]) for at, name, convert in self._columns})

    def all(self, *args: object) -> list[peewee.Model]:
        return [self._made(row) for row in self.run(args).fetchall()]

    def first(self, *args: object) -> peewee.Model | None:
        row = self.run(args).fetchone()
        return None if row is None else self._made(row)


def _columns_by_model(name: str, query: peewee.Query, models: tuple[type[peewee.Model], ...],
                      ) -> dict[type[peewee.Model], list[tuple[int, str, Callable[[Any], Any]]]]:
    """Each model's columns in a statement's select list: (place in the row, field name,
    converter), refusing a column of another model or one selected twice."""
    columns: dict[type[peewee.Model], list[tuple[int, str, Callable[[Any], Any]]]] = {
        model: [] for model in models}
    for at, column in enumerate(query.selected_columns):
        if not isinstance(column, peewee.Field) or column.model not in columns:
            raise ValueError(f"statement {name}: {column!r} is no column of "
                             f"{', '.join(model.__name__ for model in models)}")
        columns[column.model].append((at, column.name, column.python_value))
    for model, its in columns.items():
        if len({field for _at, field, _convert in its}) != len(its):
            raise ValueError(f"statement {name}: a column of {model.__name__} is selected twice")
    return columns


class Joined(_Built):
    """A SELECT of several models joined (outer joins too), each row a tuple with one
    instance per model in the order given: a page's rows from several tables in one round
    trip. An instance is made once per primary key and shared by the rows it repeats in
    (a ticket joined to its messages comes once); None where an outer join found no row.

    Every model's primary key must be selected (it tells the rows apart); any other
    columns may be left out, and an instance then holds the defaults for those.
    """

    def __init__(self, name: str, models: tuple[type[peewee.Model], ...],
                 build: Callable[..., peewee.Query], *, prepare: bool = True):
        if len(set(models)) != len(models):
            raise ValueError(f"statement {name}: a model is joined twice")
        super().__init__(name, build, prepare=prepare)
        self.models = models
        # Per model: where its primary key is in the row, then its columns.
        self._columns: list[tuple[int, list[tuple[int, str, Callable[[Any], Any]]]]] = []

    def build(self, *slots: peewee.Node) -> peewee.Query:
        query = self._build(*slots)
        found = []
        for model, columns in _columns_by_model(self.name, query, self.models).items():
            key = _primary_key(model).name
            at = next((at for at, field, _convert in columns if field == key), None)
            if at is None:
                raise ValueError(f"statement {self.name}: {model.__name__}'s primary key "
                                 f"is not selected")
            found.append((at, columns))
        self._columns = found
        return query

    def all(self, *args: object) -> list[tuple[peewee.Model | None, ...]]:
        made: list[dict[Any, peewee.Model]] = [{} for _model in self.models]
        rows = []
        for row in self.run(args).fetchall():
            joined = []
            for model, seen, (key_at, columns) in zip(self.models, made, self._columns,
                                                     strict=True):
                key = row[key_at]
                if key is None:
                    joined.append(None)
                    continue
                instance = seen.get(key)
                if instance is None:
                    instance = seen[key] = model(**{name: convert(row[at])
                                                    for at, name, convert in columns})
                joined.append(instance)
            rows.append(tuple(joined))
        return rows


class Shaped(Statement):
    """A statement for one shape of a query that is built per request (``Shapes``)."""

    repeats = True

    def __init__(self, name: str, arity: int, build: Callable[..., peewee.Query], *,
                 named: bool = True):
        super().__init__(name, prepare=named, named=named)
        self._arity = arity
        self._build = build

    @property
    def arity(self) -> int:
        return self._arity

    def build(self, *slots: peewee.Node) -> peewee.Query:
        return self._build(*slots)


class Shapes:
    """The statements of a query that requests build in many shapes (which filters, which
    order, a cursor or not: an inbox page), one per shape, made the first time a process
    sees it: peewee builds the SQL once per shape, and later requests only bind their
    arguments; on PostgreSQL each is prepared once per connection, as a named statement.

    ``statement(shape, arity, build)``: ``shape`` is a hashable description that decides
    the SQL entirely (with the kind of database); ``build(*slots)`` makes the query with
    each argument's slot, an argument may appear more than once. Its name is
    ``<prefix>.<digest of the shape>``. Past ``kept`` shapes a process makes no more: a
    new one is built and run unprepared each time (a client cannot fill the server's memory
    with prepared statements by asking odd shapes).
    """

    def __init__(self, prefix: str, *, kept: int = 256):
        self.prefix = prefix
        self.kept = kept
        self._made: dict[Any, Shaped] = {}
        self._guard = threading.Lock()

    def statement(self, shape: Any, arity: int, build: Callable[..., peewee.Query]) -> Shaped:
        key = (type(database.obj), shape)
        found = self._made.get(key)
        if found is not None:
            return found
        digest = hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()
        name = f"{self.prefix}.{digest}"
        with self._guard:
            found = self._made.get(key)
            if found is None:
                if len(self._made) >= self.kept:
                    return Shaped(name, arity, build, named=False)
                found = STATEMENTS.get(name)
                if not isinstance(found, Shaped):  # another Shapes of the same prefix: none
                    found = Shaped(name, arity, build)
                self._made[key] = found
        return found


# The statements prepared on each PostgreSQL connection, by name. A name is known per
# connection: a connection the pool opens anew has none, and a pooled one keeps its own
# for its life (prepared statements are not transactional: a rollback keeps them).
_prepared_on: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_prepared_guard = threading.Lock()


def _prepares(db: peewee.Database) -> bool:
    """Whether named statements run prepared here: PostgreSQL through psycopg2 (psycopg 3
    would have its own ``prepare=True``; it is not what the desk installs)."""
    return (isinstance(db, peewee.PostgresqlDatabase)
            and getattr(db, "prepares_statements", True)
            and type(db.connection()).__module__.startswith("psycopg2"))


def _run_prepared(db: peewee.Database, statement: Statement, args: tuple[object, ...]) -> Any:
    """EXECUTE the statement, PREPAREd first if this connection has not prepared it yet.

    The PREPARE is a round trip of its own once per connection and statement, sent on the
    connection's cursor without peewee's log (statement counts stay those of the page).
    Something that deallocates the session's statements behind the desk's back (``DISCARD
    ALL``, ``DEALLOCATE ALL``, as a pooler's reset does) makes the EXECUTE fail with
    ``invalid_sql_statement_name``: the connection's names are forgotten, and outside a
    transaction the statement is prepared and run again; inside one the transaction has
    failed already, so the error is raised (the next unit of work prepares anew).
    """
    conn = db.connection()
    names = _prepared_on.get(conn)
    if names is None:
        with _prepared_guard:
            names = _prepared_on.setdefault(conn, set())
    prepare, execute = statement.prepared(conn, len(args))
    for attempt in (1, 2):
        if statement.name not in names:
            with conn.cursor() as cursor:
                cursor.execute(prepare)
            names.add(statement.name)
        try:
            return db.execute_sql(execute, args)
        except peewee.DatabaseError as exc:
            if pgcode(exc) != "26000" or attempt == 2:
                raise
            names.clear()
            if conn.get_transaction_status() != 0:  # not idle: within a transaction
                raise
    raise AssertionError("unreachable")


def pgcode(exc: BaseException) -> str | None:
    """The SQLSTATE of the psycopg2 error that peewee's error wraps (its first argument)."""
    for found in (*exc.args[:1], exc.__cause__, exc.__context__, exc):
        code = getattr(found, "pgcode", None)
        if code:
            return code
    return None


def _primary_key(model: type[peewee.Model]) -> peewee.Field:
    return next(f for f in model.select().selected_columns if f.primary_key)


class Rows(_Built):
    """A SELECT whose rows come back as plain tuples, as the database gives them: no model
    is built and no field converts a value (SQLite gives times as text). For look-ups a page
    reads on every request (names, ids, flags), where building peewee rows is the cost."""

    def build(self, *slots: peewee.Node) -> peewee.Query:
        return self._build(*slots)

    def all(self, *args: object) -> list[tuple[Any, ...]]:
        return self.run(args).fetchall()

