"""The dashboard's figures come from SQL over the roll-ups, and agree with the tickets.

The roll-ups (``core/migrations/0007_dashboard_rollups.py``) are kept by triggers. These
tests change tickets through the services and by hand (status, department, channel,
category, dates, assignee, deletion) and compare every figure the dashboard draws with the
same figure counted directly from the ticket rows in Python, for an admin and for an agent
(whose scope includes a ticket assigned to them in another department).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

import pytest

from admin import dashboard
from admin.dashboard import Scope, first_response_stats, open_counts, per_day
from core.models import Message, Status, Ticket, TicketEvent, utcnow
from core.services.access import can_see

from .test_admin_helpers import new_ticket, sign_in
from .test_inbox_plans import Statements

MIGRATIONS = Path(__file__).resolve().parents[1] / "core" / "migrations"


def _migration(name: str = "0007_dashboard_rollups") -> Any:
    spec = spec_from_file_location(name, MIGRATIONS / f"{name}.py")
    module = module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _answered_after(desk: Any, minutes: list[float], department: Any = None) -> list[Ticket]:
    now = utcnow().replace(microsecond=0)
    made = []
    for n, wait in enumerate(minutes):
        ticket = new_ticket(desk.login, email=f"c{n}@example.test", subject=f"t{n}")
        opened = now - dt.timedelta(days=2, minutes=n)
        Ticket.update(created_at=opened, first_response_at=opened + dt.timedelta(minutes=wait),
                      **({"department": department} if department else {})).where(
            Ticket.id == ticket.id).execute()
        made.append(ticket)
    return made


def _whole_minutes(ticket: Ticket) -> int:
    opened = ticket.created_at.replace(microsecond=0)
    answered = ticket.first_response_at.replace(microsecond=0)
    return int((answered - opened).total_seconds()) // 60


def _expected(minutes: list[float]) -> tuple[float, float]:
    ordered = sorted(minutes)
    return statistics.median(ordered), ordered[math.ceil(0.9 * len(ordered)) - 1]


def _midnight(days_ago: int) -> dt.datetime:
    return (utcnow() - dt.timedelta(days=days_ago)).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)


@pytest.mark.parametrize("minutes", [
    [5, 1, 30, 240, 12],                        # odd: the middle one
    [5, 1, 30, 240, 12, 7, 3000, 45, 2, 90],    # even: the mean of the middle two
    [15],
])
def test_first_response_median_and_p90_are_computed_by_the_database(
        desk: Any, monkeypatch: pytest.MonkeyPatch, minutes: list[float]) -> None:
    _answered_after(desk, minutes)
    # Opened before the window or never answered: not counted.
    old = new_ticket(desk.login, email="old@example.test", subject="old")
    Ticket.update(created_at=utcnow() - dt.timedelta(days=90),
                  first_response_at=utcnow()).where(Ticket.id == old.id).execute()
    new_ticket(desk.login, email="waiting@example.test", subject="waiting")
    monkeypatch.setattr("admin.dashboard.current_staff", lambda: desk.admin)
    with Statements() as caught:
        found = first_response_stats(_midnight(29))
    median, p90 = _expected(minutes)
    assert found["count"] == len(minutes)
    assert found["median"] == pytest.approx(median, abs=0.01)
    assert found["p90"] == pytest.approx(p90, abs=0.01)
    # One statement, over the roll-up without departments (0010): no ticket row is read for
    # an admin.
    (sql, _params), = caught.caught
    assert "ticket_response_minutes" in sql and " ticket " not in sql and '"ticket"' not in sql


def _direct(scope_of: Any, since: dt.datetime) -> dict[str, Any]:
    """Every figure, counted in Python from the ticket rows the viewer may see."""
    seen = [t for t in Ticket.select() if scope_of(t)]
    opened = Counter((t.created_at.date().isoformat(), t.channel) for t in seen
                     if t.created_at >= since)
    resolved = Counter((t.resolved_at.date().isoformat(), t.channel) for t in seen
                       if t.resolved_at is not None and t.resolved_at >= since)
    open_ = Counter((t.status, t.department_id or 0) for t in seen
                    if t.status in Status.ACTIVE)
    minutes = [_whole_minutes(t) for t in seen
               if t.created_at >= since and t.first_response_at is not None]
    return {"opened": opened, "resolved": resolved, "open": open_, "minutes": minutes}


def _from_dashboard(scope: Scope, since: dt.datetime) -> dict[str, Any]:
    rows = per_day(scope, since.date())
    return {"opened": Counter({(d, c): o for d, c, o, _r in rows if o}),
            "resolved": Counter({(d, c): r for d, c, _o, r in rows if r}),
            "open": Counter({(s, d): n for s, d, n in open_counts(scope)}),
            "response": first_response_stats(since, scope)}


def _shuffle_the_desk(desk: Any) -> None:
    """Tickets changed every way the roll-ups must follow."""
    from core.services.tickets import Actor, change_status, reply, update_ticket

    admin = Actor.agent(desk.admin)
    tickets = [new_ticket(desk.login if n % 2 else desk.payments, email=f"d{n}@example.test",
                          subject=f"d{n}", channel="email" if n % 3 else "web")
               for n in range(12)]
    for n, ticket in enumerate(tickets):
        opened = utcnow().replace(microsecond=0) - dt.timedelta(days=n * 3, minutes=n * 7)
        Ticket.update(created_at=opened).where(Ticket.id == ticket.id).execute()
    reply(tickets[0], desk.agent, "hello")
    reply(tickets[1], desk.agent, "hello")
    change_status(Ticket.get_by_id(tickets[1].id), Status.RESOLVED, admin)
    change_status(Ticket.get_by_id(tickets[2].id), Status.CLOSED, admin)
    change_status(Ticket.get_by_id(tickets[3].id), Status.PENDING, admin)
    update_ticket(Ticket.get_by_id(tickets[4].id), admin, department=desk.billing)
    update_ticket(Ticket.get_by_id(tickets[5].id), admin, department=desk.billing)
    # Assigned to the support agent, then moved on to billing: still theirs to see.
    Ticket.update(assignee=desk.agent, department=desk.billing,
                  first_response_at=Ticket.created_at).where(
        Ticket.id == tickets[5].id).execute()
    Ticket.update(department=None).where(Ticket.id == tickets[6].id).execute()
    Ticket.update(channel="telegram", category=None).where(Ticket.id == tickets[7].id).execute()
    Ticket.update(first_response_at=utcnow()).where(Ticket.id == tickets[8].id).execute()
    Ticket.update(first_response_at=None).where(Ticket.id == tickets[0].id).execute()
    # Reopened after resolving: resolved_at is kept by the service or not; either is counted.
    change_status(Ticket.get_by_id(tickets[9].id), Status.RESOLVED, admin)
    change_status(Ticket.get_by_id(tickets[9].id), Status.OPEN, admin)
    gone = Ticket.get_by_id(tickets[10].id)
    TicketEvent.delete().where(TicketEvent.ticket == gone.id).execute()
    Message.delete().where(Message.ticket == gone.id).execute()
    gone.delete_instance()


def _check(desk: Any, scope: Scope, scope_of: Any) -> None:
    since = _midnight(29)
    direct = _direct(scope_of, since)
    found = _from_dashboard(scope, since)
    assert found["opened"] == direct["opened"]
    assert found["resolved"] == direct["resolved"]
    assert found["open"] == direct["open"]
    assert found["response"]["count"] == len(direct["minutes"])
    if direct["minutes"]:
        median, p90 = _expected(direct["minutes"])
        assert found["response"]["median"] == median
        assert found["response"]["p90"] == p90


def test_every_figure_agrees_with_the_tickets_after_every_kind_of_change(desk: Any) -> None:
    _shuffle_the_desk(desk)
    _check(desk, Scope(None), lambda t: True)
    agent = desk.agent
    scope = Scope(sorted(agent.department_ids()), agent.id)
    assert any(t.department_id == desk.billing.id and t.assignee_id == agent.id
               for t in Ticket.select())  # the one outside their departments is there
    _check(desk, scope, lambda t: can_see(agent, t))
    billing = Scope(sorted(desk.billing_agent.department_ids()), desk.billing_agent.id)
    _check(desk, billing, lambda t: can_see(desk.billing_agent, t))
    # An inactive viewer sees nothing.
    assert _from_dashboard(Scope([], nothing=True), _midnight(29))["open"] == Counter()


def test_the_triggers_keep_what_counting_again_would_find(desk: Any) -> None:
    _shuffle_the_desk(desk)
    database = Ticket._meta.database

    Ticket.update(tags=["vip", "refund"]).where(Ticket.id == Ticket.select(
        Ticket.id).order_by(Ticket.id).limit(1)).execute()

    def contents() -> dict[str, set[tuple]]:
        # Rows whose counts went back to zero stay with the triggers; a rebuild has none.
        counts = {"ticket_day_count": 2, "ticket_open_count": 1, "ticket_response_count": 1,
                  "ticket_response_minutes": 1, "ticket_tag": 7}
        return {t: {tuple(str(v) for v in row)
                    for row in database.execute_sql(f"SELECT * FROM {t}").fetchall()
                    if any(row[-n:])} for t, n in counts.items()}

    kept = contents()
    assert kept["ticket_day_count"] and kept["ticket_open_count"] and kept["ticket_tag"]
    assert kept["ticket_response_minutes"]
    _migration().rebuild(database)
    # 0010's tables, with what 0016 (SQLite) and 0023 (PostgreSQL) copy into ticket_tag.
    _migration("0023_pg_tag_pages_from_ticket_tag").rebuild(database)
    assert contents() == kept


def test_top_categories_count_this_week_and_the_week_before(desk: Any) -> None:
    for n, days in enumerate((0, 1, 6, 7, 13, 14, 40)):
        ticket = new_ticket(desk.login, email=f"w{n}@example.test", subject=f"w{n}")
        Ticket.update(created_at=utcnow() - dt.timedelta(days=days)).where(
            Ticket.id == ticket.id).execute()
    new_ticket(desk.payments, email="p@example.test", subject="p")
    found = dict(dashboard.top_categories(Scope(None), utcnow().date()))
    assert found["Member › Registration and login"] == [3, 2]
    assert found["Member › Payments and subscriptions"] == [1, 0]


def test_the_dashboard_reads_roll_ups_and_stays_in_the_viewers_scope(
        desk: Any, client: Any) -> None:
    _answered_after(desk, [10, 20, 30])
    _answered_after(desk, [1000, 2000], department=desk.billing)
    sign_in(client, "admin@desk.test")
    with Statements() as caught:
        html = client.get("/admin/").get_data(as_text=True)
    assert "5 answered ticket" in html
    assert not [sql for sql, _ in caught.caught if 'FROM "ticket"' in sql or "FROM ticket " in sql]
    agent = client.application.test_client()
    sign_in(agent, "agent@desk.test")
    html = agent.get("/admin/").get_data(as_text=True)
    assert "3 answered ticket" in html and "20 min" in html  # billing's two are not theirs
