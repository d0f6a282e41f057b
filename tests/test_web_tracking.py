"""The private tracking page: the thread, replies, "resolved", and attachment downloads."""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import quote

import pytest

from core.attachments import Storage
from core.models import Attachment, Message, Status, Ticket, TicketEvent
from core.services import tickets as svc
from core.state import loket

from .samples import EXE, PNG


def store(data: bytes, name: str) -> Any:
    config = loket().config
    return Storage(config["attachments_path"]).save_bytes(
        data, name, max_bytes=config["upload_max_bytes"],
        allowed_types=config["upload_allowed_types"])


def open_web_ticket(desk: Any, *, files: tuple[tuple[bytes, str], ...] = (),
                    email: str = "rina@example.com", text: str = "My card was charged twice.",
                    ) -> Ticket:
    return svc.open_ticket(
        identity=svc.Identity(kind="email", value=email, name="Rina"),
        subject="Charged twice", text=text, category=desk.payments,
        user_type_id=desk.member.id, attachments=[store(data, name) for data, name in files])


def link(ticket: Ticket) -> str:
    return f"/t/{ticket.id}/{ticket.access_key}"


def test_tracking_page_shows_the_public_thread(built: Any, site: Any) -> None:
    ticket = open_web_ticket(built, files=((PNG, "receipt.png"),),
                             text="Charged on <b>May 1</b>\nsee https://bank.example/tx/1")
    svc.add_note(ticket, built.agent, "INTERNAL: customer is a reseller")
    svc.reply(ticket, built.agent, "fallback text",
              html='<p>We <strong>refunded</strong> you.</p><script>alert(1)</script>'
                   '<img src="https://tracker.example/p.gif">')
    page = site.get(link(ticket))
    assert page.status_code == 200
    text = page.text
    assert "Charged twice" in text
    assert f"Ticket {ticket.id}" in text
    assert "Payments and subscriptions" in text
    assert "Waiting for your reply" in text  # the agent's reply made it pending
    # The customer's text is escaped, its line breaks and links kept.
    assert "Charged on &lt;b&gt;May 1&lt;/b&gt;<br>" in text
    assert 'href="https://bank.example/tx/1"' in text
    # The agent's HTML was sanitised when stored; it is shown as HTML, not as its text.
    assert "<strong>refunded</strong>" in text and "fallback text" not in text
    assert "<script" not in text and "tracker.example" not in text
    assert "Agus Agent" in text and ">You<" in text
    assert "INTERNAL" not in text
    attachment = Attachment.get()
    assert f'href="{link(ticket)}/files/{attachment.id}"' in text
    assert "receipt.png" in text
    assert text.index("Charged on") < text.index("refunded")  # oldest first
    assert "Mark as resolved" in text and 'name="text"' in text
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]


def test_wrong_key_and_missing_ticket_get_the_same_404(built: Any, site: Any) -> None:
    ticket = open_web_ticket(built)
    wrong = site.get(f"/t/{ticket.id}/{'x' * len(ticket.access_key)}")
    missing = site.get(f"/t/{ticket.id + 1000}/{'x' * len(ticket.access_key)}")
    empty_key = site.get(f"/t/{ticket.id}/{ticket.access_key[:-1]}")
    assert wrong.status_code == missing.status_code == empty_key.status_code == 404
    assert wrong.data == missing.data == empty_key.data
    for response in (wrong, missing):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert ticket.access_key not in wrong.text
    # The same for every sub-page.
    for suffix in ("/files/1",):
        assert site.get(f"/t/{ticket.id}/wrong{suffix}").data == \
            site.get(f"/t/{ticket.id + 1000}/wrong{suffix}").data
    for suffix in ("/reply", "/resolve"):
        assert site.post(f"/t/{ticket.id}/wrong{suffix}", data={"text": "hi"}).status_code == 404
    assert Message.select().count() == 1
    assert Ticket.get().status == Status.NEW


def test_customer_reply_with_attachment(built: Any, site: Any, spy: Any) -> None:
    ticket = open_web_ticket(built)
    svc.reply(ticket, built.agent, "Which card?")
    assert Ticket.get().status == Status.PENDING
    response = site.post(link(ticket) + "/reply", content_type="multipart/form-data",
                         data={"text": "The Visa one.",
                               "attachments": [(io.BytesIO(PNG), "card.png"),
                                               (io.BytesIO(b""), "")]})
    assert response.status_code == 302
    assert response.headers["Location"] == link(ticket) + "#latest"
    assert Message.select().count() == 3
    newest = Message.select().order_by(Message.id.desc()).first()
    assert newest.body_text == "The Visa one."
    assert newest.author_kind == "contact" and newest.channel == "web"
    assert [a.filename for a in newest.attachments] == ["card.png"]
    assert Ticket.get().status == Status.OPEN  # the customer's answer reopens it
    assert [c["message"].id for c in spy.of("message_added")][-1] == newest.id
    page = site.get(response.headers["Location"])
    assert "Your reply was added" in page.text and "The Visa one." in page.text


def test_reply_needs_text_and_acceptable_files(built: Any, site: Any) -> None:
    ticket = open_web_ticket(built)
    page = site.post(link(ticket) + "/reply", data={"text": "  "})
    assert page.status_code == 200
    assert "This field is required." in page.text
    page = site.post(link(ticket) + "/reply", content_type="multipart/form-data",
                     data={"text": "See attached", "attachments": [(io.BytesIO(EXE), "a.pdf")]})
    assert page.status_code == 200
    assert "a.pdf: this type of file is not accepted" in page.text
    assert "See attached" in page.text  # what the customer typed is kept
    assert page.headers["Cache-Control"] == "no-store"
    assert Message.select().count() == 1 and Attachment.select().count() == 0


def test_customer_resolves_the_ticket(built: Any, site: Any, spy: Any) -> None:
    ticket = open_web_ticket(built)
    response = site.post(link(ticket) + "/resolve")
    assert response.status_code == 302
    assert response.headers["Location"] == link(ticket)
    assert Ticket.get().status == Status.RESOLVED
    event = TicketEvent.select().where(TicketEvent.kind == "status").get()
    assert event.actor_kind == "contact" and event.new_value == Status.RESOLVED
    assert spy.of("ticket_status_changed")[-1]["new"] == Status.RESOLVED
    page = site.get(link(ticket))
    assert "Resolved" in page.text and "marked as resolved" in page.text
    assert "Mark as resolved" not in page.text
    assert 'name="text"' in page.text  # a resolved ticket can still be answered
    again = site.post(link(ticket) + "/resolve", follow_redirects=True)
    assert "already resolved" in again.text
    assert TicketEvent.select().where(TicketEvent.kind == "status").count() == 1


def test_closed_ticket_has_no_reply_form(built: Any, site: Any) -> None:
    ticket = open_web_ticket(built)
    svc.change_status(ticket, Status.CLOSED, svc.Actor.agent(built.agent))
    page = site.get(link(ticket))
    assert page.status_code == 200
    assert "Closed" in page.text
    assert 'name="text"' not in page.text and "Mark as resolved" not in page.text
    assert "This ticket is closed" in page.text
    response = site.post(link(ticket) + "/reply", data={"text": "Hello again"},
                         follow_redirects=True)
    assert response.status_code == 200
    assert "This ticket is closed" in response.text
    assert Message.select().count() == 1
    response = site.post(link(ticket) + "/resolve", follow_redirects=True)
    assert Ticket.get().status == Status.CLOSED


def test_service_refusal_is_shown_as_a_flash(built: Any, site: Any, monkeypatch: Any) -> None:
    ticket = open_web_ticket(built)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise svc.ServiceError("the desk says no")

    monkeypatch.setattr("core.web.helpcenter.add_customer_reply", refuse)
    page = site.post(link(ticket) + "/reply", data={"text": "Hi"}, follow_redirects=True)
    assert "the desk says no" in page.text
    assert 'class="flash flash-error"' in page.text


def test_attachment_download_headers(built: Any, site: Any) -> None:
    ticket = open_web_ticket(built, files=((PNG, "Kwitansi Mei – bukti.png"),))
    attachment = Attachment.get()
    response = site.get(f"{link(ticket)}/files/{attachment.id}")
    assert response.status_code == 200
    assert response.data == PNG
    assert response.headers["Content-Type"] == "application/octet-stream"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('Kwitansi Mei – bukti.png', safe='')}" in disposition
    assert 'filename="Kwitansi Mei  bukti.png"' in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_text_file_is_never_served_inline(built: Any, site: Any) -> None:
    """Plain text (even text that talks about HTML) downloads typed as bytes, sandboxed."""
    text = b"My browser shows: Error < 500 > & nothing loads.\n"
    ticket = open_web_ticket(built, files=((text, "cute-cat.png"),))
    attachment = Attachment.get()
    assert attachment.content_type == "text/plain"
    assert attachment.content_type != "image/png"
    response = site.get(f"{link(ticket)}/files/{attachment.id}")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_attachment_of_another_ticket_or_a_note_is_404(built: Any, site: Any) -> None:
    mine = open_web_ticket(built)
    theirs = open_web_ticket(built, email="other@example.com", files=((PNG, "theirs.png"),))
    theirs_file = Attachment.get()
    assert site.get(f"{link(mine)}/files/{theirs_file.id}").status_code == 404
    assert site.get(f"{link(theirs)}/files/{theirs_file.id}").status_code == 200
    assert site.get(f"/t/{theirs.id}/{mine.access_key}/files/{theirs_file.id}").status_code == 404
    note = svc.add_note(mine, built.agent, "Internal scan", attachments=[store(PNG + b"1", "x.png")])
    note_file = Attachment.get(Attachment.message == note.id)
    assert site.get(f"{link(mine)}/files/{note_file.id}").status_code == 404
    assert site.get(f"{link(mine)}/files/999999").status_code == 404


def test_submitted_flash_is_not_shown_on_another_ticket(built: Any, site: Any) -> None:
    """The "we received it" panel follows the submission, not whoever opens a link next."""
    other = open_web_ticket(built, email="other@example.com")
    response = site.post("/help/member/payments-and-subscriptions/new",
                         content_type="multipart/form-data",
                         data={"name": "Rina", "email": "rina@example.com", "subject": "Hello",
                               "description": "Help"})
    assert response.status_code == 302
    mine = Ticket.select().order_by(Ticket.id.desc()).first()
    assert "We received your request" not in site.get(link(other)).text
    assert f"Your ticket number is {mine.id}." in site.get(link(mine)).text


def test_submitted_panel_after_the_redirect(built: Any, site: Any) -> None:
    response = site.post("/help/member/payments-and-subscriptions/new",
                         content_type="multipart/form-data",
                         data={"name": "Rina", "email": "rina@example.com", "subject": "Hello",
                               "description": "Help"}, follow_redirects=True)
    mine = Ticket.get()
    assert response.request.path == link(mine)
    assert f"Your ticket number is {mine.id}." in response.text


def test_untouched_reply_fields_are_kept_per_language_and_errors_are_never_shared(
        built: Any, site: Any) -> None:
    ticket = open_web_ticket(built)
    english = site.get(link(ticket) + "?lang=en").text
    indonesian = site.get(link(ticket) + "?lang=id").text
    assert "Your reply" in english and "Your reply" not in indonesian
    assert site.get(link(ticket) + "?lang=en").text.count('name="text"') == 1
    # A form sent back with an error is this visitor's alone; the next page view is clean.
    refused = site.post(link(ticket) + "/reply?lang=en", data={"text": "  "})
    assert "This field is required." in refused.text
    again = site.get(link(ticket) + "?lang=en").text
    assert "This field is required." not in again and 'aria-invalid' not in again
    # Both forms carry the same token (the ticket's: test_tracking_forms_carry_the_tickets_token).
    token = again.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert again.count(f'name="csrf_token" value="{token}"') == 2


def test_the_page_reads_ticket_thread_agents_and_files_in_one_statement(
        built: Any, site: Any) -> None:
    """One statement (one round trip) whatever the thread: the ticket, its category, its
    public messages with each agent's name and files. A note's text and file, the outbox's
    notifications and another ticket's thread never show."""
    from core.models import Staff

    from .factories import make_staff
    from .spies import Statements

    ticket = open_web_ticket(built, files=((PNG, "first.png"),))
    other = open_web_ticket(built, email="other@example.com", text="OTHER THREAD")
    svc.reply(other, built.agent, "OTHER REPLY")
    svc.add_note(ticket, built.agent, "INTERNAL note", attachments=[store(PNG + b"n", "note.png")])
    svc.reply(ticket, built.agent, "From Agus", attachments=[store(PNG + b"a", "agus.png")])
    second = make_staff("oki@desk.test", "Oki Other")
    svc.reply(ticket, second, "From Oki")
    svc.add_customer_reply(ticket, "Thanks both")
    gone = make_staff("gone@desk.test", "Gone Agent")
    svc.reply(ticket, gone, "From someone who left")
    Staff.delete().where(Staff.id == gone.id).execute()  # the message keeps no agent
    Message.create(ticket=ticket, author_kind="staff", notification="ticket_replied",
                   body_text="NOTIFICATION of the reply")  # the outbox's copy
    with Statements() as caught:
        page = site.get(link(ticket))
    assert page.status_code == 200
    assert len(caught.sql) == 1, caught.sql
    text = page.text
    order = ["Charged twice", "first.png", "Agus Agent", "From Agus", "agus.png", "Oki Other",
             "From Oki", "Thanks both", "Support team", "From someone who left"]
    assert [text.index(part) for part in order] == sorted(text.index(part) for part in order)
    for hidden in ("INTERNAL", "note.png", "OTHER", "Gone Agent", "NOTIFICATION"):
        assert hidden not in text
    assert text.count("/files/") == 2
    with Statements() as caught:
        wrong = site.get(f"/t/{ticket.id}/{ticket.access_key[:-1]}" + (
            "x" if ticket.access_key[-1] != "x" else "y"))
    assert wrong.status_code == 404 and len(caught.sql) == 1
    assert "From Agus" not in wrong.text and ticket.access_key not in wrong.text
    assert site.get(f"/t/{ticket.id}/{ticket.access_key}\u00e9").status_code == 404
    assert site.get(f"/t/{2**63}/{ticket.access_key}").status_code == 404


# -- The forms' token: the ticket's, not the session's ---------------------------------------


def page_token(html: str) -> str:
    tokens = re.findall(r'name="csrf_token" value="([^"]*)"', html)
    assert len(tokens) == 2 and tokens[0] == tokens[1], tokens  # the reply and resolve forms
    return tokens[0]


def test_a_first_visit_makes_no_session(desk: Any, app: Any) -> None:
    ticket = open_web_ticket(desk)
    visitor = app.test_client(use_cookies=False)
    page = visitor.get(link(ticket))
    assert page.status_code == 200 and "Mark as resolved" in page.text
    assert "Set-Cookie" not in page.headers  # nothing signed, nothing to keep
    assert page_token(page.text)


def test_tracking_forms_carry_the_tickets_token(desk: Any, app: Any) -> None:
    ticket = open_web_ticket(desk)
    other = open_web_ticket(desk, email="budi@example.com")
    # No cookies at all: the token works without a session (a browser blocking cookies).
    visitor = app.test_client(use_cookies=False)
    token = page_token(visitor.get(link(ticket)).text)
    assert token == page_token(app.test_client().get(link(ticket)).text)  # any visitor's
    assert ticket.access_key not in token and token != page_token(visitor.get(link(other)).text)
    sent = visitor.post(link(ticket) + "/reply", data={"text": "More detail", "csrf_token": token})
    assert sent.status_code == 302
    assert Message.select().where(Message.ticket == ticket.id).count() == 2
    resolved = visitor.post(link(ticket) + "/resolve", data={"csrf_token": token})
    assert resolved.status_code == 302
    assert Ticket.get_by_id(ticket.id).status == Status.RESOLVED


@pytest.mark.parametrize("form", ["reply", "resolve"])
def test_a_post_without_this_tickets_token_is_refused(desk: Any, app: Any, form: str) -> None:
    ticket = open_web_ticket(desk)
    other = open_web_ticket(desk, email="budi@example.com")
    visitor = app.test_client()
    others = page_token(visitor.get(link(other)).text)
    # The session's own CSRF token (from a help-center form) is not the ticket's either.
    help_form = visitor.get("/help/member/registration-and-login/new").text
    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', help_form).group(0)
    session_token = re.search(r'value="([^"]+)"', tag).group(1)
    for token in (None, "", "x", others, session_token, others[:-1] + "é", ticket.access_key):
        data = {"text": "Forged"} if token is None else {"text": "Forged", "csrf_token": token}
        refused = visitor.post(link(ticket) + "/" + form, data=data)
        assert refused.status_code == 400, token
        assert "Your form expired" in refused.text
    assert Message.select().where(Message.ticket == ticket.id).count() == 1
    assert Ticket.get_by_id(ticket.id).status == Status.NEW
    # A wrong key is the 404 of a missing ticket, before any token is looked at.
    token = page_token(visitor.get(link(ticket)).text)
    missing = visitor.post(f"/t/{ticket.id}/{'A' * 43}/{form}", data={"csrf_token": token})
    assert missing.status_code == 404
