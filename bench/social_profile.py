#!/usr/bin/env python3
"""What one acknowledged webhook update costs in process: CPU-s per update and calls per request.

Builds a migrated desk with one Telegram account, then posts N signed updates through
the WSGI app (werkzeug's test client, so no socket and no gunicorn: the app's own cost: the WSGI app is called with a prepared environ)
and reports CPU seconds per update (``time.process_time``) and, under cProfile,
function calls per request and the functions that take the most time.

Usage (from the repository root):
    .venv/bin/python bench/social_profile.py [--updates 2000] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from run import Desk  # noqa: E402

SECRET = "bench-telegram-secret-token"


def body(update_id: int) -> bytes:
    chat = 7000000 + update_id % 500
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1441645532, "text": f"Payout late. Order {update_id}",
        "chat": {"id": chat, "type": "private", "first_name": "Bench"},
        "from": {"id": chat, "first_name": "Bench"}}}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", help="pstats order: tottime, cumulative")
    args = parser.parse_args()
    desk = Desk("", ["LOKET_PLUGINS=social"])
    try:
        desk.setup()
        from core import db
        from plugins.social import vault
        from plugins.social.models import SocialAccount, SocialInbox

        with desk.app.app_context(), db.connection():
            account = SocialAccount(platform="telegram", name="Bench bot", handle="bench_bot")
            vault.write(account, {"token": "42:BENCH", "webhook_secret": SECRET})
            account.save()
        from werkzeug.test import EnvironBuilder

        path = f"/social/telegram/{account.slug}"
        environs = []
        for i in range(1, 2 * args.updates + 201):
            data = body(i)
            environ = EnvironBuilder(path=path, method="POST", data=data, headers={
                "X-Telegram-Bot-Api-Secret-Token": SECRET,
                "Content-Type": "application/json"}).get_environ()
            environs.append((environ, data))
        app = desk.app
        statuses = []

        def start_response(status: str, headers: list, exc_info: object = None) -> None:
            statuses.append(status)

        def post(i: int) -> None:
            environ, data = environs[i]
            environ["wsgi.input"] = io.BytesIO(data)
            for _chunk in app(environ, start_response):
                pass

        for i in range(200):  # warm: imports, caches, prepared statements
            post(i)
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(200, 200 + args.updates):
            post(i)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        profile = cProfile.Profile()
        profile.enable()
        for i in range(200 + args.updates, 200 + 2 * args.updates):
            post(i)
        profile.disable()
        assert set(statuses) == {"200 OK"}, set(statuses)
        stats = pstats.Stats(profile)
        calls = stats.total_calls  # type: ignore[attr-defined]
        with desk.app.app_context(), db.connection():
            stored = SocialInbox.select().count()
        view = next((v for k, v in stats.stats.items()  # type: ignore[attr-defined]
                     if k[2] == "webhook" and k[0].endswith("views.py")), None)
        print(json.dumps({"updates": args.updates, "cpu_ms_per_update": round(cpu / args.updates
                                                                             * 1000, 3),
                          "wall_ms_per_update": round(wall / args.updates * 1000, 3),
                          "function_calls_per_request": round(calls / args.updates),
                          "share_of_profiled_time_in_the_view": round(
                              view[3] / stats.total_tt, 2) if view else None,  # type: ignore

                          "stored": stored, "posted": 2 * args.updates + 200}, indent=2))
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
        return 0 if stored == 2 * args.updates + 200 else 1
    finally:
        desk.close(False)


if __name__ == "__main__":
    raise SystemExit(main())
