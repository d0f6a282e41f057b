"""SQLite: search documents written many at a time, not one a transaction.

FTS5 writes out what a transaction gave it when the transaction commits: one document, as
each submission wrote, became a segment of its own on mostly empty pages, and FTS5's
merging (0013, 0015) does work in step with the pages written. At a million tickets that
was about 28 of the 98 pages a submission wrote (``bench/wal_pages.py``, 400 submissions:
19.4 pages of index data, 5.6 of the free list, the document's copy and sizes), all under
SQLite's one write lock, which two workers' submissions held 70-87% of the time.

Now a write that changes what a ticket's document holds (the ticket's insert, number,
subject or contact; a message the documents keep added, edited, moved or deleted; the
contact's name or address) puts the ticket's number in ``ticket_search_queue``, a small
row (its id only grows: a search's kept judgements see every write by it). ``core.services.search_index.write_queued`` writes the queued tickets' documents in
batches, one transaction and one flush each: after the commit of a write that leaves
``QUEUE_BATCH`` or more queued, every minute in the job worker, and before ``loket db
rebuild-search``. Until its document is written a search tests a queued ticket's own rows,
as a walked page does (``core.services.search``), so a ticket is found the moment its
transaction commits, and a ticket's old document is never read once it is queued.

The mark of 0019 (``ticket_search_pending``) has no use left and goes. ``down`` writes every
queued document first, then puts 0019's triggers and mark back. PostgreSQL's documents are
kept as 0024 keeps them (its GIN index has a pending list of its own).
"""

from importlib import import_module

SEARCH = import_module("core.migrations.0011_ticket_search")
BEFORE = import_module("core.migrations.0019_search_document_once")
# The documents as they are kept from here on: queued on SQLite, written at the commit on
# PostgreSQL as by 0024 (``bench/seed.py`` puts these triggers back after its bulk load).
DOCUMENT = SEARCH.Document(notifications=False, at_commit=True, queued=True)
QUEUE = SEARCH.QUEUE


def write_all_queued(db):
    """Write every queued document (one batch, in the migration's own transaction)."""
    ends = db.execute_sql(f"SELECT min(ticket_id), max(ticket_id) FROM {QUEUE}").fetchone()
    if ends[0] is not None:
        DOCUMENT.write_queued(db, ends[0], ends[1])


def up(migrator, db):
    if SEARCH._sqlite(db):
        for statement in SEARCH.QUEUE_TABLE:
            db.execute_sql(statement)
        BEFORE.DOCUMENT.drop_triggers(db)
        DOCUMENT.create_triggers(db)
        db.execute_sql(f"DROP TABLE IF EXISTS {BEFORE.PENDING}")


def down(migrator, db):
    if SEARCH._sqlite(db):
        write_all_queued(db)
        DOCUMENT.drop_triggers(db)
        db.execute_sql(f"CREATE TABLE IF NOT EXISTS {BEFORE.PENDING} "
                       "(id INTEGER NOT NULL PRIMARY KEY)")
        BEFORE.DOCUMENT.create_triggers(db)
        db.execute_sql(f"DROP TABLE IF EXISTS {QUEUE}")
