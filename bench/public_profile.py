#!/usr/bin/env python3
"""What the public pages cost in process: CPU, function calls and SQL statements per request.

Builds the desk of bench/run.py (the default plugins, one category, one tracked ticket),
then sends requests straight to the WSGI app with prepared environs (no socket, no
gunicorn, no test client: the app's own cost):

* ``tracking``: GET of the ticket's tracking page, no cookie (a customer's link);
* ``submit``: POST of the ticket form, one session and CSRF token fetched first (as
  bench/submit.lua does), a new customer each time;
* ``form``: GET of the ticket form with that session.

For each it reports CPU ms per request (``time.process_time`` over an unprofiled run),
function calls per request (cProfile over a second run), SQL statements per request
(every ``execute_sql``), the read and write system calls on files per request (Linux:
SQLite's pages and WAL) and the functions that take the most time.

``--others-write`` (SQLite): another connection commits a row before each request, as under
gunicorn, where every worker thread has its own connection and they write in turn. A WAL
connection that finds the database changed since its last transaction starts with an empty
page cache and reads every page again (about 230 read calls a submission at 1M against 20);
without it this profile measures a cache no served submission has. That connection's own
work is not counted.

Usage (from the repository root):
    .venv/bin/python bench/public_profile.py [--requests 2000] [--only tracking] [--top 25]
    .venv/bin/python bench/public_profile.py --seeded-sqlite PATH --only submit --others-write
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/public_profile.py
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from run import Desk  # noqa: E402


class Client:
    """Calls the WSGI app with a prepared environ; keeps the status, headers and body."""

    def __init__(self, app: Any):
        from werkzeug.test import EnvironBuilder

        self.app = app
        self.builder = EnvironBuilder
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.before: Any = None  # run before each request, its CPU not counted (--others-write)
        self.excluded = 0.0  # CPU seconds spent in ``before``

    def environ(self, path: str, method: str = "GET", data: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[dict[str, Any], bytes]:
        environ = self.builder(path=path, method=method, data=data, headers=headers or {},
                               base_url="http://desk.bench").get_environ()
        return environ, data

    def call(self, prepared: tuple[dict[str, Any], bytes]) -> bytes:
        environ, data = prepared
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(data)
        if self.before is not None:
            started = time.process_time()
            self.before()
            self.excluded += time.process_time() - started

        def start_response(status: str, headers: list, exc_info: object = None) -> None:
            self.status, self.headers = status, headers

        return b"".join(self.app(environ, start_response))


def form_session(client: Client, path: str) -> tuple[str, str]:
    """GET the form: (Cookie header, CSRF token)."""
    page = client.call(client.environ(path)).decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    cookies = [v.split(";", 1)[0] for k, v in client.headers if k.lower() == "set-cookie"]
    assert token is not None and cookies, "the form gave no token or no session"
    return "; ".join(cookies), token.group(1)


def submission(n: int, token: str) -> bytes:
    return urlencode({"name": "Bench Customer", "email": f"bench{n}@example.com",
                      "subject": f"Benchmark ticket {n}",
                      "description": "My payment page does not load after I sign in. Please help.",
                      "csrf_token": token, "submission": f"s{n}-bench"}).encode()


def measure(client: Client, requests: list[tuple[dict[str, Any], bytes]], expect: str,
            counter: list[int], top: int, sort: str) -> dict[str, Any]:
    """Warm on the first tenth, time the next part, profile the rest (same count)."""
    warm = max(len(requests) // 11, 1)
    timed, profiled = requests[warm:warm + (len(requests) - warm) // 2], \
        requests[warm + (len(requests) - warm) // 2:]
    statuses: set[str] = set()
    for prepared in requests[:warm]:
        client.call(prepared)
        statuses.add(client.status)
    counter[0] = 0
    client.excluded = 0.0
    calls_before = system_calls()
    started, cpu = time.perf_counter(), time.process_time()
    for prepared in timed:
        client.call(prepared)
        statuses.add(client.status)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu - client.excluded
    calls_after = system_calls()
    statements = counter[0] / len(timed)
    profile = cProfile.Profile()
    profile.enable()
    for prepared in profiled:
        client.call(prepared)
        statuses.add(client.status)
    profile.disable()
    if os.environ.get("BENCH_PROFILE_OUT"):
        profile.dump_stats(os.environ["BENCH_PROFILE_OUT"] + "-" + expect[:3])
    if statuses != {expect}:
        raise SystemExit(f"expected {expect} only, got {statuses}")
    stats = pstats.Stats(profile)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats(sort).print_stats(top)
    return {"requests": len(timed), "cpu_ms": round(cpu / len(timed) * 1000, 3),
            "wall_ms": round(wall / len(timed) * 1000, 3),
            "calls": round(stats.total_calls / len(profiled)),  # type: ignore[attr-defined]
            "sql": round(statements, 2),
            **{key: round((calls_after[key] - calls_before[key]) / len(timed), 1)
               for key in calls_after},
            "profile": out.getvalue()}


def system_calls() -> dict[str, int]:
    """Read and write system calls this thread has made on files and pipes (Linux; empty
    elsewhere). A socket's send and recv are not counted: PostgreSQL's round trips are not."""
    try:
        found = dict(line.split(":") for line in
                     Path(f"/proc/self/task/{threading.get_native_id()}/io").read_text().splitlines())
    except OSError:
        return {}
    return {"read_calls": int(found["syscr"]), "write_calls": int(found["syscw"])}


def other_writer(database_path: str) -> Any:
    """A second connection to the desk's SQLite file that commits one row when called."""
    other = sqlite3.connect(database_path, isolation_level=None)
    other.execute("CREATE TABLE IF NOT EXISTS bench_other_writer (at REAL)")

    def commit() -> None:
        other.execute("INSERT INTO bench_other_writer VALUES (?)", (time.time(),))
    return commit


def add_agent_reply(app: Any, ticket_id: int) -> None:
    from core import db
    from core.models import Staff, Ticket
    from core.services import tickets

    with app.app_context(), db.connection():
        agent = Staff.create(email="agent@example.com", name="Bench Agent", role="agent")
        tickets.reply(Ticket.get_by_id(ticket_id), agent, "Could you send a screenshot?")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per page, timed and profiled")
    parser.add_argument("--only", action="append", choices=["tracking", "submit", "form"])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", help="pstats order: tottime, cumulative")
    parser.add_argument("--quiet", action="store_true", help="figures only, no profiles")
    parser.add_argument("--agent-reply", action="store_true",
                        help="an agent answers the tracked ticket first (their name on the page)")
    parser.add_argument("--seeded-sqlite", metavar="PATH", default="",
                        help="start from a copy of this seeded SQLite desk (bench/seed.py)")
    parser.add_argument("--sql-times", action="store_true",
                        help="also list the statements by the time they took (wall)")
    parser.add_argument("--env", action="append", default=[], metavar="LOKET_NAME=VALUE",
                        help="a setting for the desk (repeatable), e.g. LOKET_PLUGINS=social")
    parser.add_argument("--others-write", action="store_true",
                        help="SQLite: another connection commits before each request, as the "
                             "other threads' and workers' connections do under gunicorn")
    args = parser.parse_args()
    pages = args.only or ["tracking", "submit", "form"]
    desk = Desk(os.environ.get("BENCH_DATABASE_URL", ""), args.env, args.seeded_sqlite)
    try:
        form_path, tracking_path = desk.setup()
        app = desk.app
        if args.agent_reply:
            add_agent_reply(app, int(tracking_path.split("/")[2]))
        database = app.extensions["loket"].database
        counter = [0]
        execute_sql = database.execute_sql

        spent: dict[str, list[float]] = {}

        def counted(*a: Any, **k: Any) -> Any:
            counter[0] += 1
            if not args.sql_times:
                return execute_sql(*a, **k)
            started = time.perf_counter()
            try:
                return execute_sql(*a, **k)
            finally:
                entry = spent.setdefault(str(a[0])[:160], [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - started

        database.execute_sql = counted
        client = Client(app)
        if args.others_write:
            if desk.kind != "sqlite":
                raise SystemExit("--others-write is for SQLite (PostgreSQL has no such cache)")
            client.before = other_writer(database.database)
        total = args.requests * 2 + max(args.requests * 2 // 10, 1)
        results: dict[str, Any] = {"database": desk.kind}
        for page in pages:
            if page == "tracking":
                prepared = client.environ(tracking_path)
                results[page] = measure(client, [prepared] * total, "200 OK", counter,
                                        args.top, args.sort)
            elif page == "form":
                cookie, _token = form_session(client, form_path)
                prepared = client.environ(form_path, headers={"Cookie": cookie})
                results[page] = measure(client, [prepared] * total, "200 OK", counter,
                                        args.top, args.sort)
            else:
                cookie, token = form_session(client, form_path)
                before = desk.tickets()
                headers = {"Cookie": cookie,
                           "Content-Type": "application/x-www-form-urlencoded"}
                requests = [client.environ(form_path, "POST", submission(n, token), headers)
                            for n in range(total)]
                results[page] = measure(client, requests, "302 FOUND", counter, args.top,
                                        args.sort)
                opened = desk.tickets() - before
                if opened != total:
                    raise SystemExit(f"{total} submissions opened {opened} tickets")
        for page in pages:
            profile = results[page].pop("profile")
            if not args.quiet:
                print(f"== {page}\n{profile}")
        if args.sql_times:
            print("== statements by wall time (count, ms in all, ms each)")
            for sql, (count, seconds) in sorted(spent.items(), key=lambda i: -i[1][1])[:25]:
                print(f"{count:7d} {seconds * 1000:10.1f} {seconds / count * 1000:7.3f}  {sql}")
        print(json.dumps(results, indent=2))
        return 0
    finally:
        desk.close(False)


if __name__ == "__main__":
    raise SystemExit(main())
