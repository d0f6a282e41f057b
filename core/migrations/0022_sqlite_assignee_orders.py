"""SQLite: an agent's own and the unassigned tickets in every order the console sorts by.

The console filters by assignee ("me", "unassigned", a colleague) in any of its orders, but
the active tickets' assignee index (0005) is in the newest-first order only. By number or by
due time SQLite took that index for the assignee and sorted every match: at a million
tickets 159,000 unassigned active tickets sorted for a page of 50 (0.7-1.5 s), an agent's
9,000 (45-160 ms). With the assignee followed by each of those orders, a page is one range
of an index again (2-4 ms). PostgreSQL is left as it is: it walks the order's own index,
which holds the assignee (0012), and stops after a page.

A desk that was analysed gets the new indexes measured too (as 0010 does): weighed by
SQLite's defaults beside the others' statistics, they looked good for the newest-first
order as well, and SQLite sorted there instead (1.0-1.5 s at a million).
"""
from peewee import SqliteDatabase

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"

INDEXES = (("ticket_active_assignee_number", "assignee_id, id"),
           ("ticket_active_assignee_due", "assignee_id, due_at, id"))


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    analysed = db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() is not None
    for name, columns in INDEXES:
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON ticket ({columns}) WHERE {ACTIVE}")
        if analysed:
            db.execute_sql(f"ANALYZE {name}")


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    for name, _columns in INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
