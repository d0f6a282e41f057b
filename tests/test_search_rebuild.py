"""``loket db rebuild-search``: the search documents (and PostgreSQL's words) made again from
the tickets, in batches, leaving right ones alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from core import db as core_db
from core.cli import main
from core.models import Message, Ticket
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


def _rebuild(app: Any, monkeypatch: pytest.MonkeyPatch, db_url: str, *args: str,
             exit_code: int = 0) -> str:
    monkeypatch.setenv("LOKET_DATABASE_URL", db_url)
    monkeypatch.setenv("LOKET_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("LOKET_PLUGINS", "")  # as the test's app: none of their migrations
    result = CliRunner().invoke(main, ["db", "rebuild-search", *args], catch_exceptions=False)
    # The command binds the models to its own app's database; back to the test's.
    core_db.bind(app.extensions["loket"].database)
    assert result.exit_code == exit_code, result.output
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
        search_index.write_all_queued()  # the documents written (0032), then one spoiled
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


@pytest.fixture
def postgresql_only() -> None:
    if core_db.is_sqlite():
        pytest.skip("PostgreSQL's row locks and its words table (SQLite has one writer)")


def _kept_words() -> set[str]:
    return {word for (word,) in _sql("SELECT word FROM search_word")}


def _backend() -> int:
    """The process id of the test's own connection (the one ``rebuild`` runs on)."""
    return int(_sql("SELECT pg_backend_pid()")[0][0])


def _waits_for_a_lock(watch: Any, pid: int, seconds: float = 10.0) -> bool:
    """Whether backend ``pid`` comes to wait for a lock within ``seconds``."""
    deadline = time.monotonic() + seconds
    with watch.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s "
                           "AND wait_event_type = 'Lock'", (pid,))
            if cursor.fetchone():
                return True
            time.sleep(0.02)
    return False


class _Other:
    """Another connection's transaction, run in a thread: ``first`` (SQL and values) at
    once, then, once the test's connection waits for a lock, ``then``, and a commit."""

    def __init__(self, db_url: str, first: tuple[str, tuple[Any, ...]],
                 then: tuple[str, tuple[Any, ...]] | None = None) -> None:
        import psycopg2

        self.connection = psycopg2.connect(db_url)
        self.watch = psycopg2.connect(db_url)
        self.watch.autocommit = True
        self.first, self.then = first, then
        self.started = threading.Event()
        self.saw_the_wait = False
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(_backend(),), daemon=True)

    def _run(self, pid: int) -> None:
        try:
            with self.connection.cursor() as cursor:
                # The other side of a deadlock is the one that checks for it, and is undone.
                cursor.execute("SET deadlock_timeout = '30s'")
                cursor.execute(*self.first)
                self.started.set()
                self.saw_the_wait = _waits_for_a_lock(self.watch, pid)
                if self.then is not None:
                    cursor.execute(*self.then)
            self.connection.commit()
        except BaseException as error:  # reported by ``join``
            self.errors.append(error)
            self.connection.rollback()
        finally:
            self.started.set()

    def start(self) -> None:
        self.thread.start()
        assert self.started.wait(10)

    def join(self) -> None:
        self.thread.join(30)
        self.connection.close()
        self.watch.close()
        assert not self.thread.is_alive() and self.errors == []


def _rename(contact_id: int, name: str) -> tuple[str, tuple[Any, ...]]:
    return "UPDATE contact SET name = %s WHERE id = %s", (name, contact_id)


def test_a_batch_undone_by_a_deadlock_with_a_contact_rename_is_run_again(
        desk: Any, db_url: str, postgresql_only: None) -> None:
    """For real, on two connections: another transaction renames a contact, which locks its
    ticket's document; the batch locks its documents in order up to that one and waits; the
    other transaction then renames the contact of an earlier ticket of the batch: a deadlock.
    PostgreSQL undoes the batch; it is run again once the renames commit, and every document
    is right."""
    made = _tickets(desk)
    early, late = made[1][0], made[5][0]
    other = _Other(db_url, _rename(late.contact_id, "Rina Kestrel"),
                   _rename(early.contact_id, "Rina Osprey"))
    other.start()
    done = search_index.rebuild()
    other.join()
    assert other.saw_the_wait
    assert done.retried == 1 and done.tickets == 7
    assert found(desk, "kestrel") == {late.id} and found(desk, "osprey") == {early.id}
    assert _out_of_step() == []


def test_a_batch_undone_every_time_stops_the_command_with_what_to_do(
        desk: Any, app: Any, db_url: str, monkeypatch: pytest.MonkeyPatch,
        postgresql_only: None) -> None:
    """Bounded: undone ``ATTEMPTS`` times, the command stops with one line that says which
    batch, why, and what to do; nothing half-written stays."""
    made = _tickets(desk)
    monkeypatch.setattr(search_index, "ATTEMPTS", 1)
    early, late = made[1][0], made[5][0]
    other = _Other(db_url, _rename(late.contact_id, "Rina Kestrel"),
                   _rename(early.contact_id, "Rina Osprey"))
    other.start()
    with pytest.raises(search_index.Stopped) as stopped:
        search_index.rebuild()
    other.join()
    low, high = search_index.span()
    assert str(stopped.value) == (
        f"the search documents of tickets {low}-{high}: undone by a deadlock with another "
        "transaction 1 times in a row; what came before is kept, run the command again")
    assert found(desk, "kestrel") == {late.id}  # the renames' own triggers
    # The command says so on one line and fails.
    monkeypatch.setattr(search_index, "rebuild", _stopping(stopped.value))
    output = _rebuild(app, monkeypatch, db_url, exit_code=1)
    assert f"loket: {stopped.value}" in output


def _stopping(stopped: search_index.Stopped) -> Callable[..., search_index.Rebuilt]:
    def rebuild(*_args: Any, **_kwargs: Any) -> search_index.Rebuilt:
        raise stopped
    return rebuild


def _edited_out(ticket: Ticket, word: str) -> Message:
    """A message of ``ticket`` that held ``word`` and no longer does (its document follows;
    0020's words keep it)."""
    message = add_customer_reply(ticket, f"spotted {word} near the depot")
    Message.update(body_text="spotted nothing near the depot").where(
        Message.id == message.id).execute()
    return message


def test_rebuild_removes_the_words_no_document_holds(
        desk: Any, app: Any, db_url: str, monkeypatch: pytest.MonkeyPatch,
        postgresql_only: None) -> None:
    made = _tickets(desk)
    _edited_out(made[2][0], "wombatqq")
    assert "wombatqq" in _kept_words() and found(desk, "wombat") == set()
    before = _kept_words()
    output = _rebuild(app, monkeypatch, db_url, "--batch", "3")
    assert before - _kept_words() == {"wombatqq"}
    assert "1 word(s) no document holds any more removed." in output
    assert "0 word(s)" in _rebuild(app, monkeypatch, db_url)


def test_a_word_a_concurrent_write_brings_back_is_not_removed(
        desk: Any, db_url: str, postgresql_only: None) -> None:
    """For real, on two connections: after the batches read the documents, another
    transaction writes a message that brings back a word no document held (its trigger finds
    the word kept and adds nothing) and has not committed when the words are checked. The
    check waits for it (without the lock it would remove the word, and a prefix of it would
    then find nothing), and the word stays; a word nobody brought back goes."""
    made = _tickets(desk)
    ticket = made[4][0]
    message = _edited_out(ticket, "quokkazz")
    _edited_out(made[3][0], "wombatqq")
    others: list[_Other] = []

    def progress(_covered: int) -> None:
        if not others:  # after the (only) batch: the other transaction writes, unfinished
            others.append(_Other(db_url, ("UPDATE message SET body_text = %s WHERE id = %s",
                                          ("the quokkazz is back", message.id))))
            others[0].start()

    done = search_index.rebuild(progress=progress)
    others[0].join()
    assert others[0].saw_the_wait  # the check waited for the writer
    assert "quokkazz" in _kept_words() and "wombatqq" not in _kept_words()
    assert done.pruned == 1
    assert found(desk, "quokk") == {ticket.id}
    assert _out_of_step() == []
