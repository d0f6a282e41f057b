"""Each ticket's search document (migration 0011) follows every write, whichever path makes it."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from core import db as core_db
from core.models import AuthorKind, Contact, Message, Ticket, TicketEvent
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
    WITHOUT_NOTIFICATIONS.down(None, database)
    try:
        assert found(desk, "qx5521") == {ticket.id}
        assert _out_of_step(notifications=True) == []
        _notify(other, "We received your request QX5521 too")
        assert found(desk, "qx5521") == {ticket.id, other.id}
    finally:
        WITHOUT_NOTIFICATIONS.up(None, database)
    assert found(desk, "qx5521") == set()
    assert found(desk, "charged twice") == {ticket.id} and found(desk, "freezes") == {other.id}
    assert _out_of_step() == []
