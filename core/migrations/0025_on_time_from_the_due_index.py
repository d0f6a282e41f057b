"""The active tickets' due-time index also holds when each ticket was last updated.

"Not overdue", oldest first or by number: when fewer active tickets are on time than overdue
(``core.services.access.few_on_time``), a page finds them in the due-time index (due now or
later, or with no due time) and sorts them, rather than walking its order's index past every
overdue ticket. It sorted them by what their rows in the table hold: at a million tickets
some 6,000 rows read for a page of 50 (SQLite 19-25 ms of CPU, PostgreSQL 27-29 ms). With
``updated_at`` in the index too, the page is sorted from the index alone (``access.
_on_time_numbers``: what the scope tests was there already) and only its own rows are read.

PostgreSQL also ``INCLUDE``s the status: a page of one active status (pending) with a tag,
by due time, walks this index and now tests the status there too, finding its numbers in
the index alone (``access.walks_far``): it read each walked ticket's row for its status
(32,000 rows at a million, 0.4 s cold).

Same name, same keys, same partial ``WHERE``: every view that read the index reads it as
before. SQLite: ``updated_at`` after the columns 0010 gave it; PostgreSQL: among those 0012
``INCLUDE``s. A SQLite desk that was analysed has the index measured again (as 0022);
PostgreSQL weighs a plain column's index by the table's statistics.
"""
from peewee import SqliteDatabase

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"
NAME = "ticket_active_due_scope"

# (columns before, columns after) of the index, per database.
SQLITE = ("due_at, id, department_id, assignee_id, tags",  # as 0010 made it
          "due_at, id, department_id, assignee_id, tags, updated_at, status")
POSTGRESQL = ("(due_at, id) INCLUDE (department_id, assignee_id, contact_id, tags, due_at)",  # 0012
              "(due_at, id) INCLUDE (department_id, assignee_id, contact_id, tags, due_at, "
              "updated_at, status)")


def _index(db, after):
    sqlite = isinstance(db, SqliteDatabase)
    columns = (SQLITE if sqlite else POSTGRESQL)[after]
    if sqlite:
        columns = f"({columns})"
    db.execute_sql(f'DROP INDEX IF EXISTS "{NAME}"')
    db.execute_sql(f"CREATE INDEX {NAME} ON ticket {columns} WHERE {ACTIVE}")
    if sqlite and db.execute_sql(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() is not None:
        db.execute_sql(f"ANALYZE {NAME}")


# The active tickets with no due time: the other range of "not overdue". Hardly any (a due
# time is set when a ticket is opened), so the index is as good as empty, and both planners
# know it; through the due-time index they reckoned that range by the table's share of
# tickets with no due time (most of the resolved ones: 60%) and PostgreSQL then read a whole
# narrower index of the active tickets instead (``ticket_active_priority_due``).
NO_DUE = "ticket_active_no_due"
NO_DUE_COLUMNS = "updated_at, id, due_at, status, department_id, assignee_id"


def up(migrator, db):
    _index(db, True)
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {NO_DUE} ON ticket ({NO_DUE_COLUMNS}) "
                   f"WHERE {ACTIVE} AND due_at IS NULL")


def down(migrator, db):
    db.execute_sql(f'DROP INDEX IF EXISTS "{NO_DUE}"')
    _index(db, False)
