"""Search for a word of several runs ("inv-12"): a phrase, in order, within one field, its last
run a prefix; and how PostgreSQL judges one whose runs are everywhere (a sample, then a walk
whose plan is priced as a walk)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core import db as core_db
from core.models import Ticket
from core.services import access, search

from .factories import found_every_way
from .spies import Statements
from .test_search import _open


@pytest.fixture
def phrases(desk: Any) -> dict[str, Ticket]:
    """A reference, its runs apart, reversed, split across two fields, and glued."""
    return {
        "reference": _open("a@example.com", "Payment", "Reference INV-1234567 paid"),
        "apart": _open("b@example.com", "Invoice", "inv noted, code 1299 later"),
        "reversed": _open("c@example.com", "Reversed", "listed as 12-inv only"),
        "split": _open("d@example.com", "Question about inv", "12 items missing"),
        "glued": _open("inv12@example.com", "Glued", "nothing else"),
        "other": _open("e@example.com", "Reference INV-9912", "another one"),
    }


PHRASES = [
    ("inv-12", {"reference"}),  # the last run a prefix: 1234567
    ("INV-1234567", {"reference"}),
    ("inv-1235", set()),  # a prefix of the run, not any number
    ("12-inv", {"reversed"}),  # in the order typed
    ("inv-99", {"other"}),  # in a subject as in a message
    ("about-inv-12", set()),  # never from the subject into the message
    ("inv12", {"glued"}),  # one run: the address's first word
    ("inv-12 paid", {"reference"}),
    ("inv-12 later", set()),  # every word must match
]


@pytest.mark.parametrize("words, expected", PHRASES, ids=[w for w, _ in PHRASES])
def test_a_phrase_matches_its_runs_in_order_within_one_field(
        desk: Any, phrases: dict[str, Ticket], monkeypatch: pytest.MonkeyPatch, words: str,
        expected: set[str]) -> None:
    """Gathered, walked, sifted and (PostgreSQL) walked by a sample list the same tickets."""
    def found() -> list[int]:
        query = access.filter_inbox(access.inbox(desk.admin), desk.admin,
                                    access.InboxFilter(text=words))
        return [t.id for t in query.order_by(Ticket.id)]

    assert found_every_way(monkeypatch, found, walk_from=(5, 0)) == sorted(
        phrases[name].id for name in expected)
    # The sample (PostgreSQL) walks whatever it sees at all.
    monkeypatch.setattr(search, "MIN_COMMON", 1)
    monkeypatch.setattr(search, "WALK_FACTOR", 0)
    monkeypatch.setattr(search, "PG_SAMPLE_PAGES", 1)
    monkeypatch.setattr(search, "_pg_estimate", lambda words, expanded=None: 0.0)
    assert found() == sorted(phrases[name].id for name in expected)


def _everywhere(matches: int, apart: int) -> None:
    """Tickets holding "inv-12…" (matches), and tickets holding "inv" and a "12…" word
    apart (found by the index before its recheck, not matching)."""
    for k in range(matches):
        _open(f"m{k}@example.test", f"Paid {k}", f"Reference INV-12{k:05d} settled")
    for k in range(apart):
        _open(f"a{k}@example.test", f"Open {k}", f"inv noted, code 12{k:05d} later")


@pytest.fixture
def postgresql_only() -> None:
    if core_db.is_sqlite():
        pytest.skip("PostgreSQL's judgement by a sample (SQLite's index counts a phrase)")


def _gathers(caught: Statements) -> list[str]:
    return [sql for sql in caught.sql if "FROM ticket_search WHERE" in sql]


def test_postgresql_walks_a_phrase_whose_runs_are_everywhere_without_gathering(
        desk: Any, monkeypatch: pytest.MonkeyPatch, postgresql_only: None) -> None:
    """10 matches, 40 candidates: counted, 10 are not common (12); sampled, the index
    would read 40 rows where a walk tests about 50 x N / 10 documents: sqrt(40 x 10) = 20
    reaches 12, so the page walks and the index is never asked for the 40."""
    _everywhere(10, 30)
    monkeypatch.setattr(search, "MIN_COMMON", 12)
    monkeypatch.setattr(search, "WALK_FACTOR", 0)
    monkeypatch.setattr(search, "PG_SAMPLE_PAGES", 1)
    monkeypatch.setattr(search, "_pg_estimate", lambda words, expanded=None: 0.0)
    hits, candidates, pages, seen = search._pg_sampled(["inv-12"], search._desk_size())
    assert (hits, candidates, seen) == (10, 40, Ticket.select().count())  # the whole table
    with Statements() as caught:
        assert search.is_common("inv-12")
    assert _gathers(caught) == []
    assert len([sql for sql in caught.sql if "TABLESAMPLE" in sql]) == 2  # a fifth, then all
    # A reference with no candidate in the first fifth goes to the index after it alone.
    with Statements() as caught:
        assert not search.is_common("inv-99")
    assert len([sql for sql in caught.sql if "TABLESAMPLE" in sql]) == 1
    assert len(_gathers(caught)) == 1
    # One word: candidates are matches, and the sample's rule is counting's (10 < 12).
    with Statements() as caught:
        assert not search.is_common("settled")
    assert len(_gathers(caught)) == 1
    walked = [t.id for t in Ticket.select().where(search.search_clause("inv-12"))
              .order_by(Ticket.id)]
    monkeypatch.setattr(search, "PG_SAMPLE_PAGES", 10 ** 9)  # never by the sample
    assert search._judge(["inv-12"])[0] == "gather"
    assert [t.id for t in Ticket.select().where(search.search_clause("inv-12"))
            .order_by(Ticket.id)] == walked
    assert len(walked) == 10


def test_postgresql_does_not_walk_matches_on_fewer_sampled_pages_than_it_asks(
        desk: Any, monkeypatch: pytest.MonkeyPatch, postgresql_only: None) -> None:
    """A burst of tickets in a row (an outage's word) sits on a few pages of the table: seen
    on fewer than ``PG_SAMPLE_PAGES`` of the sampled pages, it is counted, not walked."""
    _everywhere(10, 30)
    monkeypatch.setattr(search, "MIN_COMMON", 12)
    monkeypatch.setattr(search, "WALK_FACTOR", 0)
    monkeypatch.setattr(search, "_pg_estimate", lambda words, expanded=None: 0.0)
    pages = search._pg_sampled(["inv-12"], search._desk_size())[2]
    assert pages >= 1
    monkeypatch.setattr(search, "PG_SAMPLE_PAGES", pages + 1)
    assert not search._sampled_common(["inv-12"], search._desk_size())
    assert search._judge(["inv-12"])[0] == "gather"
    monkeypatch.setattr(search, "PG_SAMPLE_PAGES", pages)
    assert search._judge(["inv-12"])[0] == "walk"


def _plan(sql: str, params: list[Any]) -> dict[str, Any]:
    (row,) = Ticket._meta.database.execute_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchall()
    found = row[0]
    return (json.loads(found) if isinstance(found, str) else found)[0]


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(found for child in node.get("Plans", ()) for found in _nodes(child))]


def test_postgresql_prices_a_walked_phrase_as_a_walk_and_samples_without_a_scan(
        desk: Any, monkeypatch: pytest.MonkeyPatch, postgresql_only: None) -> None:
    """The walk's test of each document is ``ts_match_vq``: with ``@@`` the planner guessed
    a phrase at a few tickets in a million from its statistics, priced the page as a walk of
    the whole desk and compiled it (JIT: 0.5-1.6 s a page at a million). Priced as a
    function, the page stops early in the planner's eyes too: no JIT, and the limit costs a
    fraction of the walk. The sample reads sampled pages (a Sample Scan), not the table."""
    _everywhere(150, 150)
    Ticket._meta.database.execute_sql("ANALYZE")
    monkeypatch.setattr(search, "_judge", lambda words, expanded=None: ("walk", 0, ""))
    with Statements() as caught:
        access.inbox_page(access.filter_inbox(access.inbox(desk.admin), desk.admin,
                                              access.InboxFilter(text="inv-12 settled")))
    (page,) = [(sql, params) for sql, params in caught.caught
               if 'FROM "ticket" AS "t1"' in sql and "LIMIT" in sql]
    # (Its documents read only where "inv" stands before a "12…" number: 0031's pairs.)
    assert "ts_match_vq(CASE WHEN" in page[0] and "(SELECT s.doc FROM ticket_search AS s" \
        in page[0]
    planned = _plan(*page)
    assert "JIT" not in planned
    (walk,) = [node for node in _nodes(planned["Plan"]) if node.get("Relation Name") == "ticket"
               and "ts_match_vq" in node.get("Filter", "")]
    # A third of the tickets (a function's guess); ``@@`` guessed one.
    assert walk["Plan Rows"] >= Ticket.select().count() / 10
    tickets = search._desk_size()
    with Statements() as caught:
        search._pg_sampled(["inv-12"], tickets)
    (sampled,) = caught.caught
    scans = {node["Node Type"] for node in _nodes(_plan(*sampled)["Plan"])}
    assert "Sample Scan" in scans and "Seq Scan" not in scans


def test_gathered_ids_come_from_the_database_as_one_value(
        desk: Any, phrases: dict[str, Ticket]) -> None:
    """Thousands of ids are never made Python numbers and back: the index's statement hands
    them as one JSON array (SQLite) or array (PostgreSQL) that the page reads."""
    count, listed = search._gathered(["inv"], 100)
    assert count == 6  # "inv12@example.com" too: the word is a prefix
    ids = json.loads(listed) if core_db.is_sqlite() else \
        [int(n) for n in listed.strip("{}").split(",")]
    assert sorted(ids) == sorted(ticket.id for ticket in phrases.values())
    assert search._gathered(["inv"], 2)[0] == 2
    # One look-up in the full-text index, counted and listed over its limited rows (the
    # 20,000-ticket plans of tests/test_inbox_plans.py read the same statement's plan).
    with Statements() as caught:
        search._gathered(["inv"], 2)
    ((sql, params),) = caught.caught
    if core_db.is_sqlite():
        lines = [row[-1] for row in Ticket._meta.database.execute_sql(
            f"EXPLAIN QUERY PLAN {sql}", params)]
        assert any("ticket_search VIRTUAL TABLE INDEX" in line for line in lines), lines
    else:
        top = _plan(sql, params)["Plan"]
        assert top["Node Type"] == "Aggregate" and top["Plans"][0]["Node Type"] == "Limit"
    assert search._gathered(["zzzq"], 100) == (0, "[]" if core_db.is_sqlite() else "{}")
