"""SQLite: the newest-first inbox indexes carry the columns the scope and tag filter test.

An agent's inbox, newest first, walks ``ticket_active_updated`` (or, in the API's list of
every status, ``ticket_updated``) and keeps the tickets of their departments or assigned to
them; with a tag filter, those whose tags hold it. Each ticket the walk passed over was read
from the table to test those columns: for a tag an agent's tickets seldom carry, thousands of
table reads a page (10 ms of SQLite at 100,000 tickets, 3 ms for an admin). The same indexes
with ``department_id, assignee_id, tags`` after ``updated_at, id`` let SQLite test them in the
index and read from the table only the page's rows (0.9 ms; the order and the partial
``WHERE`` are unchanged, so every view that read the old ones reads these the same way).
They replace the old ones, of which they are an extension.

PostgreSQL is left as it is: a plain index scan there tests such conditions on the table's
rows whatever the index holds, so the wider index would only cost writes.
"""
from peewee import SqliteDatabase

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"

# (new index, columns, partial WHERE, the index it replaces, its columns)
WIDENED = (
    ("ticket_active_updated_scope", "updated_at, id, department_id, assignee_id, tags", ACTIVE,
     "ticket_active_updated", "updated_at, id"),
    ("ticket_updated_scope", "updated_at, id, department_id, assignee_id, tags", "",
     "ticket_updated", "updated_at, id"),
)


def _create(db, name, columns, where):
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON ticket ({columns})"
                   + (f" WHERE {where}" if where else ""))


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    for name, columns, where, old, _old_columns in WIDENED:
        _create(db, name, columns, where)
        db.execute_sql(f'DROP INDEX IF EXISTS "{old}"')


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    for name, _columns, where, old, old_columns in WIDENED:
        _create(db, old, old_columns, where)
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
