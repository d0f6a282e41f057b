"""SQLite: a tag's page read from ``ticket_tag`` in the page's order; pending and urgent
pages test the agent's scope in the index they walk.

* ``ticket_tag`` (0010) also holds what a page sorts and scopes a ticket by: ``updated_at``,
  ``due_at``, ``status``, ``department_id``, ``assignee_id``, kept in step with the ticket by
  triggers whatever writes it (a reply's ``updated_at``, a status change, a move to another
  department, an assignment, a due time, a merge). Two indexes hold them in the newest-first
  and due-time orders: ``(tag, updated_at, ticket_id, status, department_id, assignee_id)``
  and ``(tag, due_at, ticket_id, …)``; by number the table itself (``WITHOUT ROWID``, its key
  ``(tag, ticket_id)``) is that order. A tag's page (``core.services.access``, ``tag_walk``)
  walks the tag's own entries in the page's order, tests status and scope there, and reads
  from the ticket table only the page's rows. Before, a common tag walked the inbox's index
  past every ticket not carrying it (at a million, ``kyc`` on 3% of the tickets: some 6,500
  index entries for an agent's page of 50; at 10,000 its 313 tickets were gathered and
  sorted), so its page cost grew with the desk.
* ``ticket_status_updated_id`` (status, updated_at, id) and ``ticket_active_priority``
  (priority, updated_at, id over active tickets) also hold ``department_id, assignee_id``:
  an agent's pending or urgent page tested its scope on each ticket's row, read from the
  table (about 200 a page at a million), now in the index.

PostgreSQL is left as it is (its pages stay within 20% from 10k to 1M, and a plain index scan
there tests conditions on the table's rows whatever the index holds).

Existing rows are filled in one statement (the table made again, joined to the tickets),
then the indexes built and measured (``ANALYZE``): at a million tickets (the bench seed's
500,000 tags) about 14 s in all, said on stderr. ``rebuild`` fills ``ticket_tag`` again from
the tickets with the copies (0010's own ``rebuild`` knows only its two columns).
"""

import sys
import time
from importlib import import_module

from peewee import SqliteDatabase

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"
# What a tag's row holds besides (tag, ticket_id), each the ticket's column of that name.
FOLLOWED = ("updated_at", "due_at", "status", "department_id", "assignee_id")
TYPES = {"updated_at": "DATETIME", "due_at": "DATETIME", "status": "VARCHAR(16)",
         "department_id": "INTEGER", "assignee_id": "INTEGER"}
SCOPE = "status, department_id, assignee_id"
TAG_INDEXES = (("ticket_tag_updated", f"tag, updated_at, ticket_id, {SCOPE}"),
               ("ticket_tag_due", f"tag, due_at, ticket_id, {SCOPE}"))
# (new index, columns, partial WHERE, the index it replaces, its columns)
WIDENED = (
    ("ticket_status_updated_scope", "status, updated_at, id, department_id, assignee_id", "",
     "ticket_status_updated_id", "status, updated_at, id"),
    ("ticket_active_priority_scope", "priority, updated_at, id, department_id, assignee_id",
     ACTIVE, "ticket_active_priority", "priority, updated_at, id"),
)
# 0010's SQLite triggers that write ticket_tag: made again (its delete trigger as it was; a
# table is not renamed while a trigger names a table that is not there).
REPLACED = ("ticket_tag_insert", "ticket_tag_update", "ticket_tag_delete")
FOLLOW = "ticket_tag_follow"


def _tags(row):
    # As 0010 reads a ticket's tags: a JSON list's text values, nothing for anything else.
    return (f"json_each(CASE WHEN json_valid({row}.tags) AND json_type({row}.tags) = 'array' "
            f"THEN {row}.tags ELSE '[]' END)")


def _triggers():
    columns = ", ".join(FOLLOWED)
    values = ", ".join(f"new.{c}" for c in FOLLOWED)
    add = (f"INSERT OR IGNORE INTO ticket_tag (tag, ticket_id, {columns}) "
           f"SELECT value, new.id, {values} FROM {_tags('new')} WHERE type = 'text';")
    remove = ("DELETE FROM ticket_tag WHERE ticket_id = old.id AND tag IN "
              f"(SELECT value FROM {_tags('old')} WHERE type = 'text');")
    follow = ("UPDATE ticket_tag SET " + ", ".join(f"{c} = new.{c}" for c in FOLLOWED)
              + " WHERE ticket_id = new.id AND tag IN "
              f"(SELECT value FROM {_tags('new')} WHERE type = 'text');")
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in FOLLOWED)
    return (
        f"CREATE TRIGGER ticket_tag_insert AFTER INSERT ON ticket BEGIN {add} END",
        "CREATE TRIGGER ticket_tag_update AFTER UPDATE OF tags, id ON ticket "
        f"WHEN old.tags IS NOT new.tags OR old.id IS NOT new.id BEGIN {remove} {add} END",
        f"CREATE TRIGGER {FOLLOW} AFTER UPDATE OF {columns} ON ticket "
        f"WHEN {changed} BEGIN {follow} END",
    )


def _remake(db, followed, progress):
    """``ticket_tag`` made again with ``followed`` beside (tag, ticket_id), filled from the
    tickets in one statement."""
    (rows,) = db.execute_sql("SELECT COUNT(*) FROM ticket_tag").fetchone()
    started = time.monotonic()
    if rows >= 100_000:
        print(f"ticket_tag: making {rows:,} rows again…", file=progress, flush=True)
    extra = "".join(f", {c} {TYPES[c]}" for c in followed)
    db.execute_sql("CREATE TABLE ticket_tag_new (tag VARCHAR(100) NOT NULL, "
                   f"ticket_id INTEGER NOT NULL{extra}, PRIMARY KEY (tag, ticket_id)) "
                   "WITHOUT ROWID")
    names = "".join(f", {c}" for c in followed)
    values = "".join(f", t.{c}" for c in followed)
    db.execute_sql(f"INSERT INTO ticket_tag_new (tag, ticket_id{names}) "
                   f"SELECT tt.tag, tt.ticket_id{values} FROM ticket_tag AS tt "
                   "JOIN ticket AS t ON t.id = tt.ticket_id ORDER BY tt.tag, tt.ticket_id")
    db.execute_sql("DROP TABLE ticket_tag")
    db.execute_sql("ALTER TABLE ticket_tag_new RENAME TO ticket_tag")
    if rows >= 100_000:
        print(f"ticket_tag: made in {time.monotonic() - started:.0f} s", file=progress,
              flush=True)


def _index(db, name, columns, where, progress):
    started = time.monotonic()
    table = "ticket_tag" if name.startswith("ticket_tag") else "ticket"
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})"
                   + (f" WHERE {where}" if where else ""))
    took = time.monotonic() - started
    if took >= 2:
        print(f"{name}: built in {took:.0f} s", file=progress, flush=True)


def _0010_triggers(db, names):
    return [statement for statement in _0010()._sqlite_triggers(db)
            if any(f"TRIGGER {name} " in statement for name in names)]


def _is_sqlite(db):
    return isinstance(getattr(db, "obj", None) or db, SqliteDatabase)  # the app's proxy too


def _0010():
    return import_module("core.migrations.0010_tags_and_response_minutes")


def drop_triggers(db):
    """0010's triggers and this one's (a bulk load drops them, then ``rebuild`` and
    ``create_triggers``; ``bench/seed.py``)."""
    _0010().drop_triggers(db)
    if _is_sqlite(db):
        db.execute_sql(f"DROP TRIGGER IF EXISTS {FOLLOW}")


def _sqlite_tag_triggers(db):
    """SQLite: 0010's tag triggers replaced by those that copy the columns, and the follower."""
    for name in (*REPLACED, FOLLOW):
        db.execute_sql(f"DROP TRIGGER IF EXISTS {name}")
    for statement in (*_triggers(), *_0010_triggers(db, ("ticket_tag_delete",))):
        db.execute_sql(statement)


def create_triggers(db):
    """0010's triggers as 0016 leaves them: on SQLite its tag triggers copy the columns."""
    _0010().create_triggers(db)
    if _is_sqlite(db):
        _sqlite_tag_triggers(db)


def rebuild(db):
    """0010's ``rebuild`` (both its tables filled again from the tickets), then, on SQLite,
    each tag row's copies of its ticket's columns: 0010's own fills only (tag, ticket_id)."""
    _0010().rebuild(db)
    if _is_sqlite(db):
        db.execute_sql("UPDATE ticket_tag SET " + ", ".join(f"{c} = t.{c}" for c in FOLLOWED)
                       + " FROM ticket AS t WHERE t.id = ticket_tag.ticket_id")


def up(migrator, db, progress=sys.stderr):
    if not isinstance(db, SqliteDatabase):
        return
    for name in (*REPLACED, FOLLOW):
        db.execute_sql(f"DROP TRIGGER IF EXISTS {name}")
    _remake(db, FOLLOWED, progress)
    _sqlite_tag_triggers(db)
    for name, columns in TAG_INDEXES:
        _index(db, name, columns, "", progress)
    for name, columns, where, old, _old_columns in WIDENED:
        _index(db, name, columns, where, progress)
        db.execute_sql(f'DROP INDEX IF EXISTS "{old}"')
    # A desk that was analysed: the planner's statistics of the new indexes too (under a
    # second at a million), as 0010 does. Without them SQLite took the status index, now
    # that it holds the scope, for the active tickets' four statuses and sorted them (a tag
    # and a search: 3 -> 340 ms at a million).
    if db.execute_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        for name in ("ticket_tag", *(name for name, *_rest in WIDENED)):
            db.execute_sql(f"ANALYZE {name}")


def down(migrator, db, progress=sys.stderr):
    if not isinstance(db, SqliteDatabase):
        return
    for name, _columns, where, old, old_columns in WIDENED:
        _index(db, old, old_columns, where, progress)
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
    for name in (*REPLACED, FOLLOW):
        db.execute_sql(f"DROP TRIGGER IF EXISTS {name}")
    _remake(db, (), progress)
    for statement in _0010_triggers(db, REPLACED):
        db.execute_sql(statement)
