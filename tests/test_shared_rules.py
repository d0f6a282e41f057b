"""Rules the help center, the API and the console share: one answer check, one scope, one unit."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from core import db as core_db
from core.models import CategoryField, FieldKind, Message, Ticket
from core.passwords import new_api_token
from core.services import access
from core.services.tickets import TEXT_MAX, Identity, ServiceError, open_ticket
from core.services.unit import emit, unit_of_work

from .factories import build_desk
from .test_admin_helpers import post, sign_in

REFUNDS_FORM = "/help/member/refunds/new"


@pytest.fixture
def both(web: Any) -> Any:
    """A desk with questions of every kind on refunds, a browser and an API client."""

    class Both:
        pass

    b = Both()
    with web.app_context(), core_db.connection():
        b.desk = build_desk()
        for position, (name, kind, required, choices) in enumerate([
                ("happened_at", FieldKind.DATETIME, True, ""),
                ("method", FieldKind.CHOICE, True, "card\nbank transfer"),
                ("contact_email", FieldKind.EMAIL, False, ""),
                ("notes", FieldKind.TEXT, False, "")]):
            CategoryField.create(category=b.desk.refunds, name=name, label=name, kind=kind,
                                 required=required, choices=choices, position=position)
    b.app = web
    b.client = web.test_client()
    return b


def _via_web(both: Any, answers: dict[str, str], **common: str) -> Any:
    data = {"name": "Rina", "email": "rina@example.com", "subject": "Refund",
            "description": "Please refund me.", **common}
    data.update({f"extra_{name}": value for name, value in answers.items()})
    return both.client.post(REFUNDS_FORM, data=data, content_type="multipart/form-data")


def _via_api(both: Any, answers: dict[str, str], **common: str) -> Any:
    body = {"user_type": "member", "category": "refunds", "name": "Rina",
            "email": "rina@example.com", "subject": "Refund", "description": "Please refund me.",
            "fields": answers, **common}
    return both.client.post("/api/v1/tickets", json=body)


def _stored(both: Any) -> list[dict[str, Any]]:
    with both.app.app_context(), core_db.connection():
        return [t.form_data for t in Ticket.select().order_by(Ticket.id)]


def test_the_same_answers_store_the_same_value_from_the_web_form_and_the_api(both: Any) -> None:
    answers = {"happened_at": "2024-05-01T14:30", "method": "card", "notes": "  TX-42 "}
    assert _via_web(both, answers).status_code == 302
    assert _via_api(both, answers).status_code == 201
    web, api = _stored(both)
    assert web == api == {"happened_at": "2024-05-01T14:30:00", "method": "card",
                          "notes": "TX-42"}
    # Seconds or not, the same moment is stored the same way; an offset is turned into UTC.
    assert _via_api(both, {**answers, "happened_at": "2024-05-01T14:30:00"}).status_code == 201
    assert _via_api(both, {**answers, "happened_at": "2024-05-01T21:30+07:00"}).status_code == 201
    assert [row["happened_at"] for row in _stored(both)[2:]] == [
        "2024-05-01T14:30:00", "2024-05-01T14:30:00Z"]


@pytest.mark.parametrize("answers, name, message", [
    ({"method": "card"}, "happened_at", "This field is required."),
    ({"happened_at": "yesterday", "method": "card"}, "happened_at",
     "Enter a date and time, like 2024-05-01T14:30."),
    ({"happened_at": "2024-05-01T14:30", "method": "cash"}, "method",
     "Choose one of the offered answers."),
    ({"happened_at": "2024-05-01T14:30", "method": "card", "contact_email": "rina@"},
     "contact_email", "Please enter a valid email address, like name@example.com."),
    ({"happened_at": "2024-05-01T14:30", "method": "card", "notes": "x" * 501}, "notes",
     "At most 500 characters."),
])
def test_the_same_bad_answers_give_the_same_messages_on_the_web_and_in_the_api(
        both: Any, answers: dict[str, str], name: str, message: str) -> None:
    page = _via_web(both, answers)
    assert page.status_code == 200
    assert message in page.get_data(as_text=True)
    api = _via_api(both, answers)
    assert api.status_code == 422
    assert api.get_json()["error"]["fields"][f"fields.{name}"] == message
    assert _stored(both) == []


def test_description_and_replies_have_one_limit_everywhere(both: Any) -> None:
    too_long = "x" * (TEXT_MAX + 1)
    page = _via_web(both, {"happened_at": "2024-05-01T14:30", "method": "card"},
                    description=too_long)
    assert f"At most {TEXT_MAX} characters." in page.get_data(as_text=True)
    api = _via_api(both, {"happened_at": "2024-05-01T14:30", "method": "card"},
                   description=too_long)
    assert api.get_json()["error"]["fields"]["description"] == f"At most {TEXT_MAX} characters."
    fits = _via_api(both, {"happened_at": "2024-05-01T14:30", "method": "card"},
                    description="x" * TEXT_MAX)
    assert fits.status_code == 201

    from admin.tickets import NoteForm, ReplyForm
    from core.web.forms import ReplyForm as CustomerReplyForm
    from core.web.forms import TicketForm

    def limit(form: Any, name: str) -> int:
        (found,) = [v.max for v in getattr(form, name).kwargs["validators"] if hasattr(v, "max")]
        return found

    assert {limit(TicketForm, "description"), limit(CustomerReplyForm, "text"),
            limit(ReplyForm, "text"), limit(NoteForm, "text")} == {TEXT_MAX}


# -- Who sees which ticket, and who may be given it ------------------------------------------


def _ticket(desk: Any, department: Any = None, assignee: Any = None) -> Ticket:
    ticket = open_ticket(identity=Identity("email", "c@example.com"), subject="s", text="t")
    Ticket.update(department=department, assignee=assignee).where(
        Ticket.id == ticket.id).execute()
    return Ticket.get_by_id(ticket.id)


def test_an_agent_sees_their_departments_and_their_own_tickets_but_not_unrouted_ones(
        desk: Any) -> None:
    support = _ticket(desk, desk.support)
    billing = _ticket(desk, desk.billing)
    unrouted = _ticket(desk)
    given = _ticket(desk, desk.billing, assignee=desk.agent)
    for staff, expected in ((desk.agent, {support.id, given.id}),
                            (desk.billing_agent, {billing.id, given.id}),
                            (desk.admin, {support.id, billing.id, unrouted.id, given.id})):
        listed = {t.id for t in access.inbox(staff)}
        assert listed == expected, staff.name
        # The one-ticket check says the same as the list.
        assert {t.id for t in Ticket.select() if access.can_see(staff, t)} == expected
    desk.agent.active = False
    desk.agent.save()
    assert list(access.inbox(desk.agent)) == []


def test_a_ticket_goes_only_to_an_admin_or_an_agent_of_its_department(desk: Any,
                                                                      ctx: Any) -> None:
    ticket = _ticket(desk, desk.support)
    request = ctx.test_request_context()  # the refusal is said in the request's language
    request.push()
    assert access.assignment_refusal(ticket, desk.agent) is None
    assert access.assignment_refusal(ticket, desk.admin) is None
    assert access.assignment_refusal(ticket, desk.billing_agent) is not None
    # Moved by the same change, it may go to the new department's agent.
    assert access.assignment_refusal(ticket, desk.billing_agent, desk.billing) is None
    assert access.assignment_refusal(_ticket(desk), desk.agent) is not None
    assert {s.id for s in access.assignable_staff(desk.support.id)} == {desk.admin.id,
                                                                        desk.agent.id}
    request.pop()


def test_console_and_api_refuse_the_same_assignment(desk: Any, client: Any) -> None:
    ticket = _ticket(desk, desk.support)
    sign_in(client, "agent@desk.test")
    post(client, f"/admin/ticket/{ticket.id}/assign", {"assignee": str(desk.billing_agent.id)})
    assert Ticket.get_by_id(ticket.id).assignee_id is None
    page = client.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert "does not work the ticket&#39;s department" in page
    token, hashed = new_api_token()
    desk.agent.api_token_hash = hashed
    desk.agent.save()
    response = client.patch(f"/api/v1/tickets/{ticket.id}",
                            headers={"Authorization": f"Bearer {token}"},
                            json={"assignee": desk.billing_agent.id})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["assignee"] == (
        "This agent does not work the ticket's department.")
    assert Ticket.get_by_id(ticket.id).assignee_id is None
    # The billing agent still cannot read it.
    assert not access.can_see(desk.billing_agent, Ticket.get_by_id(ticket.id))


def test_search_words_match_number_subject_text_and_contact_by_their_letters_and_digits(
        desk: Any) -> None:
    first = open_ticket(identity=Identity("email", "budi@example.com", name="Budi Santoso"),
                        subject="Charged 100% twice", text="card ending 4242")
    second = open_ticket(identity=Identity("email", "sari@example.com", name="Sari"),
                         subject="Login", text="code_never_arrives")

    def found(words: str) -> set[int]:
        wanted = access.InboxFilter(text=words)
        return {t.id for t in access.filter_inbox(access.inbox(desk.admin), desk.admin, wanted)}

    assert found("100%") == {first.id}
    assert found("4242") == {first.id}
    assert found("santoso") == {first.id}
    assert found("SARI@example") == {second.id}
    assert found("code_never") == {second.id}
    assert found("_") == set()  # no letters or digits: nothing to match, not "anything"
    assert found("%") == set()
    assert found(f"#{second.id}") == {second.id}
    assert found("budi twice") == {first.id}
    assert found("budi login") == set()


# -- Event hooks fire only for what was committed --------------------------------------------


def test_a_rolled_back_nested_unit_drops_its_events(ctx: Any, spy: Any) -> None:
    with unit_of_work():
        emit("ticket_updated", ticket=None, changes={"kept": (1, 2)}, actor=None)
        with pytest.raises(ServiceError), unit_of_work():
            emit("ticket_updated", ticket=None, changes={"dropped": (1, 2)}, actor=None)
            raise ServiceError("refused")
    assert [c["changes"] for c in spy.of("ticket_updated")] == [{"kept": (1, 2)}]
    with pytest.raises(ServiceError), unit_of_work():
        emit("ticket_updated", ticket=None, changes={"outer": (1, 2)}, actor=None)
        raise ServiceError("refused")
    assert len(spy.of("ticket_updated")) == 1


def test_a_refused_patch_fires_no_event_hook(desk: Any, client: Any, spy: Any) -> None:
    ticket = _ticket(desk, desk.support)
    token, hashed = new_api_token()
    desk.admin.api_token_hash = hashed
    desk.admin.save()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.patch(f"/api/v1/tickets/{ticket.id}", headers=headers,
                        json={"status": "closed"}).status_code == 200
    before = list(spy.names())
    refused = client.patch(f"/api/v1/tickets/{ticket.id}", headers=headers,
                           json={"priority": "urgent", "tags": ["x"], "assignee": desk.agent.id,
                                 "status": "open"})
    assert refused.status_code == 409
    invalid = client.patch(f"/api/v1/tickets/{ticket.id}", headers=headers,
                           json={"priority": "urgent", "department": "nowhere"})
    assert invalid.status_code == 422
    assert spy.names() == before
    fresh = Ticket.get_by_id(ticket.id)
    assert (fresh.priority, fresh.tags, fresh.assignee_id) == ("normal", [], None)


# -- Attachments --------------------------------------------------------------------------------


def test_customer_and_agent_downloads_share_their_headers(desk: Any, client: Any) -> None:
    token, hashed = new_api_token()
    desk.agent.api_token_hash = hashed
    desk.agent.save()
    opened = client.post("/api/v1/tickets", json={
        "user_type": "member", "category": "registration-and-login", "name": "Rina",
        "email": "rina@example.com", "subject": "s", "description": "d",
        "fields": {"registered_email": "rina@example.com"},
        "attachments": [{"filename": "log.txt",
                         "content_base64": base64.b64encode(b"a log\n").decode()}]}).get_json()
    (item,) = opened["messages"][0]["attachments"]
    url = item["download_url"]
    assert url.endswith(f"/api/v1/tickets/{opened['number']}/attachments/{item['id']}")
    customer = client.get(url, headers={"X-Ticket-Key": opened["access_key"]})
    agent = client.get(url, headers={"Authorization": f"Bearer {token}"})
    web = client.get(f"/t/{opened['number']}/{opened['access_key']}/files/{item['id']}")
    sign_in(client, "agent@desk.test")
    console = client.get(f"/admin/ticket/{opened['number']}/attachment/{item['id']}")
    for response in (customer, agent, web, console):
        assert response.status_code == 200
        assert response.data == b"a log\n"
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith('attachment; filename="log.txt"')
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert "no-store" in response.headers["Cache-Control"]
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-Ticket-Key": "wrong"}).status_code == 404


def test_a_customer_cannot_download_a_file_of_an_internal_note(desk: Any, client: Any) -> None:
    from core.attachments import Storage, find_attachment
    from core.services.tickets import add_note
    from core.state import loket

    ticket = _ticket(desk, desk.support)
    saved = Storage(loket().config["attachments_path"]).save_bytes(
        b"secret\n", "note.txt", max_bytes=100, allowed_types=["text/plain"])
    note = add_note(ticket, desk.agent, "internal", [saved])
    item = Message.get_by_id(note.id).attachments[0]
    assert find_attachment(ticket.id, item.id, public=True) is None
    assert find_attachment(ticket.id, item.id, public=False).id == item.id
    response = client.get(f"/api/v1/tickets/{ticket.id}/attachments/{item.id}",
                          headers={"X-Ticket-Key": ticket.access_key})
    assert response.status_code == 404


def test_unknown_query_parameter_is_a_400_that_names_it(desk: Any, client: Any) -> None:
    token, hashed = new_api_token()
    desk.agent.api_token_hash = hashed
    desk.agent.save()
    response = client.get("/api/v1/tickets", query_string={"text": "refund"},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "unknown_parameter" and "'text'" in error["message"]
    assert client.get("/api/v1/user-types?verbose=1").status_code == 400
    assert client.get("/api/v1/user-types").status_code == 200

