"""People in the customer's Cc receive an agent's reply when the agent chooses them.

End to end: the customer's mail (with a Cc) goes through the product's own ingest, the
agent answers from the console's reply form, the outbox hands the reply to the email
channel, and a real SMTP server (aiosmtpd) says who it was delivered to.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from core import db
from core.models import Contact, Delivery, Message, Ticket, TicketParticipant
from core.services import tickets
from core.services.tickets import ServiceError, copy_candidates
from tests.factories import build_desk

from . import test_email_out
from .test_admin_helpers import post, sign_in
from .test_email_out import Mailbox, text_of

# The real SMTP server and the app that sends to it, shared with test_email_out.py.
smtp = test_email_out.smtp
mail_app = test_email_out.mail_app

pytest.importorskip("aiosmtpd", reason="aiosmtpd is in the test extras")

CUSTOMER = "rina@example.test"
BOSS = "budi@example.test"
COLLEAGUE = "sari@example.test"


def customer_mail_with_copies() -> bytes:
    return (f"From: Rina <{CUSTOMER}>\r\nTo: help@desk.test\r\n"
            f"Cc: Budi <{BOSS}>, {COLLEAGUE},\r\n"
            "Subject: Payout missing\r\nMessage-ID: <payout-1@example.test>\r\n"
            "Date: Sun, 29 Nov 2026 08:00:00 +0000\r\n\r\n"
            "My payout for October has not arrived.\r\n").encode()


def ingest(app: Any) -> tuple[Ticket, dict[str, int]]:
    from plugins.email_intake.ingest import ingest_raw

    with app.app_context(), db.connection():
        build_desk()
        result = ingest_raw(customer_mail_with_copies(), via="pipe")
        ticket = Ticket.get_by_id(result.ticket_number)
        people = {c.email: c.id for c in Contact.select().join(
            TicketParticipant, on=TicketParticipant.contact == Contact.id).where(
            TicketParticipant.ticket == ticket.id)}
        return ticket, people


def reply_mails(mailbox: Mailbox, ticket: Ticket) -> list[Any]:
    """Mails of agent replies (notifications aside) the server accepted for this ticket."""
    return [(env, mail) for env, mail in mailbox.mails
            if mail["X-Loket-Ticket"] == str(ticket.id) and "Auto-Submitted" not in mail]


def the_reply(app: Any, ticket: Ticket, text: str) -> Message:
    with app.app_context(), db.connection():
        return Message.select().where((Message.ticket == ticket.id)
                                      & (Message.body_text == text)).get()


def test_the_reply_form_offers_the_participants_ticked_and_copies_the_reply(
        mail_app: Any, smtp: tuple[Mailbox, int]) -> None:
    mailbox, _ = smtp
    ticket, people = ingest(mail_app)
    assert set(people) == {BOSS, COLLEAGUE}
    client = mail_app.test_client()
    sign_in(client, "admin@desk.test")
    page = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert 'id="reply-copy-to"' in page
    for address in (BOSS, COLLEAGUE):
        assert address in page
    # The default is reply-all: both boxes are ticked.
    boxes = re.findall(r'<input[^>]*name="copy_to"[^>]*>', page)
    assert len(boxes) == 2 and all(" checked" in box for box in boxes)
    response = post(client, f"/admin/ticket/{ticket.id}/reply",
                    {"text": "Your payout was sent today.", "status": "pending",
                     "copy_to": [people[BOSS], people[COLLEAGUE]]},
                    token_from=f"/admin/ticket/{ticket.id}/")
    assert response.status_code == 302
    reply = the_reply(mail_app, ticket, "Your payout was sent today.")
    assert reply.delivery_state == Delivery.SENT
    assert reply.copy_to.split() == [BOSS, COLLEAGUE]
    [(envelope, mail)] = reply_mails(mailbox, ticket)
    assert sorted(envelope.rcpt_tos) == sorted([CUSTOMER, BOSS, COLLEAGUE])
    assert mail["To"] == CUSTOMER
    assert mail["Cc"] == f"{BOSS}, {COLLEAGUE}"
    # The tracking link is the customer's key: a copied reply carries the number only.
    body = text_of(mail)
    assert f"Ticket #{ticket.id}" in body and ticket.access_key not in body
    shown = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert f"copy to {BOSS}, {COLLEAGUE}" in shown


def test_a_participant_the_agent_unticks_is_not_mailed(mail_app: Any,
                                                       smtp: tuple[Mailbox, int]) -> None:
    mailbox, _ = smtp
    ticket, people = ingest(mail_app)
    client = mail_app.test_client()
    sign_in(client, "admin@desk.test")
    post(client, f"/admin/ticket/{ticket.id}/reply",
         {"text": "Only Budi needs this.", "status": "pending", "copy_to": [people[BOSS]]},
         token_from=f"/admin/ticket/{ticket.id}/")
    [(envelope, mail)] = reply_mails(mailbox, ticket)
    assert sorted(envelope.rcpt_tos) == sorted([CUSTOMER, BOSS])
    assert mail["Cc"] == BOSS and COLLEAGUE not in mail.as_string()
    # Nothing ticked: the customer alone, no Cc header at all.
    post(client, f"/admin/ticket/{ticket.id}/reply",
         {"text": "Just to you.", "status": "pending"},
         token_from=f"/admin/ticket/{ticket.id}/")
    (envelope, mail) = reply_mails(mailbox, ticket)[-1]
    assert envelope.rcpt_tos == [CUSTOMER] and mail["Cc"] is None
    assert ticket.access_key in text_of(mail)  # the customer alone gets the link again


def test_a_tampered_form_cannot_copy_the_reply_to_anyone_outside_the_ticket(
        mail_app: Any, smtp: tuple[Mailbox, int]) -> None:
    mailbox, _ = smtp
    ticket, people = ingest(mail_app)
    with mail_app.app_context(), db.connection():
        # Someone the desk knows, a participant of another ticket: still not this one's.
        other = tickets.receive_message(
            channel="email", identity=tickets.Identity("email", "eve@evil.test",
                                                       email="eve@evil.test"),
            subject="Other", text="Other ticket", external_id="<other@evil.test>",
            notify=False)
        outsider = other.ticket.contact_id
        customer = ticket.contact_id
    client = mail_app.test_client()
    sign_in(client, "admin@desk.test")
    before = len(mailbox.mails)
    for forged in ([outsider], [people[BOSS], outsider], [customer], ["eve@evil.test"],
                   [999999]):
        response = post(client, f"/admin/ticket/{ticket.id}/reply",
                        {"text": "Forged copy.", "status": "pending", "copy_to": forged},
                        token_from=f"/admin/ticket/{ticket.id}/")
        assert response.status_code == 302
    with mail_app.app_context(), db.connection():
        assert not Message.select().where(Message.body_text == "Forged copy.").exists()
    assert len(mailbox.mails) == before
    assert not any("eve@evil.test" in env.rcpt_tos for env, _ in mailbox.mails)


def test_the_service_refuses_copies_to_non_participants_and_on_channels_that_cannot_copy(
        mail_app: Any, smtp: tuple[Mailbox, int]) -> None:
    ticket, people = ingest(mail_app)
    with mail_app.app_context(), db.connection():
        agent = _agent()
        assert [c[2] for c in copy_candidates(ticket)] == [BOSS, COLLEAGUE]
        with pytest.raises(ServiceError):
            tickets.reply(ticket, agent, "x", copy_to=[ticket.contact_id])
        # A web ticket's reply waits on the tracking page: nothing to copy it with.
        web = tickets.open_ticket(
            identity=tickets.Identity("email", "web@example.test", email="web@example.test"),
            subject="Web", text="From the form", channel="web")
        TicketParticipant.create(ticket=web, contact=people[BOSS])
        assert copy_candidates(web) == []
        with pytest.raises(ServiceError):
            tickets.reply(web, agent, "x", copy_to=[people[BOSS]])
        assert not Message.select().where(Message.body_text == "x").exists()


def _agent() -> Any:
    from core.models import Staff

    return Staff.get(Staff.email == "agent@desk.test")
