"""PostgreSQL: the words of the search documents, so that a prefix becomes the words it starts.

A search's last run is a prefix ("santoso" finds "santosos" too, "sari@exa" finds
sari@example.com). PostgreSQL's GIN index answers a prefix (``'santoso':*``) by a partial
match: it gathers the postings of every word the prefix starts into a bitmap, and a search
of several prefixes cannot skip through their lists together as it does for whole words.
Two common names that never meet ("santoso halim", 50,000 tickets each at a million) took
75-87 ms of the server's time as prefixes, 9 ms as the same two whole words.

``search_word`` holds every word (lexeme) that begins with anything but an ASCII digit and
is in some ticket's document, ``core.services.search`` looks a prefix up there (a range of
the primary key) and asks the index for those few whole words instead; a prefix that starts
more than a few dozen words keeps the partial match, and one that starts none matches
nothing. Numbers are left out (a million tickets hold 2.2 million numbers, every ticket
number and reference; 181 other words in the benchmark's desk), so a prefix of digits
("inv-12", "999") keeps the partial match.

The table only grows: a word no document holds any more costs a look-up that finds nothing,
never a wrong answer. A row trigger on ``ticket_search`` adds the words a new document holds
or an update brings (``ts_delete`` of the old document's words from the new one), in sorted
order so that two writers adding the same new words wait for each other rather than
deadlock. It costs a ticket opened and answered once (three document writes) about 0.2-0.35
ms of the server's CPU, some 6% (in process, 3 x 200 alternated with the trigger disabled;
a statement trigger with transition tables cost 0.15-0.7). The fill walks the existing
documents in batches with progress on stderr. SQLite needs none of this: FTS5's prefix
indexes answer a prefix from one list.
"""

from __future__ import annotations

import sys
import time

FILL_BATCH = 50_000

# The words kept: not a number, a ticket number ("#123") or the separator ("|").
KEPT = "w !~ '^[0-9#|]'"

TABLE = 'CREATE TABLE IF NOT EXISTS search_word (word text COLLATE "C" PRIMARY KEY)'

# A new document's words, or those an update added (``ts_delete``: the new document without
# the old one's words), in sorted order.
FUNCTION = f"""CREATE OR REPLACE FUNCTION search_word_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO search_word (word)
    SELECT w FROM unnest(tsvector_to_array(CASE WHEN TG_OP = 'INSERT' THEN NEW.doc
                         ELSE ts_delete(NEW.doc, tsvector_to_array(OLD.doc)) END)) AS w
    WHERE {KEPT} ORDER BY w ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$"""

TRIGGERS = (
    "CREATE TRIGGER search_word_insert AFTER INSERT ON ticket_search "
    "FOR EACH ROW EXECUTE FUNCTION search_word_add()",
    "CREATE TRIGGER search_word_update AFTER UPDATE OF doc ON ticket_search "
    "FOR EACH ROW WHEN (OLD.doc IS DISTINCT FROM NEW.doc) EXECUTE FUNCTION search_word_add()",
)


def _sqlite(db):
    db = getattr(db, "obj", None) or db
    return any(cls.__name__ == "SqliteDatabase" for cls in type(db).__mro__)


def add_words(db, first, last):
    """Add the words of the documents of tickets ``first`` to ``last`` (some may be there)."""
    db.execute_sql(
        "INSERT INTO search_word (word) SELECT DISTINCT w FROM ticket_search, "
        "unnest(tsvector_to_array(doc)) AS w WHERE ticket_id BETWEEN %s AND %s AND "
        f"{KEPT} ORDER BY w ON CONFLICT DO NOTHING", (first, last))


def fill_from_documents(db, add, what, progress=sys.stderr):
    """Run ``add(db, first, last)`` over every document there is, ``FILL_BATCH`` tickets at
    a time, with progress on ``progress`` (``what``: what it adds, as the line says it)."""
    (low, high) = db.execute_sql("SELECT MIN(ticket_id), MAX(ticket_id) FROM ticket_search"
                                 ).fetchone()
    if low is None:
        return
    started = time.monotonic()
    for first in range(low, high + 1, FILL_BATCH):
        last = min(first + FILL_BATCH - 1, high)
        add(db, first, last)
        if high - low >= FILL_BATCH:
            print(f"\r{what}: {last - low + 1:,} / {high - low + 1:,} documents "
                  f"({time.monotonic() - started:.0f} s)", end="", file=progress, flush=True)
    if high - low >= FILL_BATCH:
        print(file=progress)


def fill(db, progress=sys.stderr):
    """Add the words of every document there is (they may be added already)."""
    fill_from_documents(db, add_words, "search words", progress)


TRIGGER_NAMES = ("search_word_insert", "search_word_update")


def drop_triggers(db, names):
    for name in names:
        db.execute_sql(f"DROP TRIGGER IF EXISTS {name} ON ticket_search")


def install(db, table, creates, trigger_names, triggers, fill):
    """A table the documents' triggers keep (this one, 0031's): made with ``creates``, its
    triggers put in (again), then filled from the documents there are and analysed.

    The triggers first: a document written while the fill runs is not missed (the fill adds
    what is there already without complaint)."""
    for statement in creates:
        db.execute_sql(statement)
    drop_triggers(db, trigger_names)
    for statement in triggers:
        db.execute_sql(statement)
    fill(db)
    db.execute_sql(f"ANALYZE {table}")


def up(migrator, db):
    if _sqlite(db):
        return
    install(db, "search_word", (TABLE, FUNCTION), TRIGGER_NAMES, TRIGGERS, fill)


def down(migrator, db):
    if _sqlite(db):
        return
    drop_triggers(db, TRIGGER_NAMES)
    db.execute_sql("DROP FUNCTION IF EXISTS search_word_add()")
    db.execute_sql("DROP TABLE IF EXISTS search_word")
