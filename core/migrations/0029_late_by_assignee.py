"""An assignee's active tickets marked late, in the page's order: an agent's own overdue page.

"Mine" and overdue reads the tickets marked late in the page's order (``access.
_overdue_numbers``, migration 0027). Newest first, SQLite walked the assignee's active
tickets by (assignee, updated_at) (``ticket_active_assignee``, 0005), reading each row for
its mark, past every one still on time updated since the page's first overdue ticket: the
more tickets a desk opens an hour, the more of those (the seed's agent at 100,000 passed 71
rows for 51, at a million 273: 4,505 against 7,136 VM steps, 384 against 791 pages).
PostgreSQL walked every marked ticket's index in the page's order (0027) testing the
assignee there: 2,300-2,700 index entries a page at either size, newest first or by number.
These indexes hold only the assignee's marked tickets in those orders, with what the walk
tests (the scope, the due time), so the page is their first 51 entries at any size. SQLite
does not take the newest-first one by itself at a million (its statistics weigh it about as
the active one): ``access._marked_index`` names it there. SQLite's page by number reads
the assignee's active tickets by number (``ticket_active_assignee_number``) and did the same
work at both sizes (3,300-3,450 VM steps): it gets no index by number.

A ticket enters them only when the job marks it late (a new ticket is never late), so a
submission writes nothing more (``bench/public_profile.py --only submit --others-write`` at
100,000: 210.4 read and 187.6-187.8 write calls a submission, before and after); a marked
ticket's update writes one or two more entries.
"""
from peewee import SqliteDatabase

NAME = "ticket_active_late_assignee"
NUMBER = "ticket_active_late_assignee_number"
# The very text of 0027's marked indexes: SQLite uses a partial index only for a query that
# says its terms.
LATE = "status IN ('new', 'open', 'pending', 'on_hold') AND late = TRUE"
# (name, columns) on each database.
SQLITE_INDEXES = ((NAME, "(assignee_id, updated_at, id, department_id, due_at)"),)
PG_INDEXES = ((NAME, "(assignee_id, updated_at, id) INCLUDE (department_id, due_at)"),
              (NUMBER, "(assignee_id, id) INCLUDE (department_id, due_at)"))


def up(migrator, db):
    sqlite = isinstance(db, SqliteDatabase)
    for name, columns in SQLITE_INDEXES if sqlite else PG_INDEXES:
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON ticket {columns} WHERE {LATE}")
    if sqlite and db.execute_sql(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() is not None:
        db.execute_sql(f"ANALYZE {NAME}")


def down(migrator, db):
    for name in (NAME, NUMBER):
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
