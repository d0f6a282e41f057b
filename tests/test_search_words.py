"""PostgreSQL: a searched prefix becomes the desk's words it starts (migration 0020)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest

from core import db as core_db
from core.models import Contact, Message, Ticket
from core.services import search
from core.services.tickets import Actor, add_customer_reply, revise_message, update_ticket

from .spies import Statements
from .test_search import _open, found

WORDS = import_module("core.migrations.0020_pg_search_words")


@pytest.fixture
def postgresql_only() -> None:
    if core_db.is_sqlite():
        pytest.skip("PostgreSQL's words table (SQLite's FTS5 answers a prefix from its "
                    "prefix index)")


def _database() -> Any:
    return Ticket._meta.database


def _kept() -> set[str]:
    return {word for (word,) in _database().execute_sql("SELECT word FROM search_word")}


def _missing() -> list[str]:
    """Words of some document that begin with anything but a digit and are not kept."""
    return [word for (word,) in _database().execute_sql(
        "SELECT DISTINCT w FROM ticket_search, unnest(tsvector_to_array(doc)) AS w "
        "WHERE w !~ '^[0-9#|]' EXCEPT SELECT word FROM search_word")]


def _by_prefix(words: str) -> set[int]:
    """The tickets GIN's partial match finds for the words, as the search did before 0020."""
    query = " & ".join(search._tsquery(search.pieces(word)) for word in words.split())
    return {ticket_id for (ticket_id,) in _database().execute_sql(
        "SELECT ticket_id FROM ticket_search WHERE doc @@ %s::tsquery", [query])}


def test_every_word_written_is_kept_whatever_writes_it(desk: Any, postgresql_only: None) -> None:
    ticket = _open("rina.halim@example.com", "Payout stuck", "My withdrawal INV-4417803",
                   name="Rina Halim")
    kept = _kept()
    assert {"payout", "stuck", "withdrawal", "inv", "rina", "halim", "example"} <= kept
    assert not {word for word in kept if word[0] in "0123456789#|"}  # numbers are not kept
    add_customer_reply(ticket, "the parcel QW7788 arrived broken")
    update_ticket(ticket, Actor.agent(desk.admin), subject="Refund for a double charge")
    Contact.update(name="Rina Santosa").where(Contact.id == ticket.contact_id).execute()
    # By hand, past the services: the triggers keep the words all the same.
    Message.update(body_text="a zebra crossing").where(Message.ticket == ticket.id).execute()
    assert {"qw7788", "refund", "santosa", "zebra", "crossing"} <= _kept()
    assert _missing() == []


def test_a_new_word_is_found_by_its_prefix_at_once(desk: Any, postgresql_only: None) -> None:
    from core.services.tickets import Identity, receive_message

    first = receive_message(channel="telegram", identity=Identity("telegram", "7"),
                            text="Hello there", external_id="m1")
    assert found(desk, "quokk") == set()
    receive_message(channel="telegram", identity=Identity("telegram", "7"),
                    text="my quokka ate the cable", external_id="m2", continue_open=True)
    assert found(desk, "quokk") == {first.ticket.id}
    revise_message("telegram", "m2", text="my wombat ate the cable")
    assert found(desk, "womb") == {first.ticket.id}
    # The old word stays kept (the table only grows) and finds nothing: no wrong answer.
    assert "quokka" in _kept() and found(desk, "quokk") == set()


def test_a_prefix_is_asked_of_the_index_as_its_words(desk: Any, postgresql_only: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = _open("sari@example.com", "Payout stuck", "pay the payment please", name="Sari")
    other = _open("budi@example.com", "Camera", "Stream freezes", name="Budi Santoso")
    expanded = search.pg_expansions(["pay", "santoso", "inv-12", "999", "zzq"])
    assert expanded["pay"] == ("pay", "payment", "payout")
    assert expanded["santoso"] == ("santoso",)
    assert expanded["zzq"] == ()  # starts no word: the search matches nothing
    assert "12" not in expanded and "999" not in expanded  # numbers stay prefixes
    query = search._index_query(["pay", "santoso", "inv-12"], expanded=expanded)
    assert query is not None
    assert query[1] == ["(('pay' | 'payment' | 'payout')) & (('santoso')) & ('inv' <-> '12':*)"]
    assert search._index_query(["pay", "zzq"], expanded=expanded) is None
    with Statements() as caught:
        assert found(desk, "sant budi") == {other.id}
    searched = [sql for sql in caught.sql if "FROM ticket_search WHERE" in sql]
    assert searched and all(":*" not in str(params) for sql, params in caught.caught
                            if "FROM ticket_search WHERE" in sql)
    assert found(desk, "payo sari") == {ticket.id}
    # A prefix that starts no word finds nothing without asking the index, even when the
    # page would walk (common from 0 matches).
    monkeypatch.setattr(search, "MIN_COMMON", 0)
    monkeypatch.setattr(search, "WALK_FACTOR", 0)
    with Statements() as caught:
        assert found(desk, "zzq") == set() and found(desk, "budi zzq") == set()
        assert not search.is_common("zzq")
    assert [sql for sql in caught.sql if "ticket_search" in sql] == []


def test_a_prefix_of_many_words_stays_a_prefix(desk: Any, postgresql_only: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _open("a@example.com", "Pay", "payment payout payee paypal", name="Ana")
    monkeypatch.setattr(search, "PG_EXPAND_MOST", 3)
    assert "pay" not in search.pg_expansions(["pay"])
    assert search.pg_expansions(["payp"]) == {"payp": ("paypal",)}


@pytest.mark.parametrize("words", ["pay", "santoso halim", "halim sant", "rina.halim@exa",
                                   "inv-44", "cafe", "zz", "stuck pay", "é"])
def test_the_words_find_what_the_prefix_found(desk: Any, postgresql_only: None,
                                              words: str) -> None:
    _open("rina.halim@example.com", "Payout stuck", "My withdrawal INV-4417803", name="Rina Halim")
    _open("b@example.com", "Café crème", "paid twice", name="Budi Santoso")
    _open("c@example.com", "Halim's cafe", "payment pending", name="Citra Santosa")
    _open("d@example.com", "Éclair", "stuck again, pay", name="Dewi")
    assert found(desk, words) == _by_prefix(words)


def test_the_migration_fills_the_words_and_goes_down(desk: Any, postgresql_only: None) -> None:
    _open("rina@example.com", "Payout stuck", "My withdrawal", name="Rina")
    WORDS.down(None, _database())
    assert _database().execute_sql("SELECT to_regclass('search_word')").fetchone() == (None,)
    _open("joko@example.com", "Camera", "Stream freezes", name="Joko")
    WORDS.up(None, _database())
    assert {"payout", "withdrawal", "camera", "joko"} <= _kept()
    assert _missing() == []
    assert found(desk, "strea") == {t.id for t in Ticket.select().where(Ticket.subject == "Camera")}
