"""Core seams the billing desk needed, tested with small sample plugins of their own.

``field_choices`` (a plugin keeps a choice question's answers), ``ticket_panels``
(plugin boxes on the console's ticket page), ``load_demo_data`` (plugins' demo
rows in ``loket demo``), ``add_note`` by the desk itself and ``forward_by_email``.
"""

from __future__ import annotations

from typing import Any

import pytest
from markupsafe import Markup

from core import db as core_db
from core import hookimpl
from core.hookspecs import Panel
from core.models import CategoryField, Department, FieldKind, Message, TicketEvent
from core.services import tickets
from core.services.answers import check_answers, questions_of
from core.services.tickets import Actor, Identity, ServiceError

from .factories import build_desk
from .test_admin_helpers import new_ticket, sign_in


class Choices:
    """Offers the answers of the question named "center"; leaves others to the admin."""

    def __init__(self) -> None:
        self.offered = ["Alpha Pay", "Beta Bill"]
        self.asked: list[str] = []

    @hookimpl
    def field_choices(self, field: Any) -> list[str] | None:
        self.asked.append(field.name)
        return list(self.offered) if field.name == "center" else None


def test_field_choices_replace_the_admins_answers_on_the_form_and_in_the_check(make_app):
    plugin = Choices()
    app = make_app(extra_plugins=(plugin,))
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), core_db.connection():
        desk = build_desk()
        CategoryField.create(category=desk.payments, name="center", label="Center",
                             kind=FieldKind.CHOICE, choices="Old One\nOld Two", position=1)
        CategoryField.create(category=desk.payments, name="plan", label="Plan",
                             kind=FieldKind.CHOICE, choices="Monthly\nYearly", position=2)
        by_name = {q.name: q for q in questions_of(desk.payments.id)}
        assert by_name["center"].choices == ("Alpha Pay", "Beta Bill")
        assert by_name["plan"].choices == ("Monthly", "Yearly")  # None: the admin's list
        assert check_answers(by_name.values(), {"center": "Beta Bill"})[1] == {}
        assert "center" in check_answers(by_name.values(), {"center": "Old One"})[1]
        plugin.offered = ["Gamma Pay"]  # the plugin's list changes: the form follows at once
        page = app.test_client().get("/help/member/payments-and-subscriptions/new")
    html = page.get_data(as_text=True)
    assert "Gamma Pay" in html and "Alpha Pay" not in html and "Old One" not in html
    assert "center" in plugin.asked


class Panels:
    @hookimpl
    def ticket_panels(self, ticket: Any, staff: Any) -> list[Panel]:
        return [Panel("Second", Markup("<p class='p2'>for {}</p>").format(staff.name), order=20),
                Panel("First <b>", Markup("<p class='p1'>#{}</p>").format(ticket.id), order=10)]


def test_ticket_panels_are_shown_in_order_on_the_ticket_page(make_app):
    app = make_app(extra_plugins=(Panels(),))
    with app.app_context(), core_db.connection():
        desk = build_desk()
        ticket = new_ticket(desk.login)
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    html = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert html.index("class='p1'") < html.index("class='p2'")
    assert f"#{ticket.id}</p>" in html and "for Agus Agent" in html
    assert "First &lt;b&gt;" in html  # the title is text, escaped; the html is the plugin's


class DemoRows:
    def __init__(self) -> None:
        self.saw_departments: list[str] = []

    @hookimpl
    def load_demo_data(self) -> None:
        self.saw_departments = [d.slug for d in Department.select().order_by(Department.slug)]


def test_load_demo_data_runs_after_cores_demo_rows_before_its_tickets(make_app):
    from core.demo import load_demo

    plugin = DemoRows()
    app = make_app(plugins=["billing_desk"], extra_plugins=(plugin,))
    with app.app_context(), core_db.connection():
        load_demo(admin_password="demo password 123")
        from plugins.billing_desk.models import BillingCase, BillingCenter

        assert "billing" in plugin.saw_departments
        names = {c.name for c in BillingCenter.select()}
        assert {"CCBill", "Epoch", "Segpay", "Verotel"} <= names
        epoch = BillingCenter.get(BillingCenter.name == "Epoch")
        assert "EPOCH *SUPPORT" in epoch.descriptor_list()
        # The demo ticket that names Epoch was routed with the centers already there.
        assert BillingCase.select().where(BillingCase.center == epoch).exists()
        load_demo()  # again: nothing doubles
        assert BillingCenter.select().count() == len(names)


def test_a_note_without_staff_is_the_desks_own(desk):
    ticket = new_ticket(desk.login)
    note = tickets.add_note(ticket, None, "Escalated by a rule.")
    assert note.is_internal and note.author_kind == "system" and note.staff_id is None
    event = TicketEvent.get((TicketEvent.ticket == ticket) & (TicketEvent.kind == "note"))
    assert event.actor_kind == "system"


def test_forward_by_email_needs_a_channel_that_sends_email(desk):
    ticket = new_ticket(desk.payments)
    with pytest.raises(ServiceError, match="No enabled channel sends email"):
        tickets.forward_by_email(ticket, desk.billing_agent, "help@center.example", "hello")
    with pytest.raises(ServiceError, match="not an email address"):
        tickets.forward_by_email(ticket, desk.billing_agent, "not an address", "hello")
    assert not Message.select().where(Message.is_internal).exists()


def test_forward_by_email_queues_an_internal_mail_in_the_outbox(make_app):
    app = make_app(plugins=["email_intake"], **{
        "email_intake.address": "help@desk.test", "email_intake.smtp_host": "127.0.0.1",
        "email_intake.smtp_port": 1})
    with app.app_context(), core_db.connection():
        desk = build_desk()
        ticket = tickets.open_ticket(identity=Identity("email", "cust@example.test"),
                                     subject="Refund", text="refund please",
                                     category=desk.payments)
        sent = tickets.forward_by_email(ticket, desk.billing_agent, "help@center.example",
                                        "Please check this charge.")
        fresh = Message.get_by_id(sent.id)
        assert (fresh.is_internal, fresh.channel, fresh.recipient) == (
            True, "email", "help@center.example")
        assert fresh.delivery_state in ("queued", "failed") and fresh.delivery_key
        event = TicketEvent.get((TicketEvent.ticket == ticket)
                                & (TicketEvent.kind == "forwarded"))
        assert event.new_value == "help@center.example"
        assert Actor.agent(desk.billing_agent).staff == event.staff
