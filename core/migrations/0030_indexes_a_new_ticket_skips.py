"""What a new ticket's rows do not have, no index holds: fewer b-trees written a submission.

Every index on a table is written by every row its condition admits, and at a million
tickets the b-trees a submission touches are most of its database work (the ticket's 38
indexes alone about 0.6 ms of CPU a submission, `bench/README.md`). Some of them index a
column that a customer's new ticket, message and event leave empty, and are only ever read
for a value:

* the tickets and contacts merged into another (``merged_into_id``): nearly none are;
* the staff member who wrote a message or did something (``staff_id``): none of a
  customer's;
* the contact of a message or event (``contact_id``): none of an agent's;
* a message's delivery key (unique; only the desk's own outgoing messages have one).

Each becomes partial, ``WHERE column IS NOT NULL``: a look-up by value (``column = ?``),
which is every use they have, the foreign keys' own ``ON DELETE`` included, still reads it
on both databases (SQLite and PostgreSQL know that ``= ?`` implies ``IS NOT NULL``); a
delivery key stays unique (two empty ones never conflicted). And one index no statement
reads any more is dropped: ``ticket_created_response`` (0005, the dashboard's first
responses, which come from roll-ups since 0007; ``bench/index_use.py`` finds no plan on
either database that uses it).

A submission at 100,000 tickets then writes 86.2 pages across 61.8 b-trees a commit instead
of 92.0 across 67.7 (``bench/wal_pages.py``); an agent's reply and its events skip the
contact indexes the same way. Same names as before, so nothing that names them changes.
"""
from peewee import SqliteDatabase

# (table, index, column, unique)
PARTIAL = (
    ("ticket", "ticket_merged_into_id", "merged_into_id", False),
    ("contact", "contact_merged_into_id", "merged_into_id", False),
    ("message", "message_staff_id", "staff_id", False),
    ("message", "message_contact_id", "contact_id", False),
    ("message", "message_delivery_key", "delivery_key", True),
    ("ticket_event", "ticketevent_staff_id", "staff_id", False),
    ("ticket_event", "ticketevent_contact_id", "contact_id", False),
)
DROPPED = ("ticket_created_response", "ticket",
           "created_at, first_response_at, channel, category_id")


def _build(db, partial):
    sqlite = isinstance(db, SqliteDatabase)
    analysed = sqlite and db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() is not None
    for table, name, column, unique in PARTIAL:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
        where = f" WHERE {column} IS NOT NULL" if partial else ""
        db.execute_sql(f'CREATE {"UNIQUE " if unique else ""}INDEX "{name}" '
                       f'ON "{table}" ("{column}"){where}')
        if analysed:
            db.execute_sql(f'ANALYZE "{name}"')


def up(migrator, db):
    _build(db, partial=True)
    db.execute_sql(f'DROP INDEX IF EXISTS "{DROPPED[0]}"')


def down(migrator, db):
    _build(db, partial=False)
    name, table, columns = DROPPED
    db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({columns})')
