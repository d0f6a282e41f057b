"""A stamp that changes whenever a name the console or the API shows beside tickets changes.

Every console page names the categories, departments and staff of its rows, filters and
"move to" actions; every API list the categories, departments and assignees of its tickets.
They were read on every page or list, a statement of their own (a round trip and a plan on
PostgreSQL). Now each process keeps them (``core.services.names``) under the value of this
stamp, which a page reads in the statement that looks its session up, and an API request in
the one that looks its token up: a request whose stamp is the kept one reads no names.

Triggers keep the stamp, whatever writes the rows (the console, a plugin, SQL by hand): a
category added, deleted, renamed, given a new slug or moved (parent, user type), a user
type renamed, a department added, deleted, renamed, given a new slug, activated or
deactivated, a staff member added, deleted, renamed, given a new address, activated or
deactivated. An update that changes none of those columns (a staff member's sign-in time, a
department's address) leaves the stamp alone.

The stamp is a random number, not a count: the same value must never mean two sets of
names. A count would repeat after a rolled-back rename (a page read in that transaction
could have kept the rolled-back names under the next count) and between databases (two
fresh desks, a desk restored from a backup). A worker compares the stamp for equality only.

SQLite, overdue tickets newest first: ``ticket_active_updated_scope`` (0009) also holds
``due_at``. The overdue view walks that index past every active ticket not yet due, and read
each one's row from the table to see its due time: a number of rows that grows with the
desk (the tickets opened within a due time's span: 116 at 10,000 tickets, 2,041 at a
million), so the page cost 3–6 ms of SQLite at a million against 0.4 at 10,000. Tested in
the index, the rows read are the page's own: 0.4–0.6 ms at a million. PostgreSQL's index
holds it already (0012, ``INCLUDE``).
"""

import sys
import time

from peewee import SqliteDatabase

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"
SCOPE_INDEX = "ticket_active_updated_scope"
SCOPE_COLUMNS = "updated_at, id, department_id, assignee_id, tags"  # as 0009 made it

TABLE = "console_names_stamp"
# (table, the columns whose change renames something the console shows)
WATCHED = (("category", ("name", "slug", "parent_id", "user_type_id")),
           ("user_type", ("name",)),
           ("department", ("name", "slug", "active")),
           ("staff", ("name", "email", "active")))
PG_FUNCTION = "loket_console_names_changed"


def _changed(columns, differ):
    return " OR ".join(f'OLD."{c}" {differ} NEW."{c}"' for c in ("id", *columns))


def _sqlite_up(db):
    db.execute_sql(f'CREATE TABLE "{TABLE}" (id INTEGER NOT NULL PRIMARY KEY, '
                   "stamp INTEGER NOT NULL)")
    db.execute_sql(f'INSERT INTO "{TABLE}" (id, stamp) VALUES (1, random())')
    bump = f'UPDATE "{TABLE}" SET stamp = random();'
    for table, columns in WATCHED:
        for event in ("INSERT", "DELETE"):
            db.execute_sql(f'CREATE TRIGGER "{TABLE}_{table}_{event.lower()}" AFTER {event} '
                           f'ON "{table}" BEGIN {bump} END')
        db.execute_sql(f'CREATE TRIGGER "{TABLE}_{table}_update" AFTER UPDATE ON "{table}" '
                       f"WHEN {_changed(columns, 'IS NOT')} BEGIN {bump} END")


def _pg_up(db):
    db.execute_sql(f'CREATE TABLE "{TABLE}" (id INTEGER NOT NULL PRIMARY KEY, '
                   "stamp BIGINT NOT NULL)")
    random_stamp = "(floor(random() * 9.2e18) - 4.6e18)::bigint"
    db.execute_sql(f'INSERT INTO "{TABLE}" (id, stamp) VALUES (1, {random_stamp})')
    db.execute_sql(f"CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f'BEGIN UPDATE "{TABLE}" SET stamp = {random_stamp}; RETURN NULL; END $$')
    for table, columns in WATCHED:
        db.execute_sql(f'CREATE TRIGGER "{TABLE}_{table}_rows" AFTER INSERT OR DELETE OR '
                       f'TRUNCATE ON "{table}" FOR EACH STATEMENT '
                       f"EXECUTE FUNCTION {PG_FUNCTION}()")
        db.execute_sql(f'CREATE TRIGGER "{TABLE}_{table}_update" AFTER UPDATE ON "{table}" '
                       f"FOR EACH ROW WHEN ({_changed(columns, 'IS DISTINCT FROM')}) "
                       f"EXECUTE FUNCTION {PG_FUNCTION}()")


def _scope_index(db, columns, progress=sys.stderr):
    """Make the newest-first index of active tickets again with these columns (one
    statement; at a million tickets some 15 s, said on stderr)."""
    (tickets,) = db.execute_sql("SELECT COUNT(*) FROM ticket").fetchone()
    started = time.monotonic()
    if tickets >= 100_000:
        print(f"{SCOPE_INDEX}: building ({columns}) over {tickets:,} tickets…",
              file=progress, flush=True)
    db.execute_sql(f'DROP INDEX IF EXISTS "{SCOPE_INDEX}"')
    db.execute_sql(f'CREATE INDEX "{SCOPE_INDEX}" ON ticket ({columns}) WHERE {ACTIVE}')
    if tickets >= 100_000:
        print(f"{SCOPE_INDEX}: built in {time.monotonic() - started:.0f} s",
              file=progress, flush=True)


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        _sqlite_up(db)
        _scope_index(db, f"{SCOPE_COLUMNS}, due_at")
    else:
        _pg_up(db)


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        _scope_index(db, SCOPE_COLUMNS)
        for table, _columns in WATCHED:
            for event in ("insert", "delete", "update"):
                db.execute_sql(f'DROP TRIGGER IF EXISTS "{TABLE}_{table}_{event}"')
    else:
        for table, _columns in WATCHED:
            for name in ("rows", "update"):
                db.execute_sql(f'DROP TRIGGER IF EXISTS "{TABLE}_{table}_{name}" ON "{table}"')
        db.execute_sql(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
    db.execute_sql(f'DROP TABLE IF EXISTS "{TABLE}"')
