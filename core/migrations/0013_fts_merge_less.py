"""SQLite: the full-text tables merge their segments less often (FTS5 ``automerge`` 16).

FTS5 writes each transaction's words as a small segment and merges segments in the
background of later writes: with the default ``automerge`` of 4, four segments of one size
are merged into one of the next, so at a million tickets each word is written again about
ten times over its life, and every write pays for that share of merging. With 16 a word is
written about half as often. Measured at a million tickets (`bench/public_profile.py
--seeded-sqlite`, with 0005's three tables: one message a transaction, as a submission or a
mail adds them): the message insert with its full-text trigger 0.64 ms of CPU with 4, 0.30
with 8, 0.21 with 16; a whole ticket submission 4.2 → 3.6 ms of CPU. A search reads a few
more segments per word (at most 15 of each size instead of 3), microseconds each. It applies
to every FTS5 table there is when it runs: after 0011, the tickets' ``ticket_search``.

The setting is kept in each table's ``_config`` table, so it holds for every connection and
survives a ``rebuild``. PostgreSQL's GIN indexes are left as they are.
"""
from peewee import SqliteDatabase

MERGE = 16
DEFAULT = 4


def fts_tables(db):
    """The FTS5 tables of this database, whichever migration made them."""
    rows = db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'table' "
                          "AND sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%'").fetchall()
    return [name for (name,) in rows]


def set_option(db, tables, option, value):
    """Set an FTS5 option (kept in each table's ``_config``) on these tables."""
    for name in tables:
        db.execute_sql(f'INSERT INTO "{name}" ("{name}", rank) VALUES (\'{option}\', {value})')


def _set(db, value):
    set_option(db, fts_tables(db), "automerge", value)


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        _set(db, MERGE)


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        _set(db, DEFAULT)
