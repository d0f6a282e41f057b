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

import re

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


# From this many matches on, a word is common: the page walks the tickets in its order and
# checks each against the indexes, rather than gathering every match and sorting them.
COMMON = 5000


def is_common(word: str) -> bool:
    """Whether the word matches at least ``COMMON`` rows: counted up to there, no further."""
    found = matching_tickets(word)
    if found is None:
        return False
    database = Ticket._meta.database
    sql, params = database.get_sql_context().sql(found).query()
    (count,) = database.execute_sql(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {sql} AS found LIMIT {int(COMMON)}) AS probe",
        params).fetchone()
    return count >= COMMON


def _each_ticket_matches(word: str) -> Expression:
    """The same test as ``matching_tickets``, asked of one ticket row at a time (by its
    number and its contact), for a page that walks tickets in its own order."""
    parts = pieces(word)[:8]
    number = word.lstrip("#")
    if db.is_sqlite():
        query = _fts5_query(parts)
        checks = [
            NodeList((SQL("EXISTS (SELECT 1 FROM ticket_fts WHERE ticket_fts MATCH ? AND "
                          "ticket_fts.rowid =", [query]), Ticket.id, SQL(")"))),
            NodeList((SQL("EXISTS (SELECT 1 FROM message AS fm JOIN message_fts "
                          "ON message_fts.rowid = fm.id WHERE message_fts MATCH ? AND "
                          "fm.ticket_id =", [query]), Ticket.id, SQL(")"))),
            NodeList((SQL("EXISTS (SELECT 1 FROM contact_fts WHERE contact_fts MATCH ? AND "
                          "contact_fts.rowid =", [query]), Ticket.contact, SQL(")"))),
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

    A word matching fewer than ``COMMON`` rows is gathered from the indexes (the ids of
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
