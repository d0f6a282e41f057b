"""Running `loket chat` as a real process for the live-chat tests, and a WebSocket visitor."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from core import db
from tests.processes import desk_env

REPO = Path(__file__).resolve().parents[1]
ORIGIN = "http://desk.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChatProcess:
    """`python -m core.cli chat` on a free port, with this test's desk."""

    def __init__(self, app: Any, db_url: str, log_path: Path, main: str = "", port: int = 0,
                 **settings: str):
        self.port = port or free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        env = desk_env(app.extensions["loket"], db_url,
                       **{"LOKET_PLUGINS": "livechat", "LOKET_LIVECHAT_POLL_SECONDS": "0.05",
                          **settings})
        self.log_path = log_path
        self.log = log_path.open("ab")
        # ``main``: a test module's function that serves with extra (test) plugins.
        cmd = ([sys.executable, "-c", f"{main}(127.0.0.1, {self.port})".replace(
                    "(127.0.0.1", "('127.0.0.1'")] if main else
               [sys.executable, "-m", "core.cli", "chat", "--bind", f"127.0.0.1:{self.port}"])
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_listening()

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"chat process died:\n{self.log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"chat process did not listen:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Visitor:
    """A widget, spoken to over a real WebSocket."""

    def __init__(self, url: str, *, token: str | None = None, name: str = "Sari",
                 lang: str = "en", last_seen: int = 0, origin: str = ORIGIN):
        self.url = url
        self.name = name
        self.lang = lang
        self.token = token
        self.origin = origin
        self.seen: list[dict[str, Any]] = []  # every message event, in arrival order
        self.events: list[dict[str, Any]] = []
        self.ws = None
        self.open(last_seen)

    def open(self, last_seen: int = 0) -> None:
        self.ws = connect(self.url, origin=self.origin, open_timeout=10)
        self.ws.send(json.dumps({"type": "hello", "token": self.token, "name": self.name,
                                 "lang": self.lang, "last_seen": last_seen}))
        welcome = self.next(lambda e: e["type"] == "welcome")
        self.token = welcome["token"]
        self.greeting = welcome["greeting"]

    def recv(self, timeout: float = 10) -> dict[str, Any]:
        event = json.loads(self.ws.recv(timeout=timeout))
        self.events.append(event)
        if event["type"] == "message":
            self.seen.append(event)
        return event

    def next(self, match: Any, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event; got {self.events[-10:]}")
            event = self.recv(timeout=left)
            if match(event):
                return event

    def say(self, text: str, client_id: str | None = None) -> dict[str, Any]:
        client_id = client_id or uuid.uuid4().hex
        self.ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
        return self.next(lambda e: e["type"] in ("ack", "error")
                         and e.get("client_id") == client_id)

    def send(self, **frame: Any) -> None:
        self.ws.send(json.dumps(frame))

    def message(self, match: Any, timeout: float = 10) -> dict[str, Any]:
        for event in self.seen:
            if match(event):
                return event
        return self.next(lambda e: e["type"] == "message" and match(e), timeout)

    def drain(self, quiet: float = 0.5) -> None:
        """Read until nothing arrives for ``quiet`` seconds."""
        while True:
            try:
                self.recv(timeout=quiet)
            except TimeoutError:
                return

    def last_id(self) -> int:
        return max((e["id"] for e in self.seen), default=0)

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


def running_chat(desk_app: Any, db_url: str, tmp_path: Path) -> Any:
    """A real chat process on the test's desk, stopped afterwards (for a ``chat`` fixture)."""
    process = ChatProcess(desk_app, db_url, tmp_path / "chat.log")
    yield process
    process.stop()


def in_app(app: Any, fn: Any) -> Any:
    """``fn()`` inside the app's context with a database connection."""
    with app.app_context(), db.connection():
        return fn()
