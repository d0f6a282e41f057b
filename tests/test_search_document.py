"""Each ticket's search document (migration 0011) follows every write, whichever path makes it."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest

from core import db as core_db
from core.models import AuthorKind, Contact, Message, Ticket, TicketEvent
from core.services import tickets as tickets_service
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
# The migration that writes a new ticket's document once, with its first message (SQLite).
ONCE = import_module("core.migrations.0019_search_document_once")


def _database() -> Any:
    return Ticket._meta.database


def _out_of_step(notifications: bool = False) -> list[Any]:
    """The tickets whose stored document differs from one made again from their rows (every
    message but the desk's own notifications, or with them as migration 0011 kept them), and
    documents of tickets that are gone."""
    if core_db.is_sqlite():
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
    assert found(desk, "qx5521") == set()
    assert found(desk, "charged twice") == {ticket.id} and found(desk, "freezes") == {other.id}
    assert _out_of_step() == []


def _segments_written() -> int:
    """Rows of FTS5's own table of index data: each flush of new words writes one or more."""
    return _database().execute_sql("SELECT count(*) FROM ticket_search_data").fetchone()[0]


def test_a_new_ticket_and_its_first_message_write_the_document_once(desk: Any) -> None:
    """0019 (SQLite): the service writes a ticket and its first message as one document,
    one flush of FTS5 (the ticket's insert, then the message's update, made two). A ticket
    inserted by any other path still gets its document at once, and its messages append."""
    _open("warm@example.com", "Warm", "up")
    opened, by_hand = [], []
    contact = Contact.create(name="Joko", email="joko@example.com")
    for n in range(3):
        before = _segments_written() if core_db.is_sqlite() else 0
        ticket = _open(f"rina{n}@example.com", f"Payout QX{n}10", f"withdrawal ZK{n}20",
                       name="Rina")
        opened.append(_segments_written() - before if core_db.is_sqlite() else 0)
        assert found(desk, f"qx{n}10 zk{n}20 rina") == {ticket.id}
        before = _segments_written() if core_db.is_sqlite() else 0
        other = Ticket.create(subject=f"Camera QY{n}30", contact=contact)
        assert found(desk, f"qy{n}30 joko") == {other.id}  # no message yet: found
        Message.create(ticket=other, author_kind=AuthorKind.CONTACT, body_text=f"ZL{n}40",
                       channel="web")
        by_hand.append(_segments_written() - before if core_db.is_sqlite() else 0)
        assert found(desk, f"qy{n}30 zl{n}40") == {other.id}
    assert _out_of_step() == []
    if core_db.is_sqlite():
        assert opened == [1, 1, 1] and by_hand == [2, 2, 2]
        assert _database().execute_sql(f"SELECT count(*) FROM {ONCE.PENDING}").fetchone() == (0,)


def test_a_ticket_waiting_for_its_document_gets_it_from_any_first_message(desk: Any) -> None:
    """While the mark is there (SQLite), a ticket's document comes from its first message,
    a notification too (which it leaves out); later messages append; the documents are in
    step. A write that fails between the two leaves no mark behind."""
    if not core_db.is_sqlite():
        pytest.skip("SQLite's triggers (migration 0019)")
    database = _database()
    contact = Contact.create(name="Sari", email="sari@example.com")
    with core_db.write_transaction():
        database.execute_sql(tickets_service._SEARCH_WAITS)
        ticket = Ticket.create(subject="Refund QX8801", contact=contact)
        assert found(desk, "qx8801") == set()  # waits for its message
        _notify(ticket, "We received your request QY8802")
        database.execute_sql(tickets_service._SEARCH_WAITED)
    assert found(desk, "qx8801 sari") == {ticket.id} and found(desk, "qy8802") == set()
    add_customer_reply(ticket, "charged twice ZK8803")
    assert found(desk, "qx8801 zk8803") == {ticket.id}
    assert _out_of_step() == []

    def fails(message: Message) -> Message:
        raise RuntimeError("the message's insert failed")

    with core_db.write_transaction():
        original = tickets_service._insert_message
        tickets_service._insert_message = fails
        try:
            with pytest.raises(RuntimeError):
                tickets_service._insert_ticket_and_message(
                    Ticket(subject="Lost QX8804", contact=contact), Message(body_text="x"))
        finally:
            tickets_service._insert_message = original
        assert database.execute_sql(f"SELECT count(*) FROM {ONCE.PENDING}").fetchone() == (0,)
        later = Ticket.create(subject="Later QX8805", contact=contact)
        assert found(desk, "qx8805") == {later.id}  # written at once, as before


def test_the_migration_that_writes_documents_once_goes_down_and_up(desk: Any) -> None:
    ticket = _open("budi@example.com", "Refund QX9901", "charged twice", name="Budi")
    database = _database()
    ONCE.down(None, database)
    try:
        contact = Contact.create(name="Dewi", email="dewi@example.com")
        other = Ticket.create(subject="Camera QX9902", contact=contact)
        Message.create(ticket=other, author_kind=AuthorKind.CONTACT, body_text="ZK9903",
                       channel="web")
        assert found(desk, "qx9902 zk9903") == {other.id}
        assert _out_of_step() == []
    finally:
        ONCE.up(None, database)
    third = _open("eka@example.com", "Payout QX9904", "withdrawal ZK9905", name="Eka")
    assert found(desk, "qx9901 charged") == {ticket.id}
    assert found(desk, "qx9904 zk9905 eka") == {third.id}
    assert _out_of_step() == []
