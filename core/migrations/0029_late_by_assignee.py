"""An assignee's active tickets marked late, newest first: an agent's own overdue page.

"Mine" and overdue, newest first, reads the tickets marked late in the page's order
(``access._overdue_numbers``, migration 0027). For one assignee SQLite walked their active
tickets by (assignee, updated_at) (``ticket_active_assignee``, 0005), reading each row for
its mark, past every one still on time updated since the page's first overdue ticket: the
more tickets a desk opens an hour, the more of those (the seed's agent at 100,000 passed 71
rows for 51, at a million 273: 4,505 against 7,136 VM steps, 384 against 791 pages).
PostgreSQL walked the same index or every marked ticket's newest-first index (0027) testing
the assignee there. This index holds only the assignee's marked tickets in that order, with
what the walk tests (the scope, the due time), so the page is its first 51 entries at any
size. SQLite does not take it by itself at a million (its statistics weigh it about as the
active one): ``access._marked_index`` names it there.

A ticket enters it only when the job marks it late (a new ticket is never late), so a
submission writes nothing more; a marked ticket's update writes one more entry.
"""
from peewee import SqliteDatabase

NAME = "ticket_active_late_assignee"
SQLITE_COLUMNS = "(assignee_id, updated_at, id, department_id, due_at)"
PG_COLUMNS = "(assignee_id, updated_at, id) INCLUDE (department_id, due_at)"
# The very text of 0027's marked indexes: SQLite uses a partial index only for a query that
# says its terms.
LATE = "status IN ('new', 'open', 'pending', 'on_hold') AND late = TRUE"


def up(migrator, db):
    sqlite = isinstance(db, SqliteDatabase)
    columns = SQLITE_COLUMNS if sqlite else PG_COLUMNS
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {NAME} ON ticket {columns} WHERE {LATE}")
    if sqlite and db.execute_sql(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() is not None:
        db.execute_sql(f"ANALYZE {NAME}")


def down(migrator, db):
    db.execute_sql(f'DROP INDEX IF EXISTS "{NAME}"')
