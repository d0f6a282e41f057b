"""A gunicorn worker that reads each request before a thread takes it, so slow clients cannot starve it.

gunicorn's gthread worker hands a connection to a thread as soon as its first
byte arrives; the thread then reads the rest of the request head (and body)
blocking. Forty clients sending one header line every five seconds held every
thread, and normal page loads timed out. ``BufferingThreadWorker`` keeps
gthread's threads for the application (SQLite writers queue on a file lock,
which an event loop could not wait on) but reads requests the way a buffering
reverse proxy does: on the worker's event loop, without a thread, until the
head and a small body are complete, within ``REQUEST_READ_SECONDS``. A client
too slow for that is disconnected, having cost a few kilobytes of buffer.

Bodies larger than ``BODY_BUFFER`` (attachments) are read by the thread, with
``IDLE_READ_SECONDS`` as the longest wait for more bytes and ``BODY_MIN_RATE`` as
the slowest average it accepts once ``REQUEST_READ_SECONDS`` have passed. TLS connections are
served exactly as gthread serves them (the bytes cannot be read before the
handshake); put Loket behind a reverse proxy for TLS, as the README says.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import re
import select
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker
from gunicorn.workers.sync import SyncWorker as GunicornSyncWorker

# The whole head, and a small body, must arrive within this (LOKET_REQUEST_READ_SECONDS).
REQUEST_READ_SECONDS = float(os.environ.get("LOKET_REQUEST_READ_SECONDS") or 10)
BODY_BUFFER = 64 * 1024  # bodies up to this are read on the event loop (forms, JSON)
HEAD_MAX = 64 * 1024  # a longer head is no browser's: the connection is closed
IDLE_READ_SECONDS = 30.0  # a thread reading a large body waits this long for more bytes
# ...and, after REQUEST_READ_SECONDS, the body must keep coming at least this fast on average
# (bytes a second, LOKET_REQUEST_BODY_MIN_RATE): a byte every few seconds would otherwise
# hold a thread for as long as the client likes. 2 KB/s is a poor mobile upload.
BODY_MIN_RATE = float(os.environ.get("LOKET_REQUEST_BODY_MIN_RATE") or 2048)
# A worker already holding a connection per thread waits this long before accepting another,
# so that an idler worker takes it: gthread workers otherwise race for every new connection
# and the quickest keeps them all (16 keep-alive connections from a proxy or a load tester
# landed on one of two workers while the other idled, halving the throughput).
ACCEPT_DEFER_SECONDS = 0.005
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n", re.I)
# A client that asks to continue sends its body only after gunicorn's "100 Continue".
_EXPECT = re.compile(rb"\r\nexpect:[ \t]*100-continue", re.I)
_UNSET = object()


class BufferedSocket:
    """The client socket as the request parser sees it: bytes read ahead first, then the socket."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self.ahead = bytearray()
        self._thread_started: float | None = None  # when a thread began reading the rest
        self.held = b""  # a response head waiting for its body (sendall)
        self._thread_read = 0
        self._timeout: object = _UNSET  # as last set: setting it is a system call each time

    def recv(self, size: int, *flags: Any) -> bytes:
        if self.ahead:
            chunk = bytes(self.ahead[:size])
            del self.ahead[:size]
            return chunk
        chunk = self._sock.recv(size, *flags)
        if self._thread_started is not None:
            self._thread_read += len(chunk)
            elapsed = time.monotonic() - self._thread_started
            if elapsed > REQUEST_READ_SECONDS and self._thread_read < BODY_MIN_RATE * elapsed:
                raise TimeoutError("the client sends its request body too slowly")
        return chunk

    def sendall(self, data: bytes, *flags: Any) -> None:
        """Send, holding a response's head back until its body follows.

        gunicorn writes the status line and headers with one call and the body with
        another: two packets, and two wake-ups of the client, for every page. The head
        waits here for the next write (the body, in the same ``write`` of the response)
        and goes with it; anything else done with the socket, and the end of the request
        (``BufferingThreadWorker.handle_request``), sends it first.
        """
        if self.held:
            data, self.held = self.held + data, b""
        elif data[:5] == b"HTTP/" and data[-4:] == b"\r\n\r\n":
            self.held = bytes(data)
            return
        self._sock.sendall(data, *flags)

    def flush(self) -> None:
        """Send a response head still held back (a response with no body)."""
        if self.held:
            held, self.held = self.held, b""
            self._sock.sendall(held)

    def setblocking(self, flag: bool) -> None:
        # A thread reading a body the loop did not buffer must not wait forever.
        self.settimeout(IDLE_READ_SECONDS if flag else 0.0)
        if flag and self._thread_started is None:
            self._thread_started = time.monotonic()

    def settimeout(self, value: float | None) -> None:
        # The loop and the thread set the same value again and again (each request).
        if value != self._timeout:
            self._sock.settimeout(value)
            self._timeout = value

    def next_request(self) -> None:
        """A new request begins (a kept-alive connection's next one): its body's pace is
        measured from when its own thread starts reading, not from the first request's."""
        self._thread_started = None
        self._thread_read = 0

    def __getattr__(self, name: str) -> Any:
        if self.held:  # the socket used directly (sendfile, shutdown, close): the head first
            self.flush()
        return getattr(self._sock, name)


def request_ready(data: bytes | bytearray) -> bool | None:
    """True when ``data`` holds a whole request head and its body (up to BODY_BUFFER);
    False when more is needed; None when the head is too long to be honest."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None if len(data) > HEAD_MAX else False
    match = _CONTENT_LENGTH.search(data, 0, end + 2)
    if match is None or _EXPECT.search(data, 0, end + 2):
        return True
    length = int(match.group(1))
    # A body the loop will not hold whole (an upload) is the thread's to read from the start.
    wanted = length if length <= BODY_BUFFER else 0
    return len(data) - (end + 4) >= wanted


class BufferingThreadWorker(ThreadWorker):
    """gthread, with each request read on the worker's event loop before a thread serves it."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reading: dict[Any, float] = {}  # connection -> deadline
        # While this is ahead, a full worker leaves a waiting connection to the others.
        self.accept_deferred_until = 0.0

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """Wait as gthread does; while accepting is deferred, no longer than the deferral."""
        until = self.accept_deferred_until
        if not until:
            return super().wait_for_and_dispatch_events(timeout)
        left = until - time.monotonic()
        if left > 0 or not getattr(self, "_accepting", True):
            return super().wait_for_and_dispatch_events(min(timeout, max(left, 0.0)))
        # The deferral is over and the run loop has turned accepting on again: a
        # connection still waiting is taken in this round (``accept``). If none is (another
        # worker took it), the next one to come is deferred afresh.
        super().wait_for_and_dispatch_events(timeout)
        if self.accept_deferred_until == until:
            self.accept_deferred_until = 0.0

    def set_accept_enabled(self, enabled: bool) -> None:
        # The run loop turns accepting on at every round; not while a deferral lasts.
        if enabled and time.monotonic() < self.accept_deferred_until:
            return
        super().set_accept_enabled(enabled)

    def _defers(self) -> bool:
        """Whether to leave a waiting connection, for ACCEPT_DEFER_SECONDS, to another worker.

        A worker holding a connection per thread waits that long before it accepts one
        more, so the connection goes to a worker with room, or to this one a moment later.
        Only a connection that waits starts a deferral: a full worker whose connections
        are all kept alive (a proxy's pool, a load tester) keeps listening, and its loop
        does nothing more each round.
        """
        if self.nr_conns < self.cfg.threads or not hasattr(self, "_accepting"):
            self.accept_deferred_until = 0.0  # room, or a gunicorn without the switch
            return False
        now = time.monotonic()
        if not self.accept_deferred_until:
            self.accept_deferred_until = now + ACCEPT_DEFER_SECONDS
        if now < self.accept_deferred_until:
            super().set_accept_enabled(False)  # on again after the deferral (the run loop)
            return True
        self.accept_deferred_until = 0.0  # waited: take it
        return False

    def accept(self, listener: Any) -> None:
        if self._defers():
            return
        if self.cfg.is_ssl:
            return super().accept(listener)
        try:
            client, addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, BufferedSocket(client), addr, listener.getsockname())
        self._read_request(conn)

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection sends its next request: read it before a thread takes it.

        Usually it came whole in one packet: then it goes straight to a thread, without
        the connection being watched for more.
        """
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        conn.sock.next_request()
        conn.sock.setblocking(False)
        outcome = self._read_ahead(conn)
        if outcome is True:
            conn.data_ready = True
            self.enqueue_req(conn)
        elif outcome is None:
            self._drop(conn)
        else:
            self._watch(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        try:
            return super().handle_request(req, conn)
        finally:
            if isinstance(conn.sock, BufferedSocket):
                conn.sock.flush()  # a head with no body after it (HEAD, 304) goes now

    def finish_request(self, conn: Any, fs: Any) -> None:
        super().finish_request(conn, fs)
        # A pipelined request read ahead with the last one: the socket will not signal it.
        if isinstance(conn.sock, BufferedSocket) and conn.sock.ahead and \
                conn in self.keepalived_conns:
            self.on_client_socket_readable(conn, conn.sock)

    def _read_request(self, conn: Any) -> None:
        conn.sock.setblocking(False)
        self._watch(conn)

    def _watch(self, conn: Any) -> None:
        """Read the request as it comes, until it is whole or its time is up."""
        self.reading[conn] = time.monotonic() + REQUEST_READ_SECONDS
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _read_ahead(self, conn: Any) -> bool | None:
        """Read what the client has sent: True once the request is whole, False while more
        is to come, None when the connection is to be dropped (gone before it asked
        anything, or a head too long to be honest)."""
        buffered: BufferedSocket = conn.sock
        closed = False
        try:
            data = buffered._sock.recv(65536)
            closed = not data
            buffered.ahead += data
        except (BlockingIOError, InterruptedError):
            pass  # nothing new; what was read ahead may be a whole request already
        except OSError:
            closed = True
        if closed and not buffered.ahead:
            return None
        # A client that closed its side gets what it sent handled (the parser sees the end).
        return True if closed else request_ready(buffered.ahead)

    def _on_readable(self, conn: Any, _sock: Any) -> None:
        ready = self._read_ahead(conn)
        if ready is None:
            return self._drop(conn)
        if ready:
            self.poller.unregister(conn.sock)
            del self.reading[conn]
            conn.data_ready = True
            self.enqueue_req(conn)

    def _drop(self, conn: Any) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.reading.pop(conn, None)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn in [c for c, deadline in self.reading.items() if deadline <= now]:
            self._drop(conn)


class PromptlyClosedSocket:
    """A client socket that gunicorn's sync worker closes without waiting on a client that
    has nothing more to send.

    After each answer the sync worker half-closes the connection and then reads until the
    client closes its side too, for up to two seconds (``gunicorn.util.close_graceful``,
    RFC 9112 9.6): closing a socket with unread bytes in it makes the kernel answer with a
    reset, which can destroy the answer before the client reads it. Only unread bytes call
    for that wait. A client that sent nothing after its request (a reverse proxy, which is
    the only client a sync worker should have) gets its connection closed at once, as nginx
    closes its own ("lingering_close on"); the worker is free for the next request instead
    of waiting for the client's side to close. A client that did send more is drained as
    gunicorn drains it.
    """

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._half_closed = False
        self._draining = False

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)
        self._half_closed = how in (socket.SHUT_WR, socket.SHUT_RDWR)

    def recv(self, size: int, *flags: Any) -> bytes:
        if self._half_closed and not self._draining:
            # (A socket with a timeout waits before it reads, whatever the flags: ask first.)
            waiting = select.poll()
            waiting.register(self._sock, select.POLLIN)
            if not waiting.poll(0):
                return b""  # nothing unread: nothing for a reset to destroy
            self._draining = True  # the client sent more (or closed): as gunicorn does
        return self._sock.recv(size, *flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class SyncWorker(GunicornSyncWorker):
    """gunicorn's sync worker, closing a connection that has nothing unread at once (see
    ``PromptlyClosedSocket``)."""

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        if not self.cfg.is_ssl:
            client = PromptlyClosedSocket(client)
        super().handle(listener, client, addr)


def warm(app: Any) -> int:
    """Compile every template of the app before the worker serves, and freeze what is loaded.

    A new worker (at start, and each time ``max_requests`` recycles one) otherwise compiles
    each template on the first page that needs it: about 70 ms of CPU for the first console
    page, paid by whichever customer or agent comes first. Objects alive now live as long as
    the worker: ``gc.freeze()`` keeps the collector from walking them again and again.
    Returns how many templates were compiled; one that fails is logged, not fatal (its page
    will report it as it always did).
    """
    env = getattr(app, "jinja_env", None)
    compiled = 0
    if env is not None:
        for name in env.list_templates():
            if not name.endswith((".html", ".txt", ".xml")):
                continue
            try:
                env.get_template(name)
                compiled += 1
            except Exception:  # a broken template must not stop the worker
                logging.getLogger(__name__).exception("template %s does not compile", name)
    gc.collect()
    gc.freeze()
    return compiled
