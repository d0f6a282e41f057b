"""A stand-in for Telegram's Bot API and Meta's Graph API over real HTTP, for the social tests.

It records every request (method, path, query, headers, body) and answers
with what the test scripted per path, in the platforms' own shapes; an
unscripted path answers 404 in Graph's error shape.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Reply = tuple[int, Any, dict[str, str]]  # status, JSON (or bytes), headers


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class StandIn:
    routes: dict[tuple[str, str], Callable[[Seen], Reply] | list[Reply]] = field(
        default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def on(self, method: str, path: str, *replies: Reply,
           handler: Callable[[Seen], Reply] | None = None) -> None:
        """Answer ``method path`` with ``replies`` in turn (the last one repeats), or ``handler``."""
        self.routes[(method, path)] = handler if handler is not None else list(replies)

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]

    def _answer(self, seen: Seen) -> Reply:
        with self.lock:
            self.seen.append(seen)
            route = self.routes.get((seen.method, seen.path))
            if isinstance(route, list):
                reply = route.pop(0) if len(route) > 1 else route[0]
                return reply
        if route is not None:
            return route(seen)
        return 404, {"error": {"message": "Unknown path", "type": "GraphMethodException",
                               "code": 803}}, {}

    def start(self) -> StandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                status, payload, headers = standin._answer(Seen(
                    self.command, parts.path, parse_qs(parts.query), dict(self.headers), body))
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve  # noqa: N815 (http.server's names)
            do_POST = _serve  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def serve_app(app: Any) -> tuple[str, Callable[[], None]]:
    """The app on a real socket (werkzeug, threaded): its base URL and a stop function."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_port}", stop


def corpus_dir(*parts: str) -> Any:
    """A folder of the shared corpora: ``LOKET_TEST_SHARED`` (a worktree's shared folder lives
    elsewhere), else ``../shared`` as conftest finds it, else the test skips."""
    import os
    from pathlib import Path

    from .conftest import shared_corpus

    base = os.environ.get("LOKET_TEST_SHARED")
    if base and Path(base, "corpora", *parts).exists():
        return Path(base, "corpora", *parts)
    return shared_corpus(*parts)


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Desk:
    """A running desk with one social account, its stand-in platform, and its webhook URL."""

    def __init__(self, app: Any, base: str, standin: StandIn, account: Any):
        self.app, self.base, self.standin, self.account = app, base, standin, account
        self.url = f"{base}/social/{account.platform}/{account.slug}"

    def db(self) -> Any:
        """``with desk.db():`` reads the desk's database from the test."""
        return _Reading(self.app)


def make_desk(make_app: Any, standin: StandIn, platform: str, secrets: dict[str, str],
              config: dict[str, Any] | None = None, **fields: Any) -> Iterator[Desk]:
    """An app with the social plugin, one account, served on a real socket."""
    from core import db as core_db
    from plugins.social import vault
    from plugins.social.models import SocialAccount

    app = make_app(plugins=["social"], **{f"social.{platform}_api_url": standin.url},
                   **(config or {}))
    with app.app_context(), core_db.connection():
        account = SocialAccount(platform=platform, name=f"{platform} support", **fields)
        vault.write(account, secrets)
        account.save()
    base, stop = serve_app(app)
    yield Desk(app, base, standin, account)
    stop()


class _Reading:
    def __init__(self, app: Any):
        self.app = app

    def __enter__(self) -> None:
        from core import db as core_db

        self.ctx = self.app.app_context()
        self.ctx.push()
        self.conn = core_db.connection()
        self.conn.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.conn.__exit__(*exc)
        self.ctx.pop()


