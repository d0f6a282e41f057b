#!/usr/bin/env python3
"""Social webhook benchmark: signed Telegram updates at `loket serve`'s gunicorn, none lost.

Phase 1: wrk posts updates (each its own update_id, from 500 customers' chats,
with the account's secret token) at /social/telegram/<slug> while no worker
runs: updates acknowledged per second and the acknowledgement's latency; an
update is stored (the inbox row, committed) before its 200 goes out. The
inbox must then hold every acknowledged update (and at most the requests still
in flight when wrk stopped).
Phase 2: `loket worker` starts and turns the backlog into tickets and messages
(the acknowledgements go out to a local Bot API stand-in): messages stored per
second and the time from receipt to stored message; every inbox row must end
"done" with exactly one message per update.

Usage (from the repository root, with the virtualenv's Python; needs wrk):
    .venv/bin/python bench/social.py [--duration 10] [--connections 16] [--workers 2]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/social.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from run import Desk, Server, argument_parser, run_wrk, save_results  # noqa: E402

SECRET = "bench-telegram-secret-token"
TOKEN = "42:BENCH"


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}
    pick = lambda p: values[min(len(values) - 1, int(p / 100 * len(values)))]  # noqa: E731
    return {str(p): round(pick(p), 3) for p in (50, 90, 99)} | {"max": round(values[-1], 3)}


def main() -> int:
    parser = argument_parser(__doc__.splitlines()[0], port=8091)
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--worker-threads", type=int, default=2)
    parser.add_argument("--no-drain", action="store_true",
                        help="phase 1 only (acknowledgements; the inbox is still counted)")
    args = parser.parse_args()
    from tests.social_standin import StandIn

    standin = StandIn().start()
    standin.on("POST", f"/bot{TOKEN}/sendMessage",
               (200, {"ok": True, "result": {"message_id": 1}}, {}))
    desk = Desk(args.database_url, ["LOKET_PLUGINS=social",
                                    f"LOKET_SOCIAL_TELEGRAM_API_URL={standin.url}",
                                    "LOKET_SOCIAL_INBOX_POLL_SECONDS=0.2"] + args.env)
    server = worker = None
    try:
        desk.setup()
        from core import db
        from core.models import Message, Ticket
        from plugins.social import vault
        from plugins.social.models import SocialAccount, SocialInbox

        with desk.app.app_context(), db.connection():
            account = SocialAccount(platform="telegram", name="Bench bot", handle="bench_bot")
            vault.write(account, {"token": TOKEN, "webhook_secret": SECRET})
            account.save()
        path = f"/social/telegram/{account.slug}"
        server = Server(desk, args)
        server.wait_ready("/")
        # Phase 1: acknowledgements, no worker.
        load_before = os.getloadavg()[0]
        cpu_before = server.cpu_seconds()
        wrk = run_wrk(args, server.base, BENCH / "social.lua",
                      {"BENCH_PATH": path, "BENCH_SECRET": SECRET})
        acknowledged = wrk["requests"] - wrk["non_2xx_3xx"]
        cpu_after = server.cpu_seconds()
        web_cpu_s = sum(cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after)
        load_after = os.getloadavg()[0]
        time.sleep(1)
        with desk.app.app_context(), db.connection():
            stored = SocialInbox.select().count()
        lost = max(acknowledged - stored, 0)
        # Phase 2: the worker drains the inbox into tickets.
        log = open(desk.instance / "worker.log", "wb")  # noqa: SIM115
        started = time.monotonic()
        worker = None if args.no_drain else subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--workers",
                                   str(args.worker_threads), "--no-periodic"],
                                  cwd=REPO, env=desk.env, stdout=log, stderr=subprocess.STDOUT)
        pending = 0 if args.no_drain else stored
        while pending and time.monotonic() - started < args.drain_timeout:
            time.sleep(0.5)
            with desk.app.app_context(), db.connection():
                pending = SocialInbox.select().where(SocialInbox.state == "pending").count()
        drained = time.monotonic() - started
        with desk.app.app_context(), db.connection():
            done = SocialInbox.select().where(SocialInbox.state == "done").count()
            messages = Message.select().where((Message.channel == "telegram")
                                              & (Message.author_kind == "contact")).count()
            tickets = Ticket.select().count() - 1  # the setup's own ticket
            waits = [(row.processed_at - row.received_at).total_seconds()
                     for row in SocialInbox.select(SocialInbox.received_at,
                                                   SocialInbox.processed_at)
                     .where(SocialInbox.state == "done")]
        results = {
            "database": desk.kind, "gunicorn_workers": args.workers,
            "worker_class": args.worker_class, "wrk_connections": args.connections,
            "duration_s": args.duration,
            "load_1min_before_after": [round(load_before, 1), round(load_after, 1)],
            "acknowledged": acknowledged, "acknowledged_per_s": wrk["requests_per_s"],
            "web_cpu_s": round(web_cpu_s, 2),
            "web_cpu_ms_per_ack": round(web_cpu_s / acknowledged * 1000, 3) if acknowledged else 0,
            "ack_latency_ms": wrk["latency_ms"], "non_2xx": wrk["non_2xx_3xx"],
            "socket_errors": wrk["socket_errors"], "stored_in_inbox": stored, "lost": lost,
            "drain_s": round(drained, 1), "messages": messages, "tickets": tickets,
            "messages_per_s": round(messages / drained, 1) if drained else 0,
            "inbox_done": done, "receipt_to_message_s": percentiles(waits),
        }
        print(json.dumps({k: v for k, v in results.items()}, indent=2))
        print(f"saved {save_results(dict(results, wrk_raw=wrk['raw']), 'social')}")
        ok = (lost == 0 and wrk["non_2xx_3xx"] == 0 and pending == 0
              and (args.no_drain or (done == stored and messages == stored)))
        if not ok:
            print("FAILED: an update was lost, refused or not turned into one message")
        return 0 if ok else 1
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=60)
        if server is not None:
            server.stop()
        standin.stop()
        desk.close(args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
