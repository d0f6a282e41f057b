"""A search's judgement kept for the next search of the same words (``search.KEPT_MOST``):
SQLite's while its full-text index is unchanged, PostgreSQL's walks for a while. Every write
that changes what a search finds is found by the next one."""

from __future__ import annotations

from typing import Any

import pytest

from core import db as core_db
from core.models import Contact, Message, Ticket
from core.services import search
from core.services.tickets import add_customer_reply

from .conftest import PG_URL
from .spies import Statements
from .test_search import _open, found


def _asked_the_index(caught: Statements) -> bool:
    return any("MATCH" in sql or "@@" in sql for sql in caught.text)


def _found_asking(desk: Any, words: str) -> tuple[set[int], bool]:
    """The tickets found, and whether the index was asked to judge the search."""
    with Statements() as caught:
        tickets = found(desk, words)
    return tickets, _asked_the_index(caught) if core_db.is_sqlite() else any(
        "TABLESAMPLE" in sql or "EXPLAIN" in sql or "count(*)" in sql for sql in caught.text)


def test_sqlite_keeps_the_gathered_ids_while_the_index_is_unchanged(desk: Any) -> None:
    if not core_db.is_sqlite():
        pytest.skip("SQLite's full-text index (PostgreSQL keeps only walks)")
    first = _open("a@example.com", "Payment", "Reference INV-1234567 paid")
    _open("b@example.com", "Other", "Reference INV-9934567 paid")
    assert _found_asking(desk, "inv-12") == ({first.id}, True)
    assert _found_asking(desk, "inv-12") == ({first.id}, False)  # kept: the index unchanged
    assert _found_asking(desk, "inv-99") == (_found_asking(desk, "inv-99")[0], True)
    # A new ticket, a message added to an old one, an edit, a delete, a contact renamed: each
    # changes the index, and the next search judges again and finds what is there now.
    second = _open("c@example.com", "Late", "Reference INV-1299999")
    assert _found_asking(desk, "inv-12") == ({first.id, second.id}, True)
    old = _open("d@example.com", "Old", "nothing yet")
    found(desk, "inv-12")
    add_customer_reply(old, "it was INV-1200001 after all")
    assert found(desk, "inv-12") == {first.id, second.id, old.id}
    Message.update(body_text="it was INV-3300001").where(
        Message.ticket == old.id, Message.body_text.contains("INV-12")).execute()
    assert found(desk, "inv-12") == {first.id, second.id}
    Message.delete().where(Message.ticket == second.id).execute()
    assert found(desk, "inv-12") == {first.id}
    assert found(desk, "ramadhani") == set()
    Contact.update(name="Sari Ramadhani").where(Contact.id == old.contact_id).execute()
    assert found(desk, "ramadhani") == {old.id}


def test_a_search_in_a_transaction_finds_its_own_writes(desk: Any) -> None:
    first = _open("a@example.com", "Payment", "Reference INV-1234567 paid")
    assert found(desk, "inv-12") == {first.id}
    assert found(desk, "inv-12") == {first.id}
    with core_db.write_transaction():
        second = _open("b@example.com", "Late", "Reference INV-1299999")
        assert found(desk, "inv-12") == {first.id, second.id}
    assert found(desk, "inv-12") == {first.id, second.id}


def test_a_judgement_is_kept_per_database(make_app: Any, tmp_path: Any) -> None:
    """Two desks, the same words: each finds its own tickets (their indexes may have the
    same structure record)."""
    from .factories import build_desk

    if PG_URL:
        pytest.skip("two SQLite files (PostgreSQL keeps only walks, which any desk may use)")
    answers = []
    for name in ("one", "two"):
        app = make_app(instance_path=str(tmp_path / name),
                       database_url=f"sqlite:///{tmp_path / name}.db")
        with app.app_context(), core_db.connection():
            desk = build_desk()
            # The same writes, but the reference in the first ticket of one, the second of two.
            texts = ["Reference INV-1234", "Reference INV-9934"]
            made = [_open(f"{n}@example.com", "Payment", text)
                    for n, text in enumerate(texts if name == "one" else texts[::-1])]
            ticket = made[0] if name == "one" else made[1]
            answers.append((found(desk, "inv-12"), ticket.id, found(desk, "inv-12")))
        core_db.close_all(app.extensions["loket"].database)
    for tickets, ticket_id, again in answers:
        assert tickets == again == {ticket_id}


def _walked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every search with a match judged common (walked)."""
    monkeypatch.setattr(search, "MIN_COMMON", 1)
    monkeypatch.setattr(search, "WALK_FACTOR", 0)
    monkeypatch.setattr(search, "PG_SAMPLE_PAGES", 1)


def test_a_walk_is_kept_and_finds_what_is_there_now(desk: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _walked(monkeypatch)
    first = _open("a@example.com", "Payment", "Reference INV-1234567 paid")
    with Statements() as caught:
        assert found(desk, "inv-12") == {first.id}
    assert _asked_the_index(caught)
    with Statements() as caught:
        assert found(desk, "inv-12") == {first.id}
    # Kept on PostgreSQL (for ``PG_WALK_KEPT`` seconds), and on SQLite (its index unchanged):
    # the walk tests each ticket, the index is not asked.
    assert not _asked_the_index(caught) if core_db.is_sqlite() else not any(
        "TABLESAMPLE" in sql or sql.startswith("EXPLAIN") for sql in caught.text)
    second = _open("b@example.com", "Late", "Reference INV-1299999")
    assert found(desk, "inv-12") == {first.id, second.id}
    Ticket.update(subject="Nothing").where(Ticket.id == second.id).execute()
    Message.update(body_text="nothing").where(Message.ticket == second.id).execute()
    assert found(desk, "inv-12") == {first.id}


def test_a_kept_walk_ends(desk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if core_db.is_sqlite():
        pytest.skip("PostgreSQL keeps a walk for a while")
    _walked(monkeypatch)
    _open("a@example.com", "Payment", "Reference INV-1234567 paid")
    found(desk, "inv-12")
    monkeypatch.setattr(search, "PG_WALK_KEPT", 0.0)
    found(desk, "inv-12")  # judged again, kept for no time
    with Statements() as caught:
        found(desk, "inv-12")
    assert any(sql.startswith("EXPLAIN") for sql in caught.text)
