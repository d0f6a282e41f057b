"""SQLite: the tickets' full-text index merges its segments in small steps, not all at once
(FTS5 ``crisismerge`` 64).

FTS5 writes each flush of new words as a segment on level 0 and merges 16 segments of a level
(``automerge``, 0013) into one of the next. It has two ways to merge: a little at a time
after each write (``automerge``: about 64 pages of merging per level for every 64 pages
written), or a whole level at once inside the write that finds ``crisismerge`` segments on
it. ``crisismerge`` is 16 by default, the same as 0013's ``automerge``, so every merge was
the crisis kind: the submission that made a level's sixteenth segment merged the whole
level in its own transaction, under SQLite's single write lock, and the commit after it
checkpointed all those pages. At a million tickets (the seeded desk, 2,500 transactions
that each write one ticket's document as a submission does, alternated with the tree before)
one transaction wrote 30,820 pages (120 MB, 0.73 s of CPU) and the automatic checkpoint
then had to copy them, while every other writer of the desk waited. With 64 the merges run
in the steps ``automerge`` takes: the largest transaction 4,370 pages (0.12 s), the same
pages written in all (24.6 a transaction against 25.4). A search reads at most 63 segments
of a level instead of 15 in the worst case; ``automerge`` keeps each level near 16.

The setting is kept in the table's ``_config`` table, so it holds for every connection and
survives a ``rebuild``. PostgreSQL's GIN indexes are left as they are.
"""
from peewee import SqliteDatabase

TABLE = "ticket_search"  # 0011
CRISIS = 64
DEFAULT = 16


def _set(db, value):
    exists = db.execute_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (TABLE,)).fetchone()
    if exists:
        db.execute_sql(f'INSERT INTO "{TABLE}" ("{TABLE}", rank) VALUES (\'crisismerge\', {value})')


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        _set(db, CRISIS)


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        _set(db, DEFAULT)
