"""Search by full-text index, kept in step with every change the services make."""

from __future__ import annotations

from typing import Any

from core.models import Contact, IdentityKind, Ticket
from core.services import access, search_index
from core.services.tickets import (
    Actor,
    Identity,
    add_customer_reply,
    add_note,
    merge_contacts,
    open_ticket,
    reply,
    update_ticket,
)

from .test_admin_helpers import sign_in


def found(desk: Any, words: str, staff: Any = None) -> set[int]:
    viewer = staff or desk.admin
    wanted = access.InboxFilter(text=words)
    return {t.id for t in access.filter_inbox(access.inbox(viewer), viewer, wanted)}


def _open(email: str, subject: str, text: str, name: str = "") -> Ticket:
    return open_ticket(identity=Identity(IdentityKind.EMAIL, email, name=name),
                       subject=subject, text=text)


def test_words_match_by_their_letters_and_digits_as_word_prefixes(desk: Any) -> None:
    ticket = _open("rina.halim@example.com", "Payout stuck since Monday",
                   "My withdrawal INV-7734021 has not arrived", name="Rina Halim")
    other = _open("joko@example.com", "Camera", "Stream freezes", name="Joko")
    assert found(desk, "payout") == {ticket.id}
    assert found(desk, "PAY") == {ticket.id}  # a prefix, any case
    assert found(desk, "withdraw") == {ticket.id}
    assert found(desk, "inv-7734") == {ticket.id}  # runs of letters and digits, in order
    assert found(desk, "7734021") == {ticket.id}
    assert found(desk, "rina.halim@example.com") == {ticket.id}
    assert found(desk, "halim") == {ticket.id}
    assert found(desk, "example.com") == {ticket.id, other.id}
    assert found(desk, "ayout") == set()  # not a substring search
    assert found(desk, "payout joko") == set()  # every word must match
    assert found(desk, f"#{other.id}") == {other.id}
    assert found(desk, "\"payout\" OR * NEAR(") == set()  # no FTS syntax gets through
    assert found(desk, "payout OR") == set()
    assert found(desk, "²") == set() and found(desk, "#²") == set()  # digits, but not numbers


def test_messages_added_through_the_services_are_found(desk: Any) -> None:
    ticket = _open("c@example.com", "Question", "First words")
    add_customer_reply(ticket, "the parcel tracking number is ZX991")
    reply(Ticket.get_by_id(ticket.id), desk.agent, "We escalated to logistics")
    add_note(Ticket.get_by_id(ticket.id), desk.agent, "internal: courier confirmed")
    for word in ("zx991", "logistics", "courier"):
        assert found(desk, word) == {ticket.id}, word


def test_a_changed_subject_is_found_by_its_new_words_only(desk: Any) -> None:
    ticket = _open("c@example.com", "Something odd", "Hello")
    update_ticket(ticket, Actor.agent(desk.admin), subject="Refund for a double charge")
    assert found(desk, "refund") == {ticket.id}
    assert found(desk, "odd") == set()


def test_renamed_and_merged_contacts_are_found_by_what_they_are_now(desk: Any) -> None:
    first = _open("old.name@example.com", "One", "Hello", name="Sari Tan")
    second = _open("other@example.com", "Two", "Hello", name="Budi Lim")
    contact = Contact.get_by_id(first.contact_id)
    contact.name = "Sari Wijaya"
    contact.save()
    assert found(desk, "wijaya") == {first.id}
    assert found(desk, "tan") == set()
    merge_contacts(Contact.get_by_id(first.contact_id), Contact.get_by_id(second.contact_id))
    # Budi's ticket now belongs to Sari's contact: found by her name and address.
    assert found(desk, "wijaya") == {first.id, second.id}
    assert found(desk, "old.name") == {first.id, second.id}


def test_search_stays_within_the_agents_departments(desk: Any) -> None:
    ticket = _open("c@example.com", "Chargeback letter", "From the bank")
    update_ticket(ticket, Actor.agent(desk.admin), department=desk.billing)
    assert found(desk, "chargeback") == {ticket.id}
    assert found(desk, "chargeback", staff=desk.agent) == set()


def test_the_console_and_the_api_find_the_same_tickets(desk: Any, client: Any, app: Any) -> None:
    from core.passwords import new_api_token

    ticket = _open("c@example.com", "Locked out", "Code 552310 never came", name="Putri")
    _open("d@example.com", "Other", "Nothing here", name="Dewi")
    token, hashed = new_api_token()
    desk.admin.api_token_hash = hashed
    desk.admin.save()
    for words in ("552310", "putri locked", "c@example", "nothing putri"):
        api = client.get("/api/v1/tickets", query_string={"q": words, "active": "true"},
                         headers={"Authorization": f"Bearer {token}"}).get_json()
        listed = {t["number"] for t in api["tickets"]}
        assert listed == found(desk, words), words
    sign_in(client, "admin@desk.test")
    html = client.get("/admin/tickets/", query_string={"search": "552310"}).get_data(
        as_text=True)
    assert f"#{ticket.id}<" in html and "Other" not in html


def _varint(blob: bytes, at: int) -> tuple[int, int]:
    """An SQLite varint at ``at``: (value, where the next one starts)."""
    value = 0
    for n in range(9):
        byte = blob[at]
        at += 1
        if n == 8:
            return (value << 8) | byte, at
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, at
    raise AssertionError("unreachable")


def fts_segments_per_level(database: Any, table: str) -> list[int]:
    """How many segments each level of an FTS5 table holds, from its structure record
    (the ``%_data`` row 10: a cookie, then varints: levels, segments, write counter, and for
    each level the segments being merged, its segment count and each segment's id, first and
    last page)."""
    (blob,) = database.execute_sql(f'SELECT block FROM "{table}_data" WHERE id = 10').fetchone()
    at = 8 if blob[4:8] == b"\xff\x00\x00\x01" else 4  # a structure with its version
    levels, at = _varint(blob, at)
    _segments, at = _varint(blob, at)
    _writes, at = _varint(blob, at)
    counts = []
    for _level in range(levels):
        _merging, at = _varint(blob, at)
        count, at = _varint(blob, at)
        for _value in range(3 * count):
            _, at = _varint(blob, at)
        counts.append(count)
    return counts


def test_the_tickets_full_text_index_merges_a_level_in_steps(desk: Any) -> None:
    """Migration 0015: a level of ``ticket_search`` that reaches 16 segments is merged a step
    at a time by the writes that follow (``automerge``), not all at once by the write that
    made the sixteenth (``crisismerge`` 64, not 16): at a million tickets such a merge wrote
    tens of thousands of pages inside one submission's transaction."""
    import pytest

    from core import db

    if not db.is_sqlite():
        pytest.skip("FTS5 is SQLite's; PostgreSQL's GIN indexes keep their settings")
    database = Ticket._meta.database
    (crisis,) = database.execute_sql(
        "SELECT v FROM ticket_search_config WHERE k = 'crisismerge'").fetchone()
    assert int(crisis) == 64
    most = 0
    opened = []
    for n in range(30):  # each document written alone: a segment each (0032 batches them)
        opened.append(_open(f"steps{n}@example.com", f"Stepwise {n}", f"Kalimaya number {n}"))
        search_index.write_all_queued()
        most = max(most, max(fts_segments_per_level(database, "ticket_search")))
    assert most > 16  # with 16 a level never holds more than 15 after a write
    database.execute_sql("INSERT INTO ticket_search (ticket_search) VALUES ('integrity-check')")
    assert found(desk, "kalimaya") == {t.id for t in opened}
    assert found(desk, "stepwise 17") >= {opened[17].id}


def test_0015_down_and_up(desk: Any) -> None:
    from importlib import import_module

    import pytest

    from core import db

    if not db.is_sqlite():
        pytest.skip("FTS5 is SQLite's")
    migration = import_module("core.migrations.0015_fts_merge_in_steps")
    database = db.database.obj  # the database itself: the migration asks which kind it is

    def crisis() -> int:
        return int(database.execute_sql(
            "SELECT v FROM ticket_search_config WHERE k = 'crisismerge'").fetchone()[0])

    migration.down(None, database)
    assert crisis() == 16
    migration.up(None, database)
    assert crisis() == 64


def test_full_text_tables_merge_less_and_stay_whole(desk: Any) -> None:
    """SQLite's FTS5 tables merge segments at 16, not 4 (migration 0013: a message's index
    write cost a third), and many small writes leave every index whole and searchable."""
    import pytest

    from core import db

    if not db.is_sqlite():
        pytest.skip("FTS5 is SQLite's; PostgreSQL's GIN indexes keep their settings")
    database = Ticket._meta.database
    names = [name for (name,) in database.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' "
        "AND sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%'")]
    assert "ticket_search" in names  # migration 0011's, which replaced 0005's three
    for name in names:
        (merge,) = database.execute_sql(
            f"SELECT v FROM \"{name}_config\" WHERE k = 'automerge'").fetchone()
        assert int(merge) == 16, name
    opened = [_open(f"merge{n}@example.com", f"Refund {n}", f"Halimun number {n}")
              for n in range(40)]
    database.execute_sql("INSERT INTO ticket_search (ticket_search) VALUES ('integrity-check')")
    assert found(desk, "halimun") == {t.id for t in opened}
    assert found(desk, "refund 17") >= {opened[17].id}
