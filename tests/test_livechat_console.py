"""The console's live-chat view: availability, fair offers, limits, accept, reply, transfer, close."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core import db
from core.models import AuthorKind, Delivery, Message, Status, Ticket
from plugins.livechat import desk as chats
from plugins.livechat.models import AgentPresence, Chat, ChatState
from plugins.livechat.tokens import new_visitor
from tests.factories import build_desk, make_staff
from tests.test_admin_helpers import post, sign_in


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app(plugins=["livechat"], **{"livechat.department": "support"})


@pytest.fixture
def desk(app: Any) -> Any:
    with app.app_context(), db.connection():
        yield build_desk()


def _handed_over_chat(text: str = "a person please") -> Chat:
    """A visitor's chat as the chat process makes it: stored, then handed over by the bot."""
    visitor, _token = new_visitor()
    outcome = chats.post(visitor, uuid.uuid4().hex, text, name="Vera")
    return Chat.get(Chat.ticket == Message.get_by_id(outcome.ack["id"]).ticket_id)


def test_the_view_is_for_signed_in_staff_and_its_forms_need_the_csrf_token(
        app: Any, desk: Any) -> None:
    client = app.test_client()
    assert client.get("/admin/livechat_console/").status_code == 302  # to the sign-in page
    sign_in(client, "agent@desk.test")
    page = client.get("/admin/livechat_console/")
    assert page.status_code == 200 and "You are <strong>away</strong>" in page.text
    assert client.post("/admin/livechat_console/availability",
                       data={"available": "1"}).status_code == 400
    post(client, "/admin/livechat_console/availability", {"available": "1", "max_chats": "2"})
    presence = AgentPresence.get(AgentPresence.staff == desk.agent.id)
    assert presence.available and presence.max_chats == 2


def test_new_chats_are_offered_fairly_to_available_agents_of_the_department(
        app: Any, desk: Any) -> None:
    second = make_staff("second@desk.test", "Sam Second", departments=(desk.support,))
    for staff in (desk.agent, second, desk.billing_agent):
        chats.set_available(staff, True)
    offered = [_handed_over_chat().offered_to_id for _ in range(4)]
    # Alternating between the two support agents; never the billing agent.
    assert offered[0] != offered[1] and set(offered) == {desk.agent.id, second.id}
    assert offered[2] != offered[3]
    chats.accept(Chat.get(Chat.offered_to == desk.agent.id), desk.agent)
    # Agus now has a chat: the next offers go to Sam, who has none.
    assert _handed_over_chat().offered_to_id == second.id


def test_nobody_available_means_an_honest_offline_answer(app: Any, desk: Any) -> None:
    chat = _handed_over_chat()
    assert chat.state == ChatState.OFFLINE
    said = Message.select().where((Message.ticket == chat.ticket_id)
                                  & (Message.author_kind == AuthorKind.BOT))
    assert any("Nobody from our team is available" in m.body_text for m in said)


def test_outside_chat_hours_even_an_available_agent_is_not_offered_chats(
        make_app: Any) -> None:
    import datetime as dt

    from core.models import clock_at

    app = make_app(plugins=["livechat"], **{"livechat.department": "support",
                                            "livechat.hours": "08:00-09:00"})
    with app.app_context(), db.connection():
        desk = build_desk()
        chats.set_available(desk.agent, True)
        with clock_at(dt.datetime(2026, 1, 1, 10, 0)):
            assert _handed_over_chat().state == ChatState.OFFLINE
        with clock_at(dt.datetime(2026, 1, 1, 8, 30)):
            assert _handed_over_chat().state == ChatState.WAITING


def test_an_agent_takes_chats_up_to_their_limit(app: Any, desk: Any) -> None:
    chats.set_available(desk.agent, True, max_chats=1)
    first, second = _handed_over_chat(), _handed_over_chat()
    chats.accept(first, desk.agent)
    with pytest.raises(chats.ServiceError, match="limit"):
        chats.accept(second, desk.agent)
    ticket = Ticket.get_by_id(first.ticket_id)
    assert ticket.assignee_id == desk.agent.id and ticket.department_id == desk.support.id


def test_accept_reply_transfer_and_close_from_the_console(app: Any, desk: Any) -> None:
    colleague = make_staff("colleague@desk.test", "Cleo Colleague", departments=(desk.support,))
    chats.set_available(desk.agent, True)
    chats.set_available(colleague, True)
    chat = _handed_over_chat()
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    url = f"/admin/livechat_console/{chat.id}"
    assert "a person please" in client.get(url).text
    post(client, url + "/act", {"action": "accept"})
    assert Chat.get_by_id(chat.id).state == ChatState.ACTIVE
    post(client, url + "/act", {"action": "reply", "text": "Hello Vera, Agus here."})
    reply = (Message.select().where((Message.ticket == chat.ticket_id)
                                    & (Message.author_kind == AuthorKind.STAFF)).get())
    # Through the outbox (jobs run inline here) to the livechat channel's deliver_message.
    assert reply.channel == "livechat" and reply.delivery_state == Delivery.SENT
    assert Chat.get_by_id(chat.id).first_human_reply_at is not None
    post(client, url + "/act", {"action": "transfer", "agent": str(colleague.id)})
    moved = Chat.get_by_id(chat.id)
    assert moved.agent_id == colleague.id
    assert Ticket.get_by_id(chat.ticket_id).assignee_id == colleague.id
    # Agus no longer has it: Cleo closes it.
    other = app.test_client()
    sign_in(other, "colleague@desk.test")
    post(other, url + "/act", {"action": "close"})
    assert Chat.get_by_id(chat.id).state == ChatState.CLOSED
    assert Ticket.get_by_id(chat.ticket_id).status == Status.RESOLVED
    report = chats.report()
    assert report["chats"] == 1 and report["handoff_rate"] == 1.0
    assert report["first_human_reply_median"] is not None


def test_an_agent_of_another_department_cannot_open_the_chat(app: Any, desk: Any) -> None:
    chat = _handed_over_chat()
    client = app.test_client()
    sign_in(client, "billing@desk.test")
    assert client.get(f"/admin/livechat_console/{chat.id}").status_code == 404
    assert post(client, f"/admin/livechat_console/{chat.id}/act",
                {"action": "accept"}).status_code == 404
    assert "a person please" not in client.get("/admin/livechat_console/").text


def test_a_bot_message_joins_the_thread_sent_and_is_no_first_response(
        app: Any, desk: Any) -> None:
    from core.services import tickets

    chat = _handed_over_chat()
    ticket = Ticket.get_by_id(chat.ticket_id)
    message = tickets.add_bot_message(ticket, "Hello from the bot", channel="livechat")
    assert message.author_kind == AuthorKind.BOT and not message.is_internal
    assert message.delivery_state == Delivery.SENT
    assert Ticket.get_by_id(ticket.id).first_response_at is None
    assert message.id in [m.id for m in tickets.public_thread(ticket)]
    with pytest.raises(tickets.ServiceError):
        tickets.add_bot_message(ticket, "  ", channel="livechat")


def test_chat_hours_are_per_weekday_in_the_desks_time_zone(make_app: Any) -> None:
    import datetime as dt

    from core.models import clock_at

    app = make_app(plugins=["livechat"], timezone="Asia/Jakarta",
                   **{"livechat.department": "support",
                      "livechat.hours": "mon-fri 08:00-17:00; sat 22:00-02:00"})
    with app.app_context(), db.connection():
        desk = build_desk()
        chats.set_available(desk.agent, True, max_chats=10)
        cases = [  # (UTC time, open?) with Jakarta seven hours ahead
            (dt.datetime(2026, 11, 30, 1, 30), True),  # Monday 08:30
            (dt.datetime(2026, 11, 30, 0, 30), False),  # Monday 07:30
            (dt.datetime(2026, 11, 30, 10, 0), False),  # Monday 17:00, the window's end
            (dt.datetime(2026, 11, 28, 2, 0), False),  # Saturday 09:00: only at night
            (dt.datetime(2026, 11, 28, 15, 30), True),  # Saturday 22:30
            (dt.datetime(2026, 11, 28, 18, 30), True),  # Sunday 01:30, Saturday's night
            (dt.datetime(2026, 11, 29, 3, 0), False),  # Sunday 10:00
        ]
        for moment, expected in cases:
            with clock_at(moment):
                state = _handed_over_chat().state
            assert (state == ChatState.WAITING) is expected, moment


@pytest.mark.parametrize("bad", ["mon-fri", "mon-fri 8:00-17:00", "moon 08:00-09:00",
                                 "mon 08:00-08:00", "25:00-26:00"])
def test_malformed_chat_hours_stop_start_up(make_app: Any, bad: str) -> None:
    with pytest.raises(Exception, match="hours|HH:MM|day|window"):
        make_app(plugins=["livechat"], **{"livechat.hours": bad})


def test_the_report_covers_the_dates_asked_for(app: Any, desk: Any) -> None:
    import datetime as dt

    from core.models import clock_at

    for day in (1, 2, 3):
        with clock_at(dt.datetime(2026, 3, day, 12, 0)):
            _handed_over_chat()
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    everything = client.get("/admin/livechat_console/").text
    assert "Chats: 3" in everything
    two = client.get("/admin/livechat_console/?from=2026-03-02&to=2026-03-03").text
    assert "Chats: 2" in two and 'value="2026-03-02"' in two
    one = client.get("/admin/livechat_console/?from=2026-03-02&to=2026-03-02").text
    assert "Chats: 1" in one
    assert "Chats: 3" in client.get("/admin/livechat_console/?from=nonsense").text


def test_the_chat_statements_read_the_whole_row(app: Any, desk: Any) -> None:
    chat = _handed_over_chat()
    other = _handed_over_chat("someone else")
    from playhouse.shortcuts import model_to_dict

    expected = model_to_dict(Chat.get_by_id(chat.id), recurse=False)
    by_id = db.STATEMENTS["livechat.chat_by_id"].first(chat.id)
    by_ticket = db.STATEMENTS["livechat.chat_by_ticket"].first(chat.ticket_id)
    assert model_to_dict(by_id, recurse=False) == expected
    assert model_to_dict(by_ticket, recurse=False) == expected
    assert db.STATEMENTS["livechat.chat_by_id"].first(other.id).id == other.id
    assert db.STATEMENTS["livechat.chat_by_id"].first(other.id + 1000) is None
    assert db.STATEMENTS["livechat.chat_by_ticket"].first(other.ticket_id + 1000) is None
