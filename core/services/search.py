"""Ticket search by full-text index: the number, subject, message text, contact name or address.

One function serves the console's search box and the API's ``q``. A search word is cut into
its runs of letters and digits ("sari@example.com" is sari, example, com) and matches a
ticket when those runs follow each other in one of its fields, the last one as a prefix
("sari@exa" finds sari@example.com, "INV-12" finds INV-1234567). A word of digits also
finds the ticket with that number; "#" and digits ("#1234") finds only that ticket. A word
with no letters or digits matches nothing.

The indexes are the migration's (``core/migrations/0005_inbox_indexes.py``): on SQLite,
FTS5 tables over ``ticket.subject``, ``message.body_text`` and ``contact.name``/``email``
whose triggers keep them in step with every insert, update and delete; on PostgreSQL, GIN
indexes over the same columns' ``to_tsvector``, which PostgreSQL keeps in step itself. So a
message added, a subject changed, a contact renamed or merged (the ticket's ``contact_id``
moves; the match is joined when searching) are found by the next search, whichever path
changed them.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata

from peewee import SQL, Expression, NodeList, Value

from .. import db
from ..models import Ticket

WORD = re.compile(r"[^\W_]+")

# The words PostgreSQL indexes: the same runs of letters and digits as SQLite's unicode61
# tokenizer, so both databases find the same tickets. Each text must stay exactly the
# expression of its index in the migration, or PostgreSQL cannot use the index.
_PG_SUBJECT = "to_tsvector('simple', regexp_replace(subject, '[^[:alnum:]]+', ' ', 'g'))"
_PG_BODY = "to_tsvector('simple', regexp_replace(body_text, '[^[:alnum:]]+', ' ', 'g'))"
_PG_CONTACT = ("to_tsvector('simple', regexp_replace(coalesce(name, '') || ' ' || "
               "coalesce(email, ''), '[^[:alnum:]]+', ' ', 'g'))")

_PG_CONTACT_FK = _PG_CONTACT.replace("(name", "(fk.name").replace("(email", "(fk.email")


def pieces(word: str) -> list[str]:
    """The runs of letters and digits of one search word, lower-cased."""
    return [piece.lower() for piece in WORD.findall(word)]


def _fts5_query(parts: list[str]) -> str:
    # Only letters and digits reach the quotes, so no FTS5 syntax can be smuggled in.
    return '"' + " ".join(parts) + '"*'


def _tsquery(parts: list[str]) -> str:
    return " <-> ".join(parts[:-1] + [parts[-1] + ":*"])


def matching_tickets(word: str) -> SQL | None:
    """A subquery of the ids of tickets matching one search word; None when nothing can match."""
    parts = pieces(word)[:8]
    if not parts:
        return None
    number = word.lstrip("#")
    # ASCII digits only: "²".isdigit() is true, and int() refuses it.
    by_number = (" UNION ALL SELECT %s"
                 if number.isascii() and number.isdigit() and len(number) < 10 else "")
    params: list[object]
    if db.is_sqlite():
        query = _fts5_query(parts)
        sql = ("SELECT rowid FROM ticket_fts WHERE ticket_fts MATCH ? "
               "UNION ALL SELECT m.ticket_id FROM message AS m WHERE m.id IN "
               "(SELECT rowid FROM message_fts WHERE message_fts MATCH ?) "
               "UNION ALL SELECT c.id FROM ticket AS c WHERE c.contact_id IN "
               "(SELECT rowid FROM contact_fts WHERE contact_fts MATCH ?)")
        params = [query, query, query]
        by_number = by_number.replace("%s", "?")
    else:
        query = _tsquery(parts)
        sql = (f"SELECT s.id FROM ticket AS s WHERE {_PG_SUBJECT} "
               "@@ to_tsquery('simple', %s) "
               f"UNION ALL SELECT m.ticket_id FROM message AS m WHERE {_PG_BODY} "
               "@@ to_tsquery('simple', %s) "
               "UNION ALL SELECT c.id FROM ticket AS c WHERE c.contact_id IN "
               f"(SELECT k.id FROM contact AS k WHERE {_PG_CONTACT} "
               "@@ to_tsquery('simple', %s))")
        params = [query, query, query]
    if by_number:
        params.append(int(number))
    return SQL(f"({sql}{by_number})", params)


# When a word is common. A page that gathers a word's matches pays for each match (about
# 15 microseconds on SQLite: the index entry, the message's ticket, the sort); a page that
# walks tickets in order pays for each ticket it reads (about 40 microseconds: its texts
# tested) and reads 50 / (share of tickets matching) of them. The two cost the same at
# about sqrt(150 x tickets) matches: 1,200 at 10,000 tickets, 12,000 at a million.
WALK_FACTOR = 150
MIN_COMMON = 1000


def common_from(tickets: int) -> int:
    """From how many matches on a word is walked rather than gathered, for a desk this size."""
    return max(MIN_COMMON, math.isqrt(WALK_FACTOR * max(tickets, 0)))


def _probe(word: str) -> tuple[str, list[object]] | None:
    """Rows of the three indexes matching the word, as a query that streams (so a LIMIT
    over it stops early): index rows, not tickets, which is near enough to judge by."""
    parts = pieces(word)[:8]
    if not parts:
        return None
    if db.is_sqlite():
        query = _fts5_query(parts)
        return ("SELECT rowid FROM ticket_fts WHERE ticket_fts MATCH ? "
                "UNION ALL SELECT rowid FROM message_fts WHERE message_fts MATCH ? "
                "UNION ALL SELECT rowid FROM contact_fts WHERE contact_fts MATCH ?",
                [query, query, query])
    query = _tsquery(parts)
    return (f"SELECT s.id FROM ticket AS s WHERE {_PG_SUBJECT} @@ to_tsquery('simple', %s) "
            f"UNION ALL SELECT m.id FROM message AS m WHERE {_PG_BODY} "
            "@@ to_tsquery('simple', %s) "
            f"UNION ALL SELECT k.id FROM contact AS k WHERE {_PG_CONTACT} "
            "@@ to_tsquery('simple', %s)", [query, query, query])


def is_common(word: str) -> bool:
    """Whether the word matches enough rows to walk: counted up to there, no further."""
    probe = _probe(word)
    if probe is None:
        return False
    database = Ticket._meta.database
    (tickets,) = database.execute_sql("SELECT MAX(id) FROM ticket").fetchone()
    enough = common_from(int(tickets or 0))
    sql, params = probe
    if not db.is_sqlite():
        # PostgreSQL builds a word's whole bitmap before the first row (150 ms for a word in
        # a third of a million messages): its planner's estimate, from the statistics of the
        # indexes' expressions, is read instead (a fraction of a millisecond).
        (row,) = database.execute_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchall()
        found = row[0] if not isinstance(row[0], str) else json.loads(row[0])
        return found[0]["Plan"]["Plan Rows"] >= enough
    (count,) = database.execute_sql(
        f"SELECT COUNT(*) FROM ({sql} LIMIT {enough}) AS probe", params).fetchone()
    return count >= enough


def fold(text: str) -> str:
    """Lower case without accents, as the full-text tokenizer folds (unicode61, diacritics
    removed): "Café" and "cafe" are one word."""
    text = text.lower()
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


@functools.lru_cache(maxsize=256)
def _phrase(pattern: str) -> re.Pattern[str]:
    """The runs of a search word, one after another in a text, the last one as a prefix."""
    parts = pattern.split(" ")
    return re.compile(r"(?<![^\W_])" + r"[\W_]+".join(map(re.escape, parts)))


def text_matches(text: str | None, pattern: str) -> int:
    """SQLite's ``loket_matches(text, pieces)``: 1 when the text holds the word's runs as
    the full-text index would find them, for a check row by row without the index."""
    return 1 if text and _phrase(pattern).search(fold(text)) else 0


def _sqlite_function() -> None:
    # Registered on the connection in use (cheap, and idempotent): SQLite functions live
    # per connection, and connections come from a pool.
    connection = Ticket._meta.database.connection()
    connection.create_function("loket_matches", 2, text_matches, deterministic=True)


def _each_ticket_matches(word: str) -> Expression:
    """The same test as ``matching_tickets``, asked of one ticket row at a time (its
    subject, its messages, its contact), for a page that walks tickets in its own order.

    Not through the full-text indexes: one look-up in an index of a million rows reads the
    word's whole list of rows (about 5 ms for a common word on SQLite), while reading the
    ticket's own few texts and testing them costs microseconds.
    """
    parts = pieces(word)[:8]
    number = word.lstrip("#")
    if db.is_sqlite():
        _sqlite_function()
        pattern = " ".join(fold(part) for part in parts)
        checks = [
            NodeList((SQL("loket_matches("), Ticket.subject, SQL(", ?)", [pattern]))),
            NodeList((SQL("EXISTS (SELECT 1 FROM message AS fm WHERE fm.ticket_id ="),
                      Ticket.id, SQL("AND loket_matches(fm.body_text, ?))", [pattern]))),
            NodeList((SQL("EXISTS (SELECT 1 FROM contact AS fk WHERE fk.id ="), Ticket.contact,
                      SQL("AND (loket_matches(fk.name, ?) OR loket_matches(fk.email, ?)))",
                          [pattern, pattern]))),
        ]
    else:
        query = _tsquery(parts)
        checks = [
            NodeList((SQL("to_tsvector('simple', regexp_replace("), Ticket.subject,
                      SQL(", '[^[:alnum:]]+', ' ', 'g')) @@ to_tsquery('simple', %s)",
                          [query]))),
            NodeList((SQL("EXISTS (SELECT 1 FROM message AS fm WHERE fm.ticket_id ="),
                      Ticket.id,
                      SQL(f"AND {_PG_BODY.replace('body_text', 'fm.body_text')} "
                          "@@ to_tsquery('simple', %s))", [query]))),
            NodeList((SQL("EXISTS (SELECT 1 FROM contact AS fk WHERE fk.id ="), Ticket.contact,
                      SQL(f"AND {_PG_CONTACT_FK} @@ to_tsquery('simple', %s))", [query]))),
        ]
    if number.isascii() and number.isdigit() and len(number) < 10:
        checks.append(Ticket.id == Value(int(number)))
    clause = checks[0]
    for check in checks[1:]:
        clause = clause | check
    return clause


def search_clause(word: str) -> Expression:
    """A WHERE clause on tickets: this word matches the ticket (see the module's rules).

    A word matching fewer than ``common_from(tickets)`` rows is gathered from the indexes (the ids of
    its tickets, then the page's order over those). A common word ("passport" in a tenth of
    the desk) would gather and sort hundreds of thousands: instead each ticket is checked as
    the page walks its index newest first, and a page of 50 stops after about
    50 / (share of tickets matching) checks. Both find the same tickets.
    """
    number = word[1:]
    if word.startswith("#") and number.isascii() and number.isdigit():
        return Ticket.id == (int(number) if len(number) < 10 else 0)
    found = matching_tickets(word)
    if found is None:
        return Ticket.id < 0
    if is_common(word):
        return _each_ticket_matches(word)
    return NodeList((Ticket.id, SQL("IN"), found))
