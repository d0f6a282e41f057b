"""The search documents made again from the tickets (``loket db rebuild-search``).

Triggers keep each ticket's document (migrations 0011 and 0017) and, on PostgreSQL, the words
of the documents (0020's ``search_word``) in step with every write. Should they ever drift (a
restore of one table, SQL by hand with the triggers off, a bug), ``rebuild`` walks the
tickets by id in batches and, in each batch's own short transaction:

* makes every ticket's document from its rows and compares it with the stored one: a
  document that differs is written again, a missing one written, one whose ticket is gone
  removed; documents that are right are not touched (a second run writes nothing);
* on PostgreSQL adds the words of the batch's documents that ``search_word`` lacks, and
  the pairs of a number and the word before it that ``search_pair`` lacks (0031).

Safe while the desk serves: a batch is one transaction of a few thousand tickets. On SQLite
it holds the write lock for that long (writers wait, as for any write). On PostgreSQL it
first locks the batch's documents, so a message, subject or contact written meanwhile waits
for the batch and then applies its change on top of the rebuilt document, not under it.
A writer that locks documents in another order (a contact renamed rewrites every document of
its tickets; two in one transaction) can deadlock with a batch: PostgreSQL undoes one of the
two, and when that is the batch, it is run again (``ATTEMPTS``, see ``RETRIED``).

On PostgreSQL it then removes from ``search_word`` the words no document holds any more
(``prune_words``): 0020's triggers only ever add words, so a word edited out of every
message stayed for good. Likewise from ``search_pair`` the pairs no document holds any more
(``prune_pairs``): 0031's trigger takes none away when a document is rewritten, so a
contact renamed, a message edited, moved or deleted left its old pairs for good (each a
document test when its range is searched, and counted towards its range's most).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any, TypeVar

import peewee

from .. import db

# The documents as the newest migration keeps them, and PostgreSQL's words of them.
_DOCUMENT = import_module("core.migrations.0017_search_without_notifications").DOCUMENT
_WORDS = import_module("core.migrations.0020_pg_search_words")
# SQLite: the tickets whose documents wait to be written (0032).
_QUEUED = import_module("core.migrations.0032_search_documents_in_batches")

# SQLite: queued documents written in one transaction, and how many queued make a write's
# commit write them (``write_queued_when_due``). Each search tests the queued tickets' own
# rows (tens of microseconds a ticket), so the queue is kept short; each batch is one flush
# of FTS5 for all its documents, where each document alone made one (about 28 pages a
# submission at a million tickets, 0032). Measured at 1M: a submission writes 73.6 / 73.1 /
# 71.5 / 71.2 / 71.1 pages with batches of 8 / 16 / 32 / 64 / 128 (``bench/wal_pages.py
# --queue-batch``, 384 submissions each), and every queued ticket adds about 27 us to each
# search (a reference: 1.9 ms of CPU with none queued, 2.7 with 32, 5.3 with 128;
# ``bench/queries.py --queued``): past 32, a search pays more than a submission saves.
QUEUE_BATCH = 32

BATCH = 2000

log = logging.getLogger(__name__)

# Why PostgreSQL may undo a transaction of the command for another's sake (SQLSTATE), as
# the command says it: the same transaction run again then succeeds.
RETRIED = {"40P01": "a deadlock with another transaction",
           "40001": "a serialization failure",
           "55P03": "a lock not granted in time"}
# Runs of one transaction before the command gives up, and the pause before the second run
# (longer before each next one).
ATTEMPTS = 5
PAUSE = 0.2

# Words whose documents are checked under one lock (``prune_words``); how long the command
# waits for that lock before it tries again (writers of documents queue behind it).
PRUNE_CHUNK = 1000
PRUNE_LOCK_TIMEOUT = "2s"
# Pairs checked under one lock (``prune_pairs``): each is its document read and its pairs
# made again, 0.12 ms (100,000 tickets), so a thousand held writers back 120 ms.
PRUNE_PAIRS_CHUNK = 250

T = TypeVar("T")


class Stopped(Exception):
    """A transaction of the command was undone ``ATTEMPTS`` times; what came before it is kept."""


@dataclass
class Rebuilt:
    tickets: int = 0
    written: int = 0
    removed: int = 0
    # PostgreSQL: words no document holds that were removed from ``search_word``.
    pruned: int = 0
    # PostgreSQL: pairs no document holds that were removed from ``search_pair``.
    pruned_pairs: int = 0
    # Transactions run again after PostgreSQL undid them (``RETRIED``).
    retried: int = 0


def _attempted(what: str, work: Callable[[], T], done: Rebuilt) -> T:
    """``work()`` in a write transaction, run again while PostgreSQL undoes it for one of
    ``RETRIED``'s reasons, at most ``ATTEMPTS`` times; then ``Stopped`` saying ``what``."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with db.write_transaction():
                return work()
        except peewee.DatabaseError as exc:
            reason = RETRIED.get(db.pgcode(exc) or "")
            if reason is None:
                raise
            if attempt == ATTEMPTS:
                raise Stopped(f"{what}: undone by {reason} {ATTEMPTS} times in a row; what "
                              "came before is kept, run the command again") from exc
            log.warning("%s: undone by %s, run again (attempt %d of %d)", what, reason,
                        attempt + 1, ATTEMPTS)
            done.retried += 1
            time.sleep(PAUSE * attempt)
    raise AssertionError("unreachable")


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


# ``rebuild``'s note of the words its batches read in the documents (PostgreSQL, temporary:
# this session's own).
_HELD_NAME = "search_word_held"
_HELD = f"pg_temp.{_HELD_NAME}"
# And of the pairs (0031) they read: every pair of every document, in no order and without
# an index (each batch's tickets are its own, so none is noted twice; an undone batch's
# notes are undone with it). One anti-join with ``search_pair`` lists what none held.
_HELD_PAIRS_NAME = "search_pair_held"
_HELD_PAIRS = f"pg_temp.{_HELD_PAIRS_NAME}"


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
    # The batch's words, added where ``search_word`` lacks them (in order: see 0020) and noted
    # as held for ``prune_words``, from one reading of the documents.
    database.execute_sql(
        "WITH held AS (SELECT DISTINCT w FROM ticket_search, unnest(tsvector_to_array(doc)) "
        f"AS w WHERE ticket_id BETWEEN %s AND %s AND {_WORDS.KEPT}), added AS (INSERT INTO "
        "search_word (word) SELECT w FROM held ORDER BY w ON CONFLICT DO NOTHING) "
        f"INSERT INTO {_HELD} (word) SELECT w FROM held ON CONFLICT DO NOTHING", (first, last))
    # The pairs of a number and the word before it (0031) the batch's documents hold, added
    # where ``search_pair`` lacks them (in key order, as 0031's trigger) and noted as held for
    # ``prune_pairs``, from one reading of the documents.
    database.execute_sql(
        "WITH held AS (SELECT p, ticket_id FROM ticket_search, unnest(loket_number_pairs(doc)) "
        "AS p WHERE ticket_id BETWEEN %s AND %s), added AS (INSERT INTO search_pair (pair, "
        "ticket_id) SELECT p, ticket_id FROM held ORDER BY p, ticket_id ON CONFLICT DO NOTHING) "
        f"INSERT INTO {_HELD_PAIRS} (pair, ticket_id) SELECT p, ticket_id FROM held",
        (first, last))
    (tickets,) = database.execute_sql("SELECT count(*) FROM ticket WHERE id BETWEEN %s AND %s",
                                      (first, last)).fetchone()
    return int(tickets), written, removed


def write_queued(most: int | None = None) -> int:
    """SQLite: write the documents of the ``most`` (``QUEUE_BATCH``) lowest-numbered queued
    tickets, in one write transaction; returns how many (0: none queued, or PostgreSQL)."""
    if not db.is_sqlite():
        return 0
    most = most or QUEUE_BATCH
    database = db.database.obj
    with db.write_transaction():
        numbers = database.execute_sql(
            f"SELECT DISTINCT ticket_id FROM {_QUEUED.QUEUE} ORDER BY ticket_id LIMIT ?",
            (most,)).fetchall()
        if not numbers:
            return 0
        return _QUEUED.DOCUMENT.write_queued(database, numbers[0][0], numbers[-1][0])


def write_all_queued() -> int:
    """SQLite: write every queued document, ``QUEUE_BATCH`` a transaction (writers queue
    behind each transaction, not behind all of them); returns how many."""
    written = 0
    while True:
        done = write_queued()
        written += done
        if done < QUEUE_BATCH:
            return written


def write_queued_when_due() -> int:
    """After a write's commit (SQLite): write a batch of queued documents once
    ``QUEUE_BATCH`` wait. A look-up of one row when fewer do."""
    if not db.is_sqlite():
        return 0
    due = db.database.obj.execute_sql(
        f"SELECT 1 FROM (SELECT DISTINCT ticket_id FROM {_QUEUED.QUEUE}) LIMIT 1 OFFSET ?",
        (QUEUE_BATCH - 1,)).fetchone()
    return write_queued() if due else 0


def rebuild(batch: int = BATCH, progress: Callable[[int], object] | None = None) -> Rebuilt:
    """Make the documents (and PostgreSQL's words and pairs) of every ticket right, ``batch``
    ids at a time; ``progress(n)`` after each batch with the ids it covered. On PostgreSQL
    then the words and the pairs no document holds are removed (``prune_words``,
    ``prune_pairs``). ``Stopped`` when a batch was undone ``ATTEMPTS`` times (the batches
    before it are done)."""
    done = Rebuilt()
    ends = span()
    if ends is None:
        return done
    low, high = ends
    database = db.database.obj
    sqlite = db.is_sqlite()
    if sqlite:
        write_all_queued()  # the batches compare every document with its rows
    else:
        # The words and pairs of the documents as the batches read them, for this session.
        database.execute_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_HELD_NAME} "
                             '(word text COLLATE "C" PRIMARY KEY)')
        database.execute_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_HELD_PAIRS_NAME} "
                             '(pair text COLLATE "C", ticket_id integer)')
        database.execute_sql(f"TRUNCATE {_HELD}, {_HELD_PAIRS}")
    one_batch = _sqlite_batch if sqlite else _pg_batch
    for first in range(low, high + 1, batch):
        last = min(first + batch - 1, high)
        tickets, written, stale = _attempted(
            f"the search documents of tickets {first}-{last}",
            lambda first=first, last=last: one_batch(database, first, last), done)
        done.tickets += tickets
        done.written += written
        done.removed += stale
        if progress is not None:
            progress(last - first + 1)
    if not sqlite:
        prune_words(done)
        prune_pairs(done)
        database.execute_sql(f"DROP TABLE IF EXISTS {_HELD}, {_HELD_PAIRS}")
    return done


def prune_words(done: Rebuilt) -> None:
    """PostgreSQL: remove the words of ``search_word`` that no document holds: those
    ``rebuild``'s batches read in no document (``_HELD``) and that none holds now.

    Correct beside writers of documents: 0020's trigger adds a word a document brings with
    ``ON CONFLICT DO NOTHING``, which neither waits for nor locks a word already there, so a
    document bringing back a word being removed could be written unseen and its word lost (a
    prefix of it would then find nothing). So the words are checked and removed under a
    ``SHARE`` lock of ``ticket_search``: it waits for every transaction writing a document
    to end (its document is then seen here), and holds new writers of documents back until
    the removal commits (after which their trigger adds the word again). ``PRUNE_CHUNK``
    words a lock, so writers wait milliseconds; a lock not had in ``PRUNE_LOCK_TIMEOUT`` is
    asked for again (``_attempted``).
    """
    database = db.database.obj
    candidates = [word for (word,) in database.execute_sql(
        f"SELECT word FROM search_word AS w WHERE NOT EXISTS (SELECT 1 FROM {_HELD} AS h "
        "WHERE h.word = w.word) ORDER BY word")]
    for at in range(0, len(candidates), PRUNE_CHUNK):
        chunk = candidates[at:at + PRUNE_CHUNK]
        done.pruned += _attempted(f"the unused search words from {chunk[0]!r}",
                                  lambda chunk=chunk: _prune(database, chunk), done)


def _prune(database: Any, words: list[str]) -> int:
    database.execute_sql(f"SET LOCAL lock_timeout = '{PRUNE_LOCK_TIMEOUT}'")
    database.execute_sql("LOCK TABLE ticket_search IN SHARE MODE")
    # Each word asked of the documents' index as a query of that one lexeme (quoted as
    # tsquery's input wants: a backslash and a quote escaped).
    return database.execute_sql(
        "DELETE FROM search_word AS w WHERE w.word = ANY(%s::text[]) AND NOT EXISTS "
        "(SELECT 1 FROM ticket_search AS s WHERE s.doc @@ ('''' || replace(replace(w.word, "
        r"'\', '\\'), '''', '''''') || '''')::tsquery)", [words]).rowcount


def prune_pairs(done: Rebuilt) -> None:
    """PostgreSQL: remove the pairs of ``search_pair`` that no document holds: those
    ``rebuild``'s batches read in no document (``_HELD_PAIRS``) and that their ticket's
    document does not hold now.

    The same reasoning as ``prune_words``: 0031's trigger adds a document's pairs with ``ON
    CONFLICT DO NOTHING``, which neither waits for nor locks a pair already there, so a
    document that brings back a pair being removed (a message edited back, say) could be
    written unseen and the pair lost, and with it the ticket from a walked search of that
    number. So each ``PRUNE_PAIRS_CHUNK`` of pairs is checked against its ticket's document
    and removed under a ``SHARE`` lock of ``ticket_search`` (writers of documents finish
    first and wait for the removal's commit, then add their pairs again). A pair is held when
    ``loket_number_pairs`` of the document lists it: the function's own output, so a pair of
    words cut to ``PAIR_WORD`` characters is compared cut the same way.

    The table has no index by ticket, so its pairs are not looked up batch by batch (a scan
    of the table each), nor each checked against its document (7.5 s at 100,000 tickets):
    one anti-join of the table with the pairs noted lists those none held (0.1 s for
    205,000 pairs), and only they are read again under the lock.
    """
    database = db.database.obj
    database.execute_sql(f"ANALYZE {_HELD_PAIRS}")  # a temporary table has no statistics
    candidates = database.execute_sql(
        f"SELECT pair, ticket_id FROM search_pair AS p WHERE NOT EXISTS (SELECT 1 FROM "
        f"{_HELD_PAIRS} AS h WHERE h.pair = p.pair AND h.ticket_id = p.ticket_id) "
        "ORDER BY pair, ticket_id").fetchall()
    for at in range(0, len(candidates), PRUNE_PAIRS_CHUNK):
        chunk = candidates[at:at + PRUNE_PAIRS_CHUNK]
        pairs, tickets = [pair for pair, _ in chunk], [ticket for _, ticket in chunk]
        done.pruned_pairs += _attempted(
            f"the unused search pairs from {chunk[0][0]!r}",
            lambda pairs=pairs, tickets=tickets: _prune_pairs(database, pairs, tickets), done)


def _prune_pairs(database: Any, pairs: list[str], tickets: list[int]) -> int:
    database.execute_sql(f"SET LOCAL lock_timeout = '{PRUNE_LOCK_TIMEOUT}'")
    database.execute_sql("LOCK TABLE ticket_search IN SHARE MODE")
    return database.execute_sql(
        "DELETE FROM search_pair AS p USING unnest(%s::text[], %s::integer[]) AS c (pair, "
        "ticket_id) WHERE p.pair = c.pair AND p.ticket_id = c.ticket_id AND NOT EXISTS "
        "(SELECT 1 FROM ticket_search AS s WHERE s.ticket_id = p.ticket_id "
        "AND p.pair = ANY(loket_number_pairs(s.doc)))", [pairs, tickets]).rowcount
