"""The tag filter: exact, lower-cased, wildcards and quotes taken literally, in the viewer's
scope, whether a tag is rare (its tickets gathered from ``ticket_tag``) or common (tested on
each ticket the inbox's index walks past); and ``ticket_tag`` kept by the triggers of
migration 0010 through every way a ticket's tags change."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import Message, Ticket, TicketEvent
from core.services import access

from .test_admin_helpers import new_ticket

TAGS = {
    "plain": ["vip"],
    "upper": ["refund"],
    "percent": ["100%"],
    "underscore": ["a_b"],
    "bang": ["!x"],
    "quote": ["say \"hi\""],
    "apostrophe": ["o'brien"],
    "accent": ["café"],
    "two": ["vip", "refund"],
    "lookalike": ["vipx", "xvip", "100", "axb", "1000"],
    "none": [],
}


@pytest.fixture
def tagged_desk(desk: Any) -> dict[str, int]:
    made = {}
    for n, (name, tags) in enumerate(TAGS.items()):
        ticket = new_ticket(desk.login, email=f"t{n}@example.test", subject=name)
        Ticket.update(tags=tags).where(Ticket.id == ticket.id).execute()
        made[name] = ticket.id
    return made


def _found(staff: Any, tag: str) -> set[int]:
    query = access.filter_inbox(access.inbox(staff), staff, access.InboxFilter(tag=tag))
    return {t.id for t in query}


def _names(made: dict[str, int], ids: set[int]) -> set[str]:
    return {name for name, ticket_id in made.items() if ticket_id in ids}


CASES = [
    ("vip", {"plain", "two"}), ("VIP ", {"plain", "two"}), ("Refund", {"upper", "two"}),
    ("100%", {"percent"}), ("%", set()), ("a_b", {"underscore"}), ("_", set()),
    ("!x", {"bang"}), ("say \"hi\"", {"quote"}), ("o'brien", {"apostrophe"}),
    ("café", {"accent"}), ("CAFÉ", {"accent"}), ("vi", set()), ("", set()),
    ("no-such-tag", set()),
]


@pytest.mark.parametrize("common", [False, True], ids=["gathered", "walked"])
def test_a_tag_matches_whole_tags_lower_cased_with_wildcards_taken_literally(
        desk: Any, tagged_desk: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        common: bool) -> None:
    if common:  # every tag walked, as a common one is
        monkeypatch.setattr(access, "TAG_MIN_COMMON", 0)
        monkeypatch.setattr(access, "TAG_WALK_FACTOR", 0)
    assert access.tag_is_common("vip") is common
    for tag, expected in CASES:
        assert _names(tagged_desk, _found(desk.admin, tag)) == expected, tag


def test_a_rare_tag_reads_ticket_tag_and_a_common_one_does_not(
        desk: Any, tagged_desk: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    rare = Ticket.select().where(access.tagged("vip")).sql()[0]
    assert "ticket_tag" in rare
    monkeypatch.setattr(access, "TAG_MIN_COMMON", 1)
    monkeypatch.setattr(access, "TAG_WALK_FACTOR", 0)
    common = Ticket.select().where(access.tagged("vip")).sql()[0]
    assert "FROM \"ticket_tag\"" not in common and "LIKE" in common


def test_how_common_a_tag_is_is_counted_once_a_minute_per_process(
        desk: Any, tagged_desk: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two statements a page, for an answer that picks only how a page is found: kept for
    ``TAG_COMMON_SECONDS`` per tag (and per threshold), then counted again."""
    from . import spies

    monkeypatch.setattr(access, "TAG_MIN_COMMON", 2)
    monkeypatch.setattr(access, "TAG_WALK_FACTOR", 0)
    clock = [1000.0]
    monkeypatch.setattr(access.time, "monotonic", lambda: clock[0])

    def counted(tag: str) -> tuple[bool, int]:
        with spies.Statements() as caught:
            common = access.tag_is_common(tag)
        return common, sum("ticket_tag" in sql for sql, _ in caught.caught)

    assert counted("vip") == (True, 1)  # "plain" and "two" carry it
    assert counted("vip") == (True, 0)
    assert counted("refund") == (True, 1)
    Ticket.update(tags=[]).where(Ticket.id == tagged_desk["two"]).execute()
    clock[0] += access.TAG_COMMON_SECONDS - 1
    assert counted("vip") == (True, 0)  # kept: the same tickets are listed either way
    clock[0] += 2
    assert counted("vip") == (False, 1)
    monkeypatch.setattr(access, "TAG_MIN_COMMON", 1)
    assert counted("vip") == (True, 1)


@pytest.mark.parametrize("common", [False, True], ids=["gathered", "walked"])
def test_an_agent_finds_a_tag_only_in_their_scope(
        desk: Any, monkeypatch: pytest.MonkeyPatch, common: bool) -> None:
    if common:
        monkeypatch.setattr(access, "TAG_MIN_COMMON", 0)
        monkeypatch.setattr(access, "TAG_WALK_FACTOR", 0)
    theirs = new_ticket(desk.login, email="a@example.test", subject="theirs")
    billing = new_ticket(desk.payments, email="b@example.test", subject="billing")
    given = new_ticket(desk.payments, email="c@example.test", subject="given")
    for ticket in (theirs, billing, given):
        Ticket.update(tags=["kyc"]).where(Ticket.id == ticket.id).execute()
    Ticket.update(department=desk.billing).where(Ticket.id == billing.id).execute()
    Ticket.update(assignee=desk.agent, department=desk.billing).where(
        Ticket.id == given.id).execute()
    expected = {t.id for t in Ticket.select() if access.can_see(desk.agent, t)
                and "kyc" in (t.tags or [])}
    assert theirs.id in expected and given.id in expected and billing.id not in expected
    assert _found(desk.agent, "kyc") == expected
    assert _found(desk.admin, "kyc") == {theirs.id, billing.id, given.id}


def _rows(ticket_id: int) -> set[str]:
    database = Ticket._meta.database
    sql = "SELECT tag FROM ticket_tag WHERE ticket_id = ?".replace("?", database.param)
    return {row[0] for row in database.execute_sql(sql, [ticket_id]).fetchall()}


def test_ticket_tag_follows_every_change_of_a_tickets_tags(desk: Any) -> None:
    from core.services.tickets import Actor, update_ticket

    ticket = new_ticket(desk.login, email="d@example.test", subject="tags")
    assert _rows(ticket.id) == set()
    update_ticket(Ticket.get_by_id(ticket.id), Actor.agent(desk.admin), tags=["VIP", " kyc "])
    assert _rows(ticket.id) == {"vip", "kyc"}
    update_ticket(Ticket.get_by_id(ticket.id), Actor.agent(desk.admin), tags=["kyc"])
    assert _rows(ticket.id) == {"kyc"}
    Ticket.update(tags=["a", "a", "b"]).where(Ticket.id == ticket.id).execute()
    assert _rows(ticket.id) == {"a", "b"}
    # Not a list of strings, or not JSON at all: no rows, and the write goes through.
    database = Ticket._meta.database
    for value in ('{"a": 1}', "not json", "[1, null, \"c\"]"):
        database.execute_sql(f"UPDATE ticket SET tags = {database.param} WHERE id = {database.param}", [value, ticket.id])
        assert _rows(ticket.id) == ({"c"} if "c" in value else set()), value
    Ticket.update(tags=["z"]).where(Ticket.id == ticket.id).execute()
    gone = Ticket.get_by_id(ticket.id)
    TicketEvent.delete().where(TicketEvent.ticket == gone.id).execute()
    Message.delete().where(Message.ticket == gone.id).execute()
    gone.delete_instance()
    assert _rows(ticket.id) == set()


FOLLOWED = ("updated_at", "due_at", "status", "department_id", "assignee_id")


def _out_of_step() -> list[Any]:
    """Every ticket_tag row whose copy of its ticket's page columns (SQLite: 0016,
    PostgreSQL: 0023) differs from the ticket's, and every tag of a ticket without its row
    (or a row without either)."""
    from core import db as core_db

    database = Ticket._meta.database
    sqlite = core_db.is_sqlite()
    differs = " OR ".join(f"tt.{c} IS {'NOT' if sqlite else 'DISTINCT FROM'} t.{c}"
                          for c in FOLLOWED)
    tags = ("json_each(t.tags) AS tag WHERE tag.type = 'text' AND" if sqlite
            else "loket_ticket_tags(t.tags) AS tag(value) WHERE")
    return database.execute_sql(
        f"SELECT tt.tag, tt.ticket_id FROM ticket_tag AS tt LEFT JOIN ticket AS t "
        f"ON t.id = tt.ticket_id WHERE t.id IS NULL OR {differs} "
        f"UNION ALL SELECT tag.value, t.id FROM ticket AS t, {tags} NOT EXISTS (SELECT 1 "
        "FROM ticket_tag AS tt WHERE tt.tag = tag.value AND tt.ticket_id = t.id)").fetchall()


def test_ticket_tag_keeps_the_pages_columns_of_its_ticket_through_every_change(
        desk: Any) -> None:
    """What a tag's page sorts and scopes by, copied into ``ticket_tag`` (SQLite, 0016), is
    the ticket's after every way it changes: tags, status, a move to another department,
    an assignment and its removal (also by the assignee's deletion), a reply (updated_at),
    a due time, an update by SQL by hand, a ticket deleted. The same on PostgreSQL (0023)."""
    import datetime as dt

    from core.models import Staff, StaffDepartment
    from core.services.tickets import Actor, assign, change_status, reply, update_ticket

    ticket = new_ticket(desk.login, email="s@example.test", subject="in step")
    other = new_ticket(desk.login, email="o@example.test", subject="other")
    by = Actor.agent(desk.admin)
    update_ticket(Ticket.get_by_id(ticket.id), by, tags=["vip", "kyc"])
    update_ticket(Ticket.get_by_id(other.id), by, tags=["vip"])
    assert _rows(ticket.id) == {"vip", "kyc"} and _out_of_step() == []
    steps = [
        lambda: change_status(Ticket.get_by_id(ticket.id), "pending", by),
        lambda: update_ticket(Ticket.get_by_id(ticket.id), by, department=desk.billing),
        lambda: assign(Ticket.get_by_id(ticket.id), desk.billing_agent, by),
        lambda: reply(Ticket.get_by_id(ticket.id), desk.billing_agent, "An answer."),
        lambda: Ticket.update(due_at=dt.datetime(2030, 1, 2, 3, 4, 5)).where(
            Ticket.id == ticket.id).execute(),
        lambda: Ticket.update(due_at=None, updated_at=dt.datetime(2031, 1, 1)).where(
            Ticket.id == ticket.id).execute(),
        lambda: update_ticket(Ticket.get_by_id(ticket.id), by, tags=["kyc", "new"]),
        lambda: assign(Ticket.get_by_id(ticket.id), None, by),
        lambda: change_status(Ticket.get_by_id(ticket.id), "closed", by),
    ]
    before = Ticket.get_by_id(other.id)
    for n, step in enumerate(steps):
        step()
        assert _out_of_step() == [], n
    assert _rows(ticket.id) == {"kyc", "new"}
    database = Ticket._meta.database
    row = database.execute_sql(
        "SELECT status, department_id, due_at FROM ticket_tag WHERE tag = 'kyc' "
        f"AND ticket_id = {database.param}", [ticket.id]).fetchone()
    assert row == ("closed", desk.billing.id, None)
    # The other ticket's rows were left alone.
    assert Ticket.get_by_id(other.id).updated_at == before.updated_at
    # An assignee deleted: the foreign key's SET NULL is an update that the trigger follows.
    leaving = Staff.create(email="leaving@desk.test", name="Leaving", password_hash="x")
    StaffDepartment.create(staff=leaving, department=desk.support)
    assign(Ticket.get_by_id(other.id), leaving, by)
    assert _out_of_step() == []
    StaffDepartment.delete().where(StaffDepartment.staff == leaving.id).execute()
    leaving.delete_instance()
    assert Ticket.get_by_id(other.id).assignee_id is None
    assert _out_of_step() == []
    gone = Ticket.get_by_id(ticket.id)
    TicketEvent.delete().where(TicketEvent.ticket == gone.id).execute()
    Message.delete().where(Message.ticket == gone.id).execute()
    gone.delete_instance()
    assert _rows(ticket.id) == set() and _out_of_step() == []


def _tagged_for_down_and_up(desk: Any, name: str) -> tuple[Any, Any, Any]:
    """The migration ``name``, the database itself (as migrations are given it) and a ticket
    tagged ``vip``, for a down-and-up test."""
    from importlib import import_module

    from core import db as core_db
    from core.services.tickets import Actor, update_ticket

    ticket = new_ticket(desk.login, email="m@example.test", subject="down and up")
    update_ticket(Ticket.get_by_id(ticket.id), Actor.agent(desk.admin), tags=["vip"])
    return import_module(f"core.migrations.{name}"), core_db.database.obj, ticket


def test_0016_down_and_up(desk: Any) -> None:
    """Down: ``ticket_tag`` back to (tag, ticket_id), 0010's triggers keeping it, the narrow
    pending and urgent indexes; up again: the page's columns filled for the rows there and
    kept in step. PostgreSQL: nothing to undo (0023 made its copies there)."""
    from core import db as core_db
    from core.services.tickets import Actor, update_ticket

    migration, database, ticket = _tagged_for_down_and_up(desk, "0016_tag_pages_from_ticket_tag")

    def columns() -> set[str]:
        return {c.name for c in database.get_columns("ticket_tag")}

    def indexes() -> set[str]:
        return {i.name for i in database.get_indexes("ticket")} | {
            i.name for i in database.get_indexes("ticket_tag")}

    migration.down(None, database)
    if not core_db.is_sqlite():
        assert columns() == {"tag", "ticket_id", *FOLLOWED}
        return
    assert columns() == {"tag", "ticket_id"}
    assert {"ticket_status_updated_id", "ticket_active_priority"} <= indexes()
    assert not {"ticket_tag_updated", "ticket_tag_due", "ticket_status_updated_scope",
                "ticket_active_priority_scope"} & indexes()
    update_ticket(Ticket.get_by_id(ticket.id), Actor.agent(desk.admin), tags=["vip", "kyc"])
    assert _rows(ticket.id) == {"vip", "kyc"}
    migration.up(None, database)
    assert columns() == {"tag", "ticket_id", *FOLLOWED}
    assert {"ticket_tag_updated", "ticket_tag_due", "ticket_status_updated_scope",
            "ticket_active_priority_scope"} <= indexes()
    assert not {"ticket_status_updated_id", "ticket_active_priority"} & indexes()
    assert _rows(ticket.id) == {"vip", "kyc"} and _out_of_step() == []
    Ticket.update(status="pending").where(Ticket.id == ticket.id).execute()
    assert _out_of_step() == []


def test_0023_down_and_up(desk: Any) -> None:
    """PostgreSQL: down, ``ticket_tag`` back to (tag, ticket_id) under its plain key, 0010's
    trigger keeping it, no follower, no page indexes; up again: the rows there made again
    with their tickets' columns, the indexes built, later changes followed. SQLite: nothing
    (0016 did it there)."""
    import io

    from core import db as core_db
    from core.services.tickets import Actor, update_ticket

    migration, database, ticket = _tagged_for_down_and_up(
        desk, "0023_pg_tag_pages_from_ticket_tag")

    def columns() -> set[str]:
        return {c.name for c in database.get_columns("ticket_tag")}

    def indexes() -> set[str]:
        return {i.name for i in database.get_indexes("ticket_tag")}

    def triggers() -> set[str]:
        if core_db.is_sqlite():
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        return {row[0] for row in database.execute_sql(sql).fetchall()}

    before = (columns(), indexes(), triggers())
    progress = io.StringIO()
    migration.down(None, database, progress)
    if core_db.is_sqlite():
        assert (columns(), indexes(), triggers()) == before
        migration.up(None, database, progress)
        assert (columns(), indexes(), triggers()) == before and _out_of_step() == []
        return
    assert columns() == {"tag", "ticket_id"}
    assert indexes() == {"ticket_tag_pkey"} and "ticket_tag_follow" not in triggers()
    update_ticket(Ticket.get_by_id(ticket.id), Actor.agent(desk.admin), tags=["vip", "kyc"])
    assert _rows(ticket.id) == {"vip", "kyc"}
    migration.up(None, database, progress)
    assert (columns(), indexes(), triggers()) == before
    assert columns() == {"tag", "ticket_id", *FOLLOWED}
    assert indexes() == {"ticket_tag_pkey", "ticket_tag_updated", "ticket_tag_due"}
    assert _rows(ticket.id) == {"vip", "kyc"} and _out_of_step() == []
    Ticket.update(status="pending").where(Ticket.id == ticket.id).execute()
    assert _out_of_step() == []
    (options,) = database.execute_sql(
        "SELECT reloptions FROM pg_class WHERE relname = 'ticket_tag'").fetchone()
    assert "autovacuum_vacuum_scale_factor=0.02" in options


def test_a_bulk_load_leaves_ticket_tag_with_its_copies_and_triggers(desk: Any) -> None:
    """``bench/seed.py`` drops the roll-up and tag triggers for a bulk load, then fills the
    tables again and makes the triggers again: through 0016's helpers, so each tag row has
    its ticket's columns (SQLite) and later changes are still followed."""
    from importlib.util import module_from_spec, spec_from_file_location
    from pathlib import Path

    from core import db as core_db

    path = Path(__file__).resolve().parents[1] / "bench" / "seed.py"
    spec = spec_from_file_location("bench_seed_bulk", path)
    seed = module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(seed)
    writer = seed.Writer(core_db.database.obj)
    with writer.rollups_after():
        ticket = new_ticket(desk.login, email="b@example.test", subject="bulk")
        Ticket.update(tags=["vip", "kyc"], status="pending").where(
            Ticket.id == ticket.id).execute()
    assert _rows(ticket.id) == {"vip", "kyc"}
    Ticket.update(status="open", department=desk.billing).where(Ticket.id == ticket.id).execute()
    Ticket.update(tags=["kyc", "new"]).where(Ticket.id == ticket.id).execute()
    assert _rows(ticket.id) == {"kyc", "new"}
    assert _out_of_step() == []
