"""JSON API v1: opening tickets, reading them by key or token, the agent inbox, replies, changes."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest

from core.models import (
    Attachment,
    Category,
    CategoryField,
    Contact,
    Delivery,
    FieldKind,
    Message,
    Role,
    Status,
    Ticket,
    TicketEvent,
)
from core.passwords import new_api_token

from .factories import make_staff

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
ZIP = b"PK\x03\x04" + b"\x14\x00\x00\x00\x08\x00" + b"\x00" * 40


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def give_token(staff: Any) -> str:
    token, hashed = new_api_token()
    staff.api_token_hash = hashed
    staff.save()
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_header(key: str) -> dict[str, str]:
    return {"X-Ticket-Key": key}


def ticket_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "user_type": "member", "category": "registration-and-login",
        "name": "Rina Customer", "email": "rina@example.com",
        "subject": "Cannot sign in", "description": "The code never arrives.",
        "fields": {"registered_email": "rina@example.com"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def api(desk: Any, client: Any) -> Any:
    """The desk, its agents' tokens, and a helper that opens a ticket through the API."""

    class Api:
        pass

    a = Api()
    a.desk = desk
    a.client = client
    a.admin_token = give_token(desk.admin)
    a.agent_token = give_token(desk.agent)
    a.billing_token = give_token(desk.billing_agent)

    def open_ticket(**overrides: Any) -> dict[str, Any]:
        response = client.post("/api/v1/tickets", json=ticket_body(**overrides))
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    a.open = open_ticket
    return a


# -- Opening a ticket ----------------------------------------------------------------------


def test_open_ticket_happy_path(api: Any) -> None:
    response = api.client.post("/api/v1/tickets", json=ticket_body(language="id"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == Status.NEW
    assert body["subject"] == "Cannot sign in"
    assert body["category"] == {"slug": "registration-and-login", "name": "Registration and login"}
    assert body["fields"] == {"registered_email": "rina@example.com"}
    assert body["tracking_url"] == f"http://desk.test/t/{body['number']}/{body['access_key']}"
    assert response.headers["Location"].endswith(f"/api/v1/tickets/{body['number']}")
    assert response.headers["Cache-Control"] == "no-store"
    assert [m["author"]["kind"] for m in body["messages"]] == ["customer"]

    ticket = Ticket.get_by_id(body["number"])
    assert ticket.access_key == body["access_key"]
    assert ticket.channel == "api"
    assert ticket.language == "id"
    assert ticket.department_id == api.desk.support.id  # routed by the category's default
    assert ticket.contact.email == "rina@example.com"
    assert ticket.contact.name == "Rina Customer"
    assert ticket.user_type_id == api.desk.member.id
    assert TicketEvent.select().where((TicketEvent.ticket == ticket)
                                      & (TicketEvent.kind == "created")).count() == 1


def test_open_ticket_with_attachments_and_file_field(api: Any) -> None:
    CategoryField.create(category=api.desk.login, name="screenshot", label="Screenshot",
                         kind=FieldKind.FILE, required=True, position=2)
    body = api.open(attachments=[
        {"filename": "../../screen shot.png", "content_base64": b64(PNG), "field": "screenshot"},
        {"filename": "notes.txt", "content_base64": b64(b"hello, desk\n")},
    ])
    files = {a["filename"]: a for a in body["messages"][0]["attachments"]}
    assert files["screen shot.png"]["content_type"] == "image/png"
    assert files["screen shot.png"]["field"] == "screenshot"
    assert files["notes.txt"]["content_type"] == "text/plain"
    assert Attachment.select().where(Attachment.ticket == body["number"]).count() == 2


@pytest.mark.parametrize("overrides, field", [
    ({"name": None}, "name"),
    ({"email": None}, "email"),
    ({"subject": " "}, "subject"),
    ({"description": None}, "description"),
    ({"user_type": None}, "user_type"),
    ({"category": None}, "category"),
    ({"email": "not-an-email"}, "email"),
    ({"email": 42}, "email"),
    ({"user_type": "nobody"}, "user_type"),
    ({"category": "no-such-category"}, "category"),
    ({"category": "account"}, "category"),  # a studio category, asked as a member
    ({"fields": {}}, "fields.registered_email"),
    ({"fields": {"registered_email": "nope"}}, "fields.registered_email"),
    ({"fields": {"registered_email": "a@b.co", "shoe_size": "42"}}, "fields.shoe_size"),
    ({"fields": ["a"]}, "fields"),
    ({"language": "de"}, "language"),
    ({"attachments": [{"filename": "a.zip", "content_base64": b64(ZIP)}]}, "attachments[0]"),
    ({"attachments": [{"filename": "a.txt", "content_base64": "***"}]},
     "attachments[0].content_base64"),
    ({"attachments": [{"filename": "a.txt", "content_base64": b64(b"x"), "field": "nope"}]},
     "attachments[0].field"),
    ({"attachments": [{"filename": f"{i}.txt", "content_base64": b64(b"hi")}
                      for i in range(6)]}, "attachments"),
    ({"subject": "bad\x00byte"}, "subject"),
    ({"surprise": True}, "surprise"),
])
def test_open_ticket_validation(api: Any, overrides: dict[str, Any], field: str) -> None:
    response = api.client.post("/api/v1/tickets", json=ticket_body(**overrides))
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert Ticket.select().count() == 0


def test_open_ticket_reports_every_missing_field_at_once(api: Any) -> None:
    response = api.client.post("/api/v1/tickets", json={})
    fields = response.get_json()["error"]["fields"]
    assert response.status_code == 422
    assert {"name", "email", "subject", "description", "user_type", "category"} <= set(fields)


def test_hidden_category_and_hidden_parent_are_refused(api: Any) -> None:
    api.desk.payments.visible = False
    api.desk.payments.save()
    for slug in ("payments-and-subscriptions", "refunds"):
        response = api.client.post("/api/v1/tickets", json=ticket_body(category=slug, fields={}))
        assert response.status_code == 422
        assert "category" in response.get_json()["error"]["fields"]


def test_extra_field_kinds_are_checked_like_the_web_form(api: Any) -> None:
    CategoryField.create(category=api.desk.refunds, name="happened_at", label="When",
                         kind=FieldKind.DATETIME, required=True, position=1)
    CategoryField.create(category=api.desk.refunds, name="method", label="Method",
                         kind=FieldKind.CHOICE, choices="card\nbank transfer\n", position=2)
    bad = api.client.post("/api/v1/tickets", json=ticket_body(
        category="refunds", fields={"happened_at": "yesterday", "method": "cash"}))
    assert set(bad.get_json()["error"]["fields"]) == {"fields.happened_at", "fields.method"}
    good = api.open(category="refunds",
                    fields={"happened_at": "2024-05-01T14:30:00+07:00", "method": "card"})
    assert good["fields"] == {"happened_at": "2024-05-01T07:30:00Z", "method": "card"}


def test_malformed_json_and_wrong_content_type_are_400_json(api: Any) -> None:
    cases = [
        dict(data="{not json", content_type="application/json"),
        dict(data="[1, 2]", content_type="application/json"),
        dict(data="name=x", content_type="application/x-www-form-urlencoded"),
    ]
    for kwargs in cases:
        response = api.client.post("/api/v1/tickets", **kwargs)
        assert response.status_code == 400
        assert response.is_json
        assert set(response.get_json()["error"]) >= {"code", "message"}


def test_unknown_path_and_wrong_method_answer_json(api: Any) -> None:
    missing = api.client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong = api.client.delete("/api/v1/tickets")
    assert wrong.status_code == 405 and wrong.is_json


def test_api_needs_no_csrf_token(api: Any) -> None:
    assert api.client.application.config.get("WTF_CSRF_ENABLED", True) is True
    assert api.client.post("/api/v1/tickets", json=ticket_body()).status_code == 201


# -- Reading one ticket --------------------------------------------------------------------


def test_customer_reads_with_key_and_wrong_key_or_number_look_the_same(api: Any) -> None:
    body = api.open()
    number, key = body["number"], body["access_key"]
    ok = api.client.get(f"/api/v1/tickets/{number}", headers=key_header(key))
    assert ok.status_code == 200
    assert ok.get_json()["number"] == number
    assert ok.headers["Cache-Control"] == "no-store"

    wrong_key = api.client.get(f"/api/v1/tickets/{number}", headers=key_header(key + "x"))
    missing = api.client.get(f"/api/v1/tickets/{number + 100}", headers=key_header(key))
    huge = api.client.get("/api/v1/tickets/99999999999999999999", headers=key_header(key))
    assert wrong_key.status_code == missing.status_code == huge.status_code == 404
    assert wrong_key.get_data() == missing.get_data() == huge.get_data()

    anonymous = api.client.get(f"/api/v1/tickets/{number}")
    assert anonymous.status_code == 401


def test_customer_view_hides_notes_and_staff_emails(api: Any) -> None:
    body = api.open()
    number = body["number"]
    headers = bearer(api.agent_token)
    api.client.post(f"/api/v1/tickets/{number}/messages", headers=headers,
                    json={"text": "Customer seems to use an old app.", "internal": True})
    api.client.post(f"/api/v1/tickets/{number}/messages", headers=headers,
                    json={"text": "Please update the app and try again."})

    customer = api.client.get(f"/api/v1/tickets/{number}", headers=key_header(body["access_key"]))
    view = customer.get_json()
    texts = [m["text"] for m in view["messages"]]
    assert texts == ["The code never arrives.", "Please update the app and try again."]
    raw = customer.get_data(as_text=True)
    assert "old app" not in raw
    assert "agent@desk.test" not in raw
    assert "department" not in view and "assignee" not in view and "tags" not in view
    assert view["messages"][1]["author"] == {"kind": "agent", "name": "Agus Agent"}

    agent = api.client.get(f"/api/v1/tickets/{number}", headers=headers).get_json()
    assert [m["internal"] for m in agent["messages"]] == [False, True, False]
    assert agent["department"]["slug"] == "support"
    assert agent["messages"][2]["author"]["staff"]["email"] == "agent@desk.test"
    assert agent["messages"][2]["delivery_state"] == Delivery.PORTAL
    assert agent["messages"][1]["delivery_state"] is None


def test_agent_outside_the_department_gets_the_same_404(api: Any) -> None:
    number = api.open()["number"]
    other = api.client.get(f"/api/v1/tickets/{number}", headers=bearer(api.billing_token))
    missing = api.client.get(f"/api/v1/tickets/{number + 50}", headers=bearer(api.billing_token))
    assert other.status_code == missing.status_code == 404
    assert other.get_data() == missing.get_data()
    listed = api.client.get("/api/v1/tickets", headers=bearer(api.billing_token)).get_json()
    assert listed["tickets"] == []
    for token in (api.agent_token, api.admin_token):
        assert api.client.get(f"/api/v1/tickets/{number}", headers=bearer(token)).status_code == 200
    # Nor may they write on it or change it.
    write = api.client.post(f"/api/v1/tickets/{number}/messages",
                            headers=bearer(api.billing_token), json={"text": "hi"})
    patch = api.client.patch(f"/api/v1/tickets/{number}", headers=bearer(api.billing_token),
                             json={"status": "open"})
    assert write.status_code == patch.status_code == 404


# -- Agent authentication ------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer lkt_not-a-real-token"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer "},
    {"X-Ticket-Key": "whatever"},
])
def test_agent_endpoints_need_a_valid_token(api: Any, headers: dict[str, str]) -> None:
    response = api.client.get("/api/v1/tickets", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_bad_token_on_a_ticket_is_401(api: Any) -> None:
    number = api.open()["number"]
    response = api.client.get(f"/api/v1/tickets/{number}", headers=bearer("lkt_wrong"))
    assert response.status_code == 401


def test_inactive_staff_token_stops_working(api: Any) -> None:
    assert api.client.get("/api/v1/tickets", headers=bearer(api.agent_token)).status_code == 200
    api.desk.agent.active = False
    api.desk.agent.save()
    assert api.client.get("/api/v1/tickets", headers=bearer(api.agent_token)).status_code == 401


# -- The inbox -----------------------------------------------------------------------------


def _numbers(response: Any) -> list[int]:
    assert response.status_code == 200, response.get_json()
    return [t["number"] for t in response.get_json()["tickets"]]


def test_list_filters(api: Any) -> None:
    login = api.open(subject="Login code 100% missing")
    payment = api.open(category="payments-and-subscriptions", fields={},
                       subject="Charged twice", email="budi@example.com")
    refund = api.open(category="refunds", fields={}, subject="Refund please")
    ticket = Ticket.get_by_id(payment["number"])
    ticket.assignee = api.desk.agent
    ticket.save()
    old = Ticket.get_by_id(refund["number"])
    old.updated_at = dt.datetime(2020, 1, 1)
    old.status = Status.RESOLVED
    old.save()

    def listed(**params: Any) -> list[int]:
        return _numbers(api.client.get("/api/v1/tickets", query_string=params,
                                       headers=bearer(api.agent_token)))

    everything = listed()
    assert everything == [payment["number"], login["number"], refund["number"]]
    assert listed(status="resolved") == [refund["number"]]
    assert listed(priority="high") == [payment["number"]]  # the category's default
    assert listed(assignee="me") == [payment["number"]]
    assert listed(assignee=str(api.desk.agent.id)) == [payment["number"]]
    assert listed(assignee="none") == [login["number"], refund["number"]]
    assert listed(category="refunds") == [refund["number"]]
    assert listed(department="support") == everything
    assert listed(department="billing") == []
    assert listed(channel="api") == everything
    assert listed(channel="staff") == []
    # Channel names are the declared ones: a channel no enabled plugin serves is named back.
    unknown = api.client.get("/api/v1/tickets", query_string={"channel": "telegram"},
                             headers=bearer(api.agent_token))
    assert unknown.status_code == 422
    assert "web, api, staff" in unknown.get_json()["error"]["fields"]["channel"]
    assert listed(q="TWICE") == [payment["number"]]
    assert listed(q="100%") == [login["number"]]
    assert listed(q="_") == []
    assert listed(updated_since="2021-01-01T00:00:00Z") == [payment["number"], login["number"]]

    row = api.client.get("/api/v1/tickets", headers=bearer(api.agent_token)).get_json()["tickets"][0]
    assert row["assignee"] == {"id": api.desk.agent.id, "name": "Agus Agent",
                               "email": "agent@desk.test"}
    assert row["contact"]["email"] == "budi@example.com"
    assert "messages" not in row


@pytest.mark.parametrize("params, field", [
    ({"status": "sleeping"}, "status"),
    ({"priority": "meh"}, "priority"),
    ({"department": "nowhere"}, "department"),
    ({"assignee": "someone"}, "assignee"),
    ({"updated_since": "last week"}, "updated_since"),
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"cursor": "garbage!"}, "cursor"),
])
def test_list_rejects_bad_filters(api: Any, params: dict[str, str], field: str) -> None:
    response = api.client.get("/api/v1/tickets", query_string=params,
                              headers=bearer(api.agent_token))
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_list_cursor_pagination(api: Any) -> None:
    numbers = [api.open(subject=f"Ticket {i}")["number"] for i in range(7)]
    # Two share an updated_at, so the id breaks the tie.
    same = dt.datetime(2024, 1, 1, 12, 0, 0)
    Ticket.update(updated_at=same).where(Ticket.id.in_(numbers[2:4])).execute()
    expected = [row.id for row in Ticket.select().order_by(Ticket.updated_at.desc(),
                                                           Ticket.id.desc())]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/api/v1/tickets", query_string=params,
                              headers=bearer(api.admin_token)).get_json()
        seen += [t["number"] for t in page["tickets"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == expected
    exact = api.client.get("/api/v1/tickets", query_string={"limit": 7},
                           headers=bearer(api.admin_token)).get_json()
    assert len(exact["tickets"]) == 7 and exact["next_cursor"] is None


# -- Writing on a ticket ---------------------------------------------------------------------


def test_agent_reply_is_delivered_to_the_portal_and_waits_on_the_customer(api: Any) -> None:
    number = api.open()["number"]
    response = api.client.post(f"/api/v1/tickets/{number}/messages",
                               headers=bearer(api.agent_token),
                               json={"text": "Try again now, please."})
    assert response.status_code == 201
    message = response.get_json()
    assert message["internal"] is False
    assert message["delivery_state"] == Delivery.PORTAL  # no plugin sends on channel "api"
    ticket = Ticket.get_by_id(number)
    assert ticket.status == Status.PENDING
    assert ticket.first_response_at is not None

    keep = api.client.post(f"/api/v1/tickets/{number}/messages", headers=bearer(api.agent_token),
                           json={"text": "One more thing.", "status": None})
    assert keep.status_code == 201
    assert Ticket.get_by_id(number).status == Status.PENDING
    solved = api.client.post(f"/api/v1/tickets/{number}/messages",
                             headers=bearer(api.agent_token),
                             json={"text": "Done.", "status": "resolved"})
    assert solved.status_code == 201
    assert Ticket.get_by_id(number).status == Status.RESOLVED


def test_note_stays_internal(api: Any) -> None:
    body = api.open()
    number = body["number"]
    response = api.client.post(f"/api/v1/tickets/{number}/messages",
                               headers=bearer(api.agent_token),
                               json={"text": "Looks like fraud.", "internal": True,
                                     "status": "on_hold"})
    assert response.status_code == 201
    note = response.get_json()
    assert note["internal"] is True and note["delivery_state"] is None
    assert Message.get_by_id(note["id"]).is_internal
    assert Ticket.get_by_id(number).status == Status.ON_HOLD
    view = api.client.get(f"/api/v1/tickets/{number}",
                          headers=key_header(body["access_key"])).get_data(as_text=True)
    assert "fraud" not in view


def test_customer_replies_with_the_key(api: Any) -> None:
    body = api.open()
    number = body["number"]
    api.client.post(f"/api/v1/tickets/{number}/messages", headers=bearer(api.agent_token),
                    json={"text": "Which phone?"})
    response = api.client.post(f"/api/v1/tickets/{number}/messages",
                               headers=key_header(body["access_key"]),
                               json={"text": "An old Android.",
                                     "attachments": [{"filename": "log.txt",
                                                      "content_base64": b64(b"log\n")}]})
    assert response.status_code == 201
    message = response.get_json()
    assert message["author"]["kind"] == "customer"
    assert "internal" not in message and "delivery_state" not in message
    assert message["attachments"][0]["filename"] == "log.txt"
    ticket = Ticket.get_by_id(number)
    assert ticket.status == Status.OPEN  # the customer's answer brings it back from pending
    assert Message.get_by_id(message["id"]).channel == "api"

    # A customer cannot post a note, and a wrong key is the same 404 as anywhere.
    sneaky = api.client.post(f"/api/v1/tickets/{number}/messages",
                             headers=key_header(body["access_key"]),
                             json={"text": "x", "internal": True})
    assert sneaky.status_code == 422
    wrong = api.client.post(f"/api/v1/tickets/{number}/messages", headers=key_header("nope"),
                            json={"text": "x"})
    assert wrong.status_code == 404


def test_messages_validation_and_closed_ticket(api: Any) -> None:
    body = api.open()
    number = body["number"]
    empty = api.client.post(f"/api/v1/tickets/{number}/messages",
                            headers=bearer(api.agent_token), json={"text": "  "})
    assert empty.status_code == 422 and "text" in empty.get_json()["error"]["fields"]
    bad = api.client.post(f"/api/v1/tickets/{number}/messages", headers=bearer(api.agent_token),
                          json={"text": "x", "internal": "yes", "status": "gone"})
    assert set(bad.get_json()["error"]["fields"]) == {"internal", "status"}
    api.client.patch(f"/api/v1/tickets/{number}", headers=bearer(api.agent_token),
                     json={"status": "closed"})
    closed = api.client.post(f"/api/v1/tickets/{number}/messages",
                             headers=key_header(body["access_key"]), json={"text": "Hello?"})
    assert closed.status_code == 409
    assert closed.get_json()["error"]["code"] == "conflict"


# -- Changing a ticket -----------------------------------------------------------------------


def _events(number: int) -> list[tuple[str, str, str, int | None]]:
    rows = (TicketEvent.select().where(TicketEvent.ticket == number)
            .order_by(TicketEvent.id))
    return [(e.kind, e.old_value, e.new_value, e.staff_id) for e in rows if e.kind != "created"]


def test_patch_status_and_assignee_write_audit_events(api: Any) -> None:
    number = api.open()["number"]
    agent = api.desk.agent
    response = api.client.patch(f"/api/v1/tickets/{number}", headers=bearer(api.agent_token),
                                json={"status": "open", "assignee": agent.id})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "open"
    assert body["assignee"]["id"] == agent.id
    assert _events(number) == [
        ("assignee", "", f"{agent.id}:{agent.name}", agent.id),
        ("status", "new", "open", agent.id),
    ]
    unassign = api.client.patch(f"/api/v1/tickets/{number}", headers=bearer(api.agent_token),
                                json={"assignee": None})
    assert unassign.get_json()["assignee"] is None
    assert _events(number)[-1][:2] == ("assignee", f"{agent.id}:{agent.name}")


def test_patch_priority_department_tags_subject(api: Any) -> None:
    number = api.open()["number"]
    response = api.client.patch(f"/api/v1/tickets/{number}", headers=bearer(api.admin_token),
                                json={"priority": "urgent", "department": "billing",
                                      "tags": ["VIP", " login "], "subject": "Sign-in code"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["priority"], body["department"]["slug"], body["tags"], body["subject"]) == (
        "urgent", "billing", ["login", "vip"], "Sign-in code")
    kinds = {e[0] for e in _events(number)}
    assert kinds == {"priority", "department", "tags", "subject"}
    # The support agent no longer sees it; the billing agent now does.
    assert api.client.get(f"/api/v1/tickets/{number}",
                          headers=bearer(api.agent_token)).status_code == 404
    assert api.client.get(f"/api/v1/tickets/{number}",
                          headers=bearer(api.billing_token)).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"status": "sleeping"}, "status"),
    ({"priority": "meh"}, "priority"),
    ({"department": "nowhere"}, "department"),
    ({"assignee": 999999}, "assignee"),
    ({"assignee": "me"}, "assignee"),
    ({"tags": "vip"}, "tags"),
    ({"subject": ""}, "subject"),
    ({"colour": "red"}, "colour"),
])
def test_patch_validation(api: Any, body: dict[str, Any], field: str) -> None:
    number = api.open()["number"]
    response = api.client.patch(f"/api/v1/tickets/{number}", headers=bearer(api.agent_token),
                                json=body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert _events(number) == []


def test_patch_refuses_an_assignee_outside_the_department(api: Any) -> None:
    number = api.open()["number"]
    response = api.client.patch(f"/api/v1/tickets/{number}", headers=bearer(api.admin_token),
                                json={"assignee": api.desk.billing_agent.id})
    assert response.status_code == 422
    moved = api.client.patch(f"/api/v1/tickets/{number}", headers=bearer(api.admin_token),
                             json={"assignee": api.desk.billing_agent.id,
                                   "department": "billing"})
    assert moved.status_code == 200


def test_patch_is_all_or_nothing_and_closed_stays_closed(api: Any) -> None:
    number = api.open()["number"]
    headers = bearer(api.agent_token)
    assert api.client.patch(f"/api/v1/tickets/{number}", headers=headers,
                            json={"status": "closed"}).status_code == 200
    response = api.client.patch(f"/api/v1/tickets/{number}", headers=headers,
                                json={"priority": "urgent", "status": "open"})
    assert response.status_code == 409
    ticket = Ticket.get_by_id(number)
    assert (ticket.status, ticket.priority) == (Status.CLOSED, "normal")


# -- Help-center data --------------------------------------------------------------------------


def test_user_types_and_categories(api: Any) -> None:
    types = api.client.get("/api/v1/user-types").get_json()["user_types"]
    assert [t["slug"] for t in types] == ["member", "studio"]
    hidden = Category.create(user_type=api.desk.member, slug="secret", name="Secret",
                             visible=False, position=9)
    Category.create(user_type=api.desk.member, parent=hidden, slug="secret-child",
                    name="Secret child")
    tree = api.client.get("/api/v1/categories", query_string={"user_type": "member"}).get_json()
    top = [c["slug"] for c in tree["categories"]]
    assert top == ["registration-and-login", "payments-and-subscriptions"]
    login, payments = tree["categories"]
    assert login["fields"] == [{"name": "registered_email", "label": "Registered email",
                                "kind": "email", "required": True, "choices": [],
                                "help_text": ""}]
    assert [c["slug"] for c in payments["children"]] == ["refunds"]
    everything = api.client.get("/api/v1/categories").get_json()["categories"]
    assert {c["user_type"] for c in everything} == {"member", "studio"}
    unknown = api.client.get("/api/v1/categories", query_string={"user_type": "x"})
    assert unknown.status_code == 422


def test_openapi_document_is_served(api: Any) -> None:
    doc = api.client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert {"/tickets", "/tickets/{number}", "/tickets/{number}/messages", "/categories",
            "/user-types", "/openapi.json"} <= set(doc["paths"])


def test_admin_role_is_what_counts_not_departments(api: Any) -> None:
    boss = make_staff("boss@desk.test", "Bo Boss", Role.ADMIN)
    token = give_token(boss)
    number = api.open()["number"]
    assert api.client.get(f"/api/v1/tickets/{number}", headers=bearer(token)).status_code == 200


def test_the_list_answers_exactly_what_the_ticket_summary_model_gives(api: Any) -> None:
    """The list writes its JSON without the models (``schemas.summary_json``): pinned to them
    for tickets with and without category, department, assignee, tags, times and names."""
    from core.api import schemas

    plain = api.open(subject="Login code 100% missing")
    rich = api.open(category="payments-and-subscriptions", fields={}, subject="Charged twice",
                    email="budi@example.com")
    bare = api.open(subject="No category", category="refunds", fields={})
    ticket = Ticket.get_by_id(rich["number"])
    ticket.assignee = api.desk.agent
    ticket.tags = ["vip", "kyc"]
    ticket.due_at = dt.datetime(2030, 5, 1, 12, 30, 15, 250000)
    ticket.first_response_at = dt.datetime(2024, 5, 1, 9, 0)
    ticket.escalation_level = 2
    ticket.requester_name = "Budi on the phone"
    ticket.save()
    other = Ticket.get_by_id(bare["number"])
    other.category = None
    other.department = None
    other.status = Status.CLOSED
    other.resolved_at = dt.datetime(2024, 6, 1)
    other.closed_at = dt.datetime(2024, 6, 2, 0, 0, 1)
    other.requester_name = ""  # then the contact's name, else its address
    other.save()
    Contact.update(name="").where(Contact.id == other.contact_id).execute()
    expected = [schemas.TicketSummary.of(Ticket.get_by_id(n)).model_dump(mode="json")
                for n in (bare["number"], rich["number"], plain["number"])]
    response = api.client.get("/api/v1/tickets?limit=2", headers=bearer(api.admin_token))
    page = response.get_json()
    after = api.client.get(f"/api/v1/tickets?limit=2&cursor={page['next_cursor']}",
                           headers=bearer(api.admin_token)).get_json()
    assert page["tickets"] + after["tickets"] == expected
    assert after["next_cursor"] is None
    assert expected[0]["category"] is None and expected[0]["department"] is None
    assert expected[1]["assignee"] is not None and expected[1]["tags"] == ["vip", "kyc"]


def test_the_list_names_related_rows_in_one_statement_not_by_joins(api: Any) -> None:
    from .spies import Statements

    api.open(category="payments-and-subscriptions", fields={}, subject="Charged twice")
    with Statements() as caught:
        listed = api.client.get("/api/v1/tickets", headers=bearer(api.admin_token)).get_json()
    statements = caught.text
    (tickets,) = [sql for sql in statements if 'FROM "ticket"' in sql and "LIMIT" in sql]
    assert 'JOIN "contact"' in tickets
    assert not any(f'JOIN "{table}"' in tickets for table in ("category", "department", "staff"))
    assert len([sql for sql in statements if "UNION ALL" in sql]) == 1
    assert listed["tickets"][0]["category"]["name"] == "Payments and subscriptions"
