"""PostgreSQL: each number in the search documents with the word before it, for a phrase prefix.

A search word of several runs whose last run starts with a digit ("inv-12", a reference's
start) is a phrase: the runs in order, the last one a prefix. PostgreSQL's GIN index knows
which documents hold each run, not where: for ``'inv' <-> '12':*`` at a million tickets it
gathers the 48,000 documents holding "inv" (every one) and a number starting "12" (21 ms of
partial match alone), then reads each one's row to keep the 11,000 where the two stand
together (29,000 pages). So such a search is walked: the page's order, each ticket's document
read by its key and tested, about 2,500 documents for an API page of 25 (10-14 ms of the
server's CPU, 98% of the request's; the API's phrase prefix at p99 114 ms where the other
searches took 42-100).

``search_pair`` holds, for every document, each number (a word starting with an ASCII digit)
together with the word just before it, as ``'inv 1234567'`` (positions next to each other,
as the phrase operator ``<->`` sees them in the stored document; not the field separator).
Its primary key (pair, ticket) answers "the tickets where "inv" stands right before a
number starting "12"" as one range read from the index alone: a superset of the phrase's
tickets (for two runs, exactly them; for more, those holding the last two). A walked page
then reads and tests the document of those tickets only (``core.services.search``,
``pg_number_pairs``). A word longer than ``PAIR_WORD`` characters is kept cut to that length
(a b-tree key has a size limit): a search whose runs are longer does not use the pairs.

A row trigger on ``ticket_search`` adds the pairs of every document written, in sorted order
so that two writers wait rather than deadlock, and takes a deleted document's away; an
update takes none away (see ``TRIGGER_FUNCTION``): the table holds every pair of every
document, and perhaps some that no document holds any more, which cost a document test,
never a ticket missed, until ``loket db rebuild-search`` removes them
(``core.services.search_index.prune_pairs``). The fill reads the existing documents in
batches with progress on stderr and writes the pairs in key order. SQLite needs none of
this: FTS5 keeps the positions in its index and answers the phrase from it.
"""

from __future__ import annotations

import sys
from importlib import import_module

# 0020's words of the documents: its fill (the same batches) and its test of the database.
WORDS = import_module("core.migrations.0020_pg_search_words")

# Each word of a pair is kept to this many characters (a b-tree key holds about 2,700 bytes).
PAIR_WORD = 100

TABLE = ('CREATE TABLE IF NOT EXISTS search_pair (pair text COLLATE "C", ticket_id integer, '
         'PRIMARY KEY (pair, ticket_id))')

# A document's pairs: each position of a word starting with an ASCII digit, with the word at
# the position before it (the field separator "|" is no search word). PL/pgSQL, whose plan
# is kept by the session: as a SQL function it was planned again at every call, which made
# a message's write 0.5-0.7 ms dearer in the trigger (twice: the old and the new document).
PAIRS_FUNCTION = f"""CREATE OR REPLACE FUNCTION loket_number_pairs(doc tsvector) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN (SELECT coalesce(array_agg(DISTINCT left(b.lexeme, {PAIR_WORD}) || ' ' ||
                                    left(n.lexeme, {PAIR_WORD})), '{{}}')
          FROM (SELECT lexeme, unnest(positions) AS at FROM unnest(doc)
                WHERE lexeme ~ '^[0-9]') AS n
          JOIN (SELECT lexeme, unnest(positions) AS at FROM unnest(doc)
                WHERE lexeme <> '|') AS b ON b.at = n.at - 1);
END $$"""

# A document written adds its pairs (those already there cost a look-up); one deleted takes
# its pairs away. An update removes none: a pair no document holds any more only costs a
# document test when its range is searched, never a ticket missed (the table must hold every
# pair of every document, not only those), until ``loket db rebuild-search`` prunes it; and
# working out the old document's pairs and the difference made a message's write 0.45-1.0
# ms dearer instead of 0.15-0.3 (100,000 tickets, 3 x 2,000 alternated with the trigger
# disabled).
TRIGGER_FUNCTION = """CREATE OR REPLACE FUNCTION search_pair_keep() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM search_pair WHERE ticket_id = OLD.ticket_id
      AND pair = ANY (loket_number_pairs(OLD.doc));
  ELSE
    INSERT INTO search_pair (pair, ticket_id)
      SELECT p, NEW.ticket_id FROM unnest(loket_number_pairs(NEW.doc)) AS p
      ORDER BY p ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$"""

TRIGGERS = (
    "CREATE TRIGGER search_pair_insert AFTER INSERT ON ticket_search "
    "FOR EACH ROW EXECUTE FUNCTION search_pair_keep()",
    "CREATE TRIGGER search_pair_update AFTER UPDATE OF ticket_id, doc ON ticket_search "
    "FOR EACH ROW WHEN (OLD.doc IS DISTINCT FROM NEW.doc OR OLD.ticket_id <> NEW.ticket_id) "
    "EXECUTE FUNCTION search_pair_keep()",
    "CREATE TRIGGER search_pair_delete AFTER DELETE ON ticket_search "
    "FOR EACH ROW EXECUTE FUNCTION search_pair_keep()",
)
TRIGGER_NAMES = ("search_pair_insert", "search_pair_update", "search_pair_delete")


def add_pairs(db, first, last):
    """Add the pairs of the documents of tickets ``first`` to ``last`` (some may be there)."""
    db.execute_sql(
        "INSERT INTO search_pair (pair, ticket_id) SELECT p, ticket_id FROM ticket_search, "
        "unnest(loket_number_pairs(doc)) AS p WHERE ticket_id BETWEEN %s AND %s "
        "ORDER BY p, ticket_id ON CONFLICT DO NOTHING", (first, last))


def fill(db, progress=sys.stderr):
    """Add the pairs of every document there is (they may be added already)."""
    WORDS.fill_from_documents(db, add_pairs, "search pairs", progress)


def up(migrator, db):
    if WORDS._sqlite(db):
        return
    WORDS.install(db, "search_pair", (TABLE, PAIRS_FUNCTION, TRIGGER_FUNCTION), TRIGGER_NAMES,
                  TRIGGERS, fill)


def down(migrator, db):
    if WORDS._sqlite(db):
        return
    WORDS.drop_triggers(db, TRIGGER_NAMES)
    db.execute_sql("DROP FUNCTION IF EXISTS search_pair_keep()")
    db.execute_sql("DROP FUNCTION IF EXISTS loket_number_pairs(tsvector)")
    db.execute_sql("DROP TABLE IF EXISTS search_pair")
