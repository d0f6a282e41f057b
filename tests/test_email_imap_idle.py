"""IDLE against a scripted IMAP server: the reports a real server sends at awkward moments.

Dovecot looks for new mail as an IDLE begins and sends its EXISTS in the same packet as
the "+ idling" line when a mail came just before. No real server can be made to do that
on cue, so a small one scripted over a local socket does it every time.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from imapclient import IMAPClient

from plugins.email_intake.imap import Fetcher, Options


class ScriptedServer:
    """Answers one client: CAPABILITY and NOOP, IDLE with ``on_idle``, DONE."""

    def __init__(self, on_idle: bytes) -> None:
        self.on_idle = on_idle
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n")
            idle_tag = b""
            for line in lines:
                if line.strip().upper() == b"DONE":
                    conn.sendall(idle_tag + b" OK IDLE terminated\r\n")
                    continue
                tag, command = line.split(b" ", 2)[:2]
                if command.strip().upper() == b"IDLE":
                    idle_tag = tag
                    conn.sendall(b"+ idling\r\n" + self.on_idle)  # one write, one packet
                elif command.strip().upper() == b"LOGOUT":
                    conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                    return
                else:
                    conn.sendall(b"* CAPABILITY IMAP4rev1 IDLE\r\n" + tag + b" OK done\r\n")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def exists_with_idling() -> Iterator[ScriptedServer]:
    server = ScriptedServer(on_idle=b"* 4 EXISTS\r\n")
    yield server
    server.close()


def idle_in_thread(port: int) -> tuple[threading.Thread, threading.Event, list[Any]]:
    """The fetcher's IDLE on a connection to ``port``, ten minutes long unless a report ends it."""
    fetcher = Fetcher(1, opts=Options(idle_seconds=600), owner="test")
    fetcher._renew = lambda force=False: None  # type: ignore[method-assign]  # no lease here
    client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=5)
    stop = threading.Event()
    ended: list[Any] = []

    def run() -> None:
        fetcher._idle(client, stop)
        ended.append(client.noop())  # the connection is usable after DONE

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, stop, ended


def test_a_report_sent_with_the_idle_line_ends_the_idle(exists_with_idling: Any) -> None:
    thread, stop, ended = idle_in_thread(exists_with_idling.port)
    thread.join(10)
    # Still idling means the EXISTS read with "+ idling" sat in imaplib's buffer unseen:
    # the mail would wait for the IDLE's renewal, ten minutes.
    still_idling = thread.is_alive()
    stop.set()
    thread.join(5)
    assert not still_idling, "the fetcher slept through the mail reported as IDLE began"
    assert ended, "the IDLE did not end cleanly"


def test_an_idle_with_nothing_to_report_waits_until_stopped() -> None:
    server = ScriptedServer(on_idle=b"")
    try:
        thread, stop, ended = idle_in_thread(server.port)
        thread.join(1.5)
        assert thread.is_alive(), "the IDLE ended with nothing reported"
        stop.set()
        thread.join(5)
        assert not thread.is_alive() and ended
    finally:
        server.close()
