"""The public billing page, its statement search and billing form; escalation; plugin off."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest

from core import db as core_db
from core.models import Message, Priority, Ticket, TicketEvent
from core.services.tickets import Identity, open_ticket

from .factories import build_desk, fresh_rate_window

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def billing(make_app: Any) -> Any:
    app = make_app(plugins=["billing_desk"], **{"billing_desk.email": "billing@desk.test"})
    with app.app_context(), core_db.connection():
        desk = build_desk()
        from plugins.billing_desk.demo import load

        load()
        app.desk = desk
    return app


def form_page(client: Any, query: str = "") -> tuple[str, str]:
    """The billing form's HTML and the CSRF token and submission id it carries."""
    html = client.get(f"/billing/new{query}").get_data(as_text=True)
    token = TOKEN.search(html).group(1)
    return html, token


def good_answers(token: str, **changes: Any) -> dict[str, Any]:
    answers = {"csrf_token": token, "name": "Maria Reyes", "email": "maria@example.test",
               "billing_center": "Epoch", "request_kind": "refund",
               "transaction_id": "EP-55102", "amount": "29.99", "currency": "USD",
               "charged_on": dt.date.today().isoformat(),
               "description": "I cancelled on the 3rd and was charged on the 5th."}
    answers.update(changes)
    return answers


def post_form(app: Any, **changes: Any) -> Any:
    client = app.test_client()
    _html, token = form_page(client)
    return client.post("/billing/new", data=good_answers(token, **changes))


# -- The page and the statement search --------------------------------------------------------


@pytest.mark.parametrize("lang, heading", [("en", "Who charged you?"), ("id", None),
                                           ("fil", None)])
def test_the_billing_page_lists_centers_with_contacts_in_each_language(billing, lang, heading):
    page = billing.test_client().get(f"/billing/?lang={lang}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'lang="{lang}"' in html
    assert "CCBill" in html and "billing-support@epoch.example" in html
    assert "EPOCH *SUPPORT" in html  # what to look for on a statement
    assert 'action="/billing/"' in html and 'name="q"' in html  # search works without JS
    if heading:
        assert heading in html


@pytest.mark.parametrize("statement, center", [
    ("POS 12/03 CCBILL.COM*SITE 888-596-9279 AZ", "CCBill"),
    ("epoch *support 310 664 5810", "Epoch"),
    ("EPOCH.COM    29.95 USD", "Epoch"),
    ("Segpay*EU   EUR 24,95", "Segpay"),
    ("vtsup.com*12345 NL", "Verotel"),
    ("C C B I L L . C O M", "CCBill"),
])
def test_the_search_finds_the_center_from_messy_statement_text(billing, statement, center):
    page = billing.test_client().get("/billing/", query_string={"q": statement})
    html = page.get_data(as_text=True)
    assert f"This charge comes from {center}" in html


@pytest.mark.parametrize("statement", ["EPOCHAL TIMES SUBSCRIPTION", "AMAZON MKTPLACE 123",
                                       "<script>alert(1)</script>"])
def test_the_search_does_not_guess_and_escapes_what_was_typed(billing, statement):
    html = billing.test_client().get("/billing/", query_string={"q": statement}) \
        .get_data(as_text=True)
    assert "This charge comes from" not in html
    assert "We did not recognise that text" in html
    assert "<script>alert(1)</script>" not in html


def test_descriptor_lookup_reads_any_alias_and_ignores_inactive_centers(billing):
    from plugins.billing_desk.centers import active_centers, match_center
    from plugins.billing_desk.models import BillingCenter

    with billing.app_context(), core_db.connection():
        centers = active_centers()
        assert match_center("CARDBILLING.COM 0800", centers).center.name == "Verotel"
        assert match_center("thanks to Segpay", centers).descriptor == "Segpay"
        BillingCenter.update(active=False).where(BillingCenter.name == "Verotel").execute()
        assert match_center("VTSUP.COM", active_centers()) is None


def test_the_help_center_links_the_billing_page(billing):
    html = billing.test_client().get("/").get_data(as_text=True)
    assert 'href="/billing/"' in html


# -- The billing form ---------------------------------------------------------------------------


def test_the_billing_form_opens_a_routed_ticket_with_its_details(billing):
    from plugins.billing_desk.models import BillingCase

    response = post_form(billing)
    assert response.status_code == 302 and "/t/" in response.headers["Location"]
    with billing.app_context(), core_db.connection():
        ticket = Ticket.select().order_by(Ticket.id.desc()).first()
        assert ticket.department_id == billing.desk.billing.id
        assert {"billing", "epoch"} <= set(ticket.tags)
        assert ticket.form_data["amount"] == "29.99" and ticket.form_data["currency"] == "USD"
        case = BillingCase.get(BillingCase.ticket == ticket)
        assert case.center.name == "Epoch" and case.request_kind == "refund"
        assert case.amount == Decimal("29.99") and case.transaction_id == "EP-55102"
        assert case.charged_on == dt.date.today()
        assert ticket.escalation_level == 0


def test_the_form_offers_the_active_centers_and_preselects_one(billing):
    html, _ = form_page(billing.test_client(), "?center=Segpay")
    assert re.search(r'<option selected value="Segpay">|<option value="Segpay" selected',
                     html)
    assert "PayPal" in html


@pytest.mark.parametrize("changes, field, message", [
    ({"charged_on": (dt.date.today() + dt.timedelta(days=3)).isoformat()}, "charged_on",
     "cannot be in the future"),
    ({"amount": "10.999"}, "amount", "at most 2 decimals"),
    ({"amount": "1500.5", "currency": "JPY"}, "amount", "JPY amounts have no decimals"),
    ({"amount": "150.000", "currency": "IDR"}, "amount", "IDR amounts have no decimals"),
    ({"amount": "-20"}, "amount", "more than zero"),
    ({"amount": "0"}, "amount", "more than zero"),
    ({"amount": "99999999"}, "amount", "too large"),
    ({"amount": "12,50"}, "amount", "in digits"),
    ({"currency": "XYZ"}, "currency", "Not a valid choice"),
    ({"request_kind": "steal"}, "request_kind", "Not a valid choice"),
    ({"billing_center": "Nobody Inc"}, "billing_center", "Not a valid choice"),
    ({"email": "not an address"}, "email", "valid email address"),
    ({"description": "x" * 10_001}, "description", "10000"),
])
def test_bad_input_on_the_billing_form_is_refused_with_a_reason(billing, changes, field,
                                                               message):
    response = post_form(billing, **changes)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="{field}-errors"' in html
    assert message in html
    with billing.app_context(), core_db.connection():
        assert Ticket.select().count() == 0


def test_amounts_in_each_currency_keep_their_decimals(billing):
    for amount, currency, stored in [("1500", "JPY", "1500"), ("150000", "IDR", "150000"),
                                     ("150000.00", "IDR", "150000"), ("499.5", "PHP", "499.50"),
                                     ("20", "EUR", "20.00")]:
        assert post_form(billing, amount=amount, currency=currency).status_code == 302
        with billing.app_context(), core_db.connection():
            ticket = Ticket.select().order_by(Ticket.id.desc()).first()
            assert ticket.form_data["amount"] == stored, currency


def test_a_charge_today_in_manila_is_not_in_the_future(billing):
    tomorrow_utc = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()
    assert post_form(billing, charged_on=tomorrow_utc.isoformat()).status_code == 302


def test_the_billing_form_needs_its_csrf_token(make_app):
    app = make_app(plugins=["billing_desk"])
    client = app.test_client()
    form_page(client)
    response = client.post("/billing/new", data=good_answers("forged"))
    assert response.status_code == 400
    with app.app_context(), core_db.connection():
        assert Ticket.select().count() == 0


def test_the_same_form_sent_twice_opens_one_ticket(billing):
    client = billing.test_client()
    html, token = form_page(client)
    submission = re.search(r'id="submission" name="submission" type="hidden" value="([^"]+)"',
                           html).group(1)
    answers = good_answers(token, submission=submission)
    first = client.post("/billing/new", data=answers)
    second = client.post("/billing/new", data=answers)
    assert first.headers["Location"] == second.headers["Location"]
    with billing.app_context(), core_db.connection():
        assert Ticket.select().count() == 1


def test_a_filled_trap_field_opens_nothing(billing):
    response = post_form(billing, website="http://spam.example")
    assert response.status_code == 200
    with billing.app_context(), core_db.connection():
        assert Ticket.select().count() == 0


# -- Escalation: thresholds per currency, chargebacks -------------------------------------------


@pytest.mark.parametrize("amount, currency, escalates", [
    ("200.00", "USD", False), ("200.01", "USD", True), ("250", "EUR", True),
    ("30000", "JPY", False), ("30001", "JPY", True), ("2999999", "IDR", False),
    ("3000001", "IDR", True), ("9999.99", "PHP", False), ("10000.50", "PHP", True),
])
def test_a_dispute_above_its_currencys_threshold_escalates_at_once(billing, amount, currency,
                                                                   escalates):
    assert post_form(billing, amount=amount, currency=currency).status_code == 302
    with billing.app_context(), core_db.connection():
        ticket = Ticket.select().order_by(Ticket.id.desc()).first()
        assert (ticket.escalation_level == 1) is escalates
        if escalates:
            assert ticket.department_id == billing.desk.management.id  # billing's target
            assert ticket.priority == Priority.HIGH
            note = Message.get((Message.ticket == ticket) & Message.is_internal)
            assert f"above the {currency}" in note.body_text and note.author_kind == "system"
            event = TicketEvent.get((TicketEvent.ticket == ticket)
                                    & (TicketEvent.kind == "escalated"))
            assert "threshold" in event.detail
        else:
            assert ticket.department_id == billing.desk.billing.id


def test_asking_to_renew_for_a_large_amount_is_no_dispute(billing):
    post_form(billing, amount="900", request_kind="renew")
    with billing.app_context(), core_db.connection():
        assert Ticket.select().order_by(Ticket.id.desc()).first().escalation_level == 0


def test_thresholds_are_the_admins_to_set(billing):
    from plugins.billing_desk.models import DisputeThreshold

    with billing.app_context(), core_db.connection():
        DisputeThreshold.update(amount=Decimal("20")).where(
            DisputeThreshold.currency == "USD").execute()
    post_form(billing, amount="29.99")
    with billing.app_context(), core_db.connection():
        assert Ticket.select().order_by(Ticket.id.desc()).first().escalation_level == 1


@pytest.mark.parametrize("text", ["My bank started a chargeback for this",
                                  "Saya akan mengajukan chargeback ke bank",
                                  "Magcha-chargeback na lang ako sa bank"])
def test_a_chargeback_in_any_language_escalates_an_emailed_ticket(billing, text):
    from plugins.billing_desk.models import BillingCase

    with billing.app_context(), core_db.connection():
        ticket = open_ticket(identity=Identity("email", "c@example.test"), subject="Charge",
                             text=text, channel="web", category=billing.desk.login)
        fresh = Ticket.get_by_id(ticket.id)
        assert fresh.escalation_level == 1 and "chargeback" in fresh.tags
        assert fresh.department_id == billing.desk.management.id
        assert "chargeback" in BillingCase.get(BillingCase.ticket == fresh).escalation_reason


def test_an_amount_written_in_the_text_counts_against_the_threshold(billing):
    with billing.app_context(), core_db.connection():
        small = open_ticket(identity=Identity("email", "c@example.test"), subject="Refund",
                            text="Please refund the $25 charge", category=billing.desk.login)
        large = open_ticket(identity=Identity("email", "c@example.test"), subject="Refund",
                            text="Saya ditagih Rp 5.000.000, tolong refund",
                            category=billing.desk.login)
        assert Ticket.get_by_id(small.id).escalation_level == 0
        assert Ticket.get_by_id(large.id).escalation_level == 1


def test_a_center_named_in_the_text_is_recorded_and_tagged(billing):
    from plugins.billing_desk.models import BillingCase

    with billing.app_context(), core_db.connection():
        ticket = open_ticket(identity=Identity("email", "c@example.test"), subject="What?",
                             text="What is SEGPAY*EU on my statement?",
                             category=billing.desk.login)
        fresh = Ticket.get_by_id(ticket.id)
        assert "segpay" in fresh.tags and fresh.department_id == billing.desk.billing.id
        case = BillingCase.get(BillingCase.ticket == fresh)
        assert case.center.name == "Segpay" and case.matched == "SEGPAY*EU"


def test_a_center_may_have_its_own_department(billing):
    from core.models import Department
    from plugins.billing_desk.models import BillingCenter

    with billing.app_context(), core_db.connection():
        europe = Department.create(slug="billing-eu", name="Billing Europe",
                                   escalates_to=billing.desk.management)
        BillingCenter.update(department=europe).where(BillingCenter.name == "Segpay").execute()
    post_form(billing, billing_center="Segpay", amount="10")
    with billing.app_context(), core_db.connection():
        assert Ticket.select().order_by(Ticket.id.desc()).first().department_id == europe.id


# -- With the plugin off, none of it runs -------------------------------------------------------


def test_with_the_plugin_disabled_routing_is_cores(make_app):
    app = make_app(plugins=[])
    with app.app_context(), core_db.connection():
        desk = build_desk()
        ticket = open_ticket(identity=Identity("email", "c@example.test"), subject="Refund",
                             text="Refund my payment, I want a chargeback of USD 900",
                             category=desk.login)
        fresh = Ticket.get_by_id(ticket.id)
        assert fresh.department_id == desk.support.id and fresh.escalation_level == 0
        assert "billing" not in fresh.tags
    client = app.test_client()
    assert client.get("/billing/").status_code == 404
    assert 'href="/billing/"' not in client.get("/").get_data(as_text=True)


def test_field_choices_billing_center_question_offers_the_active_centers(billing):
    from core.models import CategoryField, FieldKind
    from plugins.billing_desk.models import BillingCenter

    with billing.app_context(), core_db.connection():
        CategoryField.create(category=billing.desk.payments, name="billing_center",
                             label="Billing center", kind=FieldKind.CHOICE,
                             choices="CCBill\nOld Processor", position=1)
        BillingCenter.update(active=False).where(BillingCenter.name == "PayPal").execute()
    billing.config["WTF_CSRF_ENABLED"] = False
    client = billing.test_client()
    html = client.get("/help/member/payments-and-subscriptions/new").get_data(as_text=True)
    for name in ("CCBill", "Epoch", "Segpay", "Verotel"):
        assert f">{name}</option>" in html
    assert "Old Processor" not in html and ">PayPal</option>" not in html
    page = client.get("/help/member/payments-and-subscriptions/new").get_data(as_text=True)
    submission = re.search(r'name="submission" type="hidden" value="([^"]+)"', page)
    response = client.post("/help/member/payments-and-subscriptions/new", data={
        "name": "Oliver", "email": "oliver@example.test", "subject": "Two charges",
        "description": "Two charges this month", "extra_billing_center": "Epoch",
        "submission": submission.group(1) if submission else ""})
    assert response.status_code == 302
    with billing.app_context(), core_db.connection():
        from plugins.billing_desk.models import BillingCase

        ticket = Ticket.select().order_by(Ticket.id.desc()).first()
        assert ticket.form_data["billing_center"] == "Epoch"
        assert BillingCase.get(BillingCase.ticket == ticket).center.name == "Epoch"


def test_the_billing_form_shares_the_help_center_forms_rate_limits(make_app):
    app = make_app(plugins=["billing_desk"], rate_limits=True,
                   rate_limit_open_ticket="1000/minute", rate_limit_open_ticket_contact="2/minute")
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    fresh_rate_window()
    answers = good_answers("", email="same@example.test", billing_center="")
    assert [client.post("/billing/new", data=answers).status_code for _ in range(3)] == [
        302, 302, 429]
    # The same counter as the help center's own form: that one is used up too.
    form = client.post("/help/member/registration-and-login/new",
                       data={"email": "same@example.test"})
    assert form.status_code == 429


def test_a_center_web_page_that_is_not_http_is_never_a_link(billing):
    from plugins.billing_desk.models import BillingCenter

    with billing.app_context(), core_db.connection():
        # Written past the console's check (an import, a script): the page still refuses it.
        BillingCenter.update(website="javascript:alert(1)").where(
            BillingCenter.name == "Epoch").execute()
    html = billing.test_client().get("/billing/").get_data(as_text=True)
    assert "javascript:" not in html and "https://support.ccbill.com" in html
