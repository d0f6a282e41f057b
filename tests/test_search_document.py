"""Each ticket's search document (migration 0011) follows every write, whichever path makes it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import import_module
from typing import Any

import pytest

from core import db as core_db
from core.models import AuthorKind, Contact, Message, Ticket, TicketEvent
from core.services import search_index
from core.services.tickets import (
    Actor,
    Identity,
    add_customer_reply,
    merge_contacts,
    receive_message,
    revise_message,
    update_ticket,
)

from .test_search import _open, found

# The migration that left the desk's notifications out of the documents.
WITHOUT_NOTIFICATIONS = import_module("core.migrations.0017_search_without_notifications")
# The migration that wrote a new ticket's document once, with its first message (SQLite).
ONCE = import_module("core.migrations.0019_search_document_once")
# The migration that queues the documents and writes them many at a time (SQLite).
BATCHES = import_module("core.migrations.0032_search_documents_in_batches")
# The same for PostgreSQL: the ticket's document waits for the commit.
PG_ONCE = import_module("core.migrations.0024_pg_search_document_once")
SEARCH = PG_ONCE.SEARCH


def _database() -> Any:
    return Ticket._meta.database


def _queued() -> set[int]:
    """SQLite: the tickets whose documents wait to be written (0032; none while it is down,
    none on PostgreSQL)."""
    if not core_db.is_sqlite() or not _database().execute_sql("SELECT 1 FROM sqlite_master WHERE name = ?",
                                   (BATCHES.QUEUE,)).fetchone():
        return set()
    return {row[0] for row in _database().execute_sql(
        f"SELECT DISTINCT ticket_id FROM {BATCHES.QUEUE}").fetchall()}


def _searchable_while_down() -> None:
    """SQLite, with 0032 down: an empty queue (no triggers fill it), so that the search of
    this version reads the documents alone as the triggers of the migrations below keep them
    (0032's ``up`` keeps the table)."""
    if core_db.is_sqlite():
        for statement in BATCHES.SEARCH.QUEUE_TABLE:
            _database().execute_sql(statement)


def _out_of_step(notifications: bool = False) -> list[Any]:
    """The tickets whose stored document differs from one made again from their rows (every
    message but the desk's own notifications, or with them as migration 0011 kept them), and
    documents of tickets that are gone. On SQLite the queued documents are written first
    (0032): a write its triggers did not queue stays out of step."""
    if core_db.is_sqlite():
        if _queued():
            search_index.write_all_queued()
            assert _queued() == set()
        kept = "" if notifications else " AND notification = ''"
        rebuilt = ("SELECT t.id, t.id, t.subject, c.name, c.email, "
                   "(SELECT coalesce(group_concat(body_text, ' '), '') FROM (SELECT body_text "
                   f"FROM message WHERE ticket_id = t.id{kept} ORDER BY id)) "
                   "FROM ticket AS t LEFT JOIN contact AS c ON c.id = t.contact_id")
        stored = "SELECT rowid, number, subject, name, email, body FROM ticket_search"
        return list(_database().execute_sql(
            f"SELECT * FROM ({rebuilt} EXCEPT {stored}) "
            f"UNION ALL SELECT * FROM ({stored} EXCEPT {rebuilt})").fetchall())
    return list(_database().execute_sql(
        "SELECT t.id, s.ticket_id FROM ticket_search AS s FULL JOIN ticket AS t "
        "ON t.id = s.ticket_id WHERE s.doc IS DISTINCT FROM loket_ticket_doc(t.id)").fetchall())


def test_a_new_ticket_and_its_messages_are_found_and_in_step(desk: Any) -> None:
    ticket = _open("rina@example.com", "Payout stuck", "My withdrawal INV-4417803", name="Rina")
    add_customer_reply(ticket, "the parcel ZX991 arrived broken")
    assert found(desk, "zx991 payout") == {ticket.id}
    assert found(desk, "inv-44 rina") == {ticket.id}
    assert _out_of_step() == []


def test_a_message_edited_moved_or_deleted_rebuilds_the_document(desk: Any) -> None:
    first = receive_message(channel="telegram", identity=Identity("telegram", "5"),
                            text="Hello, a question", external_id="m1")
    ticket_id = first.ticket.id
    receive_message(channel="telegram", identity=Identity("telegram", "5"),
                    text="my parcel ZX1155 is lost", external_id="m2", continue_open=True)
    revise_message("telegram", "m2", text="my parcel QW7788 is lost")
    assert found(desk, "qw7788") == {ticket_id} and found(desk, "zx1155") == set()
    assert _out_of_step() == []
    other = _open("joko@example.com", "Camera", "Stream freezes")
    moved = Message.get((Message.ticket == ticket_id) & Message.body_text.contains("QW7788"))
    Message.update(ticket=other.id).where(Message.id == moved.id).execute()
    assert found(desk, "qw7788") == {other.id}
    assert _out_of_step() == []
    Message.delete().where(Message.id == moved.id).execute()
    assert found(desk, "qw7788") == set() and found(desk, "stream") == {other.id}
    assert _out_of_step() == []


def test_a_changed_subject_or_contact_rebuilds_the_document(desk: Any) -> None:
    ticket = _open("sari@example.com", "Something odd", "Hello", name="Sari Tan")
    other = _open("budi@example.com", "Other", "Hello", name="Budi Lim")
    update_ticket(ticket, Actor.agent(desk.admin), subject="Refund for a double charge")
    assert found(desk, "refund") == {ticket.id} and found(desk, "odd") == set()
    Contact.update(name="Sari Wijaya").where(Contact.id == ticket.contact_id).execute()
    assert found(desk, "wijaya") == {ticket.id} and found(desk, "tan") == set()
    assert _out_of_step() == []
    # A contact merged: the duplicate's tickets move to the one kept (contact_id changes).
    merge_contacts(Contact.get_by_id(ticket.contact_id), Contact.get_by_id(other.contact_id))
    assert found(desk, "wijaya") == {ticket.id, other.id}
    assert found(desk, "lim") == set()
    Ticket.update(contact=other.contact_id).where(Ticket.id == other.id).execute()
    assert found(desk, "lim") == {other.id}
    assert _out_of_step() == []


def test_a_deleted_ticket_leaves_no_document(desk: Any) -> None:
    gone = _open("rina@example.com", "Payout stuck", "withdrawal", name="Rina Halim")
    kept = _open("budi@example.com", "Refund", "twice", name="Budi Santoso")
    TicketEvent.delete().where(TicketEvent.ticket == gone.id).execute()
    Message.delete().where(Message.ticket == gone.id).execute()
    gone.delete_instance()
    assert found(desk, "payout") == set() and found(desk, "santoso") == {kept.id}
    assert _out_of_step() == []


def test_a_phrase_does_not_run_from_one_field_into_the_next(desk: Any) -> None:
    """The contact's name, then address: "halim-rina" is not a phrase of the ticket (its
    runs are in two fields), while each word alone is."""
    ticket = _open("rina.x@example.com", "Payout", "Hello", name="Rina Halim")
    assert found(desk, "halim rina") == {ticket.id}
    assert found(desk, "halim-rina") == set()
    assert found(desk, "payout-rina") == set()  # the subject, then the name


def test_writes_that_change_nothing_searched_leave_the_document_alone(desk: Any) -> None:
    """A ticket saved for its status, or a message for its delivery, writes every column:
    the triggers look at what changed, so the document is not written again."""
    ticket = _open("c@example.com", "Question", "Hello")
    if core_db.is_sqlite():
        before = _database().execute_sql("SELECT count(*) FROM ticket_search_data").fetchone()
    saved = Ticket.get_by_id(ticket.id)
    saved.priority = "urgent"
    saved.save()
    message = Message.get(Message.ticket == ticket.id)
    message.delivery_state = "sent"
    message.save()
    if core_db.is_sqlite():
        after = _database().execute_sql("SELECT count(*) FROM ticket_search_data").fetchone()
        assert after == before
    assert _out_of_step() == []


def test_a_message_imported_late_with_an_older_number_keeps_the_messages_in_order(
        desk: Any) -> None:
    first = _open("a@example.com", "First", "gone soon")
    second = _open("b@example.com", "Second", "later words")
    freed = Message.get(Message.ticket == first.id).id
    Message.delete().where(Message.id == freed).execute()
    row = Message.select().where(Message.ticket == second.id).dicts().get()
    row.update(id=freed, body_text="earlier words", external_id=None, delivery_key=None)
    Message.insert(row).execute()
    assert found(desk, "earlier-words") == {second.id}
    assert _out_of_step() == []  # rebuilt, "earlier words" first


def _notify(ticket: Ticket, text: str) -> Message:
    return Message.create(ticket=ticket.id, author_kind=AuthorKind.SYSTEM, body_text=text,
                          notification="ticket_received", channel="email")


def test_the_desks_own_notifications_are_not_searched(desk: Any) -> None:
    """An acknowledgement or a reply's notification is the desk's template (or repeats a
    reply already in the document): it is not in the document, whatever happens to it."""
    ticket = _open("rina@example.com", "Payout stuck", "My withdrawal", name="Rina")
    if core_db.is_sqlite():
        before = _database().execute_sql("SELECT count(*) FROM ticket_search_data").fetchone()
    note = _notify(ticket, "We received your request QX5521, thank you")
    if core_db.is_sqlite():  # nothing written for it
        assert _database().execute_sql(
            "SELECT count(*) FROM ticket_search_data").fetchone() == before
    assert found(desk, "qx5521") == set() and found(desk, "withdrawal") == {ticket.id}
    assert _out_of_step() == []
    Message.update(body_text="We received your request QX7777").where(
        Message.id == note.id).execute()
    add_customer_reply(ticket, "the parcel ZX991 arrived broken")
    assert found(desk, "qx7777") == set() and found(desk, "zx991") == {ticket.id}
    assert _out_of_step() == []
    # A message that stops being a notification is searched; one that becomes one is not.
    Message.update(notification="").where(Message.id == note.id).execute()
    assert found(desk, "qx7777") == {ticket.id}
    assert _out_of_step() == []
    Message.update(notification="reply").where(Message.id == note.id).execute()
    assert found(desk, "qx7777") == set()
    Message.delete().where(Message.id == note.id).execute()
    assert found(desk, "zx991 withdrawal") == {ticket.id}
    assert _out_of_step() == []


def test_the_migration_rebuilds_documents_that_held_notifications(desk: Any) -> None:
    """0017 on a desk whose documents hold notifications (0011's) leaves them out; its
    ``down`` puts them back; the documents are in step with the rows either way."""
    ticket = _open("budi@example.com", "Refund", "charged twice", name="Budi")
    other = _open("sari@example.com", "Camera", "stream freezes", name="Sari")
    _notify(ticket, "We received your request QX5521")
    database = _database()
    BATCHES.down(None, database)
    _searchable_while_down()
    PG_ONCE.down(None, database)
    ONCE.down(None, database)
    WITHOUT_NOTIFICATIONS.down(None, database)
    try:
        assert found(desk, "qx5521") == {ticket.id}
        assert _out_of_step(notifications=True) == []
        _notify(other, "We received your request QX5521 too")
        assert found(desk, "qx5521") == {ticket.id, other.id}
    finally:
        WITHOUT_NOTIFICATIONS.up(None, database)
        ONCE.up(None, database)
        BATCHES.up(None, database)
        PG_ONCE.up(None, database)
    assert found(desk, "qx5521") == set()
    assert found(desk, "charged twice") == {ticket.id} and found(desk, "freezes") == {other.id}
    assert _out_of_step() == []


def _segments_written() -> int:
    """Rows of FTS5's own table of index data: each flush of new words writes one or more."""
    return _database().execute_sql("SELECT count(*) FROM ticket_search_data").fetchone()[0]


@pytest.fixture
def sqlite_only() -> None:
    if not core_db.is_sqlite():
        pytest.skip("SQLite's queue of documents (migration 0032); PostgreSQL writes a new "
                    "ticket's document at its commit (0024)")


def test_writes_queue_documents_and_a_batch_writes_them_in_one_flush(
        desk: Any, sqlite_only: None) -> None:
    """0032: a submission, a ticket written by hand and its message each queue their ticket
    and write no document; a search finds them from their rows meanwhile. A batch then writes
    every queued document with one flush of FTS5 (one segment), takes them off the queue,
    and the same searches find them from the index."""
    _open("warm@example.com", "Warm", "up")
    search_index.write_all_queued()
    before = _segments_written()
    contact = Contact.create(name="Joko", email="joko@example.com")
    opened = [_open(f"rina{n}@example.com", f"Payout QX{n}10", f"withdrawal ZK{n}20",
                    name="Rina") for n in range(3)]
    by_hand = Ticket.create(subject="Camera QY030", contact=contact)
    Message.create(ticket=by_hand, author_kind=AuthorKind.CONTACT, body_text="ZL040",
                   channel="web")
    assert _segments_written() == before  # nothing written yet
    assert _queued() == {t.id for t in [*opened, by_hand]}
    searches = {**{f"qx{n}10 zk{n}20 rina": opened[n].id for n in range(3)},
                "qy030 zl040 joko": by_hand.id}
    for words, number in searches.items():
        assert found(desk, words) == {number}, words
    assert search_index.write_queued() == 4
    assert _queued() == set()
    assert _segments_written() - before <= 2  # one flush (a segment, and its index's row)
    for words, number in searches.items():
        assert found(desk, words) == {number}, words
    assert _out_of_step() == []


def test_a_queued_tickets_old_document_is_not_read(desk: Any, sqlite_only: None) -> None:
    """A ticket whose document is written, then changed (subject, message, contact), is
    queued: its old document no longer finds it, its rows do, before the batch and after."""
    ticket = _open("s.one@example.com", "Refund QX8801", "charged twice ZK8802", name="Sari")
    search_index.write_all_queued()
    assert found(desk, "qx8801 zk8802 sari") == {ticket.id}
    update_ticket(ticket, Actor.agent(desk.admin), subject="Camera QY8803")
    contact = Contact.get_by_id(ticket.contact_id)
    contact.name = "Dewi"
    contact.save()
    add_customer_reply(ticket, "lens ZL8804")
    assert _queued() == {ticket.id}
    for _round in ("queued", "written"):
        assert found(desk, "qx8801") == set() and found(desk, "sari") == set()
        assert found(desk, "qy8803 zk8802 zl8804 dewi") == {ticket.id}
        search_index.write_all_queued()
    assert _out_of_step() == []


def test_a_batch_is_written_after_a_commit_once_enough_wait(desk: Any,
                                                             sqlite_only: None) -> None:
    """The commit of a write that leaves ``QUEUE_BATCH`` tickets queued writes a batch of
    them; fewer wait for the next such commit (or the job of every minute)."""
    search_index.write_all_queued()
    opened = [_open(f"batch{n}@example.com", f"Batch QX{n}", "text")
              for n in range(search_index.QUEUE_BATCH - 1)]
    assert len(_queued()) == search_index.QUEUE_BATCH - 1
    last = _open("batchlast@example.com", "Batch last", "text")
    assert _queued() == set()  # the thirty-second's commit wrote all of them
    assert found(desk, "batch") == {t.id for t in [*opened, last]}
    assert _out_of_step() == []


def test_the_job_of_every_minute_writes_what_is_queued(app: Any, desk: Any,
                                                       sqlite_only: None) -> None:
    """A quiet desk's last few queued documents are written by the periodic job, in
    batches, within a minute; on PostgreSQL it has nothing to do."""
    opened = [_open(f"quiet{n}@example.com", f"Quiet QX{n}", "text")
              for n in range(search_index.QUEUE_BATCH + 3)]  # one batch went at the 32nd
    assert _queued() == {t.id for t in opened[-3:]}
    assert app.extensions["loket"].jobs.tasks["core.write_search_documents"].call_local() == 3
    assert _queued() == set() and all(_has_document(t.id) for t in opened)
    assert found(desk, "quiet") == {t.id for t in opened}


def test_a_failed_batch_leaves_the_queue_as_it_was(desk: Any, sqlite_only: None) -> None:
    """A batch is one transaction: one that fails writes no document and unqueues nothing;
    the next one writes them."""
    ticket = _open("fail@example.com", "Refund QX7701", "text")
    real = BATCHES.DOCUMENT.write_queued

    def fails(db: Any, first: int, last: int) -> int:
        real(db, first, last)
        raise RuntimeError("the disk is full")

    BATCHES.DOCUMENT.write_queued = fails
    try:
        with pytest.raises(RuntimeError):
            search_index.write_queued()
    finally:
        BATCHES.DOCUMENT.write_queued = real
    assert _queued() == {ticket.id} and not _has_document(ticket.id)
    assert found(desk, "qx7701") == {ticket.id}
    assert search_index.write_queued() == 1 and _has_document(ticket.id)
    assert _out_of_step() == []


def test_the_migration_that_queues_documents_goes_down_and_up(desk: Any) -> None:
    """0032 down writes every queued document and puts 0019's triggers back (documents
    written at once); up queues again. 0019 and 0024 go down and up under it too."""
    ticket = _open("budi@example.com", "Refund QX9901", "charged twice", name="Budi")
    database = _database()
    BATCHES.down(None, database)
    if core_db.is_sqlite():
        assert _has_document(ticket.id)
    _searchable_while_down()
    PG_ONCE.down(None, database)
    ONCE.down(None, database)
    try:
        contact = Contact.create(name="Dewi", email="dewi@example.com")
        other = Ticket.create(subject="Camera QX9902", contact=contact)
        Message.create(ticket=other, author_kind=AuthorKind.CONTACT, body_text="ZK9903",
                       channel="web")
        if core_db.is_sqlite():
            assert _has_document(other.id)  # written by the trigger, at once
        assert found(desk, "qx9902 zk9903") == {other.id}
        assert _out_of_step() == []
    finally:
        ONCE.up(None, database)
        PG_ONCE.up(None, database)
        BATCHES.up(None, database)
    third = _open("eka@example.com", "Payout QX9904", "withdrawal ZK9905", name="Eka")
    if core_db.is_sqlite():
        assert _queued() == {third.id}
    assert found(desk, "qx9901 charged") == {ticket.id}
    assert found(desk, "qx9904 zk9905 eka") == {third.id}
    assert _out_of_step() == []


# -- PostgreSQL: a new ticket's document waits for the commit (0024) -----------------------


@pytest.fixture
def postgresql_only() -> None:
    if core_db.is_sqlite():
        pytest.skip("PostgreSQL's deferred trigger (migration 0024); SQLite queues a new "
                    "ticket for its document (0032)")


def _document_rows() -> tuple[int, ...]:
    """PostgreSQL: the rows of ``ticket_search`` this connection inserted, updated and deleted
    since it last reported its statistics (between transactions, at most once a second): a
    difference taken inside one transaction counts that transaction's."""
    (counts,) = _database().execute_sql(
        "SELECT ARRAY[pg_stat_get_xact_tuples_inserted(c), pg_stat_get_xact_tuples_updated(c), "
        "pg_stat_get_xact_tuples_deleted(c)] FROM CAST('ticket_search'::regclass AS oid) AS c"
    ).fetchone()
    return tuple(counts)


@contextlib.contextmanager
def _counted() -> Iterator[list[int]]:
    """A write transaction; on PostgreSQL the list it gives gets the rows of ``ticket_search``
    the transaction inserted, updated and deleted, once the documents waiting for the commit
    are written (``SET CONSTRAINTS ALL IMMEDIATE``, just before the commit)."""
    written: list[int] = []
    with core_db.write_transaction():
        before = () if core_db.is_sqlite() else _document_rows()
        yield written
        if before:
            _database().execute_sql("SET CONSTRAINTS ALL IMMEDIATE")
            written.extend(now - then for now, then in zip(_document_rows(), before, strict=True))


def _has_document(ticket_id: int) -> bool:
    key = "rowid" if core_db.is_sqlite() else "ticket_id"
    return _database().execute_sql(
        f"SELECT count(*) FROM ticket_search WHERE {key} = {int(ticket_id)}").fetchone() == (1,)


def test_a_new_ticket_and_its_first_message_write_one_row_of_the_document(
        desk: Any, postgresql_only: None) -> None:
    """0024: a submission (a ticket and its first message) inserts its document once and
    never updates it; a messenger's first message, and a ticket, its message and an
    acknowledgement written by hand, too. The words of each document are kept (0020)."""
    _open("warm@example.com", "Warm", "up")
    with _counted() as written:
        ticket = _open("rina@example.com", "Payout QX4410", "withdrawal ZK4420", name="Rina")
    assert written == [1, 0, 0]
    with _counted() as written:
        chat = receive_message(channel="telegram", identity=Identity("telegram", "77"),
                               text="my parcel ZX4430 is lost", external_id="m1").ticket
    assert written == [1, 0, 0]
    contact = Contact.create(name="Joko", email="joko@example.com")
    with _counted() as written:
        by_hand = Ticket.create(subject="Camera QY4440", contact=contact)
        Message.create(ticket=by_hand, author_kind=AuthorKind.CONTACT, body_text="ZL4450",
                       channel="web")
        _notify(by_hand, "We received your request QX4460")
    assert written == [1, 0, 0]
    assert found(desk, "qx4410 zk4420 rina") == {ticket.id}
    assert found(desk, "zx4430") == {chat.id}
    assert found(desk, "qy4440 zl4450 joko") == {by_hand.id}
    # A later message appends: one update.
    with _counted() as written:
        add_customer_reply(ticket, "still waiting ZK4470")
    assert written == [0, 1, 0]
    assert found(desk, "zk4470 qx4410") == {ticket.id}
    words = {word for (word,) in _database().execute_sql("SELECT word FROM search_word")}
    assert {"payout", "withdrawal", "rina", "parcel", "camera", "joko", "zk4470"} <= words
    assert _out_of_step() == []


def test_a_ticket_without_a_message_gets_its_document_by_the_commit(desk: Any) -> None:
    """A ticket inserted without a message (by hand, a bulk load) is found once its
    transaction commits; on PostgreSQL (0024) the document is written at the commit."""
    contact = Contact.create(name="Sari", email="sari@example.com")
    with core_db.write_transaction():
        ticket = Ticket.create(subject="Refund QX5510", contact=contact)
        assert not _has_document(ticket.id)
    # SQLite: queued (0032), found from its rows; PostgreSQL: written at the commit.
    assert _has_document(ticket.id) != (ticket.id in _queued())
    assert found(desk, "qx5510 sari") == {ticket.id}
    Message.create(ticket=ticket, author_kind=AuthorKind.CONTACT, body_text="charged ZK5520",
                   channel="web")
    assert found(desk, "qx5510 zk5520") == {ticket.id}
    assert _out_of_step() == []


def test_several_tickets_in_one_transaction_each_get_their_document(desk: Any) -> None:
    contact = Contact.create(name="Dewi", email="dewi@example.com")
    with _counted() as written:
        opened = [_open(f"c{n}@example.com", f"Payout QX56{n}0", f"withdrawal ZK56{n}1",
                        name=f"Rina{n}") for n in range(3)]
        bare = [Ticket.create(subject=f"Camera QY56{n}2", contact=contact) for n in range(3)]
        Message.create(ticket=bare[0], author_kind=AuthorKind.CONTACT, body_text="ZL5603",
                       channel="web")
    assert written == ([] if core_db.is_sqlite() else [6, 0, 0])
    for n, ticket in enumerate(opened):
        assert found(desk, f"qx56{n}0 zk56{n}1 rina{n}") == {ticket.id}
    for n, ticket in enumerate(bare):
        assert found(desk, f"qy56{n}2 dewi") == {ticket.id}
    assert found(desk, "zl5603") == {bare[0].id}
    assert _out_of_step() == []


def test_a_ticket_changed_before_the_commit_has_the_document_of_its_last_rows(
        desk: Any) -> None:
    """Subject, contact or number changed in the transaction that inserted the ticket, with
    and without its first message: the document is the ticket's as committed."""
    first = Contact.create(name="Budi", email="budi@example.com")
    second = Contact.create(name="Eka", email="eka@example.com")
    with core_db.write_transaction():
        bare = Ticket.create(subject="Old QX5701", contact=first)
        Ticket.update(subject="New QX5702", contact=second).where(
            Ticket.id == bare.id).execute()
        opened = _open("rina@example.com", "Old QX5703", "withdrawal ZK5704", name="Rina")
        update_ticket(opened, Actor.agent(desk.admin), subject="New QX5705")
        moved = Ticket.create(subject="Moved QX5706", contact=second)
        Ticket.update(id=moved.id + 1000).where(Ticket.id == moved.id).execute()
    assert found(desk, "qx5702 eka") == {bare.id}
    assert found(desk, "qx5701") == set() and found(desk, "budi") == set()
    assert found(desk, "qx5705 zk5704 rina") == {opened.id}
    assert found(desk, "qx5703") == set()
    assert found(desk, "qx5706") == {moved.id + 1000}
    assert not _has_document(moved.id)
    assert _out_of_step() == []


def test_a_ticket_deleted_before_the_commit_leaves_no_document(desk: Any) -> None:
    contact = Contact.create(name="Joko", email="joko@example.com")
    with core_db.write_transaction():
        bare = Ticket.create(subject="Gone QX5801", contact=contact)
        bare.delete_instance()
        opened = _open("rina@example.com", "Gone QX5802", "withdrawal ZK5803", name="Rina")
        TicketEvent.delete().where(TicketEvent.ticket == opened.id).execute()
        Message.delete().where(Message.ticket == opened.id).execute()
        Ticket.delete().where(Ticket.id == opened.id).execute()
        kept = Ticket.create(subject="Kept QX5804", contact=contact)
    # (SQLite may give ``kept`` a deleted one's number: the documents are compared whole.)
    assert found(desk, "gone") == set() and found(desk, "qx5804") == {kept.id}
    assert _out_of_step() == []


def test_set_constraints_immediate_writes_a_new_tickets_document_at_once(
        desk: Any, postgresql_only: None) -> None:
    """The deferred trigger is a constraint trigger: ``SET CONSTRAINTS ... IMMEDIATE`` has a
    ticket's document written as the ticket is (as before 0024); its message then appends."""
    contact = Contact.create(name="Sari", email="sari@example.com")
    with _counted() as written:
        _database().execute_sql(f"SET CONSTRAINTS {SEARCH.PG_NEW_TICKET} IMMEDIATE")
        ticket = Ticket.create(subject="Refund QX5901", contact=contact)
        assert _has_document(ticket.id)
        Message.create(ticket=ticket, author_kind=AuthorKind.CONTACT, body_text="ZK5902",
                       channel="web")
    assert written == [1, 1, 0]
    assert found(desk, "qx5901 zk5902 sari") == {ticket.id}
    assert _out_of_step() == []


def _deferred_triggers() -> set[str]:
    return {name for (name,) in _database().execute_sql(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'ticket'::regclass AND tgdeferrable "
        "AND tginitdeferred")}


def test_the_migration_that_writes_new_documents_at_the_commit_goes_down_and_up(
        desk: Any, postgresql_only: None) -> None:
    """0024's ``down`` puts back the ticket's insert trigger (a document written twice) and
    ``up`` the deferred one; the documents are in step either way."""
    before = _open("budi@example.com", "Refund QX6001", "charged twice", name="Budi")
    database = _database()
    assert _deferred_triggers() == {SEARCH.PG_NEW_TICKET}
    PG_ONCE.down(None, database)
    try:
        assert _deferred_triggers() == set()
        with _counted() as written:
            down = _open("dewi@example.com", "Camera QX6002", "stream ZK6003", name="Dewi")
        assert written == [1, 1, 0]
        assert found(desk, "qx6002 zk6003 dewi") == {down.id}
        assert _out_of_step() == []
    finally:
        PG_ONCE.up(None, database)
    assert _deferred_triggers() == {SEARCH.PG_NEW_TICKET}
    with _counted() as written:
        up = _open("eka@example.com", "Payout QX6004", "withdrawal ZK6005", name="Eka")
    assert written == [1, 0, 0]
    assert found(desk, "qx6001 charged") == {before.id}
    assert found(desk, "qx6004 zk6005 eka") == {up.id}
    assert _out_of_step() == []


def test_a_just_submitted_ticket_is_found_in_the_console_and_the_api(desk: Any,
                                                                     client: Any) -> None:
    """A form submission (its ticket, first message and acknowledgement in one request) is
    found at once by its subject, text, name, address and number, in both."""
    from core.passwords import new_api_token

    from .test_admin_helpers import sign_in
    from .test_web_helpcenter import csrf_token

    form = "/help/member/payments-and-subscriptions/new"
    numbers = []
    for name, email, subject, text in (
            ("Budi Santoso", "budi@example.com", "Camera QY6100", "stream freezes"),
            ("Rina Walrus", "rina.q@example.com", "Payout QX6101", "withdrawal ZK6102 late")):
        token = csrf_token(client.get(form).text)
        response = client.post(form, data={"name": name, "email": email, "subject": subject,
                                           "description": text, "csrf_token": token},
                               content_type="multipart/form-data")
        assert response.status_code == 302
        numbers.append(Ticket.get(Ticket.subject == subject).id)
    other, ticket = numbers
    api_token, hashed = new_api_token()
    desk.admin.api_token_hash = hashed
    desk.admin.save()
    for words in ("qx6101", "zk6102", "walrus", "rina.q@example.com", f"#{ticket}"):
        api = client.get("/api/v1/tickets", query_string={"q": words},
                         headers={"Authorization": f"Bearer {api_token}"}).get_json()
        assert [t["number"] for t in api["tickets"]] == [ticket], words
    sign_in(client, "admin@desk.test")
    for words in ("qx6101", "zk6102", "walrus", "rina.q@example.com", f"#{ticket}"):
        html = client.get("/admin/tickets/", query_string={"search": words}).get_data(
            as_text=True)
        assert f"#{ticket}<" in html and f"#{other}<" not in html, words
    assert _out_of_step() == []
