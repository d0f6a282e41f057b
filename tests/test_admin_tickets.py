"""The inbox and the ticket page: scoped lists, search, bulk actions and replies via the services."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

from core.attachments import Storage
from core.models import (
    Attachment,
    CannedReply,
    Delivery,
    Message,
    Priority,
    Status,
    Ticket,
    TicketEvent,
    utcnow,
)
from core.services.tickets import Actor, update_ticket

from .samples import EXE, PDF, PNG
from .test_admin_helpers import csrf_token, new_ticket, post, sign_in


def _filter_arg(app: Any, name: str) -> str:
    (admin,) = app.extensions["admin"]
    view = next(v for v in admin._views if v.endpoint == "tickets")
    index = next(i for i, f in enumerate(view._filters) if str(f.name) == name)
    return f"flt0_{index}"


def test_inbox_lists_search_and_filters(desk: Any, client: Any, app: Any) -> None:
    mine = new_ticket(desk.login, subject="Password reset loop")
    other = new_ticket(desk.payments, email="zed@example.test", subject="Card declined",
                       text="my visa card 4242 is declined")
    hidden = new_ticket(desk.account, subject="Studio payout")
    update_ticket(hidden, Actor.agent(desk.admin), department=desk.billing)
    sign_in(client, "agent@desk.test")
    page = client.get("/admin/tickets/").get_data(as_text=True)
    assert "Password reset loop" in page and "Card declined" in page
    assert "Studio payout" not in page
    assert f"/admin/ticket/{mine.id}/" in page
    # Free text over subject, contact and message text, and the number.
    for term, expected, absent in (("declined", other, mine), ("zed@example", other, mine),
                                   ("4242", other, mine), (f"#{mine.id}", mine, other)):
        html = client.get("/admin/tickets/", query_string={"search": term}).get_data(
            as_text=True)
        assert expected.subject in html, term
        assert absent.subject not in html, term
    assert "Studio payout" not in client.get(
        "/admin/tickets/", query_string={"search": "payout"}).get_data(as_text=True)
    # Filters.
    html = client.get("/admin/tickets/", query_string={
        _filter_arg(app, "Priority"): Priority.HIGH}).get_data(as_text=True)
    assert "Card declined" in html and "Password reset loop" not in html
    html = client.get("/admin/tickets/", query_string={
        _filter_arg(app, "Assignee"): "unassigned"}).get_data(as_text=True)
    assert "Card declined" in html
    Ticket.update(due_at=utcnow() - dt.timedelta(hours=1)).where(Ticket.id == mine.id).execute()
    html = client.get("/admin/tickets/", query_string={
        _filter_arg(app, "Overdue"): "yes"}).get_data(as_text=True)
    assert "Password reset loop" in html and "Card declined" not in html
    html = client.get("/admin/tickets/", query_string={
        _filter_arg(app, "Department"): str(desk.support.id)}).get_data(as_text=True)
    assert "Password reset loop" in html
    # Read-only rows: no create, edit or delete.
    assert client.get("/admin/tickets/new/").status_code == 302
    assert client.get(f"/admin/tickets/edit/?id={mine.id}").status_code == 302
    token = csrf_token(client, "/admin/profile/")
    client.post("/admin/tickets/delete/", data={"csrf_token": token, "id": mine.id})
    client.post("/admin/tickets/action/", data={"csrf_token": token, "action": "delete",
                                                "rowid": [mine.id]})
    assert Ticket.get_or_none(Ticket.id == mine.id) is not None


def test_bulk_actions_go_through_the_services(desk: Any, client: Any, spy: Any) -> None:
    first = new_ticket(desk.login, subject="One")
    second = new_ticket(desk.login, email="b@example.test", subject="Two")
    hidden = new_ticket(desk.account, subject="Not yours")
    update_ticket(hidden, Actor.agent(desk.admin), department=desk.billing)
    sign_in(client, "agent@desk.test")
    spy.calls.clear()
    rows = [first.id, second.id, hidden.id]
    token = csrf_token(client, "/admin/tickets/")
    response = client.post("/admin/tickets/action/", data={
        "csrf_token": token, "action": "assign_me", "rowid": rows})
    assert response.status_code == 302
    assert {t.assignee_id for t in Ticket.select().where(Ticket.id << [first.id, second.id])} \
        == {desk.agent.id}
    assert Ticket.get_by_id(hidden.id).assignee_id is None  # out of scope: untouched
    assigned = spy.of("ticket_assigned")
    assert len(assigned) == 2 and all(c["actor"].id == desk.agent.id for c in assigned)
    events = TicketEvent.select().where((TicketEvent.kind == "assignee")
                                        & (TicketEvent.staff == desk.agent.id))
    assert events.count() == 2

    client.post("/admin/tickets/action/", data={"csrf_token": token, "action": "status_resolved",
                                                "rowid": [first.id]})
    assert Ticket.get_by_id(first.id).status == Status.RESOLVED
    assert spy.of("ticket_status_changed")[-1]["new"] == Status.RESOLVED
    assert TicketEvent.select().where((TicketEvent.ticket == first.id)
                                      & (TicketEvent.kind == "status")
                                      & (TicketEvent.new_value == Status.RESOLVED)).exists()

    client.post("/admin/tickets/action/", data={
        "csrf_token": token, "action": f"department_{desk.management.id}", "rowid": [second.id]})
    assert Ticket.get_by_id(second.id).department_id == desk.management.id
    assert spy.of("ticket_updated")[-1]["changes"]["department"][1].id == desk.management.id

    client.post("/admin/tickets/action/", data={"csrf_token": token, "action": "unassign",
                                                "rowid": [first.id]})
    assert Ticket.get_by_id(first.id).assignee_id is None


def test_bulk_action_needs_csrf(desk: Any, client: Any) -> None:
    ticket = new_ticket(desk.login)
    sign_in(client, "agent@desk.test")
    response = client.post("/admin/tickets/action/", data={"action": "assign_me",
                                                           "rowid": [ticket.id]})
    assert response.status_code == 400
    assert Ticket.get_by_id(ticket.id).assignee_id is None


def test_reply_from_the_ticket_page_is_delivered(desk: Any, client: Any, spy: Any) -> None:
    ticket = new_ticket(desk.login)
    sign_in(client, "agent@desk.test")
    page = client.get(f"/admin/ticket/{ticket.id}/")
    assert page.status_code == 200
    assert "It says my password is wrong" in page.get_data(as_text=True)
    response = post(client, f"/admin/ticket/{ticket.id}/reply",
                    {"text": "Try the reset link", "status": Status.PENDING},
                    token_from=f"/admin/ticket/{ticket.id}/")
    assert response.status_code == 302
    message = Message.select().where((Message.ticket == ticket)
                                     & (Message.author_kind == "staff")).get()
    assert message.body_text == "Try the reset link" and not message.is_internal
    assert message.delivery_state == Delivery.PORTAL  # web tickets wait on the tracking page
    fresh = Ticket.get_by_id(ticket.id)
    assert fresh.status == Status.PENDING and fresh.first_response_at is not None
    assert any(c["message"].id == message.id for c in spy.of("message_added"))
    html = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert "Try the reset link" in html and "portal" in html


def test_note_is_internal(desk: Any, client: Any) -> None:
    ticket = new_ticket(desk.login)
    sign_in(client, "agent@desk.test")
    post(client, f"/admin/ticket/{ticket.id}/note", {"text": "VIP, be gentle"})
    note = Message.get(Message.body_text == "VIP, be gentle")
    assert note.is_internal and note.delivery_state == Delivery.NONE
    html = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert "loket-note" in html and "internal note" in html


def test_controls_on_the_ticket_page(desk: Any, client: Any, spy: Any) -> None:
    ticket = new_ticket(desk.login)
    sign_in(client, "agent@desk.test")
    url = f"/admin/ticket/{ticket.id}"
    post(client, f"{url}/status", {"status": Status.ON_HOLD})
    post(client, f"{url}/priority", {"priority": Priority.URGENT})
    post(client, f"{url}/assign", {"assignee": "me"})
    fresh = Ticket.get_by_id(ticket.id)
    assert (fresh.status, fresh.priority, fresh.assignee_id) == (
        Status.ON_HOLD, Priority.URGENT, desk.agent.id)
    response = post(client, f"{url}/escalate", {"reason": "angry customer"})
    fresh = Ticket.get_by_id(ticket.id)
    assert fresh.escalation_level == 1 and fresh.department_id == desk.management.id
    assert spy.of("ticket_escalated")[-1]["reason"] == "angry customer"
    # Still assigned to the agent, so still theirs to see.
    assert response.headers["Location"].endswith(f"{url}/")
    post(client, f"{url}/department", {"department": str(desk.support.id)})
    assert Ticket.get_by_id(ticket.id).department_id == desk.support.id
    # A closed ticket cannot be reopened: the service's reason is shown.
    post(client, f"{url}/status", {"status": Status.CLOSED})
    post(client, f"{url}/status", {"status": Status.OPEN})
    html = client.get(f"{url}/").get_data(as_text=True)
    assert "cannot be reopened" in html
    assert Ticket.get_by_id(ticket.id).status == Status.CLOSED
    # Without a token nothing changes.
    assert client.post(f"{url}/priority", data={"priority": Priority.LOW}).status_code == 400


def test_customer_html_cannot_run_script(desk: Any, client: Any) -> None:
    from core.models import IdentityKind
    from core.services.tickets import Identity, open_ticket

    ticket = open_ticket(identity=Identity(IdentityKind.EMAIL, "x@example.test"),
                         subject="<script>alert(1)</script>",
                         text="<img src=x onerror=alert(1)>",
                         html="<p>hi</p><script>alert(2)</script><img src=x onerror=alert(3)>")
    sign_in(client, "admin@desk.test")
    for url in (f"/admin/ticket/{ticket.id}/", "/admin/tickets/"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html
        assert "onerror=alert" not in html


def test_attachment_download_is_staff_only(desk: Any, client: Any, app: Any) -> None:
    ticket = new_ticket(desk.login)
    storage = Storage(app.extensions["loket"].config["attachments_path"])
    stored = storage.save_bytes(b"<html><script>alert(1)</script>", "evil.html",
                                max_bytes=1000, allowed_types=["text/html"])  # a desk that allows it
    message = Message.get(Message.ticket == ticket)
    item = Attachment.create(ticket=ticket, message=message, sha256=stored.sha256,
                             filename=stored.filename, content_type=stored.content_type,
                             size=stored.size)
    url = f"/admin/ticket/{ticket.id}/attachment/{item.id}"
    assert client.get(url).status_code == 302  # anonymous: sign in first
    sign_in(client, "agent@desk.test")
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.data.startswith(b"<html>")
    html = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert url in html
    other = new_ticket(desk.account, subject="other")
    assert client.get(f"/admin/ticket/{other.id}/attachment/{item.id}").status_code == 404


def test_canned_reply_prefills_the_reply_box(desk: Any, client: Any) -> None:
    ticket = new_ticket(desk.login)
    canned = CannedReply.create(title="Reset", body="Use the reset link & wait 5 minutes.",
                                department=desk.support)
    CannedReply.create(title="Billing only", body="x", department=desk.billing)
    sign_in(client, "agent@desk.test")
    html = client.get(f"/admin/ticket/{ticket.id}/", query_string={"canned": canned.id}
                      ).get_data(as_text=True)
    assert "Use the reset link &amp; wait 5 minutes.</textarea>" in html
    assert "Billing only" not in html
    assert 'data-body="Use the reset link &amp; wait 5 minutes."' in html


def test_ticket_page_shows_answers_by_their_labels(desk: Any, client: Any) -> None:
    from core.services.tickets import Identity, open_ticket

    ticket = open_ticket(identity=Identity("email", "rina@example.com"), subject="Locked out",
                         text="help", category=desk.login,
                         form_data={"registered_email": "old@example.com", "retired": "x"})
    sign_in(client, "agent@desk.test")
    html = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert "Registered email" in html and "old@example.com" in html
    assert "retired" in html  # a question since removed keeps its answer, by its name


def test_an_empty_reply_goes_back_with_the_reason_and_sends_nothing(desk: Any,
                                                                    client: Any) -> None:
    ticket = new_ticket(desk.login)
    sign_in(client, "agent@desk.test")
    response = post(client, f"/admin/ticket/{ticket.id}/reply",
                    {"text": "", "status": Status.PENDING},
                    token_from=f"/admin/ticket/{ticket.id}/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/ticket/{ticket.id}/")
    assert Message.select().where(Message.ticket == ticket).count() == 1
    page = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert "text:" in page  # the field's error, flashed


def test_the_inbox_shows_active_tickets_unless_the_agent_picks_a_status(
        desk: Any, client: Any, app: Any) -> None:
    from core.services.tickets import change_status

    active = new_ticket(desk.login, subject="Still stuck")
    done = new_ticket(desk.login, email="d@example.test", subject="Sorted out")
    change_status(done, Status.CLOSED, Actor.agent(desk.admin))
    held = new_ticket(desk.login, email="h@example.test", subject="Parked for now")
    change_status(held, Status.ON_HOLD, Actor.agent(desk.admin))
    sign_in(client, "agent@desk.test")
    html = client.get("/admin/tickets/").get_data(as_text=True)
    assert active.subject in html and held.subject in html
    assert done.subject not in html
    assert "Showing active tickets" in html
    # Other filters keep the default; a status filter or tab replaces it.
    html = client.get("/admin/tickets/", query_string={
        _filter_arg(app, "Assignee"): "unassigned"}).get_data(as_text=True)
    assert done.subject not in html and active.subject in html
    for arg, value in ((_filter_arg(app, "Open"), "all"), (_filter_arg(app, "Open"), "no"),
                       (_filter_arg(app, "Status"), Status.CLOSED)):
        html = client.get("/admin/tickets/", query_string={arg: value}).get_data(as_text=True)
        assert done.subject in html, (arg, value)
        assert "Showing active tickets" not in html
    html = client.get("/admin/tickets/").get_data(as_text=True)
    for label in ("Mine", "Waiting on us", "Resolved or closed", "Any status"):
        assert f">{label}</a>" in html


def test_the_inbox_marks_and_filters_tickets_where_the_customer_waits_on_us(
        desk: Any, client: Any, app: Any) -> None:
    from core.services.tickets import add_customer_reply, reply

    unanswered = new_ticket(desk.login, subject="Nobody answered")
    answered = new_ticket(desk.login, email="a@example.test", subject="We answered")
    reply(answered, desk.agent, "Try again now.")
    wrote_again = new_ticket(desk.login, email="w@example.test", subject="Wrote back")
    reply(wrote_again, desk.agent, "Try again now.")
    Ticket.update(last_agent_message_at=utcnow() - dt.timedelta(minutes=5)).where(
        Ticket.id == wrote_again.id).execute()
    add_customer_reply(Ticket.get_by_id(wrote_again.id), "Still broken.")
    sign_in(client, "agent@desk.test")

    def marked(html: str) -> set[str]:
        rows = html.split("<tr")
        return {t.subject for t in (unanswered, answered, wrote_again)
                if any(t.subject in row and "waiting on us" in row for row in rows)}

    assert marked(client.get("/admin/tickets/").get_data(as_text=True)) == {
        "Nobody answered", "Wrote back"}
    html = client.get("/admin/tickets/", query_string={
        _filter_arg(app, "Waiting on us"): "yes"}).get_data(as_text=True)
    assert "Nobody answered" in html and "Wrote back" in html and "We answered" not in html
    html = client.get("/admin/tickets/", query_string={
        _filter_arg(app, "Waiting on us"): "no"}).get_data(as_text=True)
    assert "We answered" in html and "Nobody answered" not in html


def test_the_inbox_shows_times_and_statuses_as_agents_read_them(desk: Any, client: Any) -> None:
    from admin.desk import human_time
    from core.services.tickets import change_status

    now = dt.datetime(2026, 11, 29, 4, 20, 47, 464787)
    then = dt.datetime(2026, 11, 29, 1, 20, 47, 464787)
    assert human_time(then, now) == (
        '<time datetime="2026-11-29T01:20:47Z" title="29 Nov 2026 01:20 UTC">3 h ago</time>')
    assert ">in 2 days<" in human_time(now + dt.timedelta(days=2, hours=1), now)
    assert ">1 day ago<" in human_time(now - dt.timedelta(hours=30), now)
    assert ">5 min ago<" in human_time(now - dt.timedelta(minutes=5), now)
    assert ">just now<" in human_time(now, now)
    assert human_time(None) == ""

    ticket = new_ticket(desk.login, subject="Parked")
    change_status(ticket, Status.ON_HOLD, Actor.agent(desk.admin))
    sign_in(client, "agent@desk.test")
    html = client.get("/admin/tickets/").get_data(as_text=True)
    assert ">On hold</span>" in html and "on_hold<" not in html
    assert ">Normal</span>" in html
    assert " UTC\">just now</time>" in html or " UTC\">1 min ago</time>" in html
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", html)  # no raw timestamps left


def test_an_agent_attaches_files_to_a_reply_and_to_a_note(desk: Any, client: Any) -> None:
    ticket = new_ticket(desk.login)
    sign_in(client, "agent@desk.test")
    page = f"/admin/ticket/{ticket.id}/"
    html = client.get(page).get_data(as_text=True)
    assert 'id="reply-form" enctype="multipart/form-data"' in html
    assert "PNG, JPEG" in html  # the accepted types, from upload_allowed_types
    response = post(client, f"{page}reply", {
        "text": "Here is the form to fill in.", "status": Status.PENDING,
        "files": [(io.BytesIO(PNG), "form.png"), (io.BytesIO(PDF), "terms.pdf")]},
        token_from=page)
    assert response.status_code == 302
    reply = Message.get(Message.body_text == "Here is the form to fill in.")
    files = {a.filename: a.content_type for a in
             Attachment.select().where(Attachment.message == reply)}
    assert files == {"form.png": "image/png", "terms.pdf": "application/pdf"}
    post(client, f"{page}note", {"text": "Screenshot of the log",
                                 "files": [(io.BytesIO(PNG), "log.png")]}, token_from=page)
    note = Message.get(Message.body_text == "Screenshot of the log")
    assert note.is_internal
    assert [a.filename for a in Attachment.select().where(Attachment.message == note)] == [
        "log.png"]
    html = client.get(page).get_data(as_text=True)
    assert "form.png" in html and "log.png" in html


def test_a_refused_agent_file_sends_nothing_and_says_which_types_are_accepted(
        desk: Any, client: Any) -> None:
    ticket = new_ticket(desk.login)
    sign_in(client, "agent@desk.test")
    page = f"/admin/ticket/{ticket.id}/"
    response = post(client, f"{page}reply", {
        "text": "Run this tool.", "files": [(io.BytesIO(EXE), "tool.exe")]}, token_from=page)
    assert response.status_code == 302
    assert Message.select().where(Message.body_text == "Run this tool.").count() == 0
    html = client.get(page).get_data(as_text=True)
    assert "tool.exe: this type of file is not accepted" in html
    assert "PNG, JPEG" in html and "PDF" in html
