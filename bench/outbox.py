#!/usr/bin/env python3
"""Outbox benchmark: how many queued messages per second workers hand to a channel.

A fresh desk gets N agent replies on tickets of a stand-in messaging channel
(the tests' loopback plugin, sending over real HTTP to a local stand-in
platform). No worker runs while they are queued; then ``loket worker``'s code
path starts in one process with T threads and the clock runs until every
message is recorded sent in the database. The platform counts what it got, so
a message sent twice would show.

Usage (from the repository root):
    .venv/bin/python bench/outbox.py [--messages 2000] [--threads 4]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/outbox.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4, help="worker threads")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    return parser.parse_args()


def worker_main() -> None:
    from core import create_app
    from tests import loopback

    app = create_app(extra_plugins=(loopback,))
    app.extensions["loket"].jobs.run_worker(workers=int(os.environ["BENCH_THREADS"]),
                                            periodic=False)


def main() -> int:
    args = parse_args()
    from tests.standin import Platform

    platform = Platform().start()
    instance = Path(tempfile.mkdtemp(prefix="loket-outbox-"))
    schema = ""
    database_url = f"sqlite:///{instance / 'loket.db'}"
    if args.database_url:
        import psycopg2

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg2.connect(args.database_url) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in args.database_url else "?"
        database_url = (f"{args.database_url}{sep}options="
                        + urllib.parse.quote(f"-csearch_path={schema}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOKET_")}
    env.update({"LOKET_INSTANCE_PATH": str(instance), "LOKET_DATABASE_URL": database_url,
                "LOKET_SECRET_KEY": uuid.uuid4().hex, "LOKET_JOBS": "sqlite",
                "LOKET_PLUGINS": "", "LOKET_TESTS_LOOPBACK_API_URL": platform.url,
                "BENCH_THREADS": str(args.threads), "PYTHONPATH": str(REPO)})
    os.environ.update(env)
    worker = None
    try:
        from core import create_app, db
        from core.migrate import upgrade
        from core.models import Delivery, Message, Staff
        from core.services import tickets
        from tests import loopback

        app = create_app(extra_plugins=(loopback,))
        upgrade(app.extensions["loket"])
        started = time.monotonic()
        with app.app_context(), db.connection():
            agent = Staff.create(email="agent@bench.test", name="Agent")
            for n in range(args.messages):
                ticket = tickets.receive_message(
                    channel="loopback", identity=tickets.Identity("loopback", f"chat-{n}"),
                    text="Where is my payout?", external_id=f"u-{n}", notify=False).ticket
                tickets.reply(ticket, agent, f"Reply {n}: your payout is on its way.",
                              status=None)
            queued = Message.select().where(Message.delivery_state == Delivery.QUEUED).count()
        print(f"queued {queued} replies in {time.monotonic() - started:.1f} s")

        log = open(instance / "worker.log", "wb")  # noqa: SIM115
        started = time.monotonic()
        worker = subprocess.Popen(
            [sys.executable, "-c", "import bench.outbox as b; b.worker_main()"], cwd=REPO,
            env=env, stdout=log, stderr=subprocess.STDOUT)
        sent = 0
        while time.monotonic() - started < 600:
            with app.app_context(), db.connection():
                sent = Message.select().where(Message.delivery_state == Delivery.SENT).count()
            if sent >= queued:
                break
            if worker.poll() is not None:
                raise SystemExit(f"the worker died; see {log.name}")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        got = platform.messages()
        result = {
            "database": "postgresql" if schema else "sqlite", "cpus": os.cpu_count(),
            "messages": queued, "sent": sent, "worker_threads": args.threads,
            "seconds": round(elapsed, 2), "sends_per_s": round(sent / elapsed, 1),
            "platform_received": len(got), "platform_attempts": len(platform.attempts),
        }
        print(json.dumps(result, indent=2))
        ok = sent == queued == len(got)
        if not ok:
            print("FAILED: not every message was sent exactly once", file=sys.stderr)
        return 0 if ok else 1
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
        platform.stop()
        if schema:
            import psycopg2

            with psycopg2.connect(args.database_url) as conn, conn.cursor() as cur:
                cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
