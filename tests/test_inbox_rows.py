"""The inbox's rows, built in Python (``TicketListView.row_html``) instead of cell by cell
through Flask-Admin's list macros: the same cells its column formatters give, escaped."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import escape

from core.models import IdentityKind, Ticket
from core.services.access import inbox, waiting_on_us
from core.services.tickets import Identity, open_ticket

from .test_admin_helpers import sign_in


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
