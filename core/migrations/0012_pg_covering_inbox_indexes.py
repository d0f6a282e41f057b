"""PostgreSQL: the active tickets' three orders carry the columns the inbox's walks test.

An agent's inbox walks an index of the active tickets in the page's order (newest first, by
due time, by number) and keeps the tickets of their departments or assigned to them; with a
common tag, those whose tags hold it; overdue, those whose due time has passed. A plain index scan tests such conditions on each ticket's
row in the table, whatever the index holds: for the tag ``kyc`` in an agent's scope at a
million tickets, 7,300 rows read for a page of 50 (7,600 buffers, 13 ms).

These indexes have the same keys and partial ``WHERE`` as the ones they replace, and
``INCLUDE`` the columns those conditions read (and the contact, which every page joins).
``core.services.access.inbox_page`` asks for such a page's ticket numbers first, in a
subquery that reads nothing but the index (an index-only scan: the table is read only for a
ticket whose page the visibility map does not yet mark all-visible), then reads the page's
rows by number: 630 buffers for the same page. SQLite did this in 0009 and 0010 (its index
scans test any column the index holds); its indexes are left as they are.

The table's own autovacuum settings are made tighter: an index-only scan reads the table for
tickets on pages changed since the last vacuum, and an inbox reads the newest tickets first.
"""
from peewee import SqliteDatabase

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"

# What an agent's walk tests (the scope, the tags, the due time) and the contact every page
# joins.
COVERED = "department_id, assignee_id, contact_id, tags, due_at"

# (new index, keys, the index it replaces)
COVERING = (
    ("ticket_active_updated_scope", "updated_at, id", "ticket_active_updated"),
    ("ticket_active_due_scope", "due_at, id", "ticket_active_due"),
    ("ticket_active_number_scope", "id", "ticket_active_number"),
)

# Vacuum the tickets after 2% of them changed or were added (PostgreSQL's defaults: 20%),
# which keeps the visibility map of the newest tickets' pages current.
VACUUM_OFTEN = ("autovacuum_vacuum_scale_factor = 0.02, "
                "autovacuum_vacuum_insert_scale_factor = 0.02")
VACUUM_SETTINGS = ("autovacuum_vacuum_scale_factor", "autovacuum_vacuum_insert_scale_factor")


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    for name, keys, old in COVERING:
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON ticket ({keys}) "
                       f"INCLUDE ({COVERED}) WHERE {ACTIVE}")
        db.execute_sql(f'DROP INDEX IF EXISTS "{old}"')
    db.execute_sql(f"ALTER TABLE ticket SET ({VACUUM_OFTEN})")


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql(f"ALTER TABLE ticket RESET ({', '.join(VACUUM_SETTINGS)})")
    for name, keys, old in COVERING:
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {old} ON ticket ({keys}) WHERE {ACTIVE}")
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
