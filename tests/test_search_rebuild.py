"""``loket db rebuild-search``: the search documents (and PostgreSQL's words) made again from
the tickets, in batches, leaving right ones alone."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from core import db as core_db
from core.cli import main
from core.models import Ticket
from core.services import search_index
from core.services.tickets import add_customer_reply, reply

from .test_search import _open, found
from .test_search_document import _out_of_step


def _sql(statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    cursor = Ticket._meta.database.execute_sql(statement, params)
    return cursor.fetchall() if cursor.description else []


def _count(table: str) -> int:
    return int(_sql(f"SELECT count(*) FROM {table}")[0][0])


def _tickets(desk: Any) -> list[tuple[Ticket, str]]:
    """Tickets, each with a word only it holds (subject, message, reply, contact)."""
    made = []
    for n in range(7):
        ticket = _open(f"cust{n}@example.com", f"Payout question zq{n}x", f"My reference INV-88{n}41",
                       name=f"Rina Walrus{n}")
        add_customer_reply(ticket, f"the parcel PK{n}77 arrived broken")
        made.append((ticket, f"pk{n}77"))
    reply(Ticket.get_by_id(made[0][0].id), desk.agent, "We escalated to logistics zebrafish")
    return made


def _corrupt(made: list[tuple[Ticket, str]]) -> None:
    """One document deleted, one emptied of its words, one of a ticket that never was; on
    PostgreSQL a word of the documents gone from ``search_word``."""
    gone, wrong = made[1][0].id, made[2][0].id
    ghost = max(ticket.id for ticket, _word in made) + 50
    if core_db.is_sqlite():
        _sql("DELETE FROM ticket_search WHERE rowid = ?", (gone,))
        _sql("UPDATE ticket_search SET subject = 'nothing', name = NULL, email = NULL, "
             "body = 'nothing' WHERE rowid = ?", (wrong,))
        _sql("INSERT INTO ticket_search (rowid, number, subject, name, email, body) "
             "VALUES (?, ?, 'ghost', NULL, NULL, 'ghost')", (ghost, ghost))
    else:
        _sql("DELETE FROM ticket_search WHERE ticket_id = %s", (gone,))
        _sql("UPDATE ticket_search SET doc = to_tsvector('simple', 'nothing') "
             "WHERE ticket_id = %s", (wrong,))
        _sql("INSERT INTO ticket_search (ticket_id, doc) VALUES (%s, to_tsvector('simple', "
             "'ghost'))", (ghost,))
        _sql("DELETE FROM search_word WHERE word = 'zebrafish'")


def _rebuild(app: Any, monkeypatch: pytest.MonkeyPatch, db_url: str, *args: str) -> str:
    monkeypatch.setenv("LOKET_DATABASE_URL", db_url)
    monkeypatch.setenv("LOKET_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("LOKET_PLUGINS", "")  # as the test's app: none of their migrations
    result = CliRunner().invoke(main, ["db", "rebuild-search", *args], catch_exceptions=False)
    # The command binds the models to its own app's database; back to the test's.
    core_db.bind(app.extensions["loket"].database)
    assert result.exit_code == 0, result.output
    return result.output


def test_rebuild_makes_every_document_again(desk: Any, app: Any, db_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    made = _tickets(desk)
    assert _out_of_step() == []
    _corrupt(made)
    assert found(desk, "pk177") == set() and found(desk, "zq2x") == set()
    assert found(desk, "ghost") == set()  # no ticket to show, but a document to remove
    assert len(_out_of_step()) >= 3
    if not core_db.is_sqlite():
        assert found(desk, "zebra") == set()  # the prefix starts no word it knows
    output = _rebuild(app, monkeypatch, db_url, "--batch", "3")
    assert "7 ticket(s): 2 document(s) written, 1 of tickets that are gone removed." in output
    assert _out_of_step() == []
    assert _count("ticket_search") == _count("ticket") == 7
    for n, (ticket, word) in enumerate(made):
        assert found(desk, word) == {ticket.id}, word
        assert found(desk, f"walrus{n}") == {ticket.id}
        assert found(desk, f"inv-88{n}") == {ticket.id}
    assert found(desk, "zebra") == {made[0][0].id}
    assert found(desk, "payout question") == {ticket.id for ticket, _word in made}
    # Run again: nothing to write.
    again = _rebuild(app, monkeypatch, db_url)
    assert "7 ticket(s): 0 document(s) written, 0 of tickets that are gone removed." in again


def test_rebuild_in_batches_leaves_right_documents_alone(desk: Any) -> None:
    made = _tickets(desk)
    if core_db.is_sqlite():
        _sql("UPDATE ticket_search SET body = 'nothing' WHERE rowid = ?", (made[3][0].id,))
    else:
        _sql("UPDATE ticket_search SET doc = to_tsvector('simple', 'nothing') "
             "WHERE ticket_id = %s", (made[3][0].id,))
    covered: list[int] = []
    done = search_index.rebuild(batch=2, progress=covered.append)
    assert (done.tickets, done.written, done.removed) == (7, 1, 0)
    low, high = search_index.span()
    assert sum(covered) == high - low + 1 and max(covered) <= 2
    assert found(desk, made[3][1]) == {made[3][0].id}
    assert _out_of_step() == []


def test_rebuild_of_an_empty_desk(ctx: Any) -> None:
    assert search_index.span() is None
    done = search_index.rebuild()
    assert (done.tickets, done.written, done.removed) == (0, 0, 0)


def test_writes_between_batches_are_kept(desk: Any) -> None:
    """The desk keeps writing while the command runs: a message added to a ticket whose batch
    is done, and to one whose batch is to come, are both in the documents at the end."""
    made = _tickets(desk)
    first, last = made[0][0], made[-1][0]
    written: list[str] = []

    def progress(_covered: int) -> None:
        if not written:
            add_customer_reply(Ticket.get_by_id(first.id), "a late word qv1188")
            add_customer_reply(Ticket.get_by_id(last.id), "a late word qv2299")
            written.append("done")

    search_index.rebuild(batch=2, progress=progress)
    assert found(desk, "qv1188") == {first.id} and found(desk, "qv2299") == {last.id}
    assert _out_of_step() == []
