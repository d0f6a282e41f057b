"""SQLite: the tickets' full-text index merges its segments in small steps, not all at once
(FTS5 ``crisismerge`` 64).

FTS5 writes each flush of new words as a segment on level 0 and merges 16 segments of a level
(``automerge``, 0013) into one of the next. It has two ways to merge: a little at a time
after each write (``automerge``: about 64 pages of merging per level for every 64 pages
written), or a whole level at once inside the write that finds ``crisismerge`` segments on
it. ``crisismerge`` is 16 by default, the same as 0013's ``automerge``, so every merge was
the crisis kind: the submission that made a level's sixteenth segment merged the whole
level in its own transaction, under SQLite's single write lock, and the commit after it
checkpointed all those pages. On a copy of the seeded desk of a million tickets, 2,500
transactions that each write one ticket's document as a submission does (its insert, then
its first message's update): with 16, one transaction wrote 30,820 pages (120 MB, 0.73 s of
CPU) while every other writer of the desk waited, and the automatic checkpoint then had to
copy them; with 64 the largest wrote 4,370 (0.12 s), the same pages in all (24.6 a
transaction against 25.4). A search reads more segments (125 against 20 after those writes
with a still higher setting): seven searches' look-ups took 0.1–0.8 ms more each, of
0.03–27 ms (the commonest words).

The setting is kept in the table's ``_config`` table, so it holds for every connection and
survives a ``rebuild``. PostgreSQL's GIN indexes are left as they are.
"""
from importlib import import_module

from peewee import SqliteDatabase

TABLE = "ticket_search"  # 0011
CRISIS = 64
DEFAULT = 16


def _set(db, value):
    # The table is there unless a desk's migrations were run out of order; 0013 sets it.
    merge = import_module("core.migrations.0013_fts_merge_less")
    merge.set_option(db, [TABLE] if TABLE in merge.fts_tables(db) else [], "crisismerge", value)


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        _set(db, CRISIS)


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        _set(db, DEFAULT)
