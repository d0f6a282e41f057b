"""Each filter the console offers, in each order it sorts by, is one index range.

The console filters by assignee ("me", "unassigned", a colleague), category, channel and
priority in any of its orders, but the active tickets' index for each of those (0005) is in
the newest-first order only. By number or by due time SQLite took that index for the filter
and sorted every match: at a million tickets 159,000 unassigned active tickets sorted for a
page of 50 (0.7-1.5 s), an agent's 9,000 (45-160 ms), a category's 16,000 (170-250 ms); or
it walked the order's index reading each ticket's row to test the filter, which for a rare
value reads them all. PostgreSQL walked the due-time index reading rows for a channel that
2% of the active tickets have (an agent's page of ``api`` by due time, 38-60 ms). With the
filter's column followed by each of those orders, a page is one range of an index again
(2-4 ms on SQLite, 11-13 ms of the clock on PostgreSQL on a loaded machine), whatever share
of the desk the value has.

A SQLite desk that was analysed gets the new indexes measured too (as 0010 does): weighed by
SQLite's defaults beside the others' statistics, they looked good for the newest-first
order as well, and SQLite sorted there instead (1.0-1.5 s at a million). PostgreSQL weighs a
plain column's index by the table's statistics.
"""
from peewee import SqliteDatabase

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"

# (index, columns): each filter's column, then the order by number or by due time.
INDEXES = tuple((f"ticket_active_{name}_{order}", f"{column}, {keys}")
                for name, column in (("assignee", "assignee_id"), ("category", "category_id"),
                                     ("channel", "channel"), ("priority", "priority"))
                for order, keys in (("number", "id"), ("due", "due_at, id")))


def up(migrator, db):
    analysed = isinstance(db, SqliteDatabase) and db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() is not None
    for name, columns in INDEXES:
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON ticket ({columns}) WHERE {ACTIVE}")
        if analysed:
            db.execute_sql(f"ANALYZE {name}")


def down(migrator, db):
    for name, _columns in INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
