"""The billing desk in the console: centers and phrases, the ticket panel, forwarding, report."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from core import db as core_db
from core.models import Message, Ticket, TicketEvent
from core.services.tickets import Identity, open_ticket

from .factories import build_desk
from .test_admin_helpers import csrf_token, post, sign_in

pytest.importorskip("aiosmtpd", reason="aiosmtpd is in the test extras")

from . import test_email_out as mail_out  # noqa: E402

Mailbox, text_of = mail_out.Mailbox, mail_out.text_of
smtp = mail_out.smtp  # the real SMTP server of the mail-out tests, as a fixture here too


def _desk(app: Any) -> Any:
    with app.app_context(), core_db.connection():
        desk = build_desk()
        from plugins.billing_desk.demo import load

        load()
        app.desk = desk
        app.billing_ticket = open_ticket(
            identity=Identity("email", "maria@example.test", email="maria@example.test"),
            subject="Charged twice", text="EPOCH.COM charged me twice, please refund",
            category=desk.login, form_data={"transaction_id": "EP-55102"})
        app.login_ticket = open_ticket(identity=Identity("email", "tom@example.test"),
                                       subject="Locked out", text="I cannot sign in",
                                       category=desk.login)
    return app


@pytest.fixture
def console(make_app: Any) -> Any:
    return _desk(make_app(plugins=["billing_desk"]))


@pytest.fixture
def mail_console(make_app: Any, smtp: tuple[Mailbox, int]) -> Any:
    _, port = smtp
    return _desk(make_app(plugins=["billing_desk", "email_intake"], **{
        "email_intake.address": "help@desk.test", "email_intake.smtp_host": "127.0.0.1",
        "email_intake.smtp_port": port, "email_intake.smtp_security": "none",
        "outbox_max_attempts": 1}))


def signed_in(app: Any, email: str) -> Any:
    client = app.test_client()
    sign_in(client, email)
    return client


# -- Admins keep the tables ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/admin/billing_centers/", "/admin/billing_phrases/",
                                 "/admin/billing_thresholds/"])
def test_only_admins_manage_centers_phrases_and_thresholds(console, url):
    assert signed_in(console, "billing@desk.test").get(url).status_code == 403
    assert signed_in(console, "admin@desk.test").get(url).status_code == 200
    assert console.test_client().get(url).status_code == 302  # to the sign-in page


def test_an_admin_adds_a_center_and_the_desk_uses_it_at_once(console):
    from plugins.billing_desk.models import BillingCenter

    client = signed_in(console, "admin@desk.test")
    token = csrf_token(client, "/admin/billing_centers/new/")
    response = client.post("/admin/billing_centers/new/", data={
        "csrf_token": token, "name": "Zombaio", "slug": "", "position": "9",
        "descriptors": "ZOMBAIO.COM\nZOMBAIO*", "email": "help@zombaio.example",
        "phone": "", "website": "https://zombaio.example", "notes": "", "active": "y"})
    assert response.status_code == 302
    with console.app_context(), core_db.connection():
        center = BillingCenter.get(BillingCenter.name == "Zombaio")
        assert center.slug == "zombaio"
        ticket = open_ticket(identity=Identity("email", "x@example.test"), subject="?",
                             text="what is ZOMBAIO*1234 on my card", category=console.desk.login)
        assert "zombaio" in Ticket.get_by_id(ticket.id).tags
    html = console.test_client().get("/billing/new").get_data(as_text=True)
    assert "Zombaio" in html  # the form's choices follow the table


@pytest.mark.parametrize("field, value, message", [
    ("website", "javascript:alert(1)", "must start with http"),
    ("descriptors", "EP\nEPOCH.COM", "at least three letters"),
    ("email", "not-an-address", "not an email address"),
])
def test_a_center_with_a_bad_value_is_refused(console, field, value, message):
    from plugins.billing_desk.models import BillingCenter

    client = signed_in(console, "admin@desk.test")
    token = csrf_token(client, "/admin/billing_centers/new/")
    data = {"csrf_token": token, "name": "Bad Pay", "slug": "", "position": "1",
            "descriptors": "BADPAY.COM", "email": "", "phone": "", "website": "",
            "notes": "", "active": "y"}
    data[field] = value
    html = client.post("/admin/billing_centers/new/", data=data,
                       follow_redirects=True).get_data(as_text=True)
    assert message in html
    with console.app_context(), core_db.connection():
        assert not BillingCenter.select().where(BillingCenter.name == "Bad Pay").exists()


def test_an_admins_new_phrase_routes_from_the_next_ticket(console):
    client = signed_in(console, "admin@desk.test")
    token = csrf_token(client, "/admin/billing_phrases/new/")
    response = client.post("/admin/billing_phrases/new/", data={
        "csrf_token": token, "text": "top-up", "language": "en", "kind": "strong",
        "request_kind": "", "active": "y"})
    assert response.status_code == 302
    with console.app_context(), core_db.connection():
        ticket = open_ticket(identity=Identity("email", "x@example.test"), subject="?",
                             text="my top-up did not arrive", category=console.desk.login)
        assert Ticket.get_by_id(ticket.id).department_id == console.desk.billing.id


# -- The panel on the ticket page ---------------------------------------------------------------


def test_the_ticket_panel_shows_the_case_and_the_centers_contact(console):
    client = signed_in(console, "billing@desk.test")
    html = client.get(f"/admin/ticket/{console.billing_ticket.id}/").get_data(as_text=True)
    assert "loket-billing-case" in html and "Epoch" in html and "EP-55102" in html
    assert "billing-support@epoch.example" in html and "+1 800 555 0102" in html
    # No channel sends email on this desk: no forward form, a hint instead.
    assert "loket-billing-forward" not in html and "No channel sends email" in html
    admin = signed_in(console, "admin@desk.test")
    other = admin.get(f"/admin/ticket/{console.login_ticket.id}/").get_data(as_text=True)
    assert "loket-billing-case" not in other  # not a billing ticket: no panel


# -- Forwarding to the center -------------------------------------------------------------------


def test_an_agent_forwards_the_case_to_the_center_by_email(mail_console, smtp):
    mailbox, _ = smtp
    ticket = mail_console.billing_ticket
    client = signed_in(mail_console, "billing@desk.test")
    page = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert "loket-billing-forward" in page and "Transaction or order id: EP-55102" in page
    with mail_console.app_context(), core_db.connection():
        from plugins.billing_desk.models import BillingCenter

        epoch = BillingCenter.get(BillingCenter.name == "Epoch")
        before = len(mailbox.mails)
    response = post(client, f"/admin/billing-forward/{ticket.id}",
                    {"center": str(epoch.id), "text": "Please refund EP-55102."},
                    token_from=f"/admin/ticket/{ticket.id}/")
    assert response.status_code == 302
    mails = [mail for envelope, mail in mailbox.mails[before:]
             if envelope.rcpt_tos == ["billing-support@epoch.example"]]
    assert len(mails) == 1
    body = text_of(mails[0])
    assert "Please refund EP-55102." in body
    assert ticket.access_key not in body and "/t/" not in body  # the customer's key stays
    assert mails[0]["In-Reply-To"] is None
    with mail_console.app_context(), core_db.connection():
        sent = Message.get((Message.ticket == ticket.id) & Message.is_internal
                           & (Message.recipient == "billing-support@epoch.example"))
        assert sent.delivery_state == "sent" and sent.staff.email == "billing@desk.test"
        assert TicketEvent.select().where((TicketEvent.ticket == ticket.id)
                                          & (TicketEvent.kind == "forwarded")).exists()
    # The customer never sees the forward on their tracking page.
    tracking = mail_console.test_client().get(f"/t/{ticket.id}/{ticket.access_key}")
    assert "Please refund EP-55102." not in tracking.get_data(as_text=True)


def test_forwarding_needs_csrf_a_visible_ticket_and_a_listed_center(mail_console, smtp):
    mailbox, _ = smtp
    ticket = mail_console.billing_ticket
    with mail_console.app_context(), core_db.connection():
        from plugins.billing_desk.models import BillingCenter

        epoch = BillingCenter.get(BillingCenter.name == "Epoch")
        verotel = BillingCenter.get(BillingCenter.name == "Verotel")
        BillingCenter.update(active=False).where(BillingCenter.id == verotel.id).execute()
    before = len(mailbox.mails)
    billing = signed_in(mail_console, "billing@desk.test")
    forged = billing.post(f"/admin/billing-forward/{ticket.id}",
                          data={"csrf_token": "forged", "center": str(epoch.id), "text": "x"})
    assert forged.status_code == 400
    support = signed_in(mail_console, "agent@desk.test")  # not in Billing: cannot see it
    hidden = post(support, f"/admin/billing-forward/{ticket.id}",
                  {"center": str(epoch.id), "text": "x"})
    assert hidden.status_code == 404
    inactive = post(billing, f"/admin/billing-forward/{ticket.id}",
                    {"center": str(verotel.id), "text": "x"})
    assert inactive.status_code == 302
    assert len(mailbox.mails) == before
    with mail_console.app_context(), core_db.connection():
        assert not Message.select().where((Message.ticket == ticket.id)
                                          & Message.is_internal).exists()


# -- The report ----------------------------------------------------------------------------------


def test_the_report_charts_billing_tickets_by_center_and_kind_with_csv(console):
    client = signed_in(console, "admin@desk.test")
    html = client.get("/admin/billing-report/").get_data(as_text=True)
    assert html.count("<svg") >= 2 and "Epoch" in html and "refund" in html
    centers = list(csv.reader(io.StringIO(
        client.get("/admin/billing-report/centers.csv").get_data(as_text=True))))
    assert centers[0] == ["week", "billing center", "tickets"]
    assert sum(int(row[2]) for row in centers[1:] if row[1] == "Epoch") == 1
    kinds = client.get("/admin/billing-report/kinds.csv")
    assert kinds.mimetype == "text/csv" and "attachment" in kinds.headers["Content-Disposition"]
    assert any(row[1] == "refund" and row[2] == "1"
               for row in csv.reader(io.StringIO(kinds.get_data(as_text=True))))
    assert client.get("/admin/billing-report/other.csv").status_code == 404


def test_the_report_shows_an_agent_only_their_departments_tickets(console):
    support = signed_in(console, "agent@desk.test")
    rows = list(csv.reader(io.StringIO(
        support.get("/admin/billing-report/centers.csv").get_data(as_text=True))))
    assert rows == [["week", "billing center", "tickets"]]


def test_report_csv_cells_cannot_run_as_spreadsheet_formulas():
    from plugins.billing_desk.admin import to_csv

    body = to_csv(["2026-01-05"], {"=HYPERLINK(\"http://x\")": [2]}, "billing center")
    assert "'=HYPERLINK" in body
