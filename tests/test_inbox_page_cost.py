"""What a console inbox page costs the database and the worker, pinned by counts (not times):
its statements (each a round trip on PostgreSQL), how often its WHERE is written, and its
rows read straight from the cursor as peewee would have read them."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace
from typing import Any

from peewee import Context

from admin.tickets import LIST_COLUMNS, InboxRow
from core import db
from core.api.v1 import SUMMARY_COLUMNS
from core.models import Contact, Staff, StaffDepartment, StaffSession, Ticket
from core.services import access
from core.services.access import in_subquery, inbox, plain_rows, waiting_on_us

from .spies import Statements
from .test_admin_helpers import new_ticket, sign_in


def test_a_console_inbox_page_is_two_statements(desk: Any, client: Any) -> None:
    """The session with its staff member and the names' stamp (one statement), and the
    page's rows: on PostgreSQL each statement is a round trip and a plan, so a third must
    not creep back in (the session and the staff row were two, the names a third: they are
    kept by each worker under their stamp, migration 0018)."""
    for n in range(23):
        ticket = new_ticket(desk.payments, subject=f"Charged twice {n}")
        Ticket.update(assignee=desk.agent.id).where(Ticket.id == ticket.id).execute()
    sign_in(client, "agent@desk.test")
    view = next(v for v in client.application.extensions["admin"][0]._views
                if v.endpoint == "tickets")
    number = {str(f.name): i for i, f in enumerate(view._filters)}
    pages = ["/admin/tickets/", "/admin/tickets/?sort=10",
             f"/admin/tickets/?flt0_{number['Assignee']}=me",
             f"/admin/tickets/?flt0_{number['Waiting on us']}=yes",
             f"/admin/tickets/?flt0_{number['Open']}=all",
             "/admin/tickets/?page_size=20"]
    client.get("/admin/tickets/")  # a worker's first page may count a tag or warm a cache
    for page in pages:
        with Statements() as caught:
            html = client.get(page).get_data(as_text=True)
        assert "model-list" in html, page
        assert len(caught.sql) == 2, (page, caught.sql)
        session, rows = caught.text
        assert '"staff_session"' in session and 'JOIN "staff"' in session
        assert '"console_names_stamp"' in session
        assert 'FROM "ticket"' in rows and "LIMIT" in rows
    # The next page by its cursor costs the same.
    after = re.search(r'href="([^"]*after=[^"]*)"', client.get(pages[-1]).get_data(
        as_text=True)).group(1).replace("&amp;", "&")
    with Statements() as caught:
        assert "loket-ticket-link" in client.get(after).get_data(as_text=True)
    assert len(caught.sql) == 2


def test_the_session_look_up_still_refuses_what_it_refused(desk: Any, app: Any) -> None:
    """One statement for the session and its staff member: an ended session, a deactivated
    member and a changed password are each refused at once, as with two look-ups."""
    password_hash = Staff.get_by_id(desk.agent.id).password_hash
    for change in ("session ended", "deactivated", "new password"):
        client = app.test_client()
        sign_in(client, "agent@desk.test")
        assert client.get("/admin/tickets/").status_code == 200
        if change == "session ended":
            StaffSession.delete().execute()
        elif change == "deactivated":
            Staff.update(active=False).where(Staff.id == desk.agent.id).execute()
        else:
            Staff.update(password_hash="other").where(Staff.id == desk.agent.id).execute()
        assert client.get("/admin/tickets/").status_code == 302, change
        Staff.update(active=True, password_hash=password_hash).where(
            Staff.id == desk.agent.id).execute()


def _rendered(node: Any) -> int:
    """How many times ``node`` (a query) is written while its WHERE is made into SQL."""
    count = 0
    original = node.__sql__

    def counting(ctx: Any) -> Any:
        nonlocal count
        count += 1
        return original(ctx)

    node.__sql__ = counting
    return lambda: count  # type: ignore[return-value]


def test_in_subquery_writes_what_in_writes_and_its_query_once(ctx: Any) -> None:
    def members() -> Any:
        return StaffDepartment.select(StaffDepartment.department).where(
            StaffDepartment.staff == 7)

    peewee_sql = Ticket.select(Ticket.id).where(Ticket.department.in_(members())).sql()
    ours = Ticket.select(Ticket.id).where(in_subquery(Ticket.department, members()))
    assert ours.sql() == peewee_sql
    counted, plain = members(), members()
    seen_ours = _rendered(counted)
    seen_peewee = _rendered(plain)
    Context().sql(Ticket.select(Ticket.id).where(in_subquery(Ticket.department, counted)))
    Context().sql(Ticket.select(Ticket.id).where(Ticket.department.in_(plain)))
    assert seen_ours() == 1
    assert seen_peewee() == 2  # what in_subquery saves: peewee's emptiness test


def test_every_scope_and_filter_subquery_is_written_once(desk: Any) -> None:
    """The inbox's subqueries (an agent's departments, a rare tag's tickets, the page's
    numbers on PostgreSQL) go through in_subquery: the SQL of an agent's rare-tag page
    holds each once, and equals what peewee's own ``in_`` wrote."""
    query = access.filter_inbox(inbox(desk.agent, related=False), desk.agent,
                                access.InboxFilter(tag="a-rare-tag"))
    sql, _params = query.select(Ticket.id).sql()
    assert sql.count('FROM "staff_department"') == 1
    assert sql.count('FROM "ticket_tag"') == 1


def _hostile_tickets(desk: Any) -> list[Ticket]:
    made = []
    for n, (subject, tags, due) in enumerate((
            ('<b>"Quoted"</b> & co', ["vip", 'a"b'], dt.datetime(2031, 1, 2, 3, 4, 5, 678)),
            ("Plain", [], None), ("Ünïcode ☃", ["kyc"], dt.datetime(2020, 2, 29, 0, 0)))):
        ticket = new_ticket(desk.payments, email=f"c{n}@example.test", subject=subject)
        Ticket.update(tags=tags, due_at=due, assignee=desk.agent.id if n else None,
                      requester_name="" if n == 1 else f"Req {n}").where(
            Ticket.id == ticket.id).execute()
        made.append(ticket)
    Contact.update(name="").where(Contact.email == "c1@example.test").execute()
    return made


def test_plain_rows_are_what_peewee_objects_give(desk: Any) -> None:
    """The console's and the API's columns, read from the cursor, equal what peewee's
    ``objects()`` builds: every value, converted or not (times as text on SQLite, tags as
    JSON, flags), on both databases."""
    _hostile_tickets(desk)
    for columns, make in ((LIST_COLUMNS + (waiting_on_us().alias("waiting"),), InboxRow),
                          (SUMMARY_COLUMNS, SimpleNamespace)):
        query = inbox(desk.admin, related=False).select(*columns).order_by(Ticket.id)
        theirs = list(query.objects(make))
        ours = plain_rows(query, make)
        assert len(ours) == len(theirs) >= 3

        def values(row: Any) -> dict[str, Any]:
            names = row.__slots__ if hasattr(row, "__slots__") else vars(row)
            return {name: getattr(row, name) for name in names}

        assert [values(r) for r in ours] == [values(r) for r in theirs]
        for row in ours:
            assert isinstance(row.updated_at, dt.datetime)
            assert row.due_at is None or isinstance(row.due_at, dt.datetime)
    if db.is_sqlite():  # what the conversion is for: SQLite gives times as text
        raw = db.database.execute_sql('SELECT "updated_at" FROM "ticket" LIMIT 1').fetchone()
        assert isinstance(raw[0], str)


def test_the_console_and_the_api_list_the_same_rows_by_plain_rows(desk: Any,
                                                                 client: Any) -> None:
    """Page after page, the console's rows (built from plain rows) name every ticket the
    agent may see, each once, and the API's answer lists the same tickets."""
    made = _hostile_tickets(desk)
    for n in range(22):
        ticket = new_ticket(desk.payments, email=f"m{n}@example.test", subject=f"More {n}")
        Ticket.update(assignee=desk.agent.id).where(Ticket.id == ticket.id).execute()
    sign_in(client, "agent@desk.test")
    html = client.get("/admin/tickets/?page_size=20").get_data(as_text=True)
    seen = re.findall(r'value="(\d+)" /></label>', html)
    while (found := re.search(r'class="[^"]*loket-next-page" href="([^"]*)"', html)):
        assert len(seen) <= 100, seen  # each page moves on
        html = client.get(found.group(1).replace("&amp;", "&")).get_data(as_text=True)
        seen += re.findall(r'value="(\d+)" /></label>', html)
    expected = [t.id for t in inbox(desk.agent).where(access.active())
                .order_by(Ticket.updated_at.desc(), Ticket.id.desc())]
    assert [int(n) for n in seen] == expected
    assert {t.id for t in made[1:]} <= set(expected)  # assigned to the agent
