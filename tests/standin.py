"""A stand-in messaging platform over real HTTP on 127.0.0.1, for channel plugins' tests.

It accepts ``POST /send`` like a platform's send API: each accepted message
gets an id, and a repeated ``Idempotency-Key`` gets the first answer again
instead of a second message, as real platforms that take such keys do. Tests
script failures (``fail_next``) and can hold a request open (``hold_next``)
to kill the sender mid-send.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Platform:
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # by idempotency key
    attempts: list[str] = field(default_factory=list)  # every key posted, in order
    scripted: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    hold_next: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, status: int, body: str = "", headers: dict[str, str] | None = None,
                  times: int = 1) -> None:
        self.scripted.extend([(status, body, headers or {})] * times)

    def messages(self) -> list[dict[str, Any]]:
        return list(self.accepted.values())

    def start(self) -> Platform:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length) or b"{}")
                key = self.headers.get("Idempotency-Key", "")
                with platform.lock:
                    platform.attempts.append(key)
                    hold, platform.hold_next = platform.hold_next, False
                    scripted = platform.scripted.pop(0) if platform.scripted else None
                if hold:
                    # The platform takes the message, then answers late: a sender that dies
                    # meanwhile never learns it was accepted.
                    self._accept(key, payload)
                    platform.holding.set()
                    platform.release.wait(30)
                if scripted is not None:
                    status, body, headers = scripted
                    self._answer(status, {"error": body}, headers)
                    return
                self._answer(200, {"id": self._accept(key, payload)})

            def _accept(self, key: str, payload: dict[str, Any]) -> str:
                with platform.lock:
                    if key not in platform.accepted:
                        payload = dict(payload, id=f"sb-{len(platform.accepted) + 1}")
                        platform.accepted[key] = payload
                    return platform.accepted[key]["id"]

            def _answer(self, status: int, body: dict[str, Any],
                        headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the sender is gone (killed mid-send)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
