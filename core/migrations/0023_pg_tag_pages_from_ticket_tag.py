"""PostgreSQL: a tag's page read from ``ticket_tag`` in the page's order, as SQLite's since 0016.

* ``ticket_tag`` also holds what a page sorts and scopes a ticket by: ``updated_at``,
  ``due_at``, ``status``, ``department_id``, ``assignee_id``. 0010's trigger function copies
  them when it adds a ticket's tags; a second trigger, ``ticket_tag_follow``, copies them
  again when a tagged ticket's row changes them and not its tags (a reply's ``updated_at``,
  a status change, a move, an assignment, a due time, a department or agent deleted: ``SET
  NULL`` is an update too). Its ``WHEN`` is tested without calling a function, so a ticket
  with no tags pays nothing. Both find a ticket's rows by the key, the tags given as an
  array: 0010's removal said ``tag IN (SELECT …)``, which PostgreSQL ran as a sequential
  scan of the whole table for the ticket's number (a tag change at a million tickets read
  500,000 rows); the follower written that way cost 0.9 ms a reply at 10,000 tickets,
  0.2 ms as it is.
* Indexes in each order the console sorts by, each holding the status and scope
  (``INCLUDE``) so a page's walk tests them in the index alone: ``(tag, updated_at,
  ticket_id)``, ``(tag, due_at, ticket_id)`` and by number the key itself, ``(tag,
  ticket_id)``. A tag's page (``core.services.access``, ``tag_walk``) walks the tag's own
  entries in the page's order and reads from the ticket table only the page's rows. Before,
  a common tag walked the active tickets' index past every ticket not carrying it (an
  agent's page of the seed's agent tag: 0.75 ms of the server at 10,000 tickets, 1.2 ms at a
  million) and a rare one was gathered and sorted.
* The table is vacuumed as often as the tickets (0012): an index-only scan reads the table
  for rows on pages changed since the last vacuum, and the newest-first page reads the rows
  changed last.

The table is made again with the copies (one statement joined to the tickets), then the key
and indexes built and ``ANALYZE``d; how long, on stderr past a second. SQLite: nothing (0016
did it there). ``rebuild`` fills ``ticket_tag`` again from the tickets with the copies.
"""

import sys
import time
from importlib import import_module

from peewee import SqliteDatabase

FOLLOWED = ("updated_at", "due_at", "status", "department_id", "assignee_id")
TYPES = {"updated_at": "TIMESTAMP", "due_at": "TIMESTAMP", "status": "VARCHAR(16)",
         "department_id": "INTEGER", "assignee_id": "INTEGER"}
SCOPE = "status, department_id, assignee_id"
KEY = f"PRIMARY KEY (tag, ticket_id) INCLUDE ({SCOPE})"
TAG_INDEXES = (("ticket_tag_updated", "tag, updated_at, ticket_id"),
               ("ticket_tag_due", "tag, due_at, ticket_id"))
FOLLOW = "ticket_tag_follow"


def _migration(name):
    return import_module(f"core.migrations.{name}")


def _0016():
    return _migration("0016_tag_pages_from_ticket_tag")


def _is_sqlite(db):
    return isinstance(getattr(db, "obj", None) or db, SqliteDatabase)  # the app's proxy too


def _follow_trigger():
    copies = ", ".join(f"{c} = NEW.{c}" for c in FOLLOWED)
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in FOLLOWED)
    return (
        f"""CREATE OR REPLACE FUNCTION {FOLLOW}() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN
  UPDATE ticket_tag SET {copies}
    WHERE tag = ANY(ARRAY(SELECT loket_ticket_tags(NEW.tags))) AND ticket_id = NEW.id;
  RETURN NULL;
END $$""",
        f"DROP TRIGGER IF EXISTS {FOLLOW} ON ticket",
        # A change of tags (or number) is 0010's trigger's: it adds the rows with the copies.
        f"CREATE TRIGGER {FOLLOW} AFTER UPDATE OF {', '.join(FOLLOWED)} ON ticket "
        "FOR EACH ROW WHEN (OLD.tags IS NOT DISTINCT FROM NEW.tags AND OLD.id = NEW.id "
        f"AND NEW.tags IS NOT NULL AND NEW.tags <> '[]' AND ({changed})) "
        f"EXECUTE FUNCTION {FOLLOW}()",
    )


def _pg_triggers(db):
    """0010's trigger function, copying the columns as it adds tags, and the follower."""
    db.execute_sql(_migration("0010_tags_and_response_minutes")._pg_trigger(db, FOLLOWED))
    for statement in _follow_trigger():
        db.execute_sql(statement)


def _drop_follow(db):
    db.execute_sql(f"DROP TRIGGER IF EXISTS {FOLLOW} ON ticket")
    db.execute_sql(f"DROP FUNCTION IF EXISTS {FOLLOW}()")


def drop_triggers(db):
    """0010's and 0016's triggers and this one's (a bulk load drops them, then ``rebuild``
    and ``create_triggers``; ``bench/seed.py``)."""
    _0016().drop_triggers(db)
    if not _is_sqlite(db):
        _drop_follow(db)


def create_triggers(db):
    """0010's triggers as 0016 and 0023 leave them."""
    _0016().create_triggers(db)
    if not _is_sqlite(db):
        _pg_triggers(db)


def rebuild(db):
    """0016's ``rebuild``, then, on PostgreSQL, each tag row's copies of its ticket's columns
    (0010's own fills only (tag, ticket_id))."""
    _0016().rebuild(db)
    if not _is_sqlite(db):
        db.execute_sql("UPDATE ticket_tag SET " + ", ".join(f"{c} = t.{c}" for c in FOLLOWED)
                       + " FROM ticket AS t WHERE t.id = ticket_tag.ticket_id")


def _timed(db, sql, what, progress):
    started = time.monotonic()
    db.execute_sql(sql)
    took = time.monotonic() - started
    if took >= 1:
        print(f"{what}: {took:.1f} s", file=progress, flush=True)


def up(migrator, db, progress=sys.stderr):
    if _is_sqlite(db):
        return
    with db.atomic():
        _up(db, progress)


def _up(db, progress):
    vacuum_often = _migration("0012_pg_covering_inbox_indexes").VACUUM_OFTEN
    columns = "".join(f", {c} {TYPES[c]}" for c in FOLLOWED)
    db.execute_sql("CREATE TABLE ticket_tag_new (tag VARCHAR(100) NOT NULL, "
                   f"ticket_id INTEGER NOT NULL{columns}) WITH ({vacuum_often})")
    copies = "".join(f", t.{c}" for c in FOLLOWED)
    # One transaction, the tickets locked first: a ticket written meanwhile would add its
    # tags to the table dropped below.
    db.execute_sql("LOCK TABLE ticket IN SHARE MODE")
    _timed(db, f"INSERT INTO ticket_tag_new SELECT tt.tag, tt.ticket_id{copies} "
           "FROM ticket_tag AS tt JOIN ticket AS t ON t.id = tt.ticket_id "
           "ORDER BY tt.tag, tt.ticket_id", "ticket_tag: made again", progress)
    db.execute_sql("DROP TABLE ticket_tag")
    db.execute_sql("ALTER TABLE ticket_tag_new RENAME TO ticket_tag")
    _timed(db, f"ALTER TABLE ticket_tag ADD CONSTRAINT ticket_tag_pkey {KEY}",
           "ticket_tag_pkey", progress)
    for name, keys in TAG_INDEXES:
        _timed(db, f"CREATE INDEX {name} ON ticket_tag ({keys}) INCLUDE ({SCOPE})", name,
               progress)
    _pg_triggers(db)
    db.execute_sql("ANALYZE ticket_tag")


def down(migrator, db, progress=sys.stderr):
    if _is_sqlite(db):
        return
    with db.atomic():
        _down(db, progress)


def _down(db, progress):
    _drop_follow(db)
    db.execute_sql(_migration("0010_tags_and_response_minutes")._pg_trigger(db))
    for name, _keys in TAG_INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
    db.execute_sql("ALTER TABLE ticket_tag DROP CONSTRAINT ticket_tag_pkey")
    db.execute_sql("ALTER TABLE ticket_tag "
                   + ", ".join(f"DROP COLUMN {c}" for c in FOLLOWED))
    _timed(db, "ALTER TABLE ticket_tag ADD CONSTRAINT ticket_tag_pkey PRIMARY KEY "
           "(tag, ticket_id)", "ticket_tag_pkey", progress)
    vacuum_settings = _migration("0012_pg_covering_inbox_indexes").VACUUM_SETTINGS
    db.execute_sql(f"ALTER TABLE ticket_tag RESET ({', '.join(vacuum_settings)})")
