"""The channel foundation, proved with the loopback plugin: declared channels, one way in,
the outbox out, receipts, retries, notifications in three languages."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import db, hookimpl, outbox
from core.hookspecs import ChannelSpec
from core.models import (
    Delivery,
    IdentityKind,
    Message,
    NotificationTemplate,
    Status,
    Ticket,
    TicketEvent,
    clock_at,
    utcnow,
)
from core.plugins import PluginError
from core.services import tickets
from core.services.tickets import Actor, Identity
from tests import loopback
from tests.factories import build_desk
from tests.processes import desk_env, wait_for
from tests.standin import Platform

from .test_admin_helpers import post, sign_in

SECRET = "loopback-secret"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def platform() -> Iterator[Platform]:
    running = Platform().start()
    yield running
    running.stop()


@pytest.fixture
def loop(make_app: Any, platform: Platform, spy: Any) -> Any:
    """An app with the loopback channels enabled, sending to the stand-in platform."""
    return make_app(extra_plugins=(loopback, spy), **{"tests.loopback.api_url": platform.url})


@pytest.fixture
def loop_desk(loop: Any) -> Iterator[Any]:
    with loop.app_context(), db.connection():
        yield build_desk()


def webhook(client: Any, update: dict[str, Any], secret: str = SECRET,
            signature: str | None = None) -> Any:
    body = json.dumps(update).encode()
    return client.post("/loopback/webhook", data=body, content_type="application/json",
                       headers={"X-Loopback-Signature": signature
                                if signature is not None else loopback.sign(body, secret)})


def chat(update_id: int, text: str = "My payout did not arrive", chat_id: str = "c-42",
         language: str = "en") -> dict[str, Any]:
    return {"kind": "message", "update_id": update_id, "chat_id": chat_id, "name": "Lia",
            "text": text, "language": language}


def thread(ticket_id: int) -> list[Message]:
    return list(Message.select().where(Message.ticket == ticket_id).order_by(Message.id))


# -- Channels are declared ------------------------------------------------------------------


def test_register_channels_core_declares_its_own_like_any_plugin(app: Any) -> None:
    channels = app.extensions["loket"].channels
    assert {"web", "api", "staff"} <= set(channels.names())
    assert channels.owner("web") == "core" and not channels.get("web").can_push
    assert channels.owner("loopback") is None


def test_register_channels_of_a_plugin_reach_the_console_filter(loop: Any, loop_desk: Any
                                                                ) -> None:
    channels = loop.extensions["loket"].channels
    assert channels.owner("loopback") == "tests.loopback"
    assert channels.get("loopmail").identity_kind == IdentityKind.EMAIL
    webhook(loop.test_client(), chat(3))
    client = loop.test_client()
    sign_in(client, "admin@desk.test")
    page = client.get("/admin/tickets/").get_data(as_text=True)
    assert "Loopback mail" in page and "Web form" in page and "Console" in page
    assert 'loket-channel" title="loopback">Loopback</span>' in page  # the row's badge


def test_register_channels_two_owners_of_one_channel_stop_start_up(make_app: Any) -> None:
    class Rival:
        @hookimpl
        def register_channels(self) -> list[ChannelSpec]:
            return [ChannelSpec("loopback", "Another loopback")]

    with pytest.raises(PluginError) as caught:
        make_app(extra_plugins=(loopback, Rival()), migrate=False)
    message = str(caught.value)
    assert "\n" not in message
    assert "'loopback'" in message and "tests.loopback" in message


def test_register_channels_refuses_a_channel_named_like_a_path(make_app: Any) -> None:
    class Odd:
        @hookimpl
        def register_channels(self) -> list[ChannelSpec]:
            return [ChannelSpec("../mail", "Odd")]

    with pytest.raises(PluginError, match="channel name"):
        make_app(extra_plugins=(Odd(),), migrate=False)


# -- One way in ----------------------------------------------------------------------------


def test_webhook_refuses_forged_unsigned_and_oversized_posts_and_stores_nothing(
        loop: Any, loop_desk: Any) -> None:
    client = loop.test_client()
    assert webhook(client, chat(1), secret="guess").status_code == 403
    assert webhook(client, chat(1), signature="").status_code == 403
    big = chat(2, text="x" * (loopback.MAX_BODY + 1))
    assert webhook(client, big).status_code == 413
    assert Message.select().count() == 0 and Ticket.select().count() == 0


def test_inbound_message_is_deduplicated_and_its_raw_original_kept(loop: Any, loop_desk: Any,
                                                                   platform: Platform) -> None:
    client = loop.test_client()
    first = webhook(client, chat(7, text="Hello <script>alert(1)</script>")).get_json()
    again = webhook(client, chat(7, text="Hello <script>alert(1)</script>")).get_json()
    assert first["created"] and again["duplicate"] and again["message"] == first["message"]
    inbound = Message.get_by_id(first["message"])
    assert inbound.raw_type == "application/json" and inbound.raw_size > 0
    assert tickets.find_message("loopback", "7").id == inbound.id
    assert tickets.find_ticket("loopback", "7").id == first["ticket"]
    assert tickets.find_message("loopback", "8") is None
    # A later message from the same chat joins the open ticket.
    follow = webhook(client, chat(8, text="Any news?")).get_json()
    assert follow["ticket"] == first["ticket"] and not follow["created"]

    agent = loop.test_client()
    sign_in(agent, "admin@desk.test")
    page = agent.get(f"/admin/ticket/{first['ticket']}/").get_data(as_text=True)
    raw_url = f"/admin/ticket/{first['ticket']}/message/{inbound.id}/raw"
    assert raw_url in page
    shown = agent.get(raw_url)
    assert shown.status_code == 200
    assert "&lt;script&gt;" in shown.get_data(as_text=True)  # escaped, never run
    download = agent.get(raw_url, query_string={"download": 1})
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.mimetype == "application/octet-stream"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]
    assert json.loads(download.data)["update_id"] == 7
    # Not for anyone else: signed out it is a sign-in redirect, the customer never sees a link.
    assert loop.test_client().get(raw_url).status_code == 302
    ticket = Ticket.get_by_id(first["ticket"])
    tracking = loop.test_client().get(f"/t/{ticket.id}/{ticket.access_key}")
    assert "/raw" not in tracking.get_data(as_text=True)


def test_raw_original_over_the_limit_is_cut_and_marked(make_app: Any, platform: Platform
                                                       ) -> None:
    app = make_app(extra_plugins=(loopback,), raw_max_bytes=100,
                   **{"tests.loopback.api_url": platform.url})
    with app.app_context(), db.connection():
        from core.raw import RawOriginal, read

        result = tickets.receive_message(
            channel="loopback", identity=Identity("loopback", "c-1"), text="long",
            external_id="u-1", raw=RawOriginal(b"y" * 5000, "application/json"))
        message = Message.get_by_id(result.message.id)
        assert message.raw_size == 5000 and message.raw_type.endswith("; truncated")
        assert read(message.raw_path) == b"y" * 100


def test_agent_without_the_ticket_in_scope_cannot_open_its_raw_original(
        loop: Any, loop_desk: Any) -> None:
    result = webhook(loop.test_client(), chat(9)).get_json()
    tickets.update_ticket(Ticket.get_by_id(result["ticket"]), Actor.agent(loop_desk.admin),
                          department=loop_desk.billing)
    agent = loop.test_client()
    sign_in(agent, "agent@desk.test")  # support only
    raw_url = f"/admin/ticket/{result['ticket']}/message/{result['message']}/raw"
    assert agent.get(raw_url).status_code == 404


# -- One way out: the outbox ---------------------------------------------------------------


def _loopback_ticket(client: Any, update_id: int = 1, language: str = "en") -> Ticket:
    answer = webhook(client, chat(update_id, language=language)).get_json()
    return Ticket.get_by_id(answer["ticket"])


def test_reply_on_a_pushing_channel_is_sent_by_the_outbox(loop: Any, loop_desk: Any,
                                                         platform: Platform, spy: Any) -> None:
    ticket = _loopback_ticket(loop.test_client())
    reply = tickets.reply(ticket, loop_desk.agent, "Your payout is on its way.")
    stored = Message.get_by_id(reply.id)
    assert stored.delivery_state == Delivery.SENT and stored.recipient == "c-42"
    sent = [m for m in platform.messages() if m["text"] == "Your payout is on its way."]
    assert len(sent) == 1 and sent[0]["to"] == "c-42" and sent[0]["channel"] == "loopback"
    assert stored.external_id == sent[0]["id"]
    changes = [(c["old"], c["new"]) for c in spy.of("message_delivery_changed")
               if c["message"].id == reply.id]
    assert changes == [(Delivery.QUEUED, Delivery.SENT)]
    # No separate notification: the reply itself reached the customer's own channel.
    assert [m.notification for m in thread(ticket.id)].count("agent_replied") == 0


def test_message_delivery_changed_follows_receipts_forward_only(loop: Any, loop_desk: Any,
                                                               platform: Platform,
                                                               spy: Any) -> None:
    client = loop.test_client()
    ticket = _loopback_ticket(client)
    reply = tickets.reply(ticket, loop_desk.agent, "Done!")
    platform_id = Message.get_by_id(reply.id).external_id
    for state in ("delivered", "read", "delivered"):
        update = {"kind": "receipt", "message_id": platform_id, "state": state}
        assert webhook(client, update).get_json() == {"known": True}
    assert Message.get_by_id(reply.id).delivery_state == Delivery.READ
    news = [c["new"] for c in spy.of("message_delivery_changed") if c["message"].id == reply.id]
    assert news == [Delivery.SENT, Delivery.DELIVERED, Delivery.READ]
    unknown = {"kind": "receipt", "message_id": "sb-999", "state": "read"}
    assert webhook(client, unknown).get_json() == {"known": False}


def test_failed_send_shows_on_the_ticket_and_the_agent_retries_it(loop: Any, loop_desk: Any,
                                                                  platform: Platform) -> None:
    ticket = _loopback_ticket(loop.test_client())
    platform.fail_next(400, "chat not found")
    reply = tickets.reply(ticket, loop_desk.agent, "Could you send a screenshot?")
    failed = Message.get_by_id(reply.id)
    assert failed.delivery_state == Delivery.FAILED
    assert "chat not found" in failed.delivery_error
    tickets.update_ticket(ticket, Actor.agent(loop_desk.admin), department=loop_desk.support)
    agent = loop.test_client()
    sign_in(agent, "agent@desk.test")
    page = agent.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    retry_url = f"/admin/ticket/{ticket.id}/message/{reply.id}/retry"
    assert "chat not found" in page and retry_url in page

    response = post(agent, retry_url, token_from=f"/admin/ticket/{ticket.id}/")
    assert response.status_code == 302
    sent = Message.get_by_id(reply.id)
    assert sent.delivery_state == Delivery.SENT and sent.delivery_error == ""
    # The same message, the same idempotency key: a platform that kept the first try dedups.
    assert platform.attempts.count(failed.delivery_key) == 2
    kinds = [e.kind for e in TicketEvent.select().where(TicketEvent.ticket == ticket.id)]
    assert "delivery_failed" in kinds and "delivery_retry" in kinds
    # Only failed messages can be retried.
    again = post(agent, retry_url, token_from=f"/admin/ticket/{ticket.id}/")
    assert again.status_code == 302
    assert Message.get_by_id(reply.id).delivery_state == Delivery.SENT


def test_retry_needs_the_csrf_token(make_app: Any, platform: Platform) -> None:
    app = make_app(extra_plugins=(loopback,), **{"tests.loopback.api_url": platform.url})
    with app.app_context(), db.connection():
        desk = build_desk()
        ticket = _loopback_ticket_direct()
        platform.fail_next(400, "no")
        reply = tickets.reply(ticket, desk.agent, "Hi")
        agent = app.test_client()
        sign_in(agent, "agent@desk.test")
        response = agent.post(f"/admin/ticket/{ticket.id}/message/{reply.id}/retry")
        assert response.status_code == 400
        assert Message.get_by_id(reply.id).delivery_state == Delivery.FAILED


def _loopback_ticket_direct(chat_id: str = "c-9", language: str = "en") -> Ticket:
    return tickets.receive_message(channel="loopback", identity=Identity("loopback", chat_id),
                                   text="help", external_id=f"u-{chat_id}",
                                   language=language).ticket


def test_temporary_failures_are_retried_with_backoff_then_marked_failed(
        make_app: Any, platform: Platform) -> None:
    app = make_app(extra_plugins=(loopback,), outbox_max_attempts=3, outbox_retry_seconds=60,
                   **{"tests.loopback.api_url": platform.url})
    with app.app_context(), db.connection():
        desk = build_desk()
        ticket = _loopback_ticket_direct()
        platform.fail_next(503, "maintenance", times=1)
        platform.fail_next(429, "slow down", headers={"Retry-After": "600"})
        reply = tickets.reply(ticket, desk.agent, "On it.")
        waiting = Message.get_by_id(reply.id)
        assert waiting.delivery_state == Delivery.QUEUED and waiting.delivery_attempts == 1
        assert "maintenance" in waiting.delivery_error
        assert waiting.next_attempt_at > utcnow() + dt.timedelta(seconds=50)
        assert outbox.sweep() == {}  # not due yet
        with clock_at(utcnow() + dt.timedelta(seconds=61)):
            assert outbox.sweep() == {"retry": 1}  # the 429, which asks for ten minutes
        later = Message.get_by_id(reply.id)
        assert later.next_attempt_at >= utcnow() + dt.timedelta(seconds=590)
        platform.fail_next(503, "still down")
        with clock_at(utcnow() + dt.timedelta(seconds=700)):
            assert outbox.sweep() == {"failed": 1}  # the third attempt was the last
        failed = Message.get_by_id(reply.id)
        assert failed.delivery_state == Delivery.FAILED and "still down" in failed.delivery_error
        assert "On it." not in [m["text"] for m in platform.messages()]


def test_two_workers_sending_one_message_send_it_once(make_app: Any, platform: Platform
                                                      ) -> None:
    app = make_app(extra_plugins=(loopback,), **{"tests.loopback.api_url": platform.url})
    with app.app_context(), db.connection():
        desk = build_desk()
        ticket = _loopback_ticket_direct()
        platform.fail_next(503, "busy")
        reply = tickets.reply(ticket, desk.agent, "Once only")
        Message.update(next_attempt_at=None).where(Message.id == reply.id).execute()
    outcomes: list[str] = []

    def worker() -> None:
        with app.app_context(), db.connection():
            outcomes.append(outbox.send(reply.id))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["not due"] * 3 + ["sent"]
    assert [m["text"] for m in platform.messages()].count("Once only") == 1


def test_message_whose_channel_lost_its_plugin_says_so(make_app: Any, platform: Platform) -> None:
    with_plugin = make_app(extra_plugins=(loopback,), **{"tests.loopback.api_url": platform.url})
    with with_plugin.app_context(), db.connection():
        desk = build_desk()
        ticket = _loopback_ticket_direct()
        platform.fail_next(503, "down")
        queued = tickets.reply(ticket, desk.agent, "Queued while the plugin was on")
        Message.update(next_attempt_at=None).where(Message.id == queued.id).execute()
    without = make_app()  # the same database, the plugin switched off
    with without.app_context(), db.connection():
        assert outbox.sweep() == {"failed": 1}
        message = Message.get_by_id(queued.id)
        assert message.delivery_state == Delivery.FAILED
        assert "No enabled plugin serves the loopback channel" in message.delivery_error
        with pytest.raises(tickets.ServiceError, match="No enabled plugin"):
            tickets.retry_delivery(message, Actor.agent(desk.agent))
        later = tickets.reply(Ticket.get_by_id(ticket.id), desk.agent, "And now?")
        stored = Message.get_by_id(later.id)
        assert stored.delivery_state == Delivery.PORTAL
        assert "waits on the tracking page" in stored.delivery_error


# -- Every customer hears back -------------------------------------------------------------


def _web_ticket(desk: Any, language: str = "en", name: str = "Rina") -> Ticket:
    return tickets.open_ticket(identity=Identity(IdentityKind.EMAIL, "rina@example.test",
                                                 name=name, email="rina@example.test"),
                               subject="Verification email never came", text="Nothing arrived",
                               category=desk.login, language=language)


def notifications_of(ticket: Ticket) -> list[Message]:
    return [m for m in thread(ticket.id) if m.notification]


def test_web_ticket_acknowledgement_goes_to_the_customers_email(loop: Any, loop_desk: Any,
                                                               platform: Platform) -> None:
    ticket = _web_ticket(loop_desk)
    (ack,) = notifications_of(ticket)
    assert ack.notification == "ticket_opened" and ack.channel == "loopmail"
    assert ack.recipient == "rina@example.test" and ack.delivery_state == Delivery.SENT
    link = f"http://desk.test/t/{ticket.id}/{ticket.access_key}"
    (mail,) = platform.messages()
    assert mail["to"] == "rina@example.test" and f"#{ticket.id}" in mail["subject"]
    assert link in mail["text"] and "Hello Rina" in mail["text"]
    # Agents see it on the ticket page (without the customer's key: the link is theirs);
    # the customer's page does not repeat it.
    agent = loop.test_client()
    sign_in(agent, "admin@desk.test")
    page = agent.get(f"/admin/ticket/{ticket.id}/").get_data(as_text=True)
    assert "Thank you for contacting us" in page and f"/t/{ticket.id}/…" in page
    assert ticket.access_key not in page
    assert ack.id not in [m.id for m in tickets.public_thread(ticket)]
    page = loop.test_client().get(f"/t/{ticket.id}/{ticket.access_key}").get_data(as_text=True)
    assert "Thank you for contacting us" not in page


@pytest.mark.parametrize("language, greeting, phrase", [
    ("en", "Hello Rina", "Your request is ticket"),
    ("id", "Halo Rina", "Permintaan Anda tercatat sebagai tiket"),
    ("fil", "Hello Rina", "Ang iyong request ay ticket"),
])
def test_acknowledgement_speaks_the_customers_language(loop: Any, loop_desk: Any,
                                                      platform: Platform, language: str,
                                                      greeting: str, phrase: str) -> None:
    ticket = _web_ticket(loop_desk, language=language)
    (mail,) = platform.messages()
    assert greeting in mail["text"] and phrase in mail["text"]
    assert f"/t/{ticket.id}/{ticket.access_key}" in mail["text"]


def test_notification_wording_falls_back_admin_then_core_then_default_language(
        loop: Any, loop_desk: Any, platform: Platform) -> None:
    NotificationTemplate.create(key="ticket_opened", language="id",
                                subject="Tiket #{number}", body="Yth. {name}: {tracking_url}")
    NotificationTemplate.create(key="ticket_opened", language="en",
                                subject="Case #{number}", body="Dear {name}, see {tracking_url}")
    in_id = _web_ticket(loop_desk, language="id")
    in_fil = tickets.open_ticket(identity=Identity(IdentityKind.EMAIL, "f@example.test",
                                                   email="f@example.test"),
                                 subject="s", text="t", category=loop_desk.login,
                                 language="fil")
    in_other = tickets.open_ticket(identity=Identity(IdentityKind.EMAIL, "m@example.test",
                                                     name="Mei", email="m@example.test"),
                                   subject="s", text="t", category=loop_desk.login,
                                   language="ms")
    by_ticket = {m["ticket"]: m for m in platform.messages()}
    assert by_ticket[in_id.id]["subject"] == f"Tiket #{in_id.id}"  # the admin's Indonesian
    assert by_ticket[in_id.id]["text"].startswith("Yth. Rina: http://desk.test/t/")
    assert "Hello po," in by_ticket[in_fil.id]["text"]  # core's Filipino, no name given
    assert by_ticket[in_other.id]["text"].startswith("Dear Mei, see ")  # the desk's default


def test_agent_reply_on_the_web_waits_on_the_portal_and_notifies_by_email(
        loop: Any, loop_desk: Any, platform: Platform) -> None:
    ticket = _web_ticket(loop_desk)
    reply = tickets.reply(ticket, loop_desk.agent, "Please check your spam folder.")
    assert Message.get_by_id(reply.id).delivery_state == Delivery.PORTAL
    kinds = [m.notification for m in notifications_of(ticket)]
    assert kinds == ["ticket_opened", "agent_replied"]  # not also "waiting on you"
    mail = platform.messages()[-1]
    assert "Please check your spam folder." in mail["text"] and "Agus Agent" in mail["text"]
    # The tracking page shows the reply once.
    page = loop.test_client().get(f"/t/{ticket.id}/{ticket.access_key}").get_data(as_text=True)
    assert page.count("Please check your spam folder.") == 1


def test_status_changes_the_customer_hears_about(loop: Any, loop_desk: Any,
                                                platform: Platform) -> None:
    ticket = _web_ticket(loop_desk, language="id")
    agent = Actor.agent(loop_desk.agent)
    tickets.change_status(ticket, Status.OPEN, agent)  # nothing to tell
    tickets.change_status(ticket, Status.PENDING, agent)
    tickets.change_status(ticket, Status.RESOLVED, agent)
    kinds = [m.notification for m in notifications_of(ticket)]
    assert kinds == ["ticket_opened", "waiting_on_customer", "ticket_resolved"]
    assert "Kami menunggu balasan Anda" in platform.messages()[1]["subject"]
    own = _web_ticket(loop_desk)
    tickets.customer_resolve(own)  # the customer did it: no mail about their own click
    assert [m.notification for m in notifications_of(own)] == ["ticket_opened"]


def test_messenger_ticket_is_acknowledged_on_the_messenger(loop: Any, loop_desk: Any,
                                                          platform: Platform) -> None:
    ticket = _loopback_ticket(loop.test_client(), language="id")
    (ack,) = notifications_of(ticket)
    assert ack.channel == "loopback" and ack.recipient == "c-42"
    (sent,) = platform.messages()
    assert sent["channel"] == "loopback" and f"#{ticket.id}" in sent["text"]
    assert "Terima kasih telah menghubungi kami" in sent["text"]


def test_nothing_is_promised_or_queued_when_no_channel_can_reach_the_customer(
        web: Any, built: Any) -> None:
    ticket = _web_ticket(built)
    tickets.reply(ticket, built.agent, "Answer on the page")
    assert notifications_of(ticket) == []
    client = web.test_client()
    form = client.get("/help/member/registration-and-login/new").get_data(as_text=True)
    assert "We will write to you" not in form and "keep the link" in form


def test_the_form_promises_email_when_a_channel_sends_it(loop: Any, loop_desk: Any) -> None:
    form = loop.test_client().get("/help/member/registration-and-login/new").get_data(as_text=True)
    assert "We will write to you at this address." in form


def test_admin_rewords_a_notification_and_unknown_placeholders_are_refused(
        loop: Any, loop_desk: Any) -> None:
    admin = loop.test_client()
    sign_in(admin, "admin@desk.test")
    bad = post(admin, "/admin/notifications/new/", {
        "key": "ticket_resolved", "language": "fil", "subject": "Tapos na #{number}",
        "body": "Salamat {name}! {password}"}, token_from="/admin/notifications/new/")
    assert bad.status_code == 200 and "Unknown placeholder" in bad.get_data(as_text=True)
    assert NotificationTemplate.select().count() == 0
    good = post(admin, "/admin/notifications/new/", {
        "key": "ticket_resolved", "language": "fil", "subject": "Tapos na #{number}",
        "body": "Salamat {name}! {tracking_url}"}, token_from="/admin/notifications/new/")
    assert good.status_code == 302
    agent = loop.test_client()
    sign_in(agent, "agent@desk.test")
    assert agent.get("/admin/notifications/").status_code == 403


# -- Start-up --------------------------------------------------------------------------------


def test_app_ready_runs_at_start_up_and_its_failure_stops_it(make_app: Any) -> None:
    seen: list[str] = []

    class Starter:
        @hookimpl
        def app_ready(self, app: Any) -> None:
            from flask import current_app

            seen.append(current_app.name)

    make_app(extra_plugins=(Starter(),), migrate=False)
    assert seen == ["core"]

    class Broken:
        @hookimpl
        def app_ready(self) -> None:
            raise RuntimeError("token missing")

    with pytest.raises(PluginError, match="failed to start: token missing"):
        make_app(extra_plugins=(Broken(),), migrate=False)


# -- Through a real worker process ---------------------------------------------------------


def worker_main() -> None:
    """``loket worker``'s code path, with the loopback plugin registered."""
    import logging

    from core import create_app

    logging.basicConfig(level=logging.INFO)
    app = create_app(extra_plugins=(loopback,))
    app.extensions["loket"].jobs.run_worker(workers=2, periodic=False)


def _start_worker(app: Any, db_url: str, platform: Platform, log: Any) -> subprocess.Popen:
    state = app.extensions["loket"]
    env = desk_env(state, db_url, LOKET_TESTS_LOOPBACK_API_URL=platform.url,
                   LOKET_OUTBOX_LEASE_SECONDS=str(state.config["outbox_lease_seconds"]))
    return subprocess.Popen(
        [sys.executable, "-c", "from tests.test_channels import worker_main; worker_main()"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)




def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=20)


def test_outbox_worker_killed_mid_send_sends_exactly_once_afterwards(
        make_app: Any, platform: Platform, db_url: str, tmp_path: Any) -> None:
    app = make_app(extra_plugins=(loopback,), jobs="sqlite", outbox_lease_seconds=2,
                   **{"tests.loopback.api_url": platform.url})
    app.extensions["loket"].jobs.huey.flush()
    log_path = tmp_path / "worker.log"

    def state_of(message_id: int) -> str:
        with app.app_context(), db.connection():
            return Message.get_by_id(message_id).delivery_state

    with app.app_context(), db.connection():
        desk = build_desk()
        ticket = _loopback_ticket_direct()
        (ack,) = notifications_of(ticket)
        # Nothing is sent inside the request: the reply waits in the outbox for a worker.
        platform.hold_next = False
        reply = tickets.reply(ticket, desk.agent, "Sent by a worker")
        assert Message.get_by_id(reply.id).delivery_state == Delivery.QUEUED
    assert platform.messages() == []

    with log_path.open("wb") as log:
        worker = _start_worker(app, db_url, platform, log)
        try:
            wait_for(lambda: state_of(reply.id) == Delivery.SENT and state_of(ack.id) ==
                  Delivery.SENT, 30, "the worker to send", log_path)
        finally:
            _stop(worker)
    assert sorted(m["text"][:16] for m in platform.messages()) == ["Hello there,\n\nTh",
                                                                   "Sent by a worker"]

    # Now the worker dies while the platform holds the next send open: it was accepted there,
    # but the worker never learned so.
    with app.app_context(), db.connection():
        platform.hold_next = True
        second = tickets.reply(Ticket.get_by_id(ticket.id), desk.agent, "Exactly once")
        key = Message.get_by_id(second.id).delivery_key
    with log_path.open("ab") as log:
        worker = _start_worker(app, db_url, platform, log)
        try:
            assert platform.holding.wait(30), log_path.read_text()
            worker.kill()
            worker.wait(timeout=20)
        finally:
            _stop(worker)
    platform.release.set()
    assert state_of(second.id) == Delivery.QUEUED  # the truth: not known to be sent
    time.sleep(2.5)  # the dead worker's claim runs out
    with log_path.open("ab") as log:
        worker = _start_worker(app, db_url, platform, log)
        try:
            wait_for(lambda: state_of(second.id) == Delivery.SENT, 30, "the resend", log_path)
        finally:
            _stop(worker)
    assert platform.attempts.count(key) == 2  # sent again, with the same key...
    texts = [m["text"] for m in platform.messages()]
    assert texts.count("Exactly once") == 1  # ...so the customer got it once
    with app.app_context(), db.connection():
        stored = Message.get_by_id(second.id)
        assert stored.external_id == platform.accepted[key]["id"]
        assert stored.delivery_attempts == 2


def test_messages_no_category_places_go_to_the_default_department(make_app: Any,
                                                                  platform: Platform) -> None:
    app = make_app(extra_plugins=(loopback,), default_department="support",
                   **{"tests.loopback.api_url": platform.url})
    with app.app_context(), db.connection():
        desk = build_desk()
        ticket = Ticket.get_by_id(_loopback_ticket_direct().id)
        assert ticket.department_id == desk.support.id
        from core.services.access import can_see

        assert can_see(desk.agent, ticket) and not can_see(desk.billing_agent, ticket)


def test_channel_labels_read_outside_a_request(app: Any) -> None:
    # A worker or a command has no request: translated labels fall back to the default language.
    with app.app_context():
        assert app.extensions["loket"].channels.label("web") == "Web form"
