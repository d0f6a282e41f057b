"""Ticket search by full-text index: the number, subject, message text, contact name or address.

One function serves the console's search box and the API's ``q``. A search word is cut into
its runs of letters and digits ("sari@example.com" is sari, example, com) and matches a
ticket when those runs follow each other in one of its fields, the last one as a prefix
("sari@exa" finds sari@example.com, "INV-12" finds INV-1234567). A word of digits also
finds the ticket with that number; "#" and digits ("#1234") finds only that ticket. A word
with no letters or digits matches nothing. Every word of a search must match.

The indexes are the migration's (``core/migrations/0005_inbox_indexes.py``): on SQLite,
FTS5 tables over ``ticket.subject``, ``message.body_text`` and ``contact.name``/``email``
whose triggers keep them in step with every insert, update and delete; on PostgreSQL, GIN
indexes over the same columns' ``to_tsvector``, which PostgreSQL keeps in step itself. So a
message added, a subject changed, a contact renamed or merged (the ticket's ``contact_id``
moves; the match is joined when searching) are found by the next search, whichever path
changed them.

A page needs only the first 50 matches in the list's order, so how a search is run depends
on how many tickets its words match (``search_clause``): a rare word's tickets are gathered
from the indexes and put in order; a common word is checked ticket by ticket as the page
walks its own index, which stops after a page. Several words are judged together: walking
for two common words that seldom meet ("santoso halim") would walk the whole inbox.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from collections.abc import Iterable

from peewee import SQL, Case, Expression, NodeList, Value

from .. import db
from ..models import Ticket

WORD = re.compile(r"[^\W_]+")

# The words PostgreSQL indexes: the same runs of letters and digits as SQLite's unicode61
# tokenizer, so both databases find the same tickets. Each text must stay exactly the
# expression of its index in the migration, or PostgreSQL cannot use the index.
_PG_SUBJECT = "to_tsvector('simple', regexp_replace(subject, '[^[:alnum:]]+', ' ', 'g'))"
_PG_BODY = "to_tsvector('simple', regexp_replace(body_text, '[^[:alnum:]]+', ' ', 'g'))"
_PG_CONTACT_TEXT = "coalesce(name, '') || ' ' || coalesce(email, '')"
_PG_CONTACT = ("to_tsvector('simple', regexp_replace(coalesce(name, '') || ' ' || "
               "coalesce(email, ''), '[^[:alnum:]]+', ' ', 'g'))")

_PG_CONTACT_FK = _PG_CONTACT.replace("(name", "(fk.name").replace("(email", "(fk.email")

# At most this many words of a search, and runs of one word, are looked up.
MAX_WORDS = 10
MAX_PIECES = 8


def pieces(word: str) -> list[str]:
    """The runs of letters and digits of one search word, lower-cased."""
    return [piece.lower() for piece in WORD.findall(word)]


def _fts5_query(parts: list[str], prefix: bool = True) -> str:
    # Only letters and digits reach the quotes, so no FTS5 syntax can be smuggled in.
    return '"' + " ".join(parts) + '"' + ("*" if prefix else "")


def _tsquery(parts: list[str]) -> str:
    return " <-> ".join(parts[:-1] + [parts[-1] + ":*"])


def _tsquery_all(parts: list[str]) -> str:
    """Every run anywhere, the last as a prefix: what a GIN index answers without reading
    the rows again (a phrase, ``<->``, makes PostgreSQL recompute each candidate row's
    ``to_tsvector``: 0.6-1 s for "inv-12", in 11,000 messages at a million tickets)."""
    return " & ".join(parts[:-1] + [parts[-1] + ":*"])


def _pg_pattern(parts: list[str]) -> str:
    """The runs one after another, the first at a word's start and the last as a prefix:
    the phrase test of ``_tsquery`` as a regular expression on the text (case ignored)."""
    return "(^|[^[:alnum:]])" + "[^[:alnum:]]+".join(parts)


def _number(word: str) -> int | None:
    """The ticket number a word of ASCII digits (or "#" and digits) also finds."""
    number = word.lstrip("#")
    # ASCII digits only: "²".isdigit() is true, and int() refuses it.
    return int(number) if number.isascii() and number.isdigit() and len(number) < 10 else None


def matching_tickets(word: str) -> SQL | None:
    """A subquery of the ids of tickets matching one search word; None when nothing can match."""
    parts = pieces(word)[:MAX_PIECES]
    if not parts:
        return None
    number = _number(word)
    by_number = " UNION ALL SELECT %s" if number is not None else ""
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
    elif len(parts) == 1:
        query = _tsquery(parts)
        sql = (f"SELECT s.id FROM ticket AS s WHERE {_PG_SUBJECT} "
               "@@ to_tsquery('simple', %s) "
               f"UNION ALL SELECT m.ticket_id FROM message AS m WHERE {_PG_BODY} "
               "@@ to_tsquery('simple', %s) "
               "UNION ALL SELECT c.id FROM ticket AS c WHERE c.contact_id IN "
               f"(SELECT k.id FROM contact AS k WHERE {_PG_CONTACT} "
               "@@ to_tsquery('simple', %s))")
        params = [query, query, query]
    else:
        # A phrase: the index finds the rows holding every run, the pattern keeps those
        # where they follow each other (cheaper than PostgreSQL's recheck of a phrase).
        query, pattern = _tsquery_all(parts), _pg_pattern(parts)
        sql = (f"SELECT s.id FROM ticket AS s WHERE {_PG_SUBJECT} "
               "@@ to_tsquery('simple', %s) AND s.subject ~* %s "
               f"UNION ALL SELECT m.ticket_id FROM message AS m WHERE {_PG_BODY} "
               "@@ to_tsquery('simple', %s) AND m.body_text ~* %s "
               "UNION ALL SELECT c.id FROM ticket AS c WHERE c.contact_id IN "
               f"(SELECT k.id FROM contact AS k WHERE {_PG_CONTACT} "
               f"@@ to_tsquery('simple', %s) AND ({_PG_CONTACT_TEXT}) ~* %s)")
        params = [query, pattern, query, pattern, query, pattern]
    if by_number:
        params.append(number)
    return SQL(f"({sql}{by_number})", params)


# When a word is common. A page that gathers a word's matches pays for each match (about
# 15 microseconds on SQLite: the index entry, the message's ticket, the sort); a page that
# walks tickets in order pays for each ticket it reads (about 40 microseconds: its texts
# tested) and reads 50 / (share of tickets matching) of them. The two cost the same at
# about sqrt(150 x tickets) matches: 1,200 at 10,000 tickets, 12,000 at a million.
WALK_FACTOR = 150
MIN_COMMON = 1000

# The newest tickets checked, one by one, to see how often words meet (several words, or a
# word whose count the index cannot give cheaply); from this many hits among them, walking
# is cheap: about 50 x SAMPLE / hits tickets read for a page.
SAMPLE = 100
SAMPLE_COMMON = 5

# PostgreSQL's planner estimates a word from the statistics of the indexes' expressions:
# right for the words its statistics list, a floor of 0.5% of each table for a prefix it
# knows nothing of (21,665 rows at a million tickets: every rare word looked common, and a
# search for a ticket number walked all 400,000 active tickets, 2-10 s). From this many
# times the rows that make a word common, the estimate can only come from the statistics.
PG_TRUSTED = 4


def common_from(tickets: int) -> int:
    """From how many matches on a word is walked rather than gathered, for a desk this size."""
    return max(MIN_COMMON, math.isqrt(WALK_FACTOR * max(tickets, 0)))


def _probe(word: str, prefix: bool = True) -> tuple[str, list[object]] | None:
    """Rows of the three indexes matching the word, as a query that streams (so a LIMIT
    over it stops early): index rows, not tickets, which is near enough to judge by.

    On SQLite a prefix (``"passport"*``) makes FTS5 merge the lists of every word it
    starts before the first row (8 ms for "passport" at a million tickets, 350 ms for
    "pa"), while the word alone streams (0.3 ms to count 12,000): ``prefix=False`` asks
    for the word alone, which finds no more than the prefix does.
    """
    parts = pieces(word)[:MAX_PIECES]
    if not parts:
        return None
    if db.is_sqlite():
        query = _fts5_query(parts, prefix)
        return ("SELECT rowid FROM ticket_fts WHERE ticket_fts MATCH ? "
                "UNION ALL SELECT rowid FROM message_fts WHERE message_fts MATCH ? "
                "UNION ALL SELECT rowid FROM contact_fts WHERE contact_fts MATCH ?",
                [query, query, query])
    query = _tsquery(parts) if len(parts) == 1 else _tsquery_all(parts)
    return (f"SELECT s.id FROM ticket AS s WHERE {_PG_SUBJECT} @@ to_tsquery('simple', %s) "
            f"UNION ALL SELECT m.id FROM message AS m WHERE {_PG_BODY} "
            "@@ to_tsquery('simple', %s) "
            f"UNION ALL SELECT k.id FROM contact AS k WHERE {_PG_CONTACT} "
            "@@ to_tsquery('simple', %s)", [query, query, query])


def _desk_size() -> int:
    (tickets,) = Ticket._meta.database.execute_sql("SELECT MAX(id) FROM ticket").fetchone()
    return int(tickets or 0)


def _count_up_to(word: str, enough: int, prefix: bool = True) -> int:
    probe = _probe(word, prefix)
    if probe is None:
        return 0
    sql, params = probe
    (count,) = Ticket._meta.database.execute_sql(
        f"SELECT COUNT(*) FROM ({sql} LIMIT {enough}) AS probe", params).fetchone()
    return int(count)


def _pg_estimate(word: str) -> float:
    probe = _probe(word)
    if probe is None:
        return 0
    sql, params = probe
    (row,) = Ticket._meta.database.execute_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchall()
    found = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return float(found[0]["Plan"]["Plan Rows"])


def _judged_by_index(word: str, enough: int) -> bool | None:
    """Whether the word is common by its index rows; None when only a sample can tell
    cheaply (SQLite: the word alone is not common, its prefix might be)."""
    if db.is_sqlite():
        if _count_up_to(word, enough, prefix=False) >= enough:
            return True
        return None
    estimate = _pg_estimate(word)
    if estimate >= PG_TRUSTED * enough:
        return True
    if estimate < enough:
        return False
    # The planner's floor: count for real (a bitmap of under a few times ``enough``).
    return _count_up_to(word, enough) >= enough


def sample_hits(words: list[str]) -> tuple[list[int], int, int]:
    """Among the ``SAMPLE`` most recently updated tickets, how many each word matches, how
    many all of them match, and how many were read: a share of the desk, in list order."""
    checks = [_each_ticket_matches(word, rough=True) for word in words]
    columns = [Case(None, [(check, 1)], 0).alias(f"w{n}") for n, check in enumerate(checks)]
    newest = [int(ident) for (ident,) in Ticket._meta.database.execute_sql(
        f"SELECT id FROM ticket ORDER BY updated_at DESC, id DESC LIMIT {SAMPLE}")]
    if not newest:
        return [0] * len(words), 0, 0
    # The numbers written out (integers read back from the database): PostgreSQL then knows
    # it checks a hundred tickets one by one, and does not gather every message that
    # matches to test them against; and no bound parameter per number to build.
    chosen = NodeList((Ticket.id, SQL("IN (" + ", ".join(map(str, newest)) + ")")))
    rows = list(Ticket.select(*columns).where(chosen).tuples())
    hits, together = [0] * len(words), 0
    for row in rows:
        for n, hit in enumerate(row):
            hits[n] += int(hit)
        together += int(all(row))
    return hits, together, len(rows)


def is_common(word: str) -> bool:
    """Whether the word matches enough rows to walk the list's order rather than gather."""
    return bool(_common_words([word]))


def _common_words(words: list[str]) -> set[str]:
    """The words to check ticket by ticket as the page walks (the others are gathered).

    A word is common when its index rows reach ``common_from(tickets)`` (SQLite counts the
    word alone, streaming; PostgreSQL trusts its planner only where the statistics speak),
    or, where that cannot tell cheaply, when its share of the newest ``SAMPLE`` tickets
    says it matches that many tickets. Several common words are walked together only when
    the sample says they meet that often: otherwise the ones it met seldom are gathered
    and the others checked on their tickets, so a search costs what its rarer words cost,
    never a walk through the whole desk ("santoso halim": 11 s at a million tickets).
    """
    tickets = _desk_size()
    enough = common_from(tickets)
    words = list(dict.fromkeys(words))
    common: set[str] = set()
    unsure: list[str] = []
    for word in words:
        judged = _judged_by_index(word, enough)
        if judged:
            common.add(word)
        elif judged is None:
            unsure.append(word)
    if not unsure and (len(common) < 2 or len(common) < len(words)):
        # One common word, or common words beside a rare one (checked on its tickets).
        return common
    sampled = [*unsure, *common]
    hits, together, read = sample_hits(sampled)
    by_word = dict(zip(sampled, hits, strict=True))

    def often(found: int) -> bool:
        return enough == 0 or (found >= SAMPLE_COMMON and found * tickets >= enough * read)

    for word in unsure:
        if often(by_word[word]) or _count_up_to(word, enough) >= enough:
            common.add(word)
    if len(common) < 2 or len(common) < len(words) or often(together):
        return common
    # Common words that seldom meet: the ones the sample met seldom are gathered.
    return {word for word in common if by_word[word] >= 2 * SAMPLE_COMMON}


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


def _each_ticket_matches(word: str, rough: bool = False) -> Expression:
    """The same test as ``matching_tickets``, asked of one ticket row at a time (its
    subject, its messages, its contact), for a page that walks tickets in its own order.

    Not through the full-text indexes: one look-up in an index of a million rows reads the
    word's whole list of rows (about 5 ms for a common word on SQLite), while reading the
    ticket's own few texts and testing them costs microseconds. On PostgreSQL the test is
    the index's own expression, so that the planner may answer a check from the index: a
    regular expression there (cheaper per row) made it read every message instead (23 s).

    ``rough`` (SQLite, for the sample only): a text is tested only when SQLite's ``LIKE``
    finds the word's longest run in it, so a rare word costs no call into Python per text;
    ``LIKE`` folds no accents, so it may miss a match, which an estimate can afford and a
    page cannot.
    """
    parts = pieces(word)[:MAX_PIECES]
    number = _number(word)
    if db.is_sqlite():
        _sqlite_function()
        pattern = " ".join(fold(part) for part in parts)
        like = "%" + max(parts, key=len) + "%"
        if rough:

            def test(text: str) -> tuple[str, list[object]]:
                return f"({text} LIKE ? AND loket_matches({text}, ?))", [like, pattern]
        else:
            def test(text: str) -> tuple[str, list[object]]:
                return f"loket_matches({text}, ?)", [pattern]
        body, name, email = test("fm.body_text"), test("fk.name"), test("fk.email")
        subject = (NodeList((SQL("("), Ticket.subject, SQL("LIKE ? AND loket_matches(", [like]),
                             Ticket.subject, SQL(", ?))", [pattern])))
                   if rough else
                   NodeList((SQL("loket_matches("), Ticket.subject, SQL(", ?)", [pattern]))))
        checks = [
            subject,
            NodeList((SQL("EXISTS (SELECT 1 FROM message AS fm WHERE fm.ticket_id ="),
                      Ticket.id, SQL(f"AND {body[0]})", body[1]))),
            NodeList((SQL("EXISTS (SELECT 1 FROM contact AS fk WHERE fk.id ="), Ticket.contact,
                      SQL(f"AND ({name[0]} OR {email[0]}))", name[1] + email[1]))),
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
    if number is not None:
        checks.append(Ticket.id == Value(number))
    return _any(checks)


def _any(clauses: Iterable[Expression]) -> Expression:
    found = list(clauses)
    clause = found[0]
    for other in found[1:]:
        clause = clause | other
    return clause


def _all(clauses: Iterable[Expression]) -> Expression:
    found = list(clauses)
    clause = found[0]
    for other in found[1:]:
        clause = clause & other
    return clause


def search_clause(text: str) -> Expression:
    """A WHERE clause on tickets: every word of ``text`` matches the ticket (see the
    module's rules). Words after the first ``MAX_WORDS`` are not looked at.

    A word matching fewer than ``common_from(tickets)`` rows is gathered from the indexes
    (the ids of its tickets, then the page's order over those). A common word ("passport"
    in a tenth of the desk) would gather and sort hundreds of thousands: instead each
    ticket is checked as the page walks its index newest first, and a page of 50 stops
    after about 50 / (share of tickets matching) checks. Beside a rare word (or a ticket
    number) common words are only checked on the rare word's tickets. Both ways find the
    same tickets.
    """
    words = text.split()[:MAX_WORDS]
    numbers: list[Expression] = []
    searched: list[str] = []
    for word in words:
        number = word[1:]
        if word.startswith("#") and number.isascii() and number.isdigit():
            numbers.append(Ticket.id == (int(number) if len(number) < 10 else 0))
        elif not pieces(word):
            return Ticket.id < 0
        else:
            searched.append(word)
    if not searched:
        return _all(numbers) if numbers else Ticket.id < 0
    # Beside a ticket number there is one ticket to check: nothing to gather.
    common = set(searched) if numbers else _common_words(searched)
    clauses = list(numbers)
    for word in dict.fromkeys(searched):
        if word in common:
            clauses.append(_each_ticket_matches(word))
        else:
            found = matching_tickets(word)
            assert found is not None  # the word has letters or digits
            clauses.append(NodeList((Ticket.id, SQL("IN"), found)))
    return _all(clauses)
