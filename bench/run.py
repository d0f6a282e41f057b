#!/usr/bin/env python3
"""Web benchmark: public ticket submissions and tracking-page views under wrk, verified in the database.

Usage (from the repository root, with the virtualenv's Python):
    .venv/bin/python bench/run.py [--duration 15] [--connections 16] [--worker-class gthread]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/run.py
See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))


# "buffered" is what gunicorn.conf.py serves with: gthread that reads requests before a thread
# takes them (core/serving.py); "sync" is gunicorn's sync worker as Loket serves it (closing
# at once a connection with nothing unread). The others are gunicorn's own, for comparison.
WORKER_CLASSES = {"buffered": "core.serving.BufferingThreadWorker", "gthread": "gthread",
                  "sync": "core.serving.SyncWorker", "gunicorn-sync": "sync", "gevent": "gevent"}
THREADED = ("buffered", "gthread")


def parse_args() -> argparse.Namespace:
    return argument_parser(__doc__.splitlines()[0], port=8089).parse_args()


def argument_parser(description: str, port: int) -> argparse.ArgumentParser:
    """The options of a web benchmark: wrk, gunicorn, the database (bench/hostile.py adds its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--worker-class", default="buffered", choices=list(WORKER_CLASSES))
    parser.add_argument("--web-threads", type=int, default=2,
                        help="threads per gthread worker (gunicorn.conf.py's default: 2)")
    parser.add_argument("--web-connections", type=int, default=0,
                        help="most connections per gthread worker (LOKET_WEB_CONNECTIONS; "
                             "0: gunicorn's default)")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""),
                        help="PostgreSQL URL (a throwaway schema is made in it); "
                             "default: SQLite in a fresh instance folder")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder")
    parser.add_argument("--seeded-sqlite", metavar="PATH", default="",
                        help="start from a copy of this seeded SQLite desk (bench/seed.py), "
                             "e.g. one with a million tickets, instead of an empty one")
    parser.add_argument("--env", action="append", default=[], metavar="LOKET_NAME=VALUE",
                        help="a setting for the desk under test (repeatable), e.g. "
                             "LOKET_PLUGINS=email_intake")
    return parser


# -- The desk under test -----------------------------------------------------------------------


class Desk:
    """A fresh instance folder and database, migrated, with one category and one ticket."""

    def __init__(self, database_url: str, settings: list[str] = (), seeded_sqlite: str = ""):
        self.instance = Path(tempfile.mkdtemp(prefix="loket-bench-"))
        self.schema = ""
        self.admin_url = database_url
        if database_url:
            self.schema = f"bench_{uuid.uuid4().hex[:10]}"
            self._pg(f'CREATE SCHEMA "{self.schema}"')
            sep = "&" if "?" in database_url else "?"
            options = urllib.parse.quote(f"-csearch_path={self.schema}")
            self.database_url = f"{database_url}{sep}options={options}"
        else:
            self.database_url = f"sqlite:///{self.instance / 'loket.db'}"
            if seeded_sqlite:  # a copy: the benchmark adds tickets to it
                shutil.copyfile(seeded_sqlite, self.instance / "loket.db")
                # A million tickets is gigabytes of dirty pages: written back now, not
                # during the timed run (the kernel's writeback took CPU and I/O from it).
                os.sync()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOKET_")}
        self.env.update({
            "LOKET_INSTANCE_PATH": str(self.instance),
            "LOKET_DATABASE_URL": self.database_url,
            "LOKET_SECRET_KEY": uuid.uuid4().hex,
            "LOKET_JOBS": "sqlite",
            # Thousands of forms a second from one address, each sent the moment it is
            # fetched: the abuse limits would rightly refuse them. bench/hostile.py keeps
            # them on, with each customer at their own address behind a trusted proxy.
            "LOKET_RATE_LIMITS": "false",
            "LOKET_FORM_MIN_SECONDS": "0",
        })
        for setting in settings:
            name, _, value = setting.partition("=")
            self.env[name] = value
        os.environ.update(self.env)
        self.app: Any = None  # built after the migrations: the factory may read the schema

    def _pg(self, sql: str) -> None:
        import psycopg2
        from playhouse.db_url import parse

        params = {k: v for k, v in parse(self.admin_url).items() if v is not None}
        conn = psycopg2.connect(dbname=params.pop("database"), **params)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.close()

    @property
    def kind(self) -> str:
        return "postgresql" if self.schema else "sqlite"

    def setup(self) -> tuple[str, str]:
        """Migrate and add the minimal desk; returns (form path, tracking path)."""
        subprocess.run([sys.executable, "-m", "core.cli", "db", "upgrade"], cwd=REPO,
                       env=self.env, check=True, stdout=subprocess.DEVNULL)
        from core import create_app, db
        from core.models import Category, Department, IdentityKind, UserType
        from core.services.tickets import Identity, open_ticket

        self.app = create_app()
        with self.app.app_context(), db.connection():
            member, _ = UserType.get_or_create(slug="member", defaults={"name": "Member"})
            support, _ = Department.get_or_create(slug="support", defaults={"name": "Support"})
            Category.get_or_create(user_type=member, slug="account", defaults={
                "name": "Account", "default_department": support})  # no extra questions
            ticket = open_ticket(
                identity=Identity(IdentityKind.EMAIL, "tracked@example.com", name="Tracked"),
                subject="A ticket to look at", text="Where is my ticket?",
                category=Category.get(Category.user_type == member, Category.slug == "account"))
            return "/help/member/account/new", f"/t/{ticket.id}/{ticket.access_key}"

    def tickets(self) -> int:
        from core import db
        from core.models import Ticket

        with self.app.app_context(), db.connection():
            return Ticket.select().count()

    def close(self, keep: bool) -> None:
        database = self.app.extensions["loket"].database if self.app else None
        if database is not None and not database.is_closed():
            database.close()
        if self.schema:
            self._pg(f'DROP SCHEMA "{self.schema}" CASCADE')
        if not keep:
            shutil.rmtree(self.instance, ignore_errors=True)


# -- The server --------------------------------------------------------------------------------


class Server:
    def __init__(self, desk: Desk, args: argparse.Namespace):
        self.base = f"http://127.0.0.1:{args.port}"
        # gunicorn serves a "sync" worker with more than one thread as gthread: one thread,
        # so that --worker-class sync measures the sync worker.
        threads = args.web_threads if args.worker_class in THREADED else 1
        env = dict(desk.env, LOKET_BIND=f"127.0.0.1:{args.port}",
                   LOKET_WEB_WORKERS=str(args.workers), LOKET_WEB_THREADS=str(threads),
                   LOKET_WEB_CONNECTIONS=str(args.web_connections or ""))
        self.log = open(desk.instance / "gunicorn.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(REPO / "gunicorn.conf.py"),
             "--worker-class", WORKER_CLASSES[args.worker_class]], cwd=REPO, env=env, stdout=self.log,
            stderr=subprocess.STDOUT)
        self.peak_rss_kb: dict[int, int] = {}
        self._sampling = False

    def wait_ready(self, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited; see {self.log.name}")
            try:
                urllib.request.urlopen(self.base + path, timeout=2)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer within {timeout}s")

    def workers(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def _sample(self) -> None:
        while self._sampling:
            for pid in self.workers():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            rss = int(line.split()[1])
                            self.peak_rss_kb[pid] = max(self.peak_rss_kb.get(pid, 0), rss)
                except OSError:
                    pass
            time.sleep(0.25)

    def cpu_seconds(self) -> dict[int, float]:
        """CPU time (user + system) each worker has used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for pid in self.workers():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                used[pid] = (int(fields[11]) + int(fields[12])) / ticks
            except (OSError, IndexError, ValueError):
                pass
        return used

    def thread_cpu(self) -> dict[tuple[int, int], tuple[bool, float, float]]:
        """Each worker thread's CPU so far: (pid, tid) -> (the worker's event loop, user, system).

        The loop is the worker's main thread (accepting, reading requests ahead, keeping
        connections alive); the others run the application (gunicorn's request parsing and
        response included).
        """
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for pid in self.workers():
            try:
                tasks = list(Path(f"/proc/{pid}/task").iterdir())
            except OSError:
                continue
            for task in tasks:
                try:
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                used[(pid, int(task.name))] = (int(task.name) == pid, int(fields[11]) / ticks,
                                               int(fields[12]) / ticks)
        return used

    def kernel_counts(self) -> dict[str, int]:
        """What the workers have asked of the kernel so far, summed: read and write calls
        (``/proc/<pid>/io``: read, pread, write, pwrite... on files and pipes; a socket's
        send and recv are not counted) and context
        switches, voluntary (a thread waited: a lock, a socket, the GIL) and not."""
        counts = {"read_calls": 0, "write_calls": 0, "switches": 0, "preempted": 0}
        for pid in self.workers():
            try:
                io = dict(line.split(":") for line in
                          Path(f"/proc/{pid}/io").read_text().splitlines())
                counts["read_calls"] += int(io["syscr"])
                counts["write_calls"] += int(io["syscw"])
                tasks = list(Path(f"/proc/{pid}/task").iterdir())
            except (OSError, KeyError, ValueError):
                continue
            for task in tasks:
                try:
                    status = (task / "status").read_text()
                except OSError:
                    continue
                for name, key in (("voluntary_ctxt_switches", "switches"),
                                  ("nonvoluntary_ctxt_switches", "preempted")):
                    found = re.search(rf"^{name}:\s+(\d+)", status, re.M)
                    counts[key] += int(found.group(1)) if found else 0
        return counts

    def sample_rss(self) -> threading.Thread:
        self._sampling = True
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._sampling = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def cpu_split(before: dict[int, float], after: dict[int, float]) -> list[float]:
    return sorted((round(after[pid] - before.get(pid, 0.0), 1) for pid in after), reverse=True)


def cpu_per_request(before: dict[tuple[int, int], tuple[bool, float, float]],
                    after: dict[tuple[int, int], tuple[bool, float, float]],
                    requests: int) -> dict[str, float]:
    """Worker CPU ms a request, by the loop and the application threads, and user / system."""
    loop = threads = user = system = 0.0
    for key, (is_loop, u, s) in after.items():
        _, u0, s0 = before.get(key, (is_loop, 0.0, 0.0))
        du, ds = u - u0, s - s0
        user, system = user + du, system + ds
        if is_loop:
            loop += du + ds
        else:
            threads += du + ds
    per = 1000 / max(requests, 1)
    return {"total": round((user + system) * per, 3), "loop": round(loop * per, 3),
            "threads": round(threads * per, 3), "user": round(user * per, 3),
            "system": round(system * per, 3)}


def kernel_per_request(before: dict[str, int], after: dict[str, int],
                       requests: int) -> dict[str, float]:
    """``Server.kernel_counts`` a request (a ticket)."""
    return {key: round((after[key] - before.get(key, 0)) / max(requests, 1), 1) for key in after}


def form_session(base: str, path: str) -> tuple[str, str]:
    """Fetch the form as a browser would: returns (Cookie header, csrf token)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + path, timeout=10).read().decode()
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    if match is None:
        raise SystemExit("no csrf_token on the ticket form")
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    return cookie, match.group(1)


def submit_once(base: str, path: str, cookie: str, token: str) -> int:
    body = urllib.parse.urlencode({"name": "Check", "email": "check@example.com",
                                   "subject": "Before the benchmark", "csrf_token": token,
                                   "description": "One submission to prove the form works."})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    request = urllib.request.Request(base + path, data=body.encode(), headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    try:
        return urllib.request.build_opener(NoRedirect).open(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


# -- wrk -------------------------------------------------------------------------------------


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return round(float(number) * UNITS[unit], 2)


def run_wrk(args: argparse.Namespace, url: str, script: Path | None = None,
            env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
           "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}).stdout
    result: dict[str, Any] = {"raw": out}
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    result["requests_per_s"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    result["latency_ms"] = {p: _ms(v) for p, v in
                            re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx_3xx"] = int(bad.group(1)) if bad else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    result["socket_errors"] = sum(map(int, errors.groups())) if errors else 0
    return result


def save_results(results: dict[str, Any], label: str) -> Path:
    """Write a run's figures to bench/results/<time>-<label>.json (git-ignored)."""
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}.json"
    path.write_text(json.dumps(results, indent=2))
    return path


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt install wrk)")
    if args.seeded_sqlite and args.database_url:
        raise SystemExit("--seeded-sqlite is a SQLite desk: leave --database-url out")
    desk = Desk(args.database_url, args.env, args.seeded_sqlite)
    server = None
    try:
        form_path, tracking_path = desk.setup()
        server = Server(desk, args)
        server.wait_ready(form_path)
        cookie, token = form_session(server.base, form_path)
        status = submit_once(server.base, form_path, cookie, token)
        if status != 302:
            raise SystemExit(f"a test submission answered {status}, not 302; see "
                             f"{server.log.name}")
        sampler = server.sample_rss()

        before = desk.tickets()
        cpu_before = server.cpu_seconds()
        threads_before = server.thread_cpu()
        kernel_before = server.kernel_counts()
        started = time.monotonic()
        submit = run_wrk(args, server.base + form_path, BENCH / "submit.lua", {
            "BENCH_PATH": form_path, "BENCH_COOKIE": cookie, "BENCH_CSRF": token})
        elapsed = time.monotonic() - started
        created = desk.tickets() - before
        submit["tickets_created"] = created
        submit["tickets_per_s"] = round(created / args.duration, 1)
        submit["elapsed_s"] = round(elapsed, 1)
        submit["worker_cpu_s"] = cpu_split(cpu_before, server.cpu_seconds())
        submit["cpu_ms_per_ticket"] = cpu_per_request(threads_before, server.thread_cpu(),
                                                      created)
        submit["kernel_per_ticket"] = kernel_per_request(kernel_before, server.kernel_counts(),
                                                         created)
        submit["load_average"] = round(os.getloadavg()[0], 2)

        cpu_before = server.cpu_seconds()
        track = run_wrk(args, server.base + tracking_path)
        track["worker_cpu_s"] = cpu_split(cpu_before, server.cpu_seconds())
        server._sampling = False
        sampler.join(timeout=2)
        rss = sorted(server.peak_rss_kb.values())
    finally:
        if server is not None:
            server.stop()
        desk.close(args.keep)

    results = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "database": desk.kind,
        "cpus": os.cpu_count(),
        "gunicorn": {"workers": args.workers, "worker_class": args.worker_class,
                     "threads": args.web_threads if args.worker_class in THREADED else 1,
                     "connections_per_worker": args.web_connections or None},
        "wrk": {"threads": args.threads, "connections": args.connections,
                "duration_s": args.duration},
        "submit": submit,
        "tracking": track,
        "peak_rss_mb_per_worker": [round(kb / 1024, 1) for kb in rss],
    }
    saved = save_results(results, f"{desk.kind}-{args.worker_class}")

    print(f"\nLoket web benchmark: {desk.kind}, gunicorn {args.workers} x {args.worker_class}"
          f"{f' ({args.web_threads} threads)' if args.worker_class in THREADED else ''}, "
          f"wrk {args.threads} threads / {args.connections} connections / {args.duration}s, "
          f"{os.cpu_count()} CPUs")
    header = f"{'':28}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'errors':>8}"
    print(header)
    for label, r in (("POST ticket form", submit), ("GET tracking page", track)):
        lat = r["latency_ms"]
        print(f"{label:28}{r['requests_per_s']:>9.1f}{lat.get('50', 0):>9.2f}"
              f"{lat.get('90', 0):>9.2f}{lat.get('99', 0):>9.2f}{r['non_2xx_3xx']:>9}"
              f"{r['socket_errors']:>8}")
    print(f"Tickets created: {submit['tickets_created']} of {submit['requests']} requests "
          f"= {submit['tickets_per_s']} tickets/s (counted in the database)")
    for label, r in (("POST", submit), ("GET", track)):
        split = r["worker_cpu_s"]
        uneven = len(split) > 1 and split[0] > 3 * max(split[-1], 0.1)
        print(f"CPU seconds per worker during {label}: {', '.join(f'{c:.1f}' for c in split)}"
              + (" (uneven: wrk's keep-alive connections went to one worker)" if uneven else ""))
    cpu = submit["cpu_ms_per_ticket"]
    split = (f"event loops {cpu['loop']}, application threads {cpu['threads']}; "
             if args.worker_class in THREADED else "")  # a sync worker's one thread does all
    print(f"Worker CPU a ticket: {cpu['total']} ms ({split}user {cpu['user']}, system "
          f"{cpu['system']}); load average {submit['load_average']}")
    kernel = submit["kernel_per_ticket"]
    print(f"Per ticket: {kernel['read_calls']} read and {kernel['write_calls']} write calls, "
          f"{kernel['switches']} context switches (waits) and {kernel['preempted']} preemptions")
    print(f"Peak RSS per gunicorn worker: {', '.join(map(str, results['peak_rss_mb_per_worker']))} MB")
    print(f"Results: {saved}")
    # wrk stops counting at the deadline; requests then in flight may still create tickets.
    ok = (submit["non_2xx_3xx"] == 0 and track["non_2xx_3xx"] == 0
          and submit["socket_errors"] == 0 and track["socket_errors"] == 0
          and submit["requests"] <= submit["tickets_created"]
          <= submit["requests"] + args.connections)
    if not ok:
        print("FAILED: errors or non-2xx/3xx answers, or tickets created differ from requests",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
