"""Ticket search by full-text index: the number, subject, message text, contact name or address.

One function serves the console's search box and the API's ``q``. A search word is cut into
its runs of letters and digits ("sari@example.com" is sari, example, com) and matches a
ticket when those runs follow each other in one of its fields, the last one as a prefix
("sari@exa" finds sari@example.com, "INV-12" finds INV-1234567). A word of digits also
finds the ticket with that number; "#" and digits ("#1234") finds only that ticket. A word
with no letters or digits matches nothing. Every word of a search must match.

The index is migration 0011's (``core/migrations/0011_ticket_search.py``): one full-text
document per ticket (its number, subject, contact's name and address, messages' text; not
the desk's own notifications, since 0017), kept in step by triggers with every insert, update and delete of tickets, messages and contacts.
So a message added, a subject changed, a contact renamed or merged (the ticket's
``contact_id`` moves) are found by the next search, whichever path changed them. A word's
runs follow each other within one field (on SQLite a phrase may run from the end of one
message into the start of the next: they share the ``body`` column).

A page needs only the first 50 matches in the list's order, so how a search is run depends
on how many tickets it matches (``search_clause``), asked of the index with all its words
together in one look-up (``_judge``): a rare search's tickets are gathered and put in order;
a less rare one's ids are kept while the page walks its own index in order (sifted); a
common one is checked ticket by ticket as the page walks, gathering nothing. Each walk stops
after a page. On PostgreSQL a word of several runs whose runs are everywhere ("inv-12") is
judged by a sample of the documents first: the index would read the row of every ticket
holding the runs anywhere to find the few holding them in order. Two common words that
never meet ("santoso halim") find nothing together: nothing to read. On PostgreSQL a prefix
is first looked up among the words of the documents (migration 0020's ``search_word``) and
asked of the index as the few whole words it starts (``pg_expansions``): GIN skips through
whole words' lists together, not prefixes'.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
import time
import unicodedata
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable

from peewee import SQL, Expression, NodeList, Value

from .. import db
from ..models import Ticket

WORD = re.compile(r"[^\W_]+")

# At most this many words of a search, and runs of one word, are looked up.
MAX_WORDS = 10
MAX_PIECES = 8

# SQLite: the tickets whose documents are not written yet (0032).
QUEUE = "ticket_search_queue"

# The columns of SQLite's ``ticket_search`` a word is looked for in (``number`` only by a
# word of digits, whole).
_FTS5_TEXT = "{subject name email body}"


# A prefix's words (``pg_expansions``): the words of the desk's documents it starts, () for
# none; a prefix not in the mapping stays a prefix.
Expansions = dict[str, tuple[str, ...]]

# A prefix that starts more of the desk's words than this stays a prefix (GIN's partial match).
PG_EXPAND_MOST = 32


def _next_text(prefix: str) -> str | None:
    """The first text after every text that starts with ``prefix``, in byte order (the
    ``"C"`` collation of ``search_word``); None when there is none to write."""
    point = ord(prefix[-1]) + 1
    if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
        return None
    return prefix[:-1] + chr(point)


def pg_expansions(words: list[str]) -> Expansions:
    """PostgreSQL: for each word's last run (a prefix), the words of the desk's documents it
    starts, from migration 0020's ``search_word``, in one statement.

    A prefix of digits is not looked up (numbers are not kept there), nor one that starts
    more than ``PG_EXPAND_MOST`` words: both stay prefixes. Whole words instead of a prefix
    let GIN skip through the lists of several words together (two common names that never
    meet: 75-87 ms of the server as prefixes, 9 ms as words, at a million tickets).
    """
    ranges: dict[str, str] = {}
    for word in words:
        parts = pieces(word)[:MAX_PIECES]
        if not parts or parts[-1][0] in "0123456789":
            continue
        upper = _next_text(parts[-1])
        if upper is not None:
            ranges[parts[-1]] = upper
    if not ranges:
        return {}
    rows = Ticket._meta.database.execute_sql(
        "SELECT p.low, ARRAY(SELECT word FROM search_word WHERE word >= p.low COLLATE \"C\" "
        "AND word < p.high COLLATE \"C\" ORDER BY word LIMIT %s) "
        "FROM unnest(%s::text[], %s::text[]) AS p (low, high)",
        [PG_EXPAND_MOST + 1, list(ranges), list(ranges.values())]).fetchall()
    return {low: tuple(found) for low, found in rows if len(found) <= PG_EXPAND_MOST}


def pieces(word: str) -> list[str]:
    """The runs of letters and digits of one search word, lower-cased."""
    return [piece.lower() for piece in WORD.findall(word)]


def _fts5_query(parts: list[str], prefix: bool = True) -> str:
    # Only letters and digits reach the quotes, so no FTS5 syntax can be smuggled in.
    return '"' + " ".join(parts) + '"' + ("*" if prefix else "")


def _lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsquery(parts: list[str], prefix: bool = True, phrase: bool = True,
             expanded: Expansions | None = None) -> str:
    # Quoted lexemes of letters and digits, cast (not ``to_tsquery``, whose parser would
    # cut "#1234" to "1234"): the runs were lower-cased here as ``to_tsvector`` does.
    # ``phrase=False``: the runs anywhere in the document, in any order (``&``).
    # A prefix the desk's words were looked up for (``pg_expansions``) is those words.
    quoted = [f"'{part}'" for part in parts]
    if prefix:
        words = (expanded or {}).get(parts[-1])
        if words is None:
            quoted[-1] += ":*"
        else:
            quoted[-1] = "(" + " | ".join(map(_lexeme, words)) + ")"
    return (" <-> " if phrase else " & ").join(quoted)


def _number(word: str) -> int | None:
    """The ticket number a word of ASCII digits (or "#" and digits) also finds."""
    number = word.lstrip("#")
    # ASCII digits only: "²".isdigit() is true, and int() refuses it.
    return int(number) if number.isascii() and number.isdigit() and len(number) < 10 else None


def _index_query(words: list[str], prefix: bool = True, phrase: bool = True,
                 expanded: Expansions | None = None) -> tuple[str, list[object]] | None:
    """The ids of the tickets whose document (migration 0011's ``ticket_search``) holds every
    word, as one look-up in its full-text index; None when a word cannot match anything.

    Each word is a phrase of its runs, the last one a prefix (``prefix=False``: the whole
    word, see ``_count_up_to``); a word of digits also finds that ticket's number.
    ``phrase=False`` (PostgreSQL): the runs in any order, anywhere in the document.
    ``expanded`` (PostgreSQL): the words each looked-up prefix starts (``pg_expansions``).
    """
    terms: list[str] = []
    for word in dict.fromkeys(words):
        parts = pieces(word)[:MAX_PIECES]
        if not parts:
            return None
        number = _number(word)
        if expanded is not None and prefix and expanded.get(parts[-1]) == () and number is None:
            return None  # the prefix starts no word of any document
        if db.is_sqlite():
            term = _fts5_query(parts, prefix)
            if len(parts) == 1:
                # The number column holds one word: only a one-run word could match in it
                # (a column filter on a phrase made FTS5 read each row's columns, 3 times
                # slower for "inv-12").
                term = f"{_FTS5_TEXT} : {term}"
            if number is not None:
                term = f"({term} OR number : \"{number}\")"
        else:
            term = _tsquery(parts, prefix, phrase, expanded)
            if number is not None:
                term = f"{term} | '#{number}'"
        terms.append(f"({term})")
    if not terms:
        return None
    if db.is_sqlite():
        # The documents written, but not a queued ticket's (it may be out of date), and the
        # queued tickets tested on their own rows (0032).
        queued, queued_params = _queued_matching(words)
        return ("SELECT rowid FROM ticket_search WHERE ticket_search MATCH ? AND rowid NOT IN "
                f"(SELECT ticket_id FROM {QUEUE}) UNION ALL {queued}",
                [" AND ".join(terms), *queued_params])
    return ("SELECT ticket_id FROM ticket_search WHERE doc @@ %s::tsquery", [" & ".join(terms)])


# How a page finds a search's tickets, by how many it matches (M, at N tickets), with what
# each cost on SQLite at a million tickets:
# * gathered: the ids from the index, then the page's order over them: about 15
#   microseconds a match (the ticket read, the sort), so best while M is small;
# * sifted: the ids from the index (0.4-1.3 microseconds each), then the page walks its own
#   index in order and keeps the tickets among them (a hash look-up each), reading about
#   50 x N / M tickets: "inv-12", 11,000 matches, 15 ms for the ids and 10 for the page;
# * walked: the page walks its own index and tests each ticket's texts (about 35
#   microseconds a ticket), reading 50 x N / M of them and gathering nothing.
# Sifting costs less than sorting from about sqrt(12 x N) matches (3,500 at a million
# tickets), and about what walking costs from some 30,000 (35 ms either way for "santoso",
# 50,000). Walking starts at sqrt(150 x N) (12,000): to find that a search is that common,
# SQLite counts its matches up to there (0.7 ms for "passport"; 2-4 ms to 32,000, which
# every common search would pay).
SORT_FACTOR = 12
WALK_FACTOR = 150
MIN_COMMON = 1000

# PostgreSQL's planner estimates a search from the statistics of ``ticket_search.doc``:
# right for the words its statistics list, a floor for a prefix it knows nothing of (every
# rare word looked common at a million tickets, and a search for a ticket number walked
# all 400,000 active tickets, 2-10 s). From this many times the matches that make a search
# common, the estimate can only come from the statistics.
PG_TRUSTED = 4

# PostgreSQL's full-text index cannot say how many tickets a phrase matches without reading
# the table's row of every candidate it finds (GIN knows which documents hold each run, not
# where): "inv-12" (every ticket has "inv", 48,000 a word starting "12") read 29,000 of
# ``ticket_search``'s pages to find 11,188 tickets, 84 ms of the server's CPU, where walking
# the page's order and testing each ticket's document reads about 50 x N / M of them (4,500).
# So before asking the index for a word of several runs, a sample of about ``PG_SAMPLE``
# documents (``TABLESAMPLE SYSTEM``: whole pages at random, the same pages each time) is
# tested for the search (M matches, by their share) and for its runs in any order (C
# candidates, the rows the index would read). Walking costs about 50 x N / M document tests
# a page, gathering C rows, each test or row 3-4 microseconds: a search is walked when
# sqrt(C x M) reaches ``pg_walk_from`` (sqrt(WALK_FACTOR x N / PG_WALK_SHARE), 7,071 at a
# million tickets). Its matches must lie on at least ``PG_SAMPLE_PAGES`` of the sampled
# pages: a burst of tickets in a row (an outage's) is not a common word. A word of one run
# is never sampled (there C = M, and counting judges it as before); a fifth of the sample
# is tested first, and a search without a candidate there goes to the index. The sample only ever
# chooses a walk; every way finds the same tickets.
PG_SAMPLE = 1500
PG_SAMPLE_PAGES = 4
PG_WALK_SHARE = 3


def common_from(tickets: int) -> int:
    """From how many matches a search is walked rather than gathered, for a desk this size."""
    return max(MIN_COMMON, math.isqrt(WALK_FACTOR * max(tickets, 0)))


def pg_walk_from(tickets: int) -> int:
    """From how many matches (the geometric mean of matches and candidates, sampled) a
    phrase is walked on PostgreSQL (see ``PG_SAMPLE``)."""
    return max(MIN_COMMON, math.isqrt(WALK_FACTOR * max(tickets, 0) // PG_WALK_SHARE))


def sifted_from(tickets: int) -> int:
    """From how many matches the gathered ids are sifted in the page's order, not sorted."""
    return min(common_from(tickets), max(MIN_COMMON, math.isqrt(SORT_FACTOR * max(tickets, 0))))


def _desk_size() -> int:
    (tickets,) = Ticket._meta.database.execute_sql("SELECT MAX(id) FROM ticket").fetchone()
    return int(tickets or 0)


def _count_up_to(words: list[str], enough: int, prefix: bool = True) -> int:
    """The tickets matching every word, counted up to ``enough``.

    On SQLite a prefix (``"passport"*``) makes FTS5 merge the lists of every word it
    starts before the first row (19 ms for "passport" at a million tickets; the 2- and
    3-character prefix indexes spare it that for "pa" or "inv-12"), while whole words
    stream (0.7 ms to count 12,000): ``prefix=False`` counts whole words, which find no
    more than their prefixes do.
    """
    found = _index_query(words, prefix)
    if found is None:
        return 0
    sql, params = found
    (count,) = Ticket._meta.database.execute_sql(
        f"SELECT COUNT(*) FROM ({sql} LIMIT {enough}) AS probe", params).fetchone()
    return int(count)


def _pg_estimate(words: list[str], expanded: Expansions | None = None) -> float:
    found = _index_query(words, expanded=expanded)
    if found is None:
        return 0
    sql, params = found
    (row,) = Ticket._meta.database.execute_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchall()
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return float(plan[0]["Plan"]["Plan Rows"])


def _pg_sampled(words: list[str], tickets: int, size: int | None = None,
                expanded: Expansions | None = None) -> tuple[int, int, int, int]:
    """In a sample of about ``size`` (``PG_SAMPLE``) of ``ticket_search``'s rows (whole pages
    at random, the same ones each time; a smaller sample's pages are among a larger one's):
    the documents matching every word, those holding the words' runs in any order (what the
    index finds before its recheck), the pages of the first, and the documents sampled."""
    found = _index_query(words, expanded=expanded)
    loose = _index_query(words, phrase=False, expanded=expanded)
    if found is None or loose is None:
        return 0, 0, 0, 0
    percent = min(100.0, 100.0 * (size or PG_SAMPLE) / max(tickets, 1))
    # Each document is tested once for the runs, and for the phrase only when it holds them
    # ("OFFSET 0" keeps the planner from copying the tests into every use).
    hits, candidates, pages, seen = Ticket._meta.database.execute_sql(
        "SELECT count(*) FILTER (WHERE hit), count(*) FILTER (WHERE loose), "
        "count(DISTINCT CASE WHEN hit THEN (ctid::text::point)[0] END), count(*) "
        "FROM (SELECT ctid, loose, loose AND doc @@ %s::tsquery AS hit FROM (SELECT ctid, doc, "
        f"doc @@ %s::tsquery AS loose FROM ticket_search TABLESAMPLE SYSTEM ({percent:.6f}) "
        "REPEATABLE (0) OFFSET 0) AS tested OFFSET 0) AS sampled",
        [found[1][0], loose[1][0]]).fetchone()
    return int(hits), int(candidates), int(pages), int(seen)


def _sampled_common(words: list[str], tickets: int, expanded: Expansions | None = None) -> int:
    """The tickets a search matches, by a sample of the documents, when that shows it common
    enough to walk on PostgreSQL (see ``PG_SAMPLE``); else 0."""
    if all(len(pieces(word)) < 2 for word in words):
        return 0
    # A fifth first: a reference ("inv-12345") has no candidate there, and is spared the rest.
    if not _pg_sampled(words, tickets, PG_SAMPLE // 5, expanded)[1]:
        return 0
    hits, candidates, pages, seen = _pg_sampled(words, tickets, expanded=expanded)
    if pages < PG_SAMPLE_PAGES or not seen:
        return 0
    enough = pg_walk_from(tickets)
    # sqrt(C x M) >= enough, with C and M the sampled shares of the desk.
    if hits * candidates * tickets * tickets < enough * enough * seen * seen:
        return 0
    return max(1, hits * tickets // seen)


def _gathered(words: list[str], limit: int,
              expanded: Expansions | None = None) -> tuple[int, str]:
    """How many tickets match every word (up to ``limit``), and their ids as one value the
    page's statement reads as a list: a JSON array on SQLite, an array on PostgreSQL, made
    by the database (thousands of ids never become Python numbers)."""
    found = _index_query(words, expanded=expanded)
    if found is None:
        return 0, "[]" if db.is_sqlite() else "{}"
    sql, params = found
    listed = "json_group_array(rowid)" if db.is_sqlite() else \
        "coalesce(array_agg(ticket_id), '{}')::text"
    count, ids = Ticket._meta.database.execute_sql(
        f"SELECT count(*), {listed} FROM ({sql} LIMIT {limit}) AS found", params).fetchone()
    return int(count), ids


# PostgreSQL: a walked word of several runs whose last run starts with a digit ("inv-12")
# tests the documents of the tickets where its last two runs stand together (migration
# 0031's ``search_pair``, read from its index alone), not of every ticket the page passes:
# the walk read and tested about 2,500 documents for an API page of "inv-12" at a million
# tickets (10-14 ms of the server's CPU, 1.1% of tickets matching), where the pairs' range
# holds the 11,000 tickets that match. A range of more than ``pg_pairs_most`` pairs is not
# read (a hashed list of that many ids costs what the tests it spares do: "inv-1", a ninth
# of the desk, walks as before).
PG_PAIRS_FACTOR = 600
# Each word of a pair is kept to this many characters (0031's ``PAIR_WORD``).
PAIR_WORD = 100


def pg_pairs_most(tickets: int) -> int:
    """The most pairs a walked search reads to narrow its tests (see ``PG_PAIRS_FACTOR``)."""
    return max(MIN_COMMON, math.isqrt(PG_PAIRS_FACTOR * max(tickets, 0)))


def _pair_range(word: str) -> tuple[str, str] | None:
    """The range of 0031's ``search_pair`` that holds every ticket where the word's last two
    runs stand together, the last one a number's start; None for a word it cannot narrow."""
    parts = pieces(word)[:MAX_PIECES]
    if len(parts) < 2 or parts[-1][0] not in "0123456789" \
            or any(len(part) > PAIR_WORD for part in parts[-2:]):
        return None
    low = f"{parts[-2]} {parts[-1]}"
    high = _next_text(low)
    return None if high is None else (low, high)


def pg_number_pairs(words: list[str]) -> list[str]:
    """PostgreSQL: for each word ``_pair_range`` can narrow, the tickets in its range of
    ``search_pair`` as one array value (``{...}``, made by the database), when the range
    holds at most ``pg_pairs_most`` pairs; one statement, from the table's index alone."""
    ranges = [found for found in map(_pair_range, dict.fromkeys(words)) if found is not None]
    if not ranges:
        return []
    # (Kept for ``walked_far``, which the same page asks next: one ``MAX(id)`` a request.)
    _judged.tickets = tickets = _desk_size()
    most = pg_pairs_most(tickets)
    # Each range read once, counted to one past the most and listed only within it (a
    # ticket once a pair: the page hashes the list, so one listed twice costs nothing).
    rows = Ticket._meta.database.execute_sql(
        "SELECT f.pairs, f.ids FROM unnest(%s::text[], %s::text[]) AS r (low, high), LATERAL "
        "(SELECT count(*) AS pairs, CASE WHEN count(*) <= %s THEN "
        "coalesce(array_agg(ticket_id), '{}')::text END AS ids FROM (SELECT ticket_id FROM "
        "search_pair WHERE pair >= r.low COLLATE \"C\" AND pair < r.high COLLATE \"C\" "
        "LIMIT %s) AS found) AS f",
        [[low for low, _high in ranges], [high for _low, high in ranges], most,
         most + 1]).fetchall()
    return [ids for pairs, ids in rows if pairs <= most]


def _expansions(words: list[str]) -> Expansions | None:
    """The words the searched prefixes start (PostgreSQL; ``pg_expansions``), else None."""
    return None if db.is_sqlite() else pg_expansions(words)


# A judgement (``_judge``) is kept, per process and database, for the next search of the same
# words (the same search again, its next page, the console's count after its page):
# * SQLite: every judgement, with the full-text index's structure record (``%_data`` row 10)
#   it was made under. FTS5 writes that record again whenever the index changes (each write's
#   new segment, each step of a merge: segment ids and its write counter only grow), so while
#   the record is byte for byte the same, the index finds exactly what it found, and the kept
#   ids are its answer. Read in a few microseconds, against 9 ms to gather "inv-12"'s 11,188
#   ids at a million tickets. A judgement is kept only when the record was the same before
#   and after it was made, and never inside a transaction (its own writes are not flushed).
# * PostgreSQL: a walk only, for ``PG_WALK_KEPT`` seconds: a walk finds the same tickets as
#   any other way, so a kept walk can cost time if the search became rare meanwhile, never
#   a wrong answer; it spares the estimate and the sample (about 2.5 ms of the server's
#   time for "inv-12"). A gathered search's ids are fetched each time (no cheap version of a
#   GIN index to check them against).
KEPT_MOST = 64
PG_WALK_KEPT = 60.0

Judgement = tuple[str, int, str]
_kept: weakref.WeakKeyDictionary[object, OrderedDict[str, tuple[object, Judgement]]] = \
    weakref.WeakKeyDictionary()
_kept_lock = threading.Lock()


def _index_state() -> bytes | None:
    """SQLite: the full-text index's structure record and the last id the queue of documents
    gave (0032: every write that queues takes a new one), None inside a transaction, or
    before the index has a record."""
    database = Ticket._meta.database
    if database.in_transaction():
        return None
    row = database.execute_sql(
        "SELECT (SELECT block FROM ticket_search_data WHERE id = 10), "
        f"(SELECT seq FROM sqlite_sequence WHERE name = '{QUEUE}')").fetchone()
    return bytes(row[0]) + str(row[1]).encode() if row and row[0] is not None else None


def _queued_matching(words: list[str]) -> tuple[str, list[object]]:
    """SQLite: the queued tickets (0032) whose own rows hold every word, as a SELECT of their
    numbers, and its parameters: the test of a walked page, asked of each queued ticket."""
    query = Ticket.select(Ticket.id).where(
        Ticket.id.in_(SQL(f"(SELECT ticket_id FROM {QUEUE})")), _each_ticket_matches(words))
    sql, params = query.sql()
    return sql, list(params)


def _kept_for(key: str, still: Callable[[object], bool]) -> Judgement | None:
    with _kept_lock:
        kept = _kept.get(Ticket._meta.database.obj, {}).get(key)
    return kept[1] if kept is not None and still(kept[0]) else None


def _keep(key: str, mark: object, judgement: Judgement) -> None:
    with _kept_lock:
        kept = _kept.setdefault(Ticket._meta.database.obj, OrderedDict())
        kept[key] = (mark, judgement)
        kept.move_to_end(key)
        while len(kept) > KEPT_MOST:
            kept.popitem(last=False)


def _judge(words: list[str], expanded: Expansions | None = None) -> Judgement:
    """``_judged_now``, or the same judgement kept from an earlier search of these words
    while it still holds (see ``KEPT_MOST``)."""
    # The words, and the thresholds a judgement was made with (tests change them).
    key = repr((words, MIN_COMMON, WALK_FACTOR, SORT_FACTOR, PG_TRUSTED, PG_SAMPLE,
                PG_SAMPLE_PAGES, PG_WALK_SHARE))
    if db.is_sqlite():
        state = _index_state()
        if state is not None:
            kept = _kept_for(key, lambda mark: mark == state)
            if kept is not None:
                return kept
        judgement = _judged_now(words, expanded)
        if state is not None and _index_state() == state:
            _keep(key, state, judgement)
        return judgement
    kept = _kept_for(key, lambda made: time.monotonic() - made < PG_WALK_KEPT)  # type: ignore[operator]
    if kept is not None:
        return kept
    judgement = _judged_now(words, expanded)
    if judgement[0] == "walk":
        _keep(key, time.monotonic(), judgement)
    return judgement


def _judged_now(words: list[str], expanded: Expansions | None = None) -> Judgement:
    """How a page finds the tickets matching every word: ``"walk"`` (they are at least
    ``common_from``: each ticket tested as the page walks), or ``"sift"`` or ``"gather"``
    with how many there are and their ids (see ``_gathered`` and the comment above
    ``SORT_FACTOR``).

    The whole search is judged in one index, all its words together: two common words that
    never meet ("santoso halim") find nothing and are gathered (nothing), where judging
    each word alone would walk the whole desk for them. SQLite counts whole words first
    (streaming), then fetches with prefixes only when that did not settle it; PostgreSQL
    trusts a high estimate of its planner, then a sample of the documents (``PG_SAMPLE``),
    and fetches otherwise.
    """
    tickets = _desk_size()
    enough = common_from(tickets)
    if db.is_sqlite():
        if _count_up_to(words, enough, prefix=False) >= enough:
            return "walk", 0, ""
    else:
        # Only a high estimate is trusted: given a low one (which may be the floor of a
        # prefix it knows nothing of) the planner walked every ticket testing its
        # document for "santoso halim" (3.5 s at a million), where the index finds none.
        # A walk keeps the matches as estimated (``walked_far``).
        estimate = _pg_estimate(words, expanded)
        if estimate >= PG_TRUSTED * enough:
            return "walk", int(estimate), ""
        sampled = _sampled_common(words, tickets, expanded)
        if sampled:
            return "walk", sampled, ""
    count, ids = _gathered(words, enough, expanded)
    if count >= enough:
        return "walk", count if not db.is_sqlite() else 0, ""
    return ("sift" if count >= sifted_from(tickets) else "gather"), count, ids


def is_common(text: str) -> bool:
    """Whether the words of ``text`` together match enough tickets that a page walks the
    list's order and tests each ticket, rather than gathering them (see ``_judge``)."""
    words = [word for word in text.split()[:MAX_WORDS] if pieces(word)]
    if not words:
        return False
    expanded = _expansions(words)
    if expanded and _index_query(words, expanded=expanded) is None:
        return False
    return _judge(words, expanded)[0] == "walk"


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


def _each_ticket_matches(words: list[str], expanded: Expansions | None = None,
                         pairs: Iterable[str] = ()) -> Expression:
    """The same test as ``_index_query``, asked of one ticket row at a time, for a page
    that walks tickets in its own order.

    Not through the full-text index: one look-up in an index of a million rows reads the
    word's whole list of rows (about 5 ms for a common word on SQLite), while reading the
    ticket's own few texts and testing them costs microseconds. SQLite tests the ticket's
    subject, messages (not the desk's notifications, as the documents since 0017) and contact
    with ``loket_matches`` (each text apart: a phrase does not run from one message into the
    next there); PostgreSQL reads the ticket's stored
    document (``ticket_search.doc``) by its key and tests the whole search on it, in a
    subquery the planner cannot turn into a join over every matching document.

    ``pairs`` (PostgreSQL, ``pg_number_pairs``): lists of tickets, every match in each; the
    document is read and tested only for a ticket in all of them.
    """
    if not db.is_sqlite():
        found = _index_query(words, expanded=expanded)
        assert found is not None  # every word has letters or digits, starts a desk's word
        listed = list(pairs)
        if listed:
            # A ticket in no list gets no document: NULL, which ``ts_match_vq`` (strict) does
            # not match. Each list is a constant, which PostgreSQL hashes once a statement;
            # under ``CASE`` it is never an index condition (the planner would gather the
            # listed tickets and sort them). As a subquery instead (a hashed subplan, no
            # list sent back and forth), the page cost more: its range read and hashed twice,
            # for the page's numbers and again for its rows (10-12 ms of the server a request
            # against 7-8, in alternated runs at a million).
            nodes: list[object] = [SQL("ts_match_vq(CASE WHEN")]
            for number, ids in enumerate(listed):
                if number:
                    nodes.append(SQL("AND"))
                nodes += [Ticket.id, SQL("= ANY(%s::int[])", [ids])]
            nodes += [SQL("THEN (SELECT s.doc FROM ticket_search AS s WHERE s.ticket_id ="),
                      Ticket.id, SQL(") END, %s::tsquery)", found[1])]
            return NodeList(nodes)
        # ``ts_match_vq`` is ``@@`` without its estimate: the planner multiplied its guess
        # for each run (0.5% a word, 2% a prefix: it has no statistics for a subquery's
        # document), so a phrase or two words looked like a few tickets in a million, the
        # page like a walk of the whole desk, and the statement was compiled (JIT: 0.5-1.6
        # s a page for "inv-12"). A function's guess (a third) prices the walk as a walk.
        return NodeList((SQL("ts_match_vq((SELECT s.doc FROM ticket_search AS s WHERE "
                             "s.ticket_id ="), Ticket.id, SQL("), %s::tsquery)", found[1])))
    _sqlite_function()
    clauses = []
    for word in dict.fromkeys(words):
        pattern = " ".join(fold(part) for part in pieces(word)[:MAX_PIECES])
        checks = [
            NodeList((SQL("loket_matches("), Ticket.subject, SQL(", ?)", [pattern]))),
            NodeList((SQL("EXISTS (SELECT 1 FROM message AS fm WHERE fm.ticket_id ="),
                      Ticket.id, SQL("AND fm.notification = '' "
                                     "AND loket_matches(fm.body_text, ?))", [pattern]))),
            NodeList((SQL("EXISTS (SELECT 1 FROM contact AS fk WHERE fk.id ="), Ticket.contact,
                      SQL("AND (loket_matches(fk.name, ?) OR loket_matches(fk.email, ?)))",
                          [pattern, pattern]))),
        ]
        number = _number(word)
        if number is not None:
            checks.append(Ticket.id == Value(number))
        clauses.append(_any(checks))
    return _all(clauses)


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


# The searches this thread last judged common (walked), by their text: ``walked`` tells the
# page, which asks right after ``search_clause``, without judging again.
_judged = threading.local()


def walked(text: str) -> bool:
    """Whether ``search_clause(text)``, the last time this thread called it, walked the page
    (a common search: each ticket tested as the page passes it)."""
    return getattr(_judged, "walked", None) == text


# PostgreSQL: a walked search matching at most this share of the desk passes over so many
# tickets for a page (50 / share) that finding the page's numbers in an index alone first pays
# for the second look-up (``access.walks_far``); a commoner one finds its page within a few
# hundred tickets, and the second look-up (planned, and the page's documents tested again)
# costs more than it spares.
FAR_SHARE = 0.05


def walked_far(text: str) -> bool:
    """Whether ``search_clause(text)`` last walked the page (``walked``) for a search of at
    most ``FAR_SHARE`` of the desk's tickets, by the judgement's estimate (PostgreSQL)."""
    if not walked(text):
        return False
    matches = getattr(_judged, "matches", 0)
    return 0 < matches <= FAR_SHARE * (getattr(_judged, "tickets", None) or _desk_size())


# A clause both planners see is false before reading anything (``Ticket.id < 0`` made
# SQLite walk the page's whole index, testing each ticket's number).
_NOTHING = SQL("1 = 0")


def search_clause(text: str) -> Expression:
    """A WHERE clause on tickets: every word of ``text`` matches the ticket (see the
    module's rules). Words after the first ``MAX_WORDS`` are not looked at.

    The index is asked once for all the words (``_judge``). A few matches are gathered
    (their tickets read by number, then put in the page's order); up to
    ``common_from(tickets)`` of them are sifted (the page walks its own index newest first
    and keeps the tickets among them); a common search ("passport", in a tenth of the
    desk) would fetch hundreds of thousands of ids: instead each ticket is checked as the
    page walks, and a page of 50 stops after about 50 / (share of tickets matching) checks.
    Beside a ticket number ("#1234") the words are checked on that one ticket. Every way
    finds the same tickets.
    """
    _judged.walked = _judged.tickets = None
    words = text.split()[:MAX_WORDS]
    numbers: list[Expression] = []
    searched: list[str] = []
    for word in words:
        number = word[1:]
        if word.startswith("#") and number.isascii() and number.isdigit():
            numbers.append(Ticket.id == (int(number) if len(number) < 10 else 0))
        elif not pieces(word):
            return _NOTHING
        else:
            searched.append(word)
    if not searched:
        return _all(numbers) if numbers else _NOTHING
    # Beside a ticket number there is one ticket to check: nothing to gather.
    if numbers:
        return _all([*numbers, _each_ticket_matches(searched)])
    expanded = _expansions(searched)
    if expanded and _index_query(searched, expanded=expanded) is None:
        return _NOTHING  # a prefix that starts no word of any document
    how, count, ids = _judge(searched, expanded)
    if how == "walk":
        _judged.walked, _judged.matches = text, count
        return _each_ticket_matches(searched, expanded,
                                    () if db.is_sqlite() else pg_number_pairs(searched))
    if not count:
        return _NOTHING
    # The ids as one value (a JSON list, an array), not thousands of literals to parse;
    # both databases hash it once.
    if db.is_sqlite():
        listed = NodeList((SQL("IN"), SQL("(SELECT value FROM json_each(?))", [ids])))
    else:
        listed = SQL("= ANY(%s::int[])", [ids])
    if how == "gather":
        return NodeList((Ticket.id, listed))
    # Sifted: "+ 0" is not a key to look the tickets up by, so the page walks its own index
    # in order and keeps the tickets in the list.
    return NodeList((Ticket.id + 0, listed))
