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
