"""Reading mailboxes over IMAP: new mail into tickets, once, then flagged or moved.

Library: imapclient. It speaks UIDs by default, parses FETCH/SELECT responses into
Python values, has IDLE (``idle``/``idle_check``/``idle_done``), STARTTLS, MOVE and
UID EXPUNGE, and leaves the message bytes alone, so parsing stays in one place
(``ingest``). imap-tools is friendlier but parses messages itself and hides the
UID ranges that batch fetching needs.

How a mailbox is read (``Fetcher``):

* Only the holder of the mailbox's lease (a row update, renewed while it works)
  reads it, so two worker processes never fetch one mailbox at once.
* UIDVALIDITY and the last UID done are remembered. Normally only UIDs above the
  last one are fetched. The first time, or when UIDVALIDITY changed (the folder
  was recreated), the folder is read from scratch: its unseen messages (flag
  mode) or all of them (move mode, where done mail leaves the folder); ingest's
  de-duplication by Message-ID makes a message seen before a duplicate, not a
  second ticket.
* New messages are fetched in batches (one ``UID FETCH`` of UID ranges per batch,
  bounded by count and bytes, with ``BODY.PEEK[]`` so fetching sets no flag).
* A message is flagged ``\\Seen`` or moved only after ``ingest_raw`` said it is
  stored; the last UID moves on only after that. If ingest cannot store a message
  the batch stops there and the message stays as it was, to be fetched again.
* Between passes: IDLE when the server offers it, restarted every
  ``imap_idle_seconds`` (RFC 2177 lets a server drop an IDLE after 29 minutes),
  else a poll every ``imap_poll_seconds``. A dropped connection is retried with
  backoff, and the error is recorded on the mailbox.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.imapclient import DELETED, SEEN

from core.settings import Setting, as_int, as_seconds, as_str
from core.state import loket

from . import mailboxes
from .mailboxes import Mailbox

log = logging.getLogger(__name__)

# Progress of a pass, for the CLI: (mailbox name, messages done, messages found).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Options:
    idle_seconds: float = 600.0
    poll_seconds: float = 60.0
    lease_seconds: float = 90.0
    timeout: float = 30.0
    batch: int = 200
    batch_bytes: int = 20_000_000
    max_backoff: float = 300.0
    ca_file: str = ""
    max_message_bytes: int = 0  # larger messages: only their headers are fetched (0: no cap)

    @classmethod
    def from_settings(cls) -> Options:
        s = loket().config.plugin("email_intake")
        return cls(idle_seconds=s["imap_idle_seconds"], poll_seconds=s["imap_poll_seconds"],
                   lease_seconds=s["imap_lease_seconds"], timeout=s["imap_timeout"],
                   batch=s["imap_batch"], batch_bytes=s["imap_batch_bytes"],
                   max_backoff=s["imap_max_backoff"], ca_file=s["imap_ca_file"],
                   max_message_bytes=s["max_message_bytes"])


class LeaseLost(Exception):
    """Another worker holds the mailbox now (this one stalled past its lease)."""


class IngestStopped(Exception):
    """Ingest could not store a message; it stays in the mailbox for the next pass."""


@dataclass
class PassResult:
    found: int = 0  # new messages seen in the folder
    stored: int = 0  # ingested (duplicates included), then flagged or moved
    outcomes: dict[str, int] | None = None
    uidnext: int = 0  # the folder's UIDNEXT when the pass selected it (0: not told)


def database() -> Any:
    return Mailbox._meta.database


@contextlib.contextmanager
def _db() -> Iterator[None]:
    """A connection for this thread while the block runs; one already open stays open."""
    db = database()
    opened = db.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened and not db.is_closed():
            db.close()


def uid_set(uids: list[int]) -> str:
    """UIDs as the shortest IMAP set ("3:7,9,12:13"): one short command for a whole batch."""
    parts: list[str] = []
    ordered = sorted(set(uids))
    start = prev = ordered[0] if ordered else 0
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    if ordered:
        parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """Certificates are always checked; ``imap_ca_file`` adds a private CA to trust."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def connect(box: Mailbox, opts: Options) -> IMAPClient:
    """Connect and sign in (SSL, or STARTTLS before the password is sent)."""
    context = tls_context(opts.ca_file)
    client = IMAPClient(box.imap_host, port=box.port, ssl=box.imap_security == "ssl",
                        ssl_context=context, timeout=opts.timeout)
    try:
        if box.imap_security == "starttls":
            client.starttls(context)
        client.login(box.imap_user, box.password())
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):
            client.shutdown()


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:2000]


def check_connection(box: Mailbox, opts: Options | None = None) -> tuple[bool, list[str]]:
    """Sign in, select the folder read-only, check the move folder: what an admin reads."""
    opts = opts or Options.from_settings()
    report = [f"Connecting to {box.imap_host}:{box.port} ({box.imap_security})"]
    try:
        client = connect(box, opts)
    except Exception as exc:
        report.append(f"Failed: {describe_error(exc)}")
        return False, report
    try:
        report.append(f"Signed in as {box.imap_user}")
        capabilities = client.capabilities()
        report.append("IDLE offered: new mail arrives at once" if b"IDLE" in capabilities
                      else "No IDLE: the mailbox is polled")
        selected = client.select_folder(box.folder, readonly=True)
        report.append(f"Folder {box.folder}: {int(selected.get(b'EXISTS', 0))} messages, "
                      f"UIDVALIDITY {int(selected.get(b'UIDVALIDITY', 0))}")
        if box.after_ingest == "move":
            if not box.move_to or not client.folder_exists(box.move_to):
                report.append(f"Failed: the folder to move mail to ({box.move_to or 'none'}) "
                              "does not exist")
                return False, report
            report.append(f"Done mail moves to {box.move_to}")
        return True, report
    except Exception as exc:
        report.append(f"Failed: {describe_error(exc)}")
        return False, report
    finally:
        _close(client)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Fetcher:
    """Reads one mailbox: one pass (``fetch_once``) or for as long as it runs (``run``)."""

    def __init__(self, mailbox_id: int, *, opts: Options | None = None,
                 owner: str | None = None, progress: Progress | None = None,
                 ingest: Callable[..., Any] | None = None):
        self.mailbox_id = mailbox_id
        self.opts = opts or Options.from_settings()
        self.owner = owner or new_owner()
        self.progress = progress
        self._ingest = ingest
        self._renewed = 0.0

    # -- the lease -------------------------------------------------------------------

    def _take(self) -> bool:
        with _db():
            taken = mailboxes.take_lease(self.mailbox_id, self.owner, self.opts.lease_seconds)
        if taken:
            self._renewed = time.monotonic()
        return taken

    def _renew(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._renewed < self.opts.lease_seconds / 3:
            return
        if not self._take():
            raise LeaseLost(f"mailbox {self.mailbox_id} is read by another worker now")

    def _release(self) -> None:
        with contextlib.suppress(Exception), _db():
            mailboxes.release_lease(self.mailbox_id, self.owner)

    def _load(self) -> Mailbox | None:
        with _db():
            return Mailbox.get_or_none(Mailbox.id == self.mailbox_id)

    # -- one pass --------------------------------------------------------------------

    def fetch_once(self) -> PassResult:
        """Take the lease, connect, fetch what is new, disconnect. For the CLI and tests.

        Raises when another worker holds the mailbox, or when the server or ingest
        failed (the error is recorded on the mailbox too).
        """
        box = self._load()
        if box is None:
            raise LookupError(f"no mailbox {self.mailbox_id}")
        if not self._take():
            raise LeaseLost(f"mailbox {box.name} is disabled or being read by {box.lease_owner}")
        try:
            try:
                client = connect(box, self.opts)
                try:
                    return self.sync(client, box)
                finally:
                    _close(client)
            except Exception as exc:
                self._record_error(exc)
                raise
        finally:
            self._release()

    def sync(self, client: IMAPClient, box: Mailbox) -> PassResult:
        """Fetch the folder's new messages into the desk; flag or move each once stored."""
        selected = client.select_folder(box.folder)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        fresh = box.uidvalidity != uidvalidity
        if fresh:
            if box.uidvalidity is not None:
                log.warning("mailbox %s: UIDVALIDITY changed from %s to %s; reading the folder "
                            "again (mail seen before is recognised by its Message-ID)",
                            box.name, box.uidvalidity, uidvalidity)
            criteria: list[Any] = ["UNSEEN"] if box.after_ingest == "seen" else ["ALL"]
            last_uid = 0
        else:
            criteria = ["UID", f"{box.last_uid + 1}:*"]
            last_uid = box.last_uid
        # "n:*" always matches the highest UID, even below n: hence the filter.
        uids = sorted(uid for uid in client.search(criteria) if uid > last_uid)
        result = PassResult(found=len(uids), outcomes={},
                            uidnext=int(selected.get(b"UIDNEXT", 0) or 0))
        self._report(box, 0, len(uids))
        highest = last_uid
        for chunk in self._chunks(client, uids):
            done = self._ingest_chunk(client, box, chunk, result)
            if done:
                highest = max(highest, max(done))
                if not fresh:
                    with _db():
                        mailboxes.record_progress(box.id, self.owner, highest, len(done))
                self._report(box, result.stored, len(uids))
            if len(done) < len(chunk):
                raise IngestStopped(f"ingest could not store the message with UID "
                                    f"{chunk[len(done)]}; it stays in {box.folder} and is "
                                    "fetched again")
            self._renew()
        state: dict[str, Any] = {}
        if fresh:
            # Everything up to the folder's UIDNEXT at SELECT was searched, so nothing
            # below it is new any more, done or not (seen mail is not ingested).
            uidnext = int(selected.get(b"UIDNEXT", 0) or 0)
            state = {"uidvalidity": uidvalidity, "last_uid": max(highest, uidnext - 1, 0),
                     "fetched": Mailbox.fetched + result.stored}
        with _db():
            mailboxes.record_success(box.id, self.owner, **state)
        return result

    def _report(self, box: Mailbox, done: int, found: int) -> None:
        if self.progress is not None:
            self.progress(box.name, done, found)

    def _chunks(self, client: IMAPClient, uids: list[int]) -> Iterator[list[int]]:
        """Batches of UIDs bounded by count and size (sizes come in one FETCH)."""
        if not uids:
            return
        sizes = {uid: int(data.get(b"RFC822.SIZE", 0))
                 for uid, data in client.fetch(uid_set(uids), ["RFC822.SIZE"]).items()}
        self._sizes = sizes
        chunk: list[int] = []
        total = 0
        for uid in uids:
            if uid not in sizes:  # expunged meanwhile
                continue
            if chunk and (len(chunk) >= self.opts.batch
                          or total + sizes[uid] > self.opts.batch_bytes):
                yield chunk
                chunk, total = [], 0
            chunk.append(uid)
            total += sizes[uid]
        if chunk:
            yield chunk

    def _ingest_chunk(self, client: IMAPClient, box: Mailbox, chunk: list[int],
                      result: PassResult) -> list[int]:
        """Ingest a batch in UID order; flag or move those stored. Returns the UIDs done."""
        ingest = self._ingest or _ingest_raw
        cap = self.opts.max_message_bytes
        sizes = getattr(self, "_sizes", {})
        # RFC822.SIZE came first: a message over the cap is never fetched whole, only its
        # headers, and goes in as a stand-in that says so (threaded and answered as usual).
        oversized = [uid for uid in chunk if cap and sizes.get(uid, 0) > cap]
        whole = [uid for uid in chunk if uid not in oversized]
        fetched = client.fetch(uid_set(whole), ["BODY.PEEK[]"]) if whole else {}
        if oversized:
            for uid, data in client.fetch(uid_set(oversized), ["BODY.PEEK[HEADER]"]).items():
                fetched[uid] = {b"BODY[]": oversized_stand_in(
                    data.get(b"BODY[HEADER]") or b"", sizes[uid], cap,
                    box.move_to if box.after_ingest == "move" else box.folder, uid)}
        done: list[int] = []
        with _db():
            mailboxes.note_arrivals(box.id, [data.get(b"BODY[]") or b""
                                             for data in fetched.values()])
            # Expunged between the search and the fetch: not there any more.
            present = [uid for uid in chunk if uid in fetched]
            raws = {uid: fetched[uid].get(b"BODY[]") or b"" for uid in present}
            batched: dict[int, Any] = {}
            if self._ingest is None:
                # The whole batch with few commits; each answer stands once its mail is
                # committed. After a mail that was not stored the batch stops below as
                # ever: mails after it that were stored come again as duplicates.
                try:
                    batched = dict(zip(present, _ingest_batch(
                        [raws[uid] for uid in present], via="imap", mailbox=box), strict=True))
                except Exception:  # the contract says it answers; be safe: one by one
                    log.exception("mailbox %s: the batch could not be ingested", box.name)
            for uid in present:
                raw = raws[uid]
                try:
                    outcome = batched.get(uid) or ingest(raw, via="imap", mailbox=box)
                except Exception as exc:  # the contract says stored=False; be safe anyway
                    log.exception("mailbox %s: ingest raised on UID %s", box.name, uid)
                    outcome = None
                    reason = describe_error(exc)
                else:
                    reason = outcome.reason
                if outcome is None or not outcome.stored:
                    log.warning("mailbox %s: UID %s not stored (%s); stopping this batch",
                                box.name, uid, reason)
                    break
                done.append(uid)
                outcomes = result.outcomes if result.outcomes is not None else {}
                outcomes[outcome.outcome] = outcomes.get(outcome.outcome, 0) + 1
        if done:
            self._after_ingest(client, box, done)
            result.stored += len(done)
        return done

    def _after_ingest(self, client: IMAPClient, box: Mailbox, uids: list[int]) -> None:
        """Mark stored messages done on the server: \\Seen, or moved to ``move_to``."""
        messages = uid_set(uids)
        if box.after_ingest != "move":
            client.add_flags(messages, [SEEN], silent=True)
            return
        if client.has_capability("MOVE"):
            client.move(messages, box.move_to)
            return
        client.copy(messages, box.move_to)
        client.add_flags(messages, [DELETED], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(messages)
        else:
            client.expunge()

    def _record_error(self, exc: BaseException) -> None:
        with contextlib.suppress(Exception), _db():
            mailboxes.record_error(self.mailbox_id, describe_error(exc))

    # -- for as long as it runs ---------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Read the mailbox until ``stop`` is set or the mailbox is disabled or deleted."""
        backoff = 1.0
        try:
            while not stop.is_set():
                box = self._load()
                if box is None or not box.enabled:
                    return
                if not self._take():
                    stop.wait(min(self.opts.lease_seconds / 2, 30))
                    continue
                try:
                    client = connect(box, self.opts)
                    try:
                        backoff = 1.0
                        self._serve(client, box, stop)
                    finally:
                        _close(client)
                except LeaseLost as exc:
                    log.warning("%s", exc)
                except Exception as exc:
                    log.warning("mailbox %s: %s; connecting again in %.0f s", box.name,
                                describe_error(exc), backoff)
                    self._record_error(exc)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.opts.max_backoff)
        finally:
            self._release()

    def _serve(self, client: IMAPClient, box: Mailbox, stop: threading.Event) -> None:
        """Passes on one connection; returns when stopped or when the mailbox was edited."""
        idle = client.has_capability("IDLE")
        while not stop.is_set():
            current = self._load()
            if current is None or not current.enabled or current.updated_at != box.updated_at:
                return  # edited: connect again with its new settings
            self._renew(force=True)
            result = self.sync(client, current)
            if idle:
                if self._arrived_during(client, current.folder, result):
                    continue  # its report may be spent: look again before idling
                self._idle(client, stop)
            else:
                self._wait(client, stop, self.opts.poll_seconds)

    @staticmethod
    def _arrived_during(client: IMAPClient, folder: str, result: PassResult) -> bool:
        """Whether mail came into the folder while the pass ran.

        A server reports new mail (EXISTS) in the answer to whichever command is running
        when it arrives. If that was the pass's SEARCH or FETCH, the report is spent (the
        search may not list the mail yet), and an IDLE begun afterwards waits for the next
        change: with Dovecot a mail appended while the pass searched waited for the IDLE's
        renewal, ten minutes by default. SELECT answers with the folder's UIDNEXT itself, so
        a higher one than the pass saw tells; mail arriving after it is the IDLE's to report.
        """
        if not result.uidnext:
            return False  # the server gives no UIDNEXT: nothing to compare
        selected = client.select_folder(folder)
        return int(selected.get(b"UIDNEXT", 0) or 0) > result.uidnext

    def _idle(self, client: IMAPClient, stop: threading.Event) -> None:
        """IDLE until new mail, ``idle_seconds`` or stop; the lease is renewed meanwhile."""
        client.idle()
        try:
            deadline = time.monotonic() + self.opts.idle_seconds
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                # Short waits so that stop and the lease are looked at every second.
                if not _readable(client, min(left, 1.0)):
                    self._renew()
                    continue
                responses = client.idle_check(timeout=0)
                # Readable with no whole line is how a closed connection looks (imapclient
                # swallows the EOF): end IDLE, and DONE's answer, or its failure, tells.
                if not responses or any(
                        len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") or r[0] == b"BYE"
                        for r in responses):
                    return
                self._renew()
        finally:
            client.idle_done()

    def _wait(self, client: IMAPClient, stop: threading.Event, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            stop.wait(min(1.0, max(deadline - time.monotonic(), 0)))
            self._renew()
        client.noop()


def _readable(client: IMAPClient, timeout: float) -> bool:
    """Whether the server's next line is there to read, waiting up to ``timeout``.

    Three layers may hold it, and only the last is what ``select`` sees: imaplib's
    buffered reader, TLS's decrypted bytes, the socket. Dovecot looks for new mail as
    an IDLE begins and sends its EXISTS with the "+ idling" line, often in one packet:
    reading that line buffered the report, and a wait on the socket alone slept through
    it until the IDLE was renewed (ten minutes by default).
    """
    sock = client.socket()
    if _buffered(client, sock):
        return True
    pending = getattr(sock, "pending", None)  # TLS may hold decrypted bytes already
    if pending is not None and pending():
        return True
    ready, _, _ = select.select([sock], [], [], timeout)
    return bool(ready)


def _buffered(client: IMAPClient, sock: socket.socket) -> bool:
    """Whether imaplib's reader holds bytes already read from the socket (never waits)."""
    peek = getattr(getattr(client._imap, "file", None), "peek", None)
    if peek is None:
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)  # an empty buffer is filled by one read that must not wait
    try:
        return bool(peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(timeout)


_MIME_HEADERS = re.compile(rb"^(?:content-[a-z-]+|mime-version):.*(?:\r?\n[ \t].*)*\r?\n",
                           re.IGNORECASE | re.MULTILINE)


def oversized_stand_in(header: bytes, size: int, cap: int, folder: str, uid: int) -> bytes:
    """A mail too large to fetch, as its own headers with a plain-text body saying so.

    Its sender, subject and Message-ID thread it like the real one; its MIME headers
    go, since the body they describe was not fetched.
    """
    head = _MIME_HEADERS.sub(b"", header.rstrip(b"\r\n") + b"\r\n")
    text = (f"[This mail is {size} bytes, more than the {cap} bytes the desk fetches "
            f"(max_message_bytes). Only its headers were read; the mail itself is still in "
            f"the mailbox folder {folder} (UID {uid}). Ask the sender for smaller files, "
            "or open it in a mail program.]\r\n")
    return (head + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\nX-Loket-Oversized: "
            + str(size).encode() + b"\r\n\r\n" + text.encode())


def _ingest_raw(raw: bytes, *, via: str, mailbox: Any) -> Any:
    from .ingest import ingest_raw

    return ingest_raw(raw, via=via, mailbox=mailbox)


def _ingest_batch(raws: list[bytes], *, via: str, mailbox: Any) -> list[Any]:
    from .ingest import ingest_batch

    return ingest_batch(raws, via=via, mailbox=mailbox)


# -- In ``loket worker``: one thread per enabled mailbox ----------------------------------

RELAY = "email_intake.mailboxes"
_threads: dict[int, tuple[threading.Thread, threading.Event]] = {}
_threads_guard = threading.Lock()


def settings() -> list[Setting]:
    """The fetcher's settings (``LOKET_EMAIL_INTAKE_IMAP_*``)."""
    return [
        Setting("imap_idle_seconds", 600.0, _idle_seconds,
                "Seconds before an IMAP IDLE is ended and begun again (RFC 2177: servers may "
                "drop it after 29 minutes; at most 1740)."),
        Setting("imap_poll_seconds", 60.0, as_seconds,
                "Seconds between looks at a mailbox whose server offers no IDLE."),
        Setting("imap_lease_seconds", 90.0, as_seconds,
                "How long a worker's hold on a mailbox lasts unless renewed; another worker "
                "takes over a dead one's mailbox after this."),
        Setting("imap_timeout", 30.0, as_seconds, "Seconds to wait for the IMAP server."),
        Setting("imap_batch", 200, _positive, "Messages fetched per IMAP round trip."),
        Setting("imap_batch_bytes", 20_000_000, _positive,
                "Bytes fetched per IMAP round trip at most (one larger message still comes)."),
        Setting("imap_max_backoff", 300.0, as_seconds,
                "Longest wait before connecting again after a failure."),
        Setting("imap_ca_file", "", as_str,
                "A CA certificate file to trust besides the system's (a private mail server)."),
        Setting("credentials_key", "", as_str,
                "Key that encrypts mailbox passwords in the database; empty: derived from the "
                "secret key.", secret=True),
    ]


def _idle_seconds(value: Any) -> float:
    seconds = as_seconds(value)
    if seconds > 1740:
        raise ValueError(f"at most 1740 seconds (29 minutes, RFC 2177), got {value!r}")
    return seconds


def _positive(value: Any) -> int:
    number = as_int(value)
    if number < 1:
        raise ValueError(f"expected at least 1, got {value!r}")
    return number


def supervise(shard: int = 0, shards: int = 1) -> int:
    """Start a reading thread for each enabled mailbox that has none in this process.

    Runs as a relay of the job queue (every few seconds in each worker). Every
    worker process has a thread per mailbox, but only the lease holder reads; the
    others wait to take over if it dies. A thread ends when its mailbox is
    disabled or deleted.
    """
    from flask import current_app

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with _db():
        wanted = [m.id for m in Mailbox.select(Mailbox.id).where(Mailbox.enabled == True)]  # noqa: E712
    started = 0
    with _threads_guard:
        for mailbox_id in wanted:
            running = _threads.get(mailbox_id)
            if running is not None and running[0].is_alive():
                continue
            stop = threading.Event()
            thread = threading.Thread(target=_read_mailbox, args=(app, mailbox_id, stop),
                                      name=f"mailbox-{mailbox_id}", daemon=True)
            _threads[mailbox_id] = (thread, stop)
            thread.start()
            _stop_at_exit()
            started += 1
    return 0  # the relay then waits its idle time before looking again


_stop_registered = False


def _stop_at_exit() -> None:
    # Reading threads are daemons; at exit each still logs out and gives up its lease,
    # so another worker need not wait for the lease to run out.
    global _stop_registered
    if not _stop_registered:
        _stop_registered = True
        atexit.register(stop_all)


def _read_mailbox(app: Any, mailbox_id: int, stop: threading.Event) -> None:
    with app.app_context():
        try:
            Fetcher(mailbox_id).run(stop)
        except Exception:
            log.exception("mailbox %s: reader stopped", mailbox_id)


def stop_all(timeout: float = 10.0) -> None:
    """Stop this process's reading threads (each logs out and gives up its lease)."""
    with _threads_guard:
        running = list(_threads.values())
        _threads.clear()
    for _thread, stop in running:
        stop.set()
    for thread, _stop in running:
        thread.join(timeout)
