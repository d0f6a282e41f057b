#!/usr/bin/env python3
"""IMAP ingestion benchmark: a generated batch APPENDed to a real Dovecot, fetched into the database.

Usage (from the repository root, with the virtualenv's Python):
    .venv/bin/python bench/email_imap.py [--messages 2000] [--rounds 3] [--batch 200]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/email_imap.py

Each round: a fresh database (SQLite file, or a fresh PostgreSQL schema) migrated by
the same scripts as production, a fresh Dovecot account holding the batch (plain
text, HTML with a text part, attachments, and replies that thread onto earlier
messages by In-Reply-To), then one ``Fetcher.fetch_once()`` of the mailbox: UID
SEARCH, one RFC822.SIZE fetch, ``UID FETCH BODY.PEEK[]`` of UID ranges per batch,
``ingest_raw`` for each message (a ticket or a reply committed, raw original kept),
``\\Seen`` set per batch. Timed from connect to the last flag; APPEND is not timed.
The count of tickets and messages in the database is checked against the batch.
Reports messages per second (median of rounds, wall clock), messages per CPU second
of this process (the machine is shared: wall time includes waiting for a core), the
IMAP side alone (wall time outside ``ingest_raw``), and peak traced memory
(tracemalloc, first round only, which slows that round).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n" * 40


def generate(count: int, seed: int = 7) -> tuple[list[bytes], int, int]:
    """The batch, and how many tickets and messages it should make."""
    rng = random.Random(seed)
    mails: list[bytes] = []
    roots: list[tuple[str, str, str]] = []  # (message id, sender, subject) of new requests
    tickets = 0
    for n in range(count):
        kind = rng.random()
        mail = EmailMessage()
        mail["Date"] = formatdate(localtime=False)
        mail["To"] = "billing@desk.test"
        message_id = f"<bench-{n}-{uuid.uuid4().hex[:8]}@mail.example.test>"
        mail["Message-ID"] = message_id
        if kind < 0.2 and roots:  # a reply that threads onto an earlier request
            parent, sender, subject = rng.choice(roots)
            mail["From"] = sender
            mail["Subject"] = f"Re: {subject}"
            mail["In-Reply-To"] = parent
            mail["References"] = parent
            mail.set_content(f"Any news on this? Reply {n}.\n\nOn Monday you wrote:\n> earlier")
        else:
            sender = f"Customer {n % 300} <customer{n % 300}@example.test>"
            subject = f"Payment problem number {n}"
            mail["From"] = sender
            mail["Subject"] = subject
            text = (f"Hello,\n\nMy card was charged twice for order {n}. "
                    "Please refund one of the charges.\n\nThanks\n") * 3
            mail.set_content(text)
            if kind < 0.45:  # HTML with its text part
                mail.add_alternative(f"<html><body><p>Hello,</p><p>My card was charged twice "
                                     f"for order <b>{n}</b>.</p></body></html>", subtype="html")
            elif kind < 0.6:  # attachments: a screenshot and a statement
                mail.add_attachment(PNG, maintype="image", subtype="png",
                                    filename="screenshot.png")
                mail.add_attachment(PDF, maintype="application", subtype="pdf",
                                    filename=f"statement-{n}.pdf")
            roots.append((message_id, sender, subject))
            tickets += 1
        mails.append(bytes(mail))
    return mails, tickets, count


def one_round(args: argparse.Namespace, server: Any, mails: list[bytes], expect: tuple[int, int],
              round_no: int) -> dict[str, float]:
    from core import create_app
    from core import db as core_db
    from core.migrate import upgrade
    from core.models import Message, Ticket
    from plugins.email_intake.imap import Fetcher
    from plugins.email_intake.ingest import ingest_raw
    from plugins.email_intake.mailboxes import Mailbox

    server.new_user()
    with server.client() as client:
        for start in range(0, len(mails), 200):
            client.multiappend("INBOX", mails[start:start + 200])
    workdir = Path(tempfile.mkdtemp(prefix="loket-bench-imap-"))
    url = args.database_url
    schema = ""
    if url:
        schema = f"bench_imap_{uuid.uuid4().hex[:8]}"
        _pg(url, f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{workdir / 'loket.db'}"
    app = create_app({"instance_path": str(workdir / "instance"), "database_url": url,
                      "jobs": "immediate", "plugins": ["email_intake"],
                      "secret_key": "bench", "public_url": "http://desk.test",
                      "rate_limits": False,
                      "email_intake.imap_ca_file": str(server.cert),
                      "email_intake.imap_batch": args.batch})
    upgrade(app.extensions["loket"])
    try:
        with app.app_context(), core_db.connection():
            box = Mailbox(name="billing", address="billing@desk.test", imap_host="127.0.0.1",
                          imap_port=server.port, imap_security="starttls",
                          imap_user=server.user)
            from tests.dovecot import PASSWORD

            box.set_password(PASSWORD)
            box.save()
            inside = [0.0]

            def timed_ingest(raw: bytes, *, via: str, mailbox: Any = None) -> Any:
                started = time.perf_counter()
                try:
                    return ingest_raw(raw, via=via, mailbox=mailbox)
                finally:
                    inside[0] += time.perf_counter() - started

            if round_no == 0:
                tracemalloc.start()
            started, cpu = time.perf_counter(), time.process_time()
            result = Fetcher(box.id, ingest=timed_ingest).fetch_once()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            peak = 0
            if round_no == 0:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            tickets, messages = Ticket.select().count(), Message.select().where(
                Message.channel == "email").count()
            assert result.stored == len(mails), result
            assert (tickets, messages) == expect, ((tickets, messages), expect)
    finally:
        core_db.close_all(app.extensions["loket"].database)
        if schema:
            _pg(args.database_url, f'DROP SCHEMA "{schema}" CASCADE')
    return {"seconds": elapsed, "rate": len(mails) / elapsed, "ingest_share": inside[0] / elapsed,
            "imap_rate": len(mails) / max(elapsed - inside[0], 1e-9),
            "cpu_rate": len(mails) / max(cpu, 1e-9), "peak_mb": peak / 1e6}


def _pg(url: str, sql: str) -> None:
    import psycopg2
    from playhouse.db_url import parse

    params = parse(url)
    conn = psycopg2.connect(dbname=params["database"], user=params.get("user"),
                            host=params.get("host"), port=params.get("port"),
                            password=params.get("password"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200, help="messages per UID FETCH")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    args = parser.parse_args()

    from tests.dovecot import Dovecot, available

    if reason := available():
        sys.exit(f"cannot run: {reason}")
    mails, tickets, messages = generate(args.messages)
    size = sum(len(m) for m in mails)
    print(f"batch: {len(mails)} messages ({tickets} new requests, {messages - tickets} replies), "
          f"{size / 1e6:.1f} MB; database: {'PostgreSQL' if args.database_url else 'SQLite'}; "
          f"batch size {args.batch}")
    server = Dovecot()
    server.start()
    try:
        rounds = []
        for n in range(args.rounds):
            figures = one_round(args, server, mails, (tickets, messages), n)
            rounds.append(figures)
            print(f"round {n + 1}: {figures['rate']:.0f} msg/s ({figures['seconds']:.2f} s; "
                  f"{figures['ingest_share']:.0%} inside ingest; the IMAP side alone "
                  f"{figures['imap_rate']:.0f} msg/s; {figures['cpu_rate']:.0f} msg per CPU "
                  "second of this process)"
                  + (f"; peak traced memory {figures['peak_mb']:.1f} MB" if n == 0 else ""))
    finally:
        server.cleanup()
    rates = [r["rate"] for r in rounds]
    print(f"median {statistics.median(rates):.0f} msg/s (min {min(rates):.0f}, "
          f"max {max(rates):.0f}) over {len(rates)} rounds; per CPU second "
          f"{statistics.median(r['cpu_rate'] for r in rounds):.0f}; the IMAP side alone "
          f"{statistics.median(r['imap_rate'] for r in rounds):.0f} msg/s")


if __name__ == "__main__":
    main()
