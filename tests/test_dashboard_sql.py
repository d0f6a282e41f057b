"""The dashboard's figures come from SQL aggregates, and agree with the plain arithmetic."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from typing import Any

import pytest

from admin.dashboard import first_response_stats
from core.models import Ticket, utcnow

from .test_admin_helpers import new_ticket, sign_in
from .test_inbox_plans import Statements


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


def _expected(minutes: list[float]) -> tuple[float, float]:
    ordered = sorted(minutes)
    return statistics.median(ordered), ordered[math.ceil(0.9 * len(ordered)) - 1]


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
        found = first_response_stats(utcnow() - dt.timedelta(days=29))
    median, p90 = _expected(minutes)
    assert found["count"] == len(minutes)
    assert found["median"] == pytest.approx(median, abs=0.01)
    assert found["p90"] == pytest.approx(p90, abs=0.01)
    # One statement, and it aggregates: no answered ticket is read into Python.
    (sql, _params), = caught.caught
    assert "percentile" in sql or "ROW_NUMBER" in sql.upper()


def test_the_dashboard_reads_aggregates_only_and_stays_in_the_viewers_scope(
        desk: Any, client: Any) -> None:
    _answered_after(desk, [10, 20, 30])
    _answered_after(desk, [1000, 2000], department=desk.billing)
    sign_in(client, "admin@desk.test")
    with Statements() as caught:
        html = client.get("/admin/").get_data(as_text=True)
    assert "5 answered ticket" in html
    reads = [sql for sql, _ in caught.caught if 'FROM "ticket"' in sql]
    assert reads and all(any(word in sql.upper() for word in ("COUNT(", "PERCENTILE",
                                                              "ROW_NUMBER"))
                         for sql in reads), reads
    agent = client.application.test_client()
    sign_in(agent, "agent@desk.test")
    html = agent.get("/admin/").get_data(as_text=True)
    assert "3 answered ticket" in html and "20 min" in html  # billing's two are not theirs
