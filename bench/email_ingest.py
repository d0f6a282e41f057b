#!/usr/bin/env python3
"""Email ingestion benchmark: raw mails per second into the database through the pipe path.

A generated batch of realistic mails (plain text, HTML with a text part, small
attachments, and replies that thread by In-Reply-To with a quoted earlier
message) goes end to end through ``plugins.email_intake.ingest.ingest_raw``:
parse, loop check, threading, attachments to storage, the raw original kept,
``receive_message`` committing ticket, message and the acknowledgement in the
outbox (SMTP is configured, no worker runs, so the acknowledgement stays queued
as it would until a worker picks it up). Then a smaller batch runs through the
real command an MTA pipes to, ``loket email ingest``, one process per mail, and
another through one ``loket email ingest --remove DIR`` over a maildir (one
process for them all, written in batches: what a delivery to a maildir and a
cron job, or an mbox import, use).

Reports messages per second, per-mail latency percentiles and peak memory.

Usage (from the repository root):
    .venv/bin/python bench/email_ingest.py [--messages 2000] [--pipe-messages 40] \
        [--folder-messages 1000] [--batch 20]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python \
        bench/email_ingest.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02"
       b"\x00\x00\x00\x90\x91h6")
WORDS = ("akun saya tidak bisa masuk password payment refund subscription verification email "
         "studio model member kartu kredit tagihan please help cannot login error code "
         "transaksi gagal salamat po hindi gumagana ang account ko").split()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--pipe-messages", type=int, default=40)
    parser.add_argument("--folder-messages", type=int, default=1000,
                        help="mails in the maildir that one `loket email ingest DIR` reads "
                             "(0: skip)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--batch", type=int, default=1,
                        help="mails per ingest_batch call, as the IMAP fetcher reads them "
                             "(1: ingest_raw for each mail, as the pipe and HTTP do)")
    parser.add_argument("--folders-made", action="store_true",
                        help="make the storage folders the mails' files go to before timing, "
                             "as in a desk in service (see make_folders)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    return parser.parse_args()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def generate(count: int, seed: int, tag: str) -> tuple[list[bytes], dict[str, int]]:
    """``count`` raw mails: new tickets of four shapes, and replies to earlier ones."""
    rng = random.Random(seed)
    senders = [f"customer{n}@example{n % 7}.test" for n in range(max(count // 4, 10))]
    sent: dict[str, list[str]] = {}
    mails: list[bytes] = []
    shapes = {"plain": 0, "html": 0, "attachment": 0, "reply": 0}
    for n in range(count):
        sender = rng.choice(senders)
        msg = EmailMessage()
        msg["From"] = f"Customer {n} <{sender}>"
        msg["To"] = "help@desk.test"
        msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0700"
        message_id = f"<{tag}-{n}@example.test>"
        msg["Message-ID"] = message_id
        body = "\n\n".join(sentence(rng, rng.randint(8, 30)) for _ in range(rng.randint(1, 4)))
        roll = rng.random()
        earlier = sent.get(sender)
        if earlier and roll < 0.25:
            shapes["reply"] += 1
            msg["Subject"] = "Re: " + sentence(rng, 4)
            msg["In-Reply-To"] = earlier[-1]
            msg["References"] = " ".join(earlier[-3:])
            quoted = "\n".join("> " + line for line in body.splitlines())
            msg.set_content(f"{sentence(rng, 10)}\n\nOn Mon, 2 Mar 2026 at 09:00, Support "
                            f"<help@desk.test> wrote:\n{quoted}\n")
        elif roll < 0.55:
            shapes["plain"] += 1
            msg["Subject"] = sentence(rng, 5)
            msg.set_content(body)
        elif roll < 0.80:
            shapes["html"] += 1
            msg["Subject"] = sentence(rng, 5)
            msg.set_content(body)
            paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
            msg.add_alternative(f"<html><body><div style='font-family:Arial'>{paragraphs}"
                                "</div><img src='https://tracker.example/x.gif'></body></html>",
                                subtype="html")
        else:
            shapes["attachment"] += 1
            msg["Subject"] = sentence(rng, 5)
            msg.set_content(body)
            data = PNG + rng.randbytes(rng.randint(2_000, 60_000))
            msg.add_attachment(data, maintype="image", subtype="png",
                               filename=f"screenshot-{n}.png")
        sent.setdefault(sender, []).append(message_id)
        mails.append(msg.as_bytes())
    return mails, shapes


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:  # that part of the run was skipped (e.g. --pipe-messages 0)
        return {}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": round(at(0.50), 2), "p95_ms": round(at(0.95), 2),
            "p99_ms": round(at(0.99), 2), "mean_ms": round(statistics.mean(ordered) * 1000, 2)}


def make_folders(mails: list[bytes]) -> int:
    """Make the storage folders (``ab/cd/`` of each digest) these mails' raw originals and
    files will be written to; returns how many were made.

    Storage spreads files over 65,536 folders, made when the first file needs one: a
    fresh desk makes about one per file for its first tens of thousands of files (each
    ``mkdir`` a new directory inode; 1,532 of them for the bench's 1,000 mails), a desk
    in service has them all. With ``--folders-made`` the bench measures the latter.
    """
    import hashlib

    from core.raw import digest
    from core.state import loket
    from plugins.email_intake.parse import parse

    root = Path(loket().config["attachments_path"])
    folders = set()
    for raw in mails:
        folders.add(root / "raw" / digest(raw)[:2] / digest(raw)[2:4])
        for item in parse(raw).files:
            sha = hashlib.sha256(item.data).hexdigest()
            folders.add(root / sha[:2] / sha[2:4])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return len(folders)


def folder_run(loket: str, desk: Any, mails: list[bytes]) -> dict[str, Any]:
    """``mails`` in a maildir, then one ``loket email ingest --remove`` over it."""
    box = Path(desk.instance) / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    for n, raw in enumerate(mails):
        (box / "new" / f"{n:06}.bench").write_bytes(raw)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([loket, "email", "ingest", "--remove", str(box)], env=desk.env,
                          capture_output=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    outcomes: dict[str, int] = {}
    for line in done.stdout.decode().splitlines():
        outcome = line.rsplit(": ", 1)[-1].split()[0]
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {"messages": len(mails), "seconds": round(elapsed, 2),
            "messages_per_second": round(len(mails) / elapsed, 1),
            # One process's start-up (about a second of CPU) is in these figures.
            "cpu_seconds": round(cpu, 2), "messages_per_cpu_second": round(len(mails) / cpu, 1),
            "exit_code": done.returncode, "outcomes": outcomes,
            "files_left": sum(1 for _ in (box / "new").iterdir())}


def main() -> int:
    args = parse_args()
    from run import Desk  # bench/run.py: a fresh instance and database (a throwaway schema)

    desk = Desk(args.database_url, settings=[
        "LOKET_PLUGINS=email_intake", "LOKET_EMAIL_INTAKE_ADDRESS=help@desk.test",
        "LOKET_EMAIL_INTAKE_SMTP_HOST=127.0.0.1", "LOKET_EMAIL_INTAKE_SMTP_PORT=9",
        f"PYTHONPATH={REPO}"])
    try:
        from core import create_app, db
        from core.migrate import upgrade
        from core.models import Attachment, Message, Ticket
        from plugins.email_intake.ingest import ingest_batch, ingest_raw

        desk.app = app = create_app()
        upgrade(app.extensions["loket"])
        mails, shapes = generate(args.messages, args.seed, "inproc")
        pipe_mails, _ = generate(args.pipe_messages, args.seed + 1, "pipe")
        folder_mails = generate(args.folder_messages, args.seed + 2, "folder")[0]
        folders_made = 0
        if args.folders_made:
            with app.app_context():
                folders_made = make_folders(mails + pipe_mails + folder_mails)
        outcomes: dict[str, int] = {}
        latencies: list[float] = []
        with app.app_context(), db.connection():
            started, cpu = time.perf_counter(), time.process_time()
            for first in range(0, len(mails), args.batch):
                t0 = time.perf_counter()
                if args.batch > 1:
                    results = ingest_batch(mails[first:first + args.batch], via="imap")
                else:
                    results = [ingest_raw(mails[first], via="pipe")]
                # A mail of a batch has its answer when the batch is done.
                latencies += [time.perf_counter() - t0] * len(results)
                for result in results:
                    outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            counts = {"tickets": Ticket.select().count(),
                      "messages": Message.select().count(),
                      "attachments": Attachment.select().count()}
        inproc = {"messages": len(mails), "batch": args.batch, "seconds": round(elapsed, 2),
                  "messages_per_second": round(len(mails) / elapsed, 1),
                  # Wall time on a shared machine counts other people's work; CPU time
                  # of this process does not (the database's own work is in it on SQLite).
                  "cpu_seconds": round(cpu, 2),
                  "messages_per_cpu_second": round(len(mails) / cpu, 1),
                  **percentiles(latencies), "shapes": shapes, "outcomes": outcomes,
                  "rows": counts,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                       1)}

        loket = str(Path(sys.executable).parent / "loket")
        pipe_latencies: list[float] = []
        codes: dict[int, int] = {}
        started = time.perf_counter()
        for raw in pipe_mails:
            t0 = time.perf_counter()
            done = subprocess.run([loket, "email", "ingest"], input=raw, env=desk.env,
                                  capture_output=True)
            pipe_latencies.append(time.perf_counter() - t0)
            codes[done.returncode] = codes.get(done.returncode, 0) + 1
        pipe_elapsed = time.perf_counter() - started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        pipe = {"messages": len(pipe_mails), "seconds": round(pipe_elapsed, 2),
                "messages_per_second": round(len(pipe_mails) / max(pipe_elapsed, 1e-9), 2),
                **percentiles(pipe_latencies), "exit_codes": codes,
                "cpu_seconds_per_process": round(
                    (children.ru_utime + children.ru_stime) / max(len(pipe_mails), 1), 3),
                "children_peak_rss_mb": round(children.ru_maxrss / 1024, 1)}
        report = {"database": desk.kind, "cpus": os.cpu_count(),
                  "storage_folders_made_before": folders_made,
                  "load_average_at_end": os.getloadavg(),
                  "in_process_ingest_raw": inproc, "loket_email_ingest_processes": pipe}
        if args.folder_messages:
            report["loket_email_ingest_maildir"] = folder_run(loket, desk, folder_mails)
        print(json.dumps(report, indent=2))
        return 0
    finally:
        desk.close(keep=False)


if __name__ == "__main__":
    sys.exit(main())
