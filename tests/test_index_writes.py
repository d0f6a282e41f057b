"""Indexes that hold only the rows with a value (migration 0030): a customer's new ticket,
message and event write none of them, and every use they have still reads them."""

from __future__ import annotations

import json
import re
from importlib import import_module
from typing import Any

import pytest
from peewee import IntegrityError

from core import db as core_db
from core.models import Contact, Message, Staff, Ticket, TicketEvent
from core.services.tickets import Identity, merge_contacts, open_ticket, reply

from .factories import build_desk

migration = import_module("core.migrations.0030_indexes_a_new_ticket_skips")


def _definition(database: Any, name: str) -> str | None:
    if core_db.is_sqlite(database):
        row = database.execute_sql("SELECT sql FROM sqlite_master WHERE type = 'index' "
                                   "AND name = ?", [name]).fetchone()
    else:
        row = database.execute_sql("SELECT indexdef FROM pg_indexes WHERE indexname = %s "
                                   "AND schemaname = current_schema()", [name]).fetchone()
    return row[0] if row else None


def _partial_on(definition: str | None, column: str) -> bool:
    return bool(definition) and re.search(
        rf'WHERE\s*\(?\s*"?{column}"?\s+IS\s+NOT\s+NULL', definition, re.I) is not None


def _indexes_read(database: Any, sql: str, value: Any) -> set[str]:
    """The indexes the database's plan reads for ``sql`` with one argument."""
    if core_db.is_sqlite(database):
        rows = database.execute_sql("EXPLAIN QUERY PLAN " + sql, [value]).fetchall()
        return {m.group(1) for row in rows
                for m in [re.search(r"USING (?:COVERING )?INDEX (\w+)", row[-1])] if m}
    with database.atomic():
        # A test desk's tables are tiny: PostgreSQL would rightly read them whole. Asked to
        # avoid that, it shows whether the partial index can answer the look-up at all.
        database.execute_sql("SET LOCAL enable_seqscan = off")
        plan = database.execute_sql("EXPLAIN (FORMAT JSON) " + sql.replace("?", "%s"),
                                    [value]).fetchone()[0]
    return set(re.findall(r'"Index Name": "(\w+)"', json.dumps(plan)))


def test_the_indexes_hold_only_rows_with_a_value(ctx: Any) -> None:
    database = ctx.extensions["loket"].database
    for _table, name, column, unique in migration.PARTIAL:
        definition = _definition(database, name)
        assert _partial_on(definition, column), (name, definition)
        assert ("UNIQUE" in (definition or "").upper()) == unique, name
    # Read by no statement since the dashboard came from roll-ups (0007).
    assert _definition(database, "ticket_created_response") is None


def test_a_look_up_by_value_reads_them(ctx: Any) -> None:
    database = ctx.extensions["loket"].database
    for table, name, column, _unique in migration.PARTIAL:
        sql = f'SELECT id FROM "{table}" WHERE "{column}" = ?'
        value: Any = "k-1" if column == "delivery_key" else 1
        assert name in _indexes_read(database, sql, value), (table, column)


def test_a_customers_ticket_has_none_of_those_values(ctx: Any) -> None:
    """What 0030 saves a submission: the new ticket's rows leave each column empty (so no
    entry is written), and an agent's answer fills the staff ones (and is found by them)."""
    desk = build_desk()
    ticket = open_ticket(identity=Identity("email", "rina@example.com", name="Rina"),
                         subject="Cannot pay", text="The card is refused.",
                         category=desk.login)
    rows = {"ticket": Ticket.select().where(Ticket.id == ticket.id),
            "contact": Contact.select().where(Contact.id == ticket.contact_id),
            "message": Message.select().where(Message.ticket == ticket.id),
            "ticket_event": TicketEvent.select().where(TicketEvent.ticket == ticket.id)}
    for table, _name, column, _unique in migration.PARTIAL:
        if column == "contact_id":
            continue  # a customer's own rows name them: that index is for agents' rows
        for row in rows[table].dicts():
            assert row[column.removesuffix("_id")] is None, (table, column)
    reply(ticket, desk.agent, "Which card?")
    assert Message.select().where(Message.staff == desk.agent.id).count() == 1
    assert TicketEvent.select().where(TicketEvent.staff == desk.agent.id).count() >= 1


def test_deleting_a_staff_member_still_clears_their_rows(ctx: Any) -> None:
    """The foreign keys' ON DELETE SET NULL finds the rows through the partial indexes."""
    desk = build_desk()
    ticket = open_ticket(identity=Identity("email", "rina@example.com", name="Rina"),
                         subject="Cannot pay", text="The card is refused.",
                         category=desk.login)
    reply(ticket, desk.agent, "Which card?")
    agent_id = desk.agent.id
    Staff.delete().where(Staff.id == agent_id).execute()
    assert Message.select().where(Message.staff == agent_id).count() == 0
    assert TicketEvent.select().where(TicketEvent.staff == agent_id).count() == 0
    assert Message.select().where(Message.ticket == ticket.id,
                                  Message.author_kind == "staff").count() == 1


def test_a_merged_contact_is_found_by_its_merge(ctx: Any) -> None:
    build_desk()
    keep = Contact.create(name="Rina", email="rina@example.com")
    duplicate = Contact.create(name="Rina S", email="rina.s@example.com")
    merge_contacts(keep, duplicate)
    assert [c.id for c in Contact.select().where(Contact.merged_into == keep.id)] == [
        duplicate.id]


def test_delivery_keys_stay_unique(ctx: Any) -> None:
    desk = build_desk()
    ticket = open_ticket(identity=Identity("email", "rina@example.com", name="Rina"),
                         subject="Cannot pay", text="The card is refused.",
                         category=desk.login)
    base = {"ticket": ticket.id, "author_kind": "staff", "staff": desk.agent.id,
            "body_text": "x"}
    Message.create(**base, delivery_key=None)
    Message.create(**base, delivery_key=None)  # empty keys never conflicted
    Message.create(**base, delivery_key="k-1")
    with pytest.raises(IntegrityError), core_db.database.obj.atomic():
        Message.create(**base, delivery_key="k-1")


def test_0030_down_and_up(ctx: Any) -> None:
    """Down: every index whole again and the dropped one back; up: partial again."""
    database = ctx.extensions["loket"].database
    migration.down(None, database)
    try:
        for _table, name, column, _unique in migration.PARTIAL:
            definition = _definition(database, name)
            assert definition is not None and not _partial_on(definition, column), name
        assert _definition(database, "ticket_created_response") is not None
    finally:
        migration.up(None, database)
    test_the_indexes_hold_only_rows_with_a_value(ctx)
