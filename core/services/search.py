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

from peewee import SQL, Expression, NodeList

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


def search_clause(word: str) -> Expression:
    """A WHERE clause on tickets: this word matches the ticket (see the module's rules)."""
    number = word[1:]
    if word.startswith("#") and number.isascii() and number.isdigit():
        return Ticket.id == (int(number) if len(number) < 10 else 0)
    found = matching_tickets(word)
    if found is None:
        return Ticket.id < 0
    return NodeList((Ticket.id, SQL("IN"), found))
