"""A phrase prefix whose last run is a number's start ("inv-12"): PostgreSQL's walked page tests
the documents of the tickets where its last two runs stand together (migration 0031's
``search_pair``), and finds the same tickets as every other way."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest

from core import db as core_db
from core.models import Contact, Message, Ticket
from core.services import access, search
from core.services.tickets import Actor, add_customer_reply, update_ticket

from .factories import found_every_way
from .spies import Statements
from .test_search import _open

PAIRS = import_module("core.migrations.0031_pg_search_number_pairs")


@pytest.fixture
def postgresql_only() -> None:
    if core_db.is_sqlite():
        pytest.skip("PostgreSQL's pairs (SQLite's FTS5 answers a phrase from its index)")


def _database() -> Any:
    return Ticket._meta.database


def _kept() -> set[tuple[str, int]]:
    return set(_database().execute_sql("SELECT pair, ticket_id FROM search_pair").fetchall())


def _from_documents() -> set[tuple[str, int]]:
    """The pairs of the stored documents, made again: what the table must hold."""
    return set(_database().execute_sql(
        "SELECT p, ticket_id FROM ticket_search, unnest(loket_number_pairs(doc)) AS p"
    ).fetchall())


def test_a_documents_pairs_are_each_number_with_the_word_just_before_it(
        desk: Any, postgresql_only: None) -> None:
    """Within one field, in the stored document's positions; a number first in its field has
    none (the separator is no word), nor has a word before a word."""
    ticket = _open("ana.12@example.com", "Refund INV", "12 items; code 99-100, paid 2024",
                   name="Ana")
    pairs = {pair for pair, number in _kept() if number == ticket.id}
    assert pairs == {"ana 12", "code 99", "99 100", "paid 2024"}
    # Cut to a b-tree key's size, whatever the words' length.
    (cut,) = _database().execute_sql(
        "SELECT loket_number_pairs(to_tsvector('simple', %s))", [f"{'x' * 300} {'9' * 300}"]
    ).fetchone()
    assert cut == [f"{'x' * PAIRS.PAIR_WORD} {'9' * PAIRS.PAIR_WORD}"]


def test_every_pair_of_every_document_is_kept_whatever_writes_it(
        desk: Any, postgresql_only: None) -> None:
    """Each document written adds its pairs; an update takes none away (a pair no document
    holds costs a document test, never a ticket missed); a deleted document's own go."""
    ticket = _open("rina@example.com", "Payout stuck", "My withdrawal INV-4417803",
                   name="Rina Halim")
    other = _open("budi@example.com", "Camera", "Stream freezes at 1080 60", name="Budi")
    assert ("inv 4417803", ticket.id) in _kept() and ("1080 60", other.id) in _kept()
    add_customer_reply(ticket, "the parcel QW 7788 arrived broken")
    update_ticket(ticket, Actor.agent(desk.admin), subject="Order 5521 refund")
    Contact.update(name="Rina 2").where(Contact.id == ticket.contact_id).execute()
    assert {("qw 7788", ticket.id), ("order 5521", ticket.id), ("rina 2", ticket.id)} \
        <= _kept()
    assert _kept() == _from_documents()
    # By hand, past the services: a message edited and deleted, a ticket's document deleted.
    Message.update(body_text="now order 9001").where(Message.ticket == ticket.id).execute()
    assert ("order 9001", ticket.id) in _kept() and _kept() >= _from_documents()
    Message.delete().where(Message.ticket == other.id).execute()
    assert _kept() >= _from_documents()
    _database().execute_sql("DELETE FROM ticket_search WHERE ticket_id = %s", [ticket.id])
    held = {("order 9001", ticket.id), ("order 5521", ticket.id), ("rina 2", ticket.id)}
    assert not held & _kept()


@pytest.fixture
def numbered(desk: Any) -> dict[str, Ticket]:
    """References and numbers, their runs together, apart, in another field, glued."""
    return {
        "reference": _open("a@example.com", "Payment", "Reference INV-1234567 paid"),
        "apart": _open("b@example.com", "Invoice", "inv noted, code 1299 later"),
        "split": _open("c@example.com", "Question about inv", "12 items missing"),
        "glued": _open("inv12@example.com", "Glued", "nothing else"),
        "other": _open("d@example.com", "Reference INV-9912", "another one"),
        "date": _open("e@example.com", "Since 2024-05-01", "still waiting for 2024 05"),
        "long": _open("f@example.com", "Long", "ref " + "7" * 150 + " noted"),
        "three": _open("g@example.com", "Order", "ACME-INV-12-77 shipped"),
    }


NUMBERED = [
    ("inv-12", {"reference", "three"}),
    ("inv-1234567", {"reference"}),
    ("INV-99", {"other"}),
    ("inv-1299", set()),  # apart
    ("about-inv-12", set()),  # never from the subject into the message
    ("inv12", {"glued"}),  # one run: not narrowed
    ("2024-05", {"date"}),
    ("2024-05-0", {"date"}),
    ("since-2024-05-01", {"date"}),
    ("ref-" + "7" * 120, {"long"}),  # runs longer than a pair keeps: not narrowed
    ("acme-inv-12", {"three"}),
    ("inv-12-77", {"three"}),
    ("inv-12 paid", {"reference"}),
    ("inv-12 inv-99", set()),
]


@pytest.mark.parametrize("words, expected", NUMBERED, ids=[w[:20] for w, _ in NUMBERED])
def test_a_walked_number_phrase_finds_the_same_tickets_narrowed_by_its_pairs_or_not(
        desk: Any, numbered: dict[str, Ticket], monkeypatch: pytest.MonkeyPatch, words: str,
        expected: set[str]) -> None:
    """Gathered, sifted, walked narrowed by the pairs (PostgreSQL) and walked testing every
    ticket list the same tickets, on both databases."""
    def found() -> list[int]:
        query = access.filter_inbox(access.inbox(desk.admin), desk.admin,
                                    access.InboxFilter(text=words))
        return [t.id for t in query.order_by(Ticket.id)]

    wanted = sorted(numbered[name].id for name in expected)
    assert found_every_way(monkeypatch, found, walk_from=(0,)) == wanted
    monkeypatch.setattr(search, "MIN_COMMON", 0)
    monkeypatch.setattr(search, "WALK_FACTOR", 0)
    with Statements() as caught:
        assert found() == wanted
    narrowed = [sql for sql in caught.sql if "ts_match_vq(CASE WHEN" in sql]
    assert bool(narrowed) == (not core_db.is_sqlite() and bool(list(filter(
        None, map(search._pair_range, words.split())))))
    monkeypatch.setattr(search, "pg_number_pairs", lambda _words: [])
    assert found() == wanted


def test_more_pairs_than_the_most_walk_every_ticket_as_before(
        desk: Any, numbered: dict[str, Ticket], monkeypatch: pytest.MonkeyPatch,
        postgresql_only: None) -> None:
    """A range of more than ``pg_pairs_most`` pairs is counted that far and not listed: the
    page tests every ticket it walks, finding the same."""
    _open("h@example.com", "More", "INV-1200001 and INV-1200002")
    assert len(search.pg_number_pairs(["inv-12"])) == 1
    monkeypatch.setattr(search, "MIN_COMMON", 1)
    monkeypatch.setattr(search, "PG_PAIRS_FACTOR", 0)
    assert search.pg_number_pairs(["inv-12"]) == []  # four pairs, at most one
    assert search.pg_number_pairs(["inv-99"]) != []
    assert search.pg_number_pairs(["inv", "12", "12-inv"]) == []  # nothing to narrow


def test_rebuilding_the_search_adds_the_pairs_a_document_holds(
        desk: Any, postgresql_only: None) -> None:
    """Pairs lost by hand (the triggers off, a restore of one table) come back with
    ``loket db rebuild-search``, whose documents were right all along."""
    from core.services import search_index

    ticket = _open("rina@example.com", "Payout stuck", "My withdrawal INV-4417803")
    _database().execute_sql("DELETE FROM search_pair")
    assert _kept() == set()
    done = search_index.rebuild()
    assert done.written == 0 and ("inv 4417803", ticket.id) in _kept()
    assert _kept() == _from_documents()


def test_the_migration_fills_the_pairs_and_goes_down(desk: Any, postgresql_only: None) -> None:
    _open("rina@example.com", "Payout stuck", "My withdrawal INV-4417803", name="Rina")
    PAIRS.down(None, _database())
    assert _database().execute_sql("SELECT to_regclass('search_pair')").fetchone() == (None,)
    joko = _open("joko@example.com", "Camera", "Stream freezes, order 8812", name="Joko")
    PAIRS.up(None, _database())
    assert ("order 8812", joko.id) in _kept()
    assert _kept() == _from_documents()


def _edited_out(ticket: Ticket, text: str, now: str) -> Message:
    """A message of ``ticket`` written saying ``text`` and edited to say ``now``: its document
    is rewritten, and 0031's trigger takes none of the old pairs away."""
    message = add_customer_reply(ticket, text)
    Message.update(body_text=now).where(Message.id == message.id).execute()
    return message


def test_rebuilding_the_search_removes_the_pairs_no_document_holds(
        desk: Any, app: Any, db_url: str, monkeypatch: pytest.MonkeyPatch,
        postgresql_only: None) -> None:
    """A message edited and a contact renamed rewrite the document and leave pairs it no
    longer holds (a subject edited writes it anew, which takes its pairs away);
    ``loket db rebuild-search`` removes the pairs no document holds, and only those: a pair
    another ticket's document holds stays for that ticket; a pair of words cut to
    ``PAIR_WORD`` characters stays while the document's cut words still make it. The
    searches find the same tickets before and after, and a second run removes nothing."""
    from .test_search_rebuild import _rebuild

    long_x, long_y = "x" * 150, "y" * 150
    edited = _open("rina@example.com", "Payout stuck since 2023", "My withdrawal INV-4417803",
                   name="Rina 2023")
    other = _open("budi@example.com", "Camera", f"order 5521 arrived, ref {long_y} 77",
                  name="Budi")
    _edited_out(edited, f"order 5521 and {long_x} 42 and {long_y[:140]} 77",
                f"order 7000 and {long_x[:120]} 42")
    update_ticket(edited, Actor.agent(desk.admin), subject="Payout stuck")
    Contact.update(name="Rina").where(Contact.id == edited.contact_id).execute()
    ghost = max(edited.id, other.id) + 50  # a ticket without a document
    _database().execute_sql("INSERT INTO search_pair VALUES ('ghost 1', %s)", [ghost])
    cut = PAIRS.PAIR_WORD
    stale = _kept() - _from_documents()
    assert {("order 5521", edited.id), (f"{'y' * cut} 77", edited.id), ("rina 2023", edited.id),
            ("ghost 1", ghost)} <= stale
    held = _from_documents()
    assert {("order 5521", other.id), (f"{'y' * cut} 77", other.id),
            (f"{'x' * cut} 42", edited.id), ("order 7000", edited.id)} <= held

    searches = {"order-55": {other.id}, "order-70": {edited.id}, "inv-44": {edited.id},
                f"{long_y}-77": {other.id}, f"{long_x[:120]}-4": {edited.id},
                f"{'y' * cut}-77": set(), "ghost-1": set()}

    def found_now() -> dict[str, set[int]]:
        return {words: set(found_every_way(monkeypatch, lambda words=words: sorted(
            t.id for t in access.filter_inbox(access.inbox(desk.admin), desk.admin,
                                              access.InboxFilter(text=words)))))
                for words in searches}

    assert found_now() == searches
    output = _rebuild(app, monkeypatch, db_url, "--batch", "1")
    assert (f"{len(stale)} pair(s) of a number and the word before it no document holds any "
            "more removed.") in output
    assert _kept() == held == _from_documents()
    assert found_now() == searches
    again = _rebuild(app, monkeypatch, db_url)
    assert "0 pair(s) of a number and the word before it" in again
    assert _kept() == held


def test_a_pair_a_concurrent_write_brings_back_is_not_removed(
        desk: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, postgresql_only: None) -> None:
    """For real, on two connections: after the batches read the documents (and the words are
    pruned), another transaction edits a message back to a pair no document held (its
    trigger finds the pair kept and adds nothing) and has not committed when the pairs are
    checked. The check waits for it under its lock of the documents (without the lock it
    would remove the pair, and a walked search of that number would miss the ticket), and
    the pair stays; a pair nobody brought back goes."""
    from core.services import search_index

    from .test_search_rebuild import _Other

    ticket = _open("rina@example.com", "Payout stuck", "My withdrawal INV-4417803")
    message = _edited_out(ticket, "order 5521 arrived", "order 7000 arrived")
    lapsed = _open("budi@example.com", "Camera", "Stream freezes")
    _edited_out(lapsed, "code 8812 noted", "nothing noted")
    others: list[Any] = []
    prune_words = search_index.prune_words

    def words_then_a_write(done: search_index.Rebuilt) -> None:
        prune_words(done)
        others.append(_Other(db_url, ("UPDATE message SET body_text = %s WHERE id = %s",
                                      ("order 5521 is back", message.id))))
        others[0].start()

    monkeypatch.setattr(search_index, "prune_words", words_then_a_write)
    done = search_index.rebuild()
    others[0].join()
    assert others[0].saw_the_wait  # the check waited for the writer
    assert ("order 5521", ticket.id) in _kept() and ("code 8812", lapsed.id) not in _kept()
    assert done.pruned_pairs == 1
    assert _kept() >= _from_documents()
    assert found_every_way(monkeypatch, lambda: sorted(
        t.id for t in access.filter_inbox(access.inbox(desk.admin), desk.admin,
                                          access.InboxFilter(text="order-55")))) == [ticket.id]
