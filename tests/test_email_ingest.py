"""Mail in: threading, participants, de-duplication across the ways in, loops, the pipe, HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import peewee
import pytest

from core import db
from core.models import (
    Attachment,
    AuthorKind,
    Contact,
    Delivery,
    Message,
    Status,
    Ticket,
    TicketEvent,
    TicketParticipant,
)
from core.services import tickets
from plugins.email_intake import ingest as ingest_module
from plugins.email_intake.failed import FailedMail
from plugins.email_intake.ingest import ingest_raw, reply_address
from tests.factories import build_desk
from tests.processes import desk_env
from tests.test_admin_helpers import csrf_token, sign_in
from tests.test_email_out import Mailbox, smtp  # noqa: F401 (the fixture)

SUPPORT = "help@desk.test"
TOKEN = "inbound-token-for-tests"


def mail(sender: str = "rina@example.test", subject: str = "Cannot sign in",
         text: str = "My password is refused.", *, to: str = SUPPORT, cc: str = "",
         message_id: str | None = "", headers: dict[str, str] | None = None,
         html: str = "", files: list[tuple[str, bytes, str]] = ()) -> bytes:
    """A customer's mail as bytes; ``message_id=None`` leaves the header out."""
    msg = EmailMessage()
    msg["From"] = f"Rina <{sender}>" if sender else "nobody"
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    if message_id is not None:
        msg["Message-ID"] = message_id or make_msgid(domain="example.test")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    for filename, data, content_type in files:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def mail_settings(port: int, **more: Any) -> dict[str, Any]:
    """A desk that reads mail and sends it through the test's SMTP server."""
    return {"plugins": ["email_intake"], "email_intake.address": SUPPORT,
            "email_intake.smtp_host": "127.0.0.1", "email_intake.smtp_port": port,
            "email_intake.smtp_security": "none", "outbox_max_attempts": 1, **more}


@pytest.fixture
def mail_app(make_app: Any, smtp: tuple[Mailbox, int]) -> Any:  # noqa: F811
    _, port = smtp
    return make_app(**mail_settings(port, **{"email_intake.inbound_token": TOKEN}))


@pytest.fixture
def desk(mail_app: Any) -> Any:
    with mail_app.app_context(), db.connection():
        yield build_desk()


def messages(ticket_id: int) -> list[Message]:
    return list(Message.select().where(Message.ticket == ticket_id).order_by(Message.id))


def acknowledgement_id(ticket_id: int) -> str:
    ack = next(m for m in messages(ticket_id) if m.notification == "ticket_opened")
    assert ack.delivery_state == Delivery.SENT
    return ack.external_id


# -- A new ticket, and replies that find it -------------------------------------------------


def test_a_mail_opens_a_ticket_with_its_raw_original_and_an_acknowledgement(
        desk: Any, smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    box, _ = smtp
    result = ingest_raw(mail(html="<p>My <b>password</b> is refused.</p><script>x()</script>"),
                        via="pipe")
    assert result.stored and result.outcome == "new_ticket"
    ticket = Ticket.get_by_id(result.ticket_number)
    first = messages(ticket.id)[0]
    assert ticket.subject == "Cannot sign in" and ticket.channel == "email"
    assert first.body_text.strip() == "My password is refused."
    assert "<b>password</b>" in first.body_html and "script" not in first.body_html
    assert first.raw_type == "message/rfc822" and first.raw_size > 0
    (envelope, ack), = box.mails
    assert envelope.rcpt_tos == ["rina@example.test"]
    # The reply address routes home and holds a token no one can guess from the number.
    assert ack["Reply-To"] == reply_address(ticket.id, SUPPORT)
    assert ack["Reply-To"].startswith(f"help+t{ticket.id}-")


def test_a_reply_threads_by_in_reply_to_and_shows_only_the_new_text(desk: Any) -> None:
    first = ingest_raw(mail(), via="pipe")
    ticket = Ticket.get_by_id(first.ticket_number)
    tickets.reply(ticket, desk.agent, "Please try the reset link.")
    ours = messages(ticket.id)[-1].external_id
    quoted = ("Saya sudah mencoba, tetap gagal.\n\n"
              "Pada Sen, 1 Jan 2026 pukul 10.00 Support <help@desk.test> menulis:\n"
              "> Please try the reset link.\n> \n> Ticket #1\n")
    html = ("<div>Saya sudah mencoba, tetap gagal.</div><blockquote>Please try the reset "
            "link.</blockquote>")
    result = ingest_raw(mail(subject="Re: something else", text=quoted, html=html,
                             headers={"In-Reply-To": ours}), via="imap")
    assert (result.outcome, result.ticket_number) == ("reply", ticket.id)
    assert "In-Reply-To" in result.reason
    last = messages(ticket.id)[-1]
    assert last.author_kind == AuthorKind.CONTACT
    assert last.body_text == "Saya sudah mencoba, tetap gagal."
    # The console would show the HTML, quotes and all: the trimmed text stands instead.
    assert last.body_html == "" and last.raw_size > len(quoted)
    assert Ticket.get_by_id(ticket.id).status == Status.OPEN  # pending -> open


def test_a_reply_threads_by_references_and_by_a_filipino_quote_header(desk: Any) -> None:
    first = ingest_raw(mail(), via="pipe")
    ack = acknowledgement_id(first.ticket_number)
    text = ("Salamat po, gumana na.\n\nNoong Lun, Ene 1, 2026 nang 10:00, Support "
            "<help@desk.test> ay sumulat:\n> Hello\n> Hello again\n")
    result = ingest_raw(mail(subject="Re: ok", text=text,
                             headers={"References": f"<unknown@x.test> {ack}"}), via="http")
    assert (result.outcome, result.ticket_number) == ("reply", first.ticket_number)
    assert messages(first.ticket_number)[-1].body_text == "Salamat po, gumana na."


def test_a_reply_threads_by_the_reply_address_alone_but_not_with_a_forged_token(
        desk: Any) -> None:
    first = ingest_raw(mail(), via="pipe")
    home = reply_address(first.ticket_number, SUPPORT)
    result = ingest_raw(mail(subject="no headers at all", to=home), via="pipe")
    assert (result.outcome, result.ticket_number) == ("reply", first.ticket_number)
    forged = f"help+t{first.ticket_number}-{'0' * 20}@desk.test"
    other = ingest_raw(mail(sender="mallory@example.test", subject="hi", to=forged), via="pipe")
    assert other.outcome == "new_ticket" and other.ticket_number != first.ticket_number


def test_the_ticket_number_in_the_subject_threads_only_for_its_contact_and_participants(
        desk: Any) -> None:
    first = ingest_raw(mail(cc="Budi <budi@example.test>, "), via="pipe")
    number = first.ticket_number
    again = ingest_raw(mail(subject=f"[#{number}] one more thing"), via="pipe")
    assert (again.outcome, again.ticket_number) == ("reply", number)
    # Budi was in Cc: a participant, so his mail quoting the number joins too.
    budi = ingest_raw(mail(sender="budi@example.test", subject=f"Ticket #{number}"), via="pipe")
    assert (budi.outcome, budi.ticket_number) == ("reply", number)
    # A stranger quoting the number opens a ticket of their own.
    stranger = ingest_raw(mail(sender="mallory@example.test",
                               subject=f"[#{number}] add me please"), via="pipe")
    assert stranger.outcome == "new_ticket" and stranger.ticket_number != number
    assert all(m.contact.email != "mallory@example.test" for m in messages(number)
               if m.contact_id)


def test_a_stranger_citing_a_customers_message_id_does_not_join_their_ticket(
        desk: Any) -> None:
    first = ingest_raw(mail(message_id="<1001@mail.example.test>"), via="pipe")
    stranger = ingest_raw(mail(sender="mallory@example.test", subject="Re: Cannot sign in",
                               headers={"In-Reply-To": "<1001@mail.example.test>"}), via="pipe")
    assert stranger.outcome == "new_ticket" and stranger.ticket_number != first.ticket_number
    own = ingest_raw(mail(subject="Re: again", headers={"In-Reply-To": "<1001@mail.example.test>"}),
                     via="pipe")
    assert (own.outcome, own.ticket_number) == ("reply", first.ticket_number)


def test_people_in_cc_and_to_become_participants_but_our_own_addresses_do_not(
        desk: Any) -> None:
    result = ingest_raw(mail(to=f"{SUPPORT}, Dewi <dewi@example.test>",
                             cc="Budi <budi@example.test>, help+x@desk.test,"), via="pipe")
    rows = TicketParticipant.select().where(TicketParticipant.ticket == result.ticket_number)
    assert sorted(p.contact.email for p in rows) == ["budi@example.test", "dewi@example.test"]


# -- A batch of mails (a mailbox read many at a time) ------------------------------------------


def test_a_batch_ends_as_each_mail_alone_would(desk: Any, smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    box, _ = smtp
    first = mail(message_id="<b1@example.test>", cc="Budi <budi@example.test>")
    batch = [
        first,
        mail(sender="sari@example.test", subject="Refund", message_id="<b2@example.test>"),
        # Answers a mail of the same batch: the ticket that one opens.
        mail(subject="Re: Cannot sign in", text="Also my email.",
             headers={"In-Reply-To": "<b1@example.test>"}),
        first,  # delivered twice
        mail(sender=SUPPORT, subject="our own echo"),  # a loop, kept aside
        # Budi, copied on the first mail, quotes its number: he is its participant now.
        mail(sender="budi@example.test", subject="Ticket #1 too", message_id="<b5@example.test>"),
        mail(sender="tono@example.test", subject="Printer", message_id="<b6@example.test>"),
    ]
    results = ingest_module.ingest_batch(batch, via="imap")
    assert [(r.stored, r.outcome) for r in results] == [
        (True, "new_ticket"), (True, "new_ticket"), (True, "reply"), (True, "duplicate"),
        (True, "ignored_loop"), (True, "reply"), (True, "new_ticket")]
    opened = results[0].ticket_number
    assert opened == 1 and [r.ticket_number for r in results[2:4]] == [opened, opened]
    assert results[5].ticket_number == opened
    assert [m.body_text.strip() for m in messages(opened) if not m.notification] == [
        "My password is refused.", "Also my email.", "My password is refused."]
    assert Message.select().where(Message.external_id == "<b1@example.test>").count() == 1
    # Each new ticket is acknowledged once, after its commit.
    assert sorted(env.rcpt_tos[0] for env, _ack in box.mails) == [
        "rina@example.test", "sari@example.test", "tono@example.test"]


def test_a_reply_by_in_reply_to_alone_joins_the_ticket_a_mail_of_its_batch_opens(
        desk: Any) -> None:
    # No References and nobody copied: only its In-Reply-To ties it to the batch.
    results = ingest_module.ingest_batch([
        mail(sender="ayu@example.test", subject="Folder one", message_id="<r1@example.test>"),
        mail(sender="budi@example.test", subject="Other", message_id="<r2@example.test>"),
        mail(sender="ayu@example.test", subject="Re: Folder one", text="More detail.",
             headers={"In-Reply-To": "<r1@example.test>"})], via="imap")
    assert [r.outcome for r in results] == ["new_ticket", "new_ticket", "reply"]
    assert results[2].ticket_number == results[0].ticket_number


def count_write_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many mails each ``receive_messages`` call (one transaction) writes, in order."""
    sizes: list[int] = []
    real = tickets.receive_messages

    def counting(batch: list[dict[str, Any]]) -> list[Any]:
        sizes.append(len(batch))
        return real(batch)

    monkeypatch.setattr(tickets, "receive_messages", counting)
    return sizes


def test_a_batch_writes_at_most_write_batch_mails_a_transaction(
        desk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = count_write_batches(monkeypatch)
    monkeypatch.setattr(ingest_module, "WRITE_BATCH", 2)
    results = ingest_module.ingest_batch(
        [mail(sender=f"c{n}@example.test", subject=f"Question {n}") for n in range(5)],
        via="imap")
    assert [r.outcome for r in results] == ["new_ticket"] * 5
    assert sizes == [2, 2, 1]


def break_the_write(monkeypatch: pytest.MonkeyPatch, subject: str = "Breaks the write") -> None:
    """The ticket's write fails ("a fault in the write") for a mail with this subject only."""
    real = tickets._create_ticket

    def failing(opening: Any, **kwargs: Any) -> Any:
        if opening.subject == subject:
            raise ValueError("a fault in the write")
        return real(opening, **kwargs)

    monkeypatch.setattr(tickets, "_create_ticket", failing)


def test_a_mail_that_fails_in_a_batch_is_undone_alone_and_kept_aside(
        desk: Any, monkeypatch: pytest.MonkeyPatch, smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    box, _ = smtp
    break_the_write(monkeypatch)
    results = ingest_module.ingest_batch([
        mail(sender="ayu@example.test", subject="Before"),
        mail(sender="eko@example.test", subject="Breaks the write"),
        mail(sender="dian@example.test", subject="After")], via="imap")
    assert [(r.stored, r.outcome) for r in results] == [
        (True, "new_ticket"), (True, "failed_mail"), (True, "new_ticket")]
    assert sorted(t.subject for t in Ticket.select()) == ["After", "Before"]
    (kept,) = FailedMail.select()
    assert kept.subject == "Breaks the write" and "a fault in the write" in kept.reason
    # Nothing of it was written: not even the contact its write made first.
    assert not Contact.select().where(Contact.email == "eko@example.test").exists()
    assert sorted(env.rcpt_tos[0] for env, _ack in box.mails) == [
        "ayu@example.test", "dian@example.test"]


# -- The same mail twice, by any way in ------------------------------------------------------


def test_the_same_mail_by_pipe_and_by_http_is_one_message(mail_app: Any, desk: Any) -> None:
    raw = mail(message_id="<same-123@example.test>")
    first = ingest_raw(raw, via="pipe")
    response = mail_app.test_client().post(
        "/email/inbound", data=raw, content_type="message/rfc822",
        headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.json["outcome"] == "duplicate"
    assert response.json["ticket"] == first.ticket_number
    assert ingest_raw(raw, via="imap").outcome == "duplicate"
    assert Message.select().where(Message.author_kind == AuthorKind.CONTACT).count() == 1


def test_a_mail_without_message_id_is_recognised_by_its_content(desk: Any) -> None:
    raw = mail(message_id=None)
    first = ingest_raw(raw, via="pipe")
    assert ingest_raw(raw, via="http").outcome == "duplicate"
    assert messages(first.ticket_number)[0].external_id.startswith("sha256:")
    assert ingest_raw(mail(message_id=None, text="Different"), via="pipe").outcome == \
        "new_ticket"


# -- Loops and auto-replies -------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"Auto-Submitted": "auto-generated"}, {"Precedence": "bulk"}, {"Precedence": "list"},
    {"List-Id": "<news.example.test>"}, {"X-Auto-Response-Suppress": "All"},
], ids=lambda h: next(iter(h)))
def test_automatic_mail_opens_a_ticket_but_gets_no_acknowledgement(
        desk: Any, smtp: tuple[Mailbox, int], headers: dict[str, str]) -> None:  # noqa: F811
    box, _ = smtp
    result = ingest_raw(mail(sender="news@example.test", headers=headers), via="pipe")
    assert result.outcome == "new_ticket" and "not answered" in result.reason
    assert [m for m in messages(result.ticket_number) if m.notification] == []
    assert box.mails == []


def test_mail_from_our_own_address_is_a_loop_kept_in_the_failed_list(desk: Any) -> None:
    result = ingest_raw(mail(sender=SUPPORT), via="pipe")
    assert result.stored and result.outcome == "ignored_loop"
    plus = ingest_raw(mail(sender="help+t1-abc@desk.test", subject="echo"), via="pipe")
    assert plus.outcome == "ignored_loop"
    assert Ticket.select().count() == 0
    assert [row.outcome for row in FailedMail.select()] == ["ignored_loop", "ignored_loop"]


def test_an_out_of_office_reply_is_recorded_without_reopening_or_answering(
        desk: Any, smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    box, _ = smtp
    first = ingest_raw(mail(), via="pipe")
    ticket = Ticket.get_by_id(first.ticket_number)
    tickets.reply(ticket, desk.agent, "Please try again.")
    sent = len(box.mails)
    ours = messages(ticket.id)[-1].external_id
    ooo = mail(subject="Automatic reply: Cannot sign in", text="I am out of the office.",
               headers={"Auto-Submitted": "auto-replied", "In-Reply-To": ours})
    result = ingest_raw(ooo, via="imap")
    assert (result.outcome, result.ticket_number) == ("auto_reply", ticket.id)
    fresh = Ticket.get_by_id(ticket.id)
    assert fresh.status == Status.PENDING  # still waiting on the customer
    assert messages(ticket.id)[-1].body_text.startswith("I am out of the office.")
    assert len(box.mails) == sent
    # An auto-reply that answers nothing of ours opens no ticket.
    stray = ingest_raw(mail(subject="Out of office", headers={"Auto-Submitted": "auto-replied"}),
                       via="pipe")
    assert stray.outcome == "auto_reply" and stray.ticket_number is None
    assert Ticket.select().count() == 1


def test_notification_allowed_caps_automatic_mail_per_address(
        make_app: Any, smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    box, port = smtp
    app = make_app(**mail_settings(port, **{"email_intake.auto_mail_cap": 2}))
    with app.app_context(), db.connection():
        results = [ingest_raw(mail(subject=f"Question {n}"), via="pipe") for n in range(4)]
        assert [r.outcome for r in results] == ["new_ticket"] * 4
        assert len(box.mails) == 2  # the cap: two acknowledgements in the window
        withheld = TicketEvent.select().where(TicketEvent.kind == "notification_withheld")
        assert sorted(e.ticket_id for e in withheld) == [r.ticket_number for r in results[2:]]


# -- Mailboxes, files and failures ------------------------------------------------------------


@dataclass
class FakeMailbox:
    """What the IMAP engineer's Mailbox model offers ingest_raw."""

    address: str
    default_category: Any
    department: Any
    name: str = "Billing"


def test_a_mailbox_gives_new_tickets_its_category_and_department(desk: Any) -> None:
    box = FakeMailbox("billing@desk.test", desk.payments, desk.billing)
    result = ingest_raw(mail(to="billing@desk.test"), via="imap", mailbox=box)
    ticket = Ticket.get_by_id(result.ticket_number)
    assert ticket.category_id == desk.payments.id and ticket.department_id == desk.billing.id
    loop = ingest_raw(mail(sender="billing@desk.test"), via="imap", mailbox=box)
    assert loop.outcome == "ignored_loop"


def test_files_are_kept_and_refused_ones_are_named_in_a_note(desk: Any) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    exe = b"MZ\x90\x00" + b"\x00" * 64
    result = ingest_raw(mail(files=[("screen shot.png", png, "image/png"),
                                    ("tool.exe", exe, "application/octet-stream")]), via="pipe")
    rows = list(Attachment.select().where(Attachment.ticket == result.ticket_number))
    assert [r.filename for r in rows] == ["screen shot.png"]
    note = next(m for m in messages(result.ticket_number) if m.is_internal)
    assert note.author_kind == AuthorKind.SYSTEM and "tool.exe" in note.body_text


def test_a_mail_over_the_size_limit_keeps_its_text_and_says_so(make_app: Any) -> None:
    app = make_app(plugins=["email_intake"], **{"email_intake.max_message_bytes": 2000})
    with app.app_context(), db.connection():
        png = b"\x89PNG\r\n\x1a\n" + os.urandom(4000)
        result = ingest_raw(mail(files=[("big.png", png, "image/png")]), via="pipe")
        assert result.outcome == "new_ticket"
        assert Attachment.select().count() == 0
        notes = [m.body_text for m in messages(result.ticket_number) if m.is_internal]
        assert len(notes) == 1 and "more than the 2000 bytes" in notes[0]


def test_a_database_that_refuses_leaves_nothing_stored_so_the_caller_retries(
        desk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(**kwargs: Any) -> None:
        raise peewee.OperationalError("database is locked")

    monkeypatch.setattr(ingest_module.tickets, "receive_message", down)
    result = ingest_raw(mail(), via="pipe")
    assert (result.stored, result.outcome) == (False, "tempfail")
    assert "database" in result.reason
    assert FailedMail.select().count() == 0


def test_a_mail_that_breaks_the_desk_lands_in_the_failed_list_and_retries(
        mail_app: Any, desk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ingest_module.tickets.receive_message

    def broken(**kwargs: Any) -> None:
        raise ValueError("a bug in this version")

    monkeypatch.setattr(ingest_module.tickets, "receive_message", broken)
    result = ingest_raw(mail(subject="Please help"), via="http")
    assert (result.stored, result.outcome) == (True, "failed_mail")
    row = FailedMail.get()
    assert row.subject == "Please help" and "a bug in this version" in row.reason
    monkeypatch.setattr(ingest_module.tickets, "receive_message", real)

    client = mail_app.test_client()
    sign_in(client, "agent@desk.test")
    assert client.get("/admin/failed_mail/").status_code == 403  # admins only
    client = mail_app.test_client()
    sign_in(client, "admin@desk.test")
    page = client.get("/admin/failed_mail/")
    assert page.status_code == 200 and "Please help" in page.get_data(as_text=True)
    raw = client.get(f"/admin/failed_mail/{row.id}/raw")
    assert raw.status_code == 200 and raw.data == bytes(row.raw)
    assert "attachment" in raw.headers["Content-Disposition"]
    assert client.post(f"/admin/failed_mail/{row.id}/retry").status_code == 400  # no CSRF
    token = csrf_token(client, "/admin/failed_mail/")
    done = client.post(f"/admin/failed_mail/{row.id}/retry", data={"csrf_token": token})
    assert done.status_code == 302
    row = FailedMail.get_by_id(row.id)
    assert row.retry_outcome == "new_ticket" and row.ticket_number is not None
    assert Ticket.get_by_id(row.ticket_number).subject == "Please help"


# -- The HTTP endpoint ------------------------------------------------------------------------


def test_the_http_endpoint_wants_the_token_and_a_bounded_body(mail_app: Any, desk: Any) -> None:
    client = mail_app.test_client()
    raw = mail()
    url = "/email/inbound"
    assert client.post(url, data=raw, content_type="message/rfc822").status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.post(url, data=raw, content_type="message/rfc822",
                       headers=wrong).status_code == 403
    good = {"Authorization": f"Bearer {TOKEN}"}
    big = b"X" * (30 * 1024 * 1024 + 1)
    assert client.post(url, data=big, content_type="message/rfc822",
                       headers=good).status_code == 413
    assert client.post(url, data=raw, content_type="application/json",
                       headers=good).status_code == 415
    stored = client.post(url, data=raw, content_type="message/rfc822", headers=good)
    assert stored.status_code == 202 and stored.json["outcome"] == "new_ticket"
    assert Ticket.get_by_id(stored.json["ticket"]).subject == "Cannot sign in"
    # A mail of a few megabytes is ordinary: more than the desk's default 1 MB body.
    pdf = b"%PDF-1.4\n" + os.urandom(3 * 1024 * 1024)
    large = client.post(url, data=mail(subject="Scan attached",
                                       files=[("scan.pdf", pdf, "application/pdf")]),
                        content_type="message/rfc822", headers=good)
    assert large.status_code == 202, large.get_data(as_text=True)
    assert Attachment.select().where(Attachment.ticket == large.json["ticket"]).get().size == \
        len(pdf)


def test_the_http_endpoint_answers_503_when_the_mail_was_not_stored(
        mail_app: Any, desk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(**kwargs: Any) -> None:
        raise peewee.OperationalError("could not connect to server")

    monkeypatch.setattr(ingest_module.tickets, "receive_message", down)
    response = mail_app.test_client().post(
        "/email/inbound", data=mail(), content_type="application/octet-stream",
        headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503 and response.headers["Retry-After"]


def test_the_http_endpoint_is_off_without_a_token(make_app: Any) -> None:
    app = make_app(plugins=["email_intake"])
    response = app.test_client().post("/email/inbound", data=mail(),
                                      content_type="message/rfc822")
    assert response.status_code == 404


# -- The pipe: the real command ---------------------------------------------------------------


def _loket(env: dict[str, str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    command = [str(Path(sys.executable).parent / "loket"), "email", "ingest"]
    return subprocess.run(command, input=data, env=env, capture_output=True, timeout=120)


def test_loket_email_ingest_exits_0_when_stored_75_when_not_and_65_on_no_input(
        make_app: Any, db_url: str, tmp_path: Path) -> None:
    app = make_app(plugins=["email_intake"])
    env = desk_env(app.extensions["loket"], db_url, LOKET_PLUGINS="email_intake")
    done = _loket(env, mail(message_id="<pipe-1@example.test>"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith("new_ticket")
    again = _loket(env, mail(message_id="<pipe-1@example.test>"))
    assert again.returncode == 0 and again.stdout.decode().startswith("duplicate")
    with app.app_context(), db.connection():
        assert Ticket.select().count() == 1
    assert _loket(env, b"  \n").returncode == 65

    # A database that cannot be reached: the MTA must keep the mail and try again.
    (tmp_path / "ro").mkdir()
    gone = dict(env, LOKET_DATABASE_URL=f"sqlite:///{tmp_path / 'ro' / 'no' / 'such.db'}")
    failed = _loket(gone, mail())
    assert failed.returncode == 75
    lines = failed.stderr.decode().strip().splitlines()
    assert lines and lines[-1].startswith("loket email ingest: not stored")


def test_piped_mail_to_a_mailboxs_address_is_that_mailboxs(
        desk: Any, smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    from plugins.email_intake.mailboxes import Mailbox as ReadMailbox

    box, _ = smtp
    ReadMailbox.create(name="billing", address="Billing@desk.test", imap_host="imap.desk.test",
                       imap_user="billing", from_name="Billing team",
                       default_category=desk.payments, department=desk.billing)
    ReadMailbox.create(name="off", address="sales@desk.test", imap_host="imap.desk.test",
                       imap_user="sales", enabled=False)
    result = ingest_raw(mail(to="billing+refunds@desk.test", subject="Charged twice"),
                        via="pipe")
    ticket = Ticket.get_by_id(result.ticket_number)
    assert ticket.category_id == desk.payments.id and ticket.department_id == desk.billing.id
    (_, ack), = box.mails
    assert ack["From"] == "Billing team <Billing@desk.test>"  # the mailbox's address, as stored
    # A disabled mailbox's address, or none of ours: the desk's own defaults.
    other = ingest_raw(mail(to="sales@desk.test", subject="Prices"), via="http")
    assert Ticket.get_by_id(other.ticket_number).department_id != desk.billing.id
    assert box.mails[-1][1]["From"].endswith(f"<{SUPPORT}>")
