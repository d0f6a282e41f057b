"""The active tickets by status, then due time: a page of one active status by due time.

A page of pending tickets by due time walked the due-time index (SQLite the plain
``ticket_due_at``, reading each walked ticket's row for its status and scope) past the
tickets of the other statuses due as late or as early, most of them new or open: at a
million tickets twice the tickets of 100,000 for the newest due first (SQLite 26,000 VM steps
and 4,200 pages for an agent's page, 14,000 and 2,100 at 100,000). Led by the status, the
page is a range of this index in its order, the scope tested there (``access._status``
names the active statuses too for a page by due time, as the index's ``WHERE`` does).

One index over the four active statuses (partial, as the inbox's others are: a resolved or
closed ticket leaves it), not one per status: a ticket's write adds one entry.
"""
from peewee import SqliteDatabase

NAME = "ticket_active_status_due"
ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"
SQLITE_COLUMNS = "(status, due_at, id, department_id, assignee_id)"
PG_COLUMNS = "(status, due_at, id) INCLUDE (department_id, assignee_id, contact_id)"


def up(migrator, db):
    sqlite = isinstance(db, SqliteDatabase)
    columns = SQLITE_COLUMNS if sqlite else PG_COLUMNS
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {NAME} ON ticket {columns} WHERE {ACTIVE}")
    if sqlite and db.execute_sql(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() is not None:
        db.execute_sql(f"ANALYZE {NAME}")


def down(migrator, db):
    db.execute_sql(f'DROP INDEX IF EXISTS "{NAME}"')
