"""The kept "late" mark (migration 0027): the job that sets it, the trigger that clears it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from core import db
from core.models import IdentityKind, Status, Ticket, utcnow
from core.services import late
from core.services import tickets as svc

from .test_cli import cli_env, ok  # noqa: F401 (a fixture)

HOUR = dt.timedelta(hours=1)


def _ticket(subject: str, due: dt.datetime | None, status: str = Status.OPEN) -> Ticket:
    ticket = svc.open_ticket(identity=svc.Identity(IdentityKind.EMAIL, f"{subject}@example.com"),
                             subject=subject, text="Hello", notify=False)
    # Test set-up only: a due time and status as an agent's edits would have left them, and
    # an update time long ago, to see that the job leaves it alone.
    Ticket.update(due_at=due, status=status, tags=["vip"],
                  updated_at=dt.datetime(2020, 1, 2, 3, 4, 5)).where(
        Ticket.id == ticket.id).execute()
    return Ticket.get_by_id(ticket.id)


def _marks() -> dict[str, bool]:
    return {t.subject: t.late for t in Ticket.select().order_by(Ticket.id)}


def test_the_job_marks_only_active_tickets_past_their_due_time_and_nothing_else(
        make_app: Any) -> None:
    app = make_app()
    now = utcnow()
    with app.app_context(), db.connection():
        _ticket("overdue", now - HOUR)
        _ticket("on time", now + HOUR)
        _ticket("no due time", None)
        _ticket("resolved", now - HOUR, Status.RESOLVED)
        _ticket("pending", now - 2 * HOUR, Status.PENDING)
        before = {t.id: (t.updated_at, t.status, t.due_at) for t in Ticket.select()}
        tags = db.database.execute_sql(
            "SELECT tag, ticket_id, updated_at, due_at, status FROM ticket_tag "
            "ORDER BY ticket_id").fetchall()

    # Through the periodic task itself: it brings its own app context and connection.
    assert app.extensions["loket"].jobs.tasks["core.mark_late"].call_local() == 2

    with app.app_context(), db.connection():
        assert _marks() == {"overdue": True, "on time": False, "no due time": False,
                            "resolved": False, "pending": True}
        assert {t.id: (t.updated_at, t.status, t.due_at) for t in Ticket.select()} == before
        assert db.database.execute_sql(
            "SELECT tag, ticket_id, updated_at, due_at, status FROM ticket_tag "
            "ORDER BY ticket_id").fetchall() == tags
        assert late.mark() == 0  # nothing left to do
        assert _marks()["overdue"]


def test_the_job_marks_in_batches_soonest_due_first_and_stops_at_its_bound(
        make_app: Any) -> None:
    app = make_app()
    now = utcnow()
    with app.app_context(), db.connection():
        for hours in (5, 1, 4, 2, 3):
            _ticket(f"{hours} hours late", now - hours * HOUR)
        assert late.mark(now, batch=2, batches=1) == 2
        assert {s for s, marked in _marks().items() if marked} == {"5 hours late",
                                                                   "4 hours late"}
        assert late.mark(now, batch=2) == 3
        assert all(_marks().values())
        assert late.mark(now, batch=2) == 0


def test_the_job_marks_nothing_not_yet_due_at_the_time_it_is_given(make_app: Any) -> None:
    app = make_app()
    now = utcnow()
    with app.app_context(), db.connection():
        _ticket("due soon", now + HOUR)
        assert late.mark(now) == 0
        assert late.mark(now + 2 * HOUR) == 1


def test_a_changed_due_time_clears_the_mark_and_nothing_else_does(make_app: Any) -> None:
    app = make_app()
    now = utcnow()
    with app.app_context(), db.connection():
        moved = _ticket("moved", now - HOUR)
        kept = _ticket("kept", now - HOUR)
        same = _ticket("same", now - HOUR)
        late.mark(now)
        assert all(_marks().values())
        Ticket.update(due_at=now + HOUR).where(Ticket.id == moved.id).execute()
        Ticket.update(subject="kept, renamed", status=Status.PENDING, tags=["kyc"],
                      updated_at=now).where(Ticket.id == kept.id).execute()
        Ticket.update(due_at=same.due_at).where(Ticket.id == same.id).execute()
        assert _marks() == {"moved": False, "kept, renamed": True, "same": True}
        # Moved into the past again, it waits for the job.
        Ticket.update(due_at=now - 2 * HOUR).where(Ticket.id == moved.id).execute()
        assert not Ticket.get_by_id(moved.id).late
        assert late.mark(now) == 1


def test_the_console_and_api_edit_of_a_due_time_clears_the_mark(make_app: Any) -> None:
    """Whatever path writes the due time: a model save (the console's form, the API)."""
    app = make_app()
    now = utcnow()
    with app.app_context(), db.connection():
        ticket = _ticket("saved", now - HOUR)
        late.mark(now)
        ticket = Ticket.get_by_id(ticket.id)
        assert ticket.late
        ticket.due_at = now + HOUR
        ticket.save()
        assert not Ticket.get_by_id(ticket.id).late


def test_no_trigger_of_the_tickets_fires_for_the_mark_alone(make_app: Any) -> None:
    """The job writes ``late`` alone: every trigger on an update of the ticket names the
    columns it follows (``UPDATE OF``), and ``late`` is not among them."""
    app = make_app()
    with app.app_context(), db.connection():
        if db.is_sqlite():
            found = [sql for (sql,) in db.database.execute_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ticket'")]
        else:
            found = [sql for (sql,) in db.database.execute_sql(
                "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgrelid = 'ticket'::regclass")]
    updates = [sql for sql in found if re.search(r"\bUPDATE\b(?! ticket SET)", sql.split(
        " ON ")[0])]
    assert len(updates) >= 5
    for sql in updates:
        head = sql.split(" ON ")[0]
        columns = re.search(r"UPDATE OF ([\w, ]+?)(?: OR |$)", head)
        assert columns is not None, sql
        assert "late" not in {c.strip() for c in columns.group(1).split(",")}, sql


@pytest.mark.usefixtures("cli_env")
def test_mark_late_command_marks_what_the_job_would(make_app: Any) -> None:
    app = make_app()
    with app.app_context(), db.connection():
        _ticket("overdue", utcnow() - HOUR)
    assert "1 ticket(s) marked late." in ok("db", "mark-late").output
    with app.app_context(), db.connection():
        assert _marks() == {"overdue": True}
    assert "0 ticket(s) marked late." in ok("db", "mark-late").output
