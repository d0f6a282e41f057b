"""Replies out at most once: a send whose outcome is unknown fails saying so, never silently twice.

The platforms take no idempotency key. These tests kill a real worker process while the
stand-in platform holds its request open (accepted there, never answered), and drop the
connection after a request arrived, and check that nothing is sent a second time until an
agent presses Retry.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from core import db, outbox
from core.models import Delivery, Message, Ticket
from core.services import tickets
from core.services.tickets import Actor, Identity
from tests.factories import build_desk
from tests.processes import desk_env

from .social_standin import StandIn

REPO = Path(__file__).resolve().parent.parent
TOKEN = "123456:TEST-TOKEN"
SEND = f"/bot{TOKEN}/sendMessage"


def worker_main() -> None:
    """``loket worker``'s code path: the social plugin's outbox and inbox threads."""
    import logging

    from core import create_app

    logging.basicConfig(level=logging.INFO)
    app = create_app()
    app.extensions["loket"].jobs.run_worker(workers=1, periodic=False)


class Holding:
    """The stand-in's sendMessage: answers at once, except a text it is told to hold open."""

    def __init__(self, standin: StandIn, hold_text: str):
        self.standin, self.hold_text = standin, hold_text
        self.holding, self.release = threading.Event(), threading.Event()

    def __call__(self, seen: Any) -> Any:
        if seen.json()["text"] == self.hold_text and not self.holding.is_set():
            self.holding.set()  # the platform has it; its answer never reaches the worker
            self.release.wait(30)
        return 200, {"ok": True, "result": {"message_id": 700 + len(self.standin.seen),
                                            "chat": {"id": seen.json()["chat_id"]}}}, {}

    def texts(self) -> list[str]:
        return [seen.json()["text"] for seen in self.standin.requests("POST", SEND)]


def _desk(make_app: Any, api_url: str, **config: Any) -> tuple[Any, Any, Any, Any]:
    """A desk whose Telegram bot talks to ``api_url``, and a ticket from chat 4242."""
    from plugins.social import vault
    from plugins.social.models import SocialAccount

    app = make_app(plugins=["social"], **{"social.telegram_api_url": api_url}, **config)
    with app.app_context(), db.connection():
        desk = build_desk()
        account = SocialAccount(platform="telegram", name="Support bot", handle="loket_bot")
        vault.write(account, {"token": TOKEN, "webhook_secret": "s"})
        account.save()
        result = tickets.receive_message(
            channel="telegram", identity=Identity("telegram", "4242", name="Rina"),
            text="Halo, my payout is late", external_id=f"{account.id}:4242:1",
            continue_open=True)
    return app, desk, account, result.ticket


def _state(app: Any, message_id: int) -> Message:
    with app.app_context(), db.connection():
        return Message.get_by_id(message_id)


def _sweep(app: Any) -> None:
    with app.app_context(), db.connection():
        outbox.sweep()




def test_a_worker_killed_mid_send_leaves_the_reply_failed_as_unknown_not_sent_twice(
        make_app: Any, db_url: str, tmp_path: Path) -> None:
    standin = StandIn().start()
    held = Holding(standin, "Exactly once")
    standin.on("POST", SEND, handler=held)
    try:
        app, desk, account, ticket = _desk(make_app, standin.url, jobs="sqlite",
                                            outbox_lease_seconds=2)
        app.extensions["loket"].jobs.huey.flush()
        with app.app_context(), db.connection():
            reply = tickets.reply(Ticket.get_by_id(ticket.id), desk.agent, "Exactly once")
        assert _state(app, reply.id).delivery_state == Delivery.QUEUED
        state = app.extensions["loket"]
        env = desk_env(state, db_url, LOKET_PLUGINS="social",
                       LOKET_SOCIAL_TELEGRAM_API_URL=standin.url,
                       LOKET_OUTBOX_LEASE_SECONDS="2")
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-c",
                 "from tests.test_social_sends import worker_main; worker_main()"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                assert held.holding.wait(60), log_path.read_text()
                worker.kill()  # SIGKILL: no handler runs, nothing is recorded
                worker.wait(timeout=20)
            finally:
                if worker.poll() is None:
                    worker.kill()
                worker.wait(timeout=20)
        held.release.set()
        assert held.texts().count("Exactly once") == 1
        assert _state(app, reply.id).delivery_state == Delivery.QUEUED  # not known to be sent

        time.sleep(2.5)  # the dead worker's claim runs out
        _sweep(app)
        failed = _state(app, reply.id)
        assert failed.delivery_state == Delivery.FAILED
        assert failed.delivery_error.startswith("Outcome unknown")
        assert "press Retry" in failed.delivery_error
        _sweep(app)
        assert held.texts().count("Exactly once") == 1  # nobody sent it again by itself

        # The agent decides to send it again: that goes out, once more, and is recorded.
        with app.app_context(), db.connection():
            tickets.retry_delivery(Message.get_by_id(reply.id), Actor.agent(desk.agent))
        _sweep(app)
        sent = _state(app, reply.id)
        assert sent.delivery_state == Delivery.SENT, sent.delivery_error
        assert held.texts().count("Exactly once") == 2
        assert sent.external_id.startswith(f"{account.id}:4242:")
        _sweep(app)
        assert held.texts().count("Exactly once") == 2
    finally:
        standin.stop()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_platform_that_drops_the_connection_after_the_request_is_not_sent_again(
        make_app: Any) -> None:
    # A raw socket server: reads the request, then closes without answering.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    got: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            got.append(_read_request(conn))
            conn.close()  # the request arrived whole; the answer never goes back

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        from plugins.social.models import SocialSend

        app, desk, _account, ticket = _desk(make_app, f"http://127.0.0.1:{port}")
        with app.app_context(), db.connection():
            reply = tickets.reply(Ticket.get_by_id(ticket.id), desk.agent, "Once at most")
        _sweep(app)
        stored = _state(app, reply.id)
        assert stored.delivery_state == Delivery.FAILED
        assert stored.delivery_error.startswith("Outcome unknown")
        with app.app_context(), db.connection():
            assert [r.state for r in SocialSend.select().where(SocialSend.message == reply.id)] \
                == ["in_flight"]
        sends = [r for r in got if b"Once at most" in r]
        assert len(sends) == 1
        _sweep(app)
        assert len([r for r in got if b"Once at most" in r]) == 1
    finally:
        listener.close()


def test_a_platform_never_reached_is_tried_again_later(make_app: Any) -> None:
    # Nothing listens on the port: the request never went out, so a retry is safe.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    from plugins.social.models import SocialSend

    app, desk, _account, ticket = _desk(make_app, f"http://127.0.0.1:{port}")
    with app.app_context(), db.connection():
        reply = tickets.reply(Ticket.get_by_id(ticket.id), desk.agent, "Try me again")
    stored = _state(app, reply.id)
    assert stored.delivery_state == Delivery.QUEUED
    assert "could not reach the platform" in stored.delivery_error
    with app.app_context(), db.connection():
        assert SocialSend.select().where(SocialSend.message == reply.id).count() == 0


@pytest.fixture
def standin() -> Any:
    platform = StandIn().start()
    yield platform
    platform.stop()


def test_parts_already_sent_are_not_sent_again_when_a_later_part_fails(
        make_app: Any, standin: StandIn) -> None:
    refused: list[str] = []

    def answer(seen: Any) -> Any:
        if seen.json()["text"].startswith("b") and not refused:
            refused.append("b")
            return 429, {"ok": False, "error_code": 429,
                         "description": "Too Many Requests: retry after 1",
                         "parameters": {"retry_after": 1}}, {}
        return 200, {"ok": True, "result": {"message_id": 2 + len(standin.seen)}}, {}

    standin.on("POST", SEND, handler=answer)
    app, desk, _account, ticket = _desk(make_app, standin.url)
    long_text = ("a" * 4000) + "\n" + ("b" * 3000)  # two parts at Telegram's 4096
    first_texts = len(standin.requests("POST", SEND))
    with app.app_context(), db.connection():
        reply = tickets.reply(Ticket.get_by_id(ticket.id), desk.agent, long_text)
    assert _state(app, reply.id).delivery_state == Delivery.QUEUED  # "b" was refused
    time.sleep(1.2)  # the platform's retry_after
    _sweep(app)
    assert _state(app, reply.id).delivery_state == Delivery.SENT
    texts = [s.json()["text"][:1] for s in standin.requests("POST", SEND)[first_texts:]]
    # the acknowledgement's parts aside, "a" went once, "b" twice (refused, then sent)
    assert texts.count("a") == 1
    assert texts.count("b") == 2


def test_a_file_refused_after_its_text_went_out_is_sent_later_without_the_text_again(
        make_app: Any, standin: StandIn) -> None:
    from core.attachments import Storage
    from core.state import loket

    standin.on("POST", SEND, handler=lambda seen: (
        200, {"ok": True, "result": {"message_id": 10 + len(standin.seen)}}, {}))
    standin.on("POST", f"/bot{TOKEN}/sendDocument",
               (429, {"ok": False, "error_code": 429, "description": "Too Many Requests",
                      "parameters": {"retry_after": 1}}, {}),
               (200, {"ok": True, "result": {"message_id": 99}}, {}))
    app, desk, _account, ticket = _desk(make_app, standin.url)
    with app.app_context(), db.connection():
        stored = Storage(loket().config["attachments_path"]).save_bytes(
            b"%PDF-1.4\n" + b"0" * 100, "invoice.pdf", max_bytes=10**6,
            allowed_types=["application/pdf"])
        reply = tickets.reply(Ticket.get_by_id(ticket.id), desk.agent, "Your invoice",
                              attachments=[stored])
    assert _state(app, reply.id).delivery_state == Delivery.QUEUED  # the file was refused
    time.sleep(1.2)
    _sweep(app)
    sent = _state(app, reply.id)
    assert sent.delivery_state == Delivery.SENT and sent.external_id.endswith(":99")
    texts = [s.json()["text"] for s in standin.requests("POST", SEND)]
    assert texts.count("Your invoice") == 1
    assert len(standin.requests("POST", f"/bot{TOKEN}/sendDocument")) == 2
