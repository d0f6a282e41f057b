"""The inbox's rows, built in Python (``TicketListView.row_html``) instead of cell by cell
through Flask-Admin's list macros: the same cells its column formatters give, escaped."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import escape

from core.models import IdentityKind, Status, Ticket
from core.services.access import inbox, waiting_on_us
from core.services.tickets import Identity, open_ticket

from .spies import Statements
from .test_admin_helpers import new_ticket, sign_in


def _view(app: Any) -> Any:
    (admin,) = app.extensions["admin"]
    return next(v for v in admin._views if v.endpoint == "tickets")


def _hostile(desk: Any) -> Ticket:
    ticket = open_ticket(
        identity=Identity(IdentityKind.EMAIL, "x@example.test", name='Eve "<b>" & co'),
        subject='<script>alert(1)</script> "quoted" & <i>', text="hello",
        category=desk.payments, channel="email")
    Ticket.update(tags=["vip"]).where(Ticket.id == ticket.id).execute()
    return ticket


def test_each_cell_is_what_the_column_formatter_gives(desk: Any, app: Any) -> None:
    hostile = _hostile(desk)
    view = _view(app)
    with app.test_request_context("/admin/tickets/"):
        rows = list(inbox(desk.admin).select_extend(waiting_on_us().alias("waiting")))
        assert any(row.id == hostile.id for row in rows)
        for row in rows:
            html = str(view.row_html(row, True))
            assert html.startswith('<td><label class="loket-row-select"><span class="sr-only">'
                                   f'Select record {row.id}</span><input type="checkbox" '
                                   f'name="rowid" class="action-checkbox" value="{row.id}"')
            for name in view.column_list:
                cell = re.search(f'<td class="col-{name}">(.*?)</td>', html, re.S)
                assert cell is not None, name
                assert cell.group(1) == str(escape(view.get_list_value(None, row, name))), name
            assert "<td><input" not in str(view.row_html(row, False))


def test_the_inbox_page_escapes_what_customers_wrote_and_keeps_its_controls(
        desk: Any, client: Any) -> None:
    hostile = _hostile(desk)
    sign_in(client, "admin@desk.test")
    html = client.get("/admin/tickets/").get_data(as_text=True)
    assert "<script>alert" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &#34;quoted&#34; &amp; &lt;i&gt;" in html
    assert 'Eve &#34;&lt;b&gt;&#34; &amp; co' in html
    assert f'value="{hostile.id}"' in html and 'name="rowid"' in html
    # The bulk actions' form still carries its CSRF token; the row headers and tabs remain.
    assert re.search(r'<form[^>]*id="action_form"[\s\S]*?name="csrf_token"', html)
    assert 'name="rowtoggle"' in html and ">Mine</a>" in html


def test_the_search_and_filter_forms_keep_the_lists_order(desk: Any, client: Any) -> None:
    _hostile(desk)
    sign_in(client, "admin@desk.test")
    html = client.get("/admin/tickets/?sort=1&desc=1&search=refund").get_data(as_text=True)
    search_form = re.search(r'<form[^>]*role="search"[\s\S]*?</form>', html).group(0)
    assert '<input type="hidden" name="sort" value="1">' in search_form
    assert '<input type="hidden" name="desc" value="1">' in search_form
    filter_form = re.search(r'<form id="filter_form"[\s\S]*?</form>', html).group(0)
    assert '<input type="hidden" name="sort" value="1">' in filter_form
    assert '<input type="hidden" name="search" value="refund">' in filter_form
    plain = client.get("/admin/tickets/").get_data(as_text=True)
    assert 'name="sort"' not in plain and 'name="desc"' not in plain


def test_names_from_the_page_look_ups_are_escaped_in_rows_filters_and_actions(
        desk: Any, client: Any) -> None:
    """The inbox names a row's category, department and assignee from look-ups read once a
    page (not from joined rows): what an admin typed there is escaped wherever it shows."""
    from core.models import Department, Staff

    ticket = _hostile(desk)
    Department.update(name='Sup<b>port</b> & "co"').where(
        Department.id == desk.support.id).execute()
    Staff.update(name="<i>Agus</i>").where(Staff.id == desk.agent.id).execute()
    Ticket.update(assignee=desk.agent.id).where(Ticket.id == ticket.id).execute()
    sign_in(client, "agent@desk.test")
    html = client.get("/admin/tickets/").get_data(as_text=True)
    row = next(r for r in html.split("<tr") if f'value="{ticket.id}"' in r)
    assert '<td class="col-department">Sup&lt;b&gt;port&lt;/b&gt; &amp; &#34;co&#34;</td>' in row
    assert '<td class="col-assignee">&lt;i&gt;Agus&lt;/i&gt;</td>' in row
    assert "<b>port" not in html and "<i>Agus" not in html
    # The filters' choices (JSON in the page) and the "move to" actions.
    groups = re.search(r'id="filter-groups-data" class="d-none">(.*?)</div>', html, re.S)
    assert groups is not None and "<" not in groups.group(1)
    assert '\\u003ci\\u003eAgus\\u003c/i\\u003e' in groups.group(1)
    assert "Move to Sup&lt;b&gt;port&lt;/b&gt; &amp; &#34;co&#34;" in html


def test_every_tab_keeps_an_agent_to_their_departments(desk: Any, client: Any, app: Any) -> None:
    from core.services.tickets import Actor, change_status, update_ticket

    theirs = new_ticket(desk.login, subject="In support")
    elsewhere = new_ticket(desk.login, email="b@example.test", subject="Moved to billing")
    update_ticket(elsewhere, Actor.agent(desk.admin), department=desk.billing)
    closed = new_ticket(desk.login, email="c@example.test", subject="Closed in billing")
    update_ticket(closed, Actor.agent(desk.admin), department=desk.billing)
    change_status(closed, Status.CLOSED, Actor.agent(desk.admin))
    sign_in(client, "agent@desk.test")
    view = _view(app)
    html = client.get("/admin/tickets/").get_data(as_text=True)
    tabs = re.findall(r'<li class="nav-item"><a class="nav-link" href="(/admin/tickets/[^"]+)">',
                      html)
    assert len(tabs) == len(view.TABS)
    assert theirs.subject in html
    for url in ["/admin/tickets/", *tabs]:
        page = client.get(url.replace("&amp;", "&"))
        assert page.status_code == 200, url
        text = page.get_data(as_text=True)
        assert elsewhere.subject not in text and closed.subject not in text, url
    # The same "any status" tab lists it to an admin: the tab reached closed tickets.
    sign_in(admin := app.test_client(), "admin@desk.test")
    assert closed.subject in admin.get(tabs[-1].replace("&amp;", "&")).get_data(as_text=True)


def test_the_inbox_query_joins_only_the_contact_and_rows_still_name_the_rest(
        desk: Any, client: Any) -> None:
    """Categories, departments and staff are named from the page's look-ups, so the list's
    query joins none of them (on PostgreSQL each unused join cost planning time)."""
    ticket = new_ticket(desk.payments, subject="Charged twice")
    Ticket.update(assignee=desk.agent.id).where(Ticket.id == ticket.id).execute()
    sign_in(client, "agent@desk.test")
    with Statements() as caught:
        html = client.get("/admin/tickets/").get_data(as_text=True)
    statements = caught.text  # a prepared page read through its name
    (listed,) = [sql for sql in statements if 'FROM "ticket"' in sql and "LIMIT" in sql]
    assert 'JOIN "contact"' in listed
    for table in ("category", "department", "staff"):
        assert f'JOIN "{table}"' not in listed
    row = html.split(f'href="/admin/ticket/{ticket.id}/"', 1)[1].split("</tr>", 1)[0]
    assert "Payments and subscriptions" in row and "Support" in row
    assert "Agus Agent" in row and "Cora Customer" in row
