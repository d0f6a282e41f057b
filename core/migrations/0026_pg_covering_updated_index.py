"""PostgreSQL: the newest-first index of every status carries the scope, for a walked search.

The API lists every status by default, newest first, and a common search ("inv-12", a tenth
of the desk) walks that order testing each ticket's document (``core.services.search``).
Through ``ticket_updated`` (0005) the walk read the table's row of every ticket it passed to
test an agent's scope: at a million tickets 7,855 rows and 1,997 documents for an agent's 26
results. 0012 made the active tickets' orders covering for such walks; this is the same for
the newest-first order of every status: the same keys, with the scope's columns and the
contact ``INCLUDE``d, so ``core.services.access.inbox_page`` finds a walked page's numbers in the
index alone (``walks_far``) and reads only the page's rows.

It replaces ``ticket_updated``, which it extends: every view that read that one reads this
one the same way. What it costs a write: a ticket's ``updated_at`` changes with every write
to it, so no write of a ticket was a HOT update that spared the index before; an entry is 8
bytes longer (three numbers: 32 bytes with its header, from 24). SQLite did this in 0009 (``ticket_updated_scope``, of the same
name); its index is left as it is.
"""
from peewee import SqliteDatabase

NAME = "ticket_updated_scope"
OLD = "ticket_updated"
KEYS = "updated_at, id"
# What an agent's scope tests, and the contact every page joins (the page's numbers are found
# by the page's query with its join, which reads the column even where nothing of the
# contact is kept).
COVERED = "department_id, assignee_id, contact_id"


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {NAME} ON ticket ({KEYS}) INCLUDE ({COVERED})")
    db.execute_sql(f'DROP INDEX IF EXISTS "{OLD}"')


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {OLD} ON ticket ({KEYS})")
    db.execute_sql(f'DROP INDEX IF EXISTS "{NAME}"')
