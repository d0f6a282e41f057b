"""The search documents made again from the tickets (``loket db rebuild-search``).

Triggers keep each ticket's document (migrations 0011 and 0017) and, on PostgreSQL, the words
of the documents (0020's ``search_word``) in step with every write. Should they ever drift (a
restore of one table, SQL by hand with the triggers off, a bug), ``rebuild`` walks the
tickets by id in batches and, in each batch's own short transaction:

* makes every ticket's document from its rows and compares it with the stored one: a
  document that differs is written again, a missing one written, one whose ticket is gone
  removed; documents that are right are not touched (a second run writes nothing);
* on PostgreSQL adds the words of the batch's documents that ``search_word`` lacks.

Safe while the desk serves: a batch is one transaction of a few thousand tickets. On SQLite
it holds the write lock for that long (writers wait, as for any write). On PostgreSQL it
first locks the batch's documents, so a message, subject or contact written meanwhile waits
for the batch and then applies its change on top of the rebuilt document, not under it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from .. import db

# The documents as the newest migration keeps them, and PostgreSQL's words of them.
_DOCUMENT = import_module("core.migrations.0017_search_without_notifications").DOCUMENT
_WORDS = import_module("core.migrations.0020_pg_search_words")

BATCH = 2000


@dataclass
class Rebuilt:
    tickets: int = 0
    written: int = 0
    removed: int = 0


def span() -> tuple[int, int] | None:
    """The lowest and highest id of any ticket or document (None: neither exists)."""
    database = db.database.obj
    key = "rowid" if db.is_sqlite() else "ticket_id"
    low, high = database.execute_sql(
        f"SELECT min(low), max(high) FROM (SELECT min(id) AS low, max(id) AS high FROM ticket "
        f"UNION ALL SELECT min({key}), max({key}) FROM ticket_search) AS ends").fetchone()
    return None if low is None else (int(low), int(high))


def _sqlite_batch(database, first: int, last: int) -> tuple[int, int, int]:
    """SQLite: the batch's tickets, documents written and documents removed."""
    wanted = _DOCUMENT.documents(database)
    removed = database.execute_sql(
        "DELETE FROM ticket_search WHERE rowid BETWEEN ? AND ? AND rowid NOT IN "
        "(SELECT id FROM ticket WHERE id BETWEEN ? AND ?)", (first, last, first, last)).rowcount
    # A document unlike its ticket's rows goes, then every ticket without one gets it.
    database.execute_sql(
        "DELETE FROM ticket_search WHERE rowid IN (SELECT rowid FROM (SELECT rowid, number, "
        f"subject, name, email, body FROM ticket_search WHERE rowid BETWEEN ? AND ? EXCEPT "
        f"{wanted}))", (first, last, first, last))
    written = database.execute_sql(
        f"INSERT INTO ticket_search (rowid, number, subject, name, email, body) {wanted} "
        "AND t.id NOT IN (SELECT rowid FROM ticket_search WHERE rowid BETWEEN ? AND ?)",
        (first, last, first, last)).rowcount
    (tickets,) = database.execute_sql("SELECT count(*) FROM ticket WHERE id BETWEEN ? AND ?",
                                      (first, last)).fetchone()
    return int(tickets), written, removed


def _pg_batch(database, first: int, last: int) -> tuple[int, int, int]:
    """PostgreSQL: the batch's tickets, documents written and documents removed."""
    # The batch's documents locked first: a write to one of them waits for the batch and
    # then applies on top of what the batch wrote (each statement below sees every write
    # committed before it).
    database.execute_sql("SELECT 1 FROM ticket_search WHERE ticket_id BETWEEN %s AND %s "
                         "ORDER BY ticket_id FOR UPDATE", (first, last))
    removed = database.execute_sql(
        "DELETE FROM ticket_search AS s WHERE ticket_id BETWEEN %s AND %s AND NOT EXISTS "
        "(SELECT 1 FROM ticket AS t WHERE t.id = s.ticket_id)", (first, last)).rowcount
    written = database.execute_sql(
        f"INSERT INTO ticket_search (ticket_id, doc) {_DOCUMENT.documents(database)} "
        "ON CONFLICT (ticket_id) DO UPDATE SET doc = EXCLUDED.doc "
        "WHERE ticket_search.doc IS DISTINCT FROM EXCLUDED.doc", (first, last)).rowcount
    _WORDS.add_words(database, first, last)
    (tickets,) = database.execute_sql("SELECT count(*) FROM ticket WHERE id BETWEEN %s AND %s",
                                      (first, last)).fetchone()
    return int(tickets), written, removed


def rebuild(batch: int = BATCH, progress: Callable[[int], object] | None = None) -> Rebuilt:
    """Make the documents (and PostgreSQL's words) of every ticket right, ``batch`` ids at a
    time; ``progress(n)`` after each batch with the ids it covered."""
    done = Rebuilt()
    ends = span()
    if ends is None:
        return done
    low, high = ends
    database = db.database.obj
    for first in range(low, high + 1, batch):
        last = min(first + batch - 1, high)
        with db.write_transaction():
            if db.is_sqlite():
                tickets, written, stale = _sqlite_batch(database, first, last)
            else:
                tickets, written, stale = _pg_batch(database, first, last)
        done.tickets += tickets
        done.written += written
        done.removed += stale
        if progress is not None:
            progress(last - first + 1)
    return done
