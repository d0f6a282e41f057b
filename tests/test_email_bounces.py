"""Bounces and other machine mail: understood, marked on the mail they concern, never a ticket."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest

from core import db
from core.models import AuthorKind, Delivery, Message, Status, Ticket
from core.services import tickets
from plugins.email_intake import loops
from plugins.email_intake.bounces import read
from plugins.email_intake.failed import FailedMail
from plugins.email_intake.ingest import ingest_raw
from plugins.email_intake.parse import parse
from tests.factories import build_desk
from tests.test_email_ingest import SUPPORT, mail, mail_settings
from tests.test_email_out import Mailbox, smtp  # noqa: F401 (the fixture)

from .conftest import shared_corpus

# The families sisimai's expectations name, and the kinds each may be read as. A
# complaint an MTA sends as a bounce (Amazon SES's "Complaint") is a complaint here;
# Apple Mail's "unsubscribe" answer, which sisimai files under feedback, is an auto-reply.
ALLOWED = {
    "bounce": {loops.BOUNCE},
    "feedback-report": {loops.FEEDBACK, loops.AUTO_REPLY},
    "auto-reply": {loops.AUTO_REPLY},
    "delivery-status-success": {loops.DELIVERED},
}


# sisimai reads through a forwarded bounce; a help desk must not: a customer forwarding
# us the bounce they got is a person asking for help, and gets a ticket.
PEOPLE = {"maildir/bsd/lhost-sendmail-14.eml": "Fwd: Returned mail: see transcript for details"}


def _sisimai() -> tuple[Path, dict[str, Any]]:
    folder = shared_corpus("bounces", "sisimai")
    return folder, json.loads((folder / "expected.json").read_text("utf-8"))


def test_every_sisimai_bounce_is_read_as_machine_mail_of_its_kind() -> None:
    folder, expected = _sisimai()
    found: collections.Counter[tuple[str, str]] = collections.Counter()
    wrong = []
    for name, case in expected.items():
        if not name.startswith("maildir/bsd/"):
            continue
        verdict = loops.classify(parse((folder / name).read_bytes()))
        allowed = {loops.HUMAN} if name in PEOPLE else set(ALLOWED[case["kind"]])
        if any(r.get("reason") == "feedback" for r in case.get("sisimai", {}).get("recipients", [])):
            allowed.add(loops.FEEDBACK)
        found[case["kind"], verdict.kind] += 1
        if verdict.kind not in allowed:
            wrong.append((name, case["kind"], verdict))
    total = sum(found.values())
    machine = total - found["bounce", loops.HUMAN]
    print(f"\nsisimai: {machine}/{total} read as machine mail of their kind, "
          f"{total - machine} a person's forward; {dict(found)}")
    assert total == 629
    assert wrong == []
    assert found["bounce", loops.HUMAN] == len(PEOPLE)


def test_no_sisimai_bounce_opens_a_ticket(make_app: Any) -> None:
    folder, expected = _sisimai()
    app = make_app(plugins=["email_intake"], **{"email_intake.address": SUPPORT})
    outcomes: collections.Counter[str] = collections.Counter()
    ids = set()
    with app.app_context(), db.connection():
        for name in sorted(expected):
            if not name.startswith("maildir/bsd/"):
                continue
            raw = (folder / name).read_bytes()
            result = ingest_raw(raw, via="pipe")
            assert result.stored, (name, result)
            if name in PEOPLE:
                assert result.outcome == "new_ticket", (name, result)
                assert Ticket.get_by_id(result.ticket_number).subject == PEOPLE[name]
                continue
            ids.add(parse(raw).external_id)
            assert result.ticket_number is None, (name, result)
            outcomes[result.outcome] += 1
        assert Ticket.select().count() == len(PEOPLE)
        assert Message.select().where(Message.author_kind == AuthorKind.CONTACT).count() == \
            len(PEOPLE)
        # None of ours: each is in the failed-mail list, whole, for an admin to see (once
        # per Message-ID: the corpus reuses some ids, as a resent report would).
        assert FailedMail.select().count() == len(ids)
        assert {row.message_id for row in FailedMail.select()} == ids
    assert set(outcomes) <= {"bounce", "auto_reply"}
    print(f"\nsisimai through ingest_raw: {dict(outcomes)}, no ticket")


# -- Bounces of the desk's own mail ------------------------------------------------------------


@pytest.fixture
def sent(make_app: Any, smtp: tuple[Mailbox, int]) -> Any:  # noqa: F811
    """A ticket whose agent reply went out by SMTP: (ticket, the reply, its Message-ID)."""
    _, port = smtp
    app = make_app(**mail_settings(port))
    with app.app_context(), db.connection():
        desk = build_desk()
        first = ingest_raw(mail(sender="rina@example.test"), via="pipe")
        ticket = Ticket.get_by_id(first.ticket_number)
        reply = tickets.reply(ticket, desk.agent, "Please try the reset link.")
        reply = Message.get_by_id(reply.id)
        assert reply.delivery_state == Delivery.SENT and reply.external_id.startswith("<")
        yield ticket, reply


def dsn(original_id: str, action: str = "failed", status: str = "5.1.1",
        diagnostic: str = "smtp; 550 5.1.1 <rina@example.test>: Recipient address rejected") -> bytes:
    body = (
        "--r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.test\r\n\r\n"
        f"Final-Recipient: rfc822; rina@example.test\r\nAction: {action}\r\n"
        f"Status: {status}\r\nDiagnostic-Code: {diagnostic}\r\n"
        "--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {SUPPORT}\r\nTo: rina@example.test\r\nMessage-ID: {original_id}\r\n"
        "--r--\r\n")
    return ("From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\r\n"
            "To: help@desk.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "Message-ID: <bounce-1@mx.example.test>\r\nAuto-Submitted: auto-replied\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n"
            "\r\n" + body).encode()


def notes(ticket: Ticket) -> list[str]:
    return [m.body_text for m in Message.select().where(
        (Message.ticket == ticket.id) & Message.is_internal)]


def test_a_bounce_marks_our_mail_failed_with_the_reason_and_notes_it(sent: Any) -> None:
    ticket, reply = sent
    status_before = Ticket.get_by_id(ticket.id).status
    result = ingest_raw(dsn(reply.external_id), via="imap")
    assert (result.stored, result.outcome, result.ticket_number) == (True, "bounce", ticket.id)
    failed = Message.get_by_id(reply.id)
    assert failed.delivery_state == Delivery.FAILED
    assert "5.1.1" in failed.delivery_error and "Recipient address rejected" in failed.delivery_error
    (note,) = notes(ticket)
    assert "rina@example.test" in note and "bounced (5.1.1)" in note
    assert Ticket.select().count() == 1
    assert Ticket.get_by_id(ticket.id).status == status_before
    assert Message.select().where(Message.author_kind == AuthorKind.CONTACT).count() == 1
    # The same bounce again: nothing more.
    assert ingest_raw(dsn(reply.external_id), via="pipe").outcome == "bounce"
    assert len(notes(ticket)) == 1


def test_a_delay_is_noted_without_failing_and_a_success_report_marks_delivered(sent: Any) -> None:
    ticket, reply = sent
    ingest_raw(dsn(reply.external_id, action="delayed", status="4.4.1",
                   diagnostic="smtp; 451 4.4.1 try again later"), via="pipe")
    assert Message.get_by_id(reply.id).delivery_state == Delivery.SENT
    assert any("delayed (4.4.1)" in n for n in notes(ticket))
    ingest_raw(dsn(reply.external_id, action="delivered", status="2.0.0",
                   diagnostic="smtp; 250 ok"), via="pipe")
    assert Message.get_by_id(reply.id).delivery_state == Delivery.DELIVERED


@pytest.mark.parametrize("name", ["lhost-gmail-01", "lhost-exim-01", "lhost-qmail-01",
                                  "lhost-office365-01", "lhost-sendmail-01", "rfc3464-01"])
def test_real_bounces_of_many_mtas_find_our_mail_by_its_message_id(sent: Any, name: str) -> None:
    folder, _ = _sisimai()
    raw = (folder / "maildir" / "bsd" / f"{name}.eml").read_bytes()
    originals = read(parse(raw)).original_ids
    assert originals, name
    ticket, reply = sent
    for original in originals:  # as if the returned mail had been ours
        raw = raw.replace(original.encode(), reply.external_id.encode())
    result = ingest_raw(raw, via="imap")
    assert (result.outcome, result.ticket_number) == ("bounce", ticket.id), result
    assert Message.get_by_id(reply.id).delivery_state == Delivery.FAILED
    assert len(notes(ticket)) == 1 and Ticket.select().count() == 1


def test_a_bounce_for_mail_we_never_sent_is_kept_in_the_failed_list(sent: Any) -> None:
    result = ingest_raw(dsn("<someone-else@elsewhere.test>"), via="http")
    assert result.stored and result.outcome == "bounce" and result.ticket_number is None
    row = FailedMail.get()
    assert row.outcome == "bounce" and "no mail of ours" in row.reason
    assert Ticket.select().count() == 1


def test_a_bounce_never_reopens_or_answers(sent: Any, smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    box, _ = smtp
    ticket, reply = sent
    tickets.change_status(ticket, Status.RESOLVED, tickets.SYSTEM)
    before = len(box.mails)
    ingest_raw(dsn(reply.external_id), via="pipe")
    assert Ticket.get_by_id(ticket.id).status == Status.RESOLVED
    assert len(box.mails) == before


def test_a_customer_forwarding_a_bounce_is_a_person_writing(sent: Any) -> None:
    forwarded = mail(subject="Fwd: Undelivered Mail Returned to Sender",
                     text="My mail to you bounced, see below.",
                     files=[("bounce.eml", dsn("<theirs@example.test>"), "message/rfc822")])
    result = ingest_raw(forwarded, via="pipe")
    assert result.outcome == "new_ticket"
