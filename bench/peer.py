#!/usr/bin/env python3
"""Side by side: django-helpdesk's public ticket form and Loket's, under the same wrk load, in one run.

Usage (from the repository root):
    .venv/bin/python bench/peer.py [--rounds 3] [--duration 10] [--connections 16]
It installs django-helpdesk into a throwaway virtualenv outside the repository (reused when
present), generates a minimal Django project in a temporary folder, and alternates rounds of
that peer and of bench/run.py. See bench/README.md, "Side by side with django-helpdesk".
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import run as base  # noqa: E402  (bench/run.py: wrk and its figures)

PEER_VERSION = "2.6.1"
FORM_PATH = "/helpdesk/tickets/submit/"
# Each step outside wrk is bounded: a hung install or server must not hang the benchmark.
INSTALL_TIMEOUT_S = 600
SETUP_TIMEOUT_S = 180


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, alternated")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    # wrk's few kept-alive connections are a reverse proxy's upstream pool in shape, and the
    # README's production setting for one is LOKET_WEB_CONNECTIONS=8: without it one gthread
    # worker can take all 16 while the other idles (3 of 8 runs at a million tickets here,
    # each at about half the tickets a second), a figure of the draw, not of the code.
    parser.add_argument("--web-connections", type=int, default=8,
                        help="passed to bench/run.py (most connections per Loket worker; "
                             "0: gunicorn's default of 1000)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, both servers")
    # Loket's default worker class (core.serving.BufferingThreadWorker) is Loket's own code;
    # Django's deployment docs and gunicorn default to sync.
    parser.add_argument("--peer-worker-class", default="sync", choices=["sync", "gthread"])
    # Loket's worker classes, each given its rounds in turn with the peer's (bench/run.py's
    # names): "buffered" is the default; "sync" is LOKET_WEB_WORKER=sync, for a desk behind a
    # buffering reverse proxy. Repeat the option to compare them in one run.
    parser.add_argument("--loket-worker-class", action="append", default=[],
                        choices=["buffered", "sync", "gthread"],
                        help="Loket's gunicorn worker class (repeatable; default: buffered)")
    parser.add_argument("--peer-threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--peer-version", default=PEER_VERSION, help="django-helpdesk version")
    parser.add_argument("--venv", default="/tmp/loket-peer-venv",
                        help="the peer's virtualenv (created when missing, reused otherwise)")
    parser.add_argument("--port", type=int, default=8097, help="the peer's port")
    parser.add_argument("--loket-port", type=int, default=8098, help="bench/run.py's port")
    parser.add_argument("--peer-journal", default="wal", choices=sorted(SQLITE_OPTIONS),
                        help="the peer's SQLite settings: Loket's (wal) or Django's defaults "
                             "(shipped)")
    parser.add_argument("--seeded-sqlite", metavar="PATH", default="",
                        help="Loket starts each round from a copy of this seeded desk "
                             "(bench/seed.py), e.g. a million tickets; the peer starts empty")
    parser.add_argument("--peer-only", action="store_true", help="skip Loket's rounds")
    parser.add_argument("--keep", action="store_true", help="keep the peer's project folder")
    return parser.parse_args()


# -- The peer's virtualenv and project ----------------------------------------------------------


def ensure_venv(venv: Path, version: str) -> Path:
    """The virtualenv's Python with django-helpdesk==version and gunicorn (installed once)."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       timeout=INSTALL_TIMEOUT_S)
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, gunicorn; "
                            "print(m.version('django-helpdesk'))"],
        capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != version:
        subprocess.run([str(python), "-m", "pip", "install", "-q",
                        f"django-helpdesk=={version}", "gunicorn"], check=True,
                       timeout=INSTALL_TIMEOUT_S)
    return python


SETTINGS = """\
# Generated by bench/peer.py: the smallest django-helpdesk site with the public form on.
SECRET_KEY = "bench-peer-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django.contrib.sites", "django.contrib.humanize", "rest_framework", "helpdesk",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "peersite.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
WSGI_APPLICATION = "peersite.wsgi.application"
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": {db_path!r},
    "OPTIONS": {sqlite_options},
}}
USE_TZ = True
SITE_ID = 1
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_URL = "helpdesk:login"
# The mails to the submitter are rendered, then dropped: no mail server here.
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
HELPDESK_TEAMS_MODE_ENABLED = False
HELPDESK_ALLOW_NON_STAFF_TICKET_UPDATE = True
HELPDESK_REDIRECT_TO_LOGIN_BY_DEFAULT = False
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}
"""

URLS = """\
from django.urls import include, path

urlpatterns = [path("helpdesk/", include("helpdesk.urls"))]
"""

WSGI = """\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peersite.settings")
application = get_wsgi_application()
"""

SEED = """\
from helpdesk.models import Queue
q = Queue.objects.create(title="Support", slug="support", allow_public_submission=True)
print(q.id)
"""


# "wal": the same SQLite settings as Loket's (core/db.py): WAL, synchronous=NORMAL, 10 s busy
# timeout. "shipped": Django's own defaults, as django-helpdesk runs when nobody tunes it
# (rollback journal, synchronous=FULL, 10 s busy timeout so that writers wait, not fail).
SQLITE_OPTIONS = {
    "wal": '{"timeout": 10, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}',
    "shipped": '{"timeout": 10}',
}


class PeerProject:
    """A generated Django project with django-helpdesk, migrated once; a fresh database per round."""

    def __init__(self, python: Path, journal: str = "wal"):
        self.python = python
        self.folder = Path(tempfile.mkdtemp(prefix="loket-peer-"))
        self.template_db = self.folder / "template.sqlite3"
        self.db = self.folder / "db.sqlite3"
        site = self.folder / "peersite"
        site.mkdir()
        (site / "__init__.py").write_text("")
        (site / "settings.py").write_text(SETTINGS.replace("{db_path!r}", repr(str(self.db)))
                                          .replace("{sqlite_options}", SQLITE_OPTIONS[journal]))
        (site / "urls.py").write_text(URLS)
        (site / "wsgi.py").write_text(WSGI)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LOKET_"))}
        self.env["DJANGO_SETTINGS_MODULE"] = "peersite.settings"
        self.env["PYTHONPATH"] = str(self.folder)
        self.queue_id = ""

    def manage(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run([str(self.python), "-m", "django", *args], cwd=self.folder,
                              env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=SETUP_TIMEOUT_S)
        if done.returncode != 0:
            raise SystemExit(f"django-admin {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def setup(self) -> None:
        self.manage("migrate", "--noinput")
        self.queue_id = self.manage("shell", stdin=SEED).strip().splitlines()[-1]
        with sqlite3.connect(self.db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(self.db, self.template_db)

    def fresh_database(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)
        shutil.copy(self.template_db, self.db)

    def tickets(self) -> int:
        with sqlite3.connect(self.db, timeout=10) as conn:
            return conn.execute("SELECT COUNT(*) FROM helpdesk_ticket").fetchone()[0]

    def close(self, keep: bool) -> None:
        if not keep:
            shutil.rmtree(self.folder, ignore_errors=True)


class PeerServer(base.Server):
    """The peer under gunicorn; readiness and shutdown as for Loket's server (bench/run.py)."""

    def __init__(self, project: PeerProject, args: argparse.Namespace):
        self.base = f"http://127.0.0.1:{args.port}"
        self.log = open(project.folder / "gunicorn.log", "ab")  # noqa: SIM115
        cmd = [str(project.python), "-m", "gunicorn", "peersite.wsgi:application",
               "--bind", f"127.0.0.1:{args.port}", "--workers", str(args.workers),
               "--worker-class", args.peer_worker_class,
               # gunicorn 27's control socket has one path per user: other servers use it too.
               "--no-control-socket"]
        if args.peer_worker_class == "gthread":
            cmd += ["--threads", str(args.peer_threads)]
        self.proc = subprocess.Popen(cmd, cwd=project.folder, env=project.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self._sampling = False


def form_session(base: str) -> tuple[str, str]:
    """Fetch the public form as a browser would: returns (Cookie header, csrf token)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + FORM_PATH, timeout=10).read().decode()
    match = re.search(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"', page)
    if match is None or not any(c.name == "csrftoken" for c in jar):
        raise SystemExit("no CSRF cookie and token on django-helpdesk's public form")
    return "; ".join(f"{c.name}={c.value}" for c in jar), match.group(1)


def submit_once(base: str, cookie: str, token: str, queue: str) -> None:
    """One submission before the benchmark; an invalid form would answer 200 and save nothing."""
    body = urllib.parse.urlencode({
        "queue": queue, "submitter_email": "check@example.com", "title": "Before the benchmark",
        "body": "One submission to prove the form works.", "priority": "3", "due_date": "",
        "csrfmiddlewaretoken": token})
    request = urllib.request.Request(base + FORM_PATH, data=body.encode(), headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    urllib.request.urlopen(request, timeout=10).read()


def peer_round(project: PeerProject, args: argparse.Namespace) -> dict[str, Any]:
    """One wrk run against a fresh peer database and server; figures counted in the database."""
    project.fresh_database()
    server = PeerServer(project, args)
    try:
        server.wait_ready(FORM_PATH)
        cookie, token = form_session(server.base)
        submit_once(server.base, cookie, token, project.queue_id)
        before = project.tickets()
        if before != 1:
            raise SystemExit(f"a test submission to the peer made {before} tickets, not 1; "
                             f"see {server.log.name}")
        cpu_before = server.cpu_seconds()
        result = base.run_wrk(args, server.base + FORM_PATH, BENCH / "peer_submit.lua", {
            "BENCH_PATH": FORM_PATH, "BENCH_COOKIE": cookie, "BENCH_CSRF": token,
            "BENCH_QUEUE": project.queue_id})
        result["worker_cpu_s"] = base.cpu_split(cpu_before, server.cpu_seconds())
    finally:
        server.stop()
    result["tickets_created"] = project.tickets() - before
    result["tickets_per_s"] = round(result["tickets_created"] / args.duration, 1)
    return result


# -- Loket's side: bench/run.py as it is ---------------------------------------------------------


def loket_round(args: argparse.Namespace, worker_class: str = "buffered") -> dict[str, Any]:
    """Run bench/run.py with the same load; its figures come from the JSON its Results: line names."""
    python = REPO / ".venv" / "bin" / "python"
    cmd = [str(python if python.exists() else sys.executable), str(BENCH / "run.py"),
           "--duration", str(args.duration), "--threads", str(args.threads),
           "--connections", str(args.connections), "--workers", str(args.workers),
           "--web-connections", str(args.web_connections), "--port", str(args.loket_port),
           "--worker-class", worker_class]
    if args.seeded_sqlite:
        cmd += ["--seeded-sqlite", args.seeded_sqlite]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.pop("BENCH_DATABASE_URL", None)  # SQLite on both sides
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=4 * args.duration + SETUP_TIMEOUT_S)
    match = re.search(r"^Results: (.+)$", done.stdout, re.M)
    if match is None:
        raise SystemExit(f"bench/run.py printed no Results: line (exit {done.returncode}):\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result = json.loads(Path(match.group(1)).read_text())["submit"]
    result["run_py_exit"] = done.returncode
    return result


# -- Report --------------------------------------------------------------------------------------


def cpu_ms_per_ticket(r: dict[str, Any]) -> float:
    """The server's own CPU (all its workers, not wrk's) per ticket created: unlike tickets
    per second, hardly moved by what else the machine is doing."""
    return 1000 * sum(r.get("worker_cpu_s") or [0.0]) / max(r["tickets_created"], 1)


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    lat = {p: statistics.median(r["latency_ms"].get(p, 0.0) for r in rounds)
           for p in ("50", "90", "99")}
    return {"tickets_per_s": statistics.median(r["tickets_per_s"] for r in rounds),
            "cpu_ms_per_ticket": round(statistics.median(cpu_ms_per_ticket(r) for r in rounds), 2),
            "requests_per_s": statistics.median(r["requests_per_s"] for r in rounds),
            "latency_ms": lat,
            "non_2xx_3xx": sum(r["non_2xx_3xx"] for r in rounds),
            "socket_errors": sum(r["socket_errors"] for r in rounds)}


def row(label: str, r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    return (f"{label:34}{r['tickets_per_s']:>10.1f}{r['requests_per_s']:>9.1f}"
            f"{lat.get('50', 0):>9.2f}{lat.get('90', 0):>9.2f}{lat.get('99', 0):>9.2f}"
            f"{r['non_2xx_3xx']:>9}{r['socket_errors']:>8}")


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt install wrk)")
    python = ensure_venv(Path(args.venv), args.peer_version)
    project = PeerProject(python, args.peer_journal)
    peer: list[dict[str, Any]] = []
    classes = list(dict.fromkeys(args.loket_worker_class)) or ["buffered"]
    lokets: dict[str, list[dict[str, Any]]] = {name: [] for name in classes}
    try:
        project.setup()
        for n in range(1, args.rounds + 1):
            peer.append(peer_round(project, args))
            print(f"round {n}: django-helpdesk {peer[-1]['tickets_per_s']} tickets/s (load "
                  f"average {os.getloadavg()[0]:.2f})", flush=True)
            for name in classes if not args.peer_only else ():
                lokets[name].append(loket_round(args, name))
                done = lokets[name][-1]
                # One worker holding every keep-alive connection halves Loket's figure: say so.
                print(f"round {n}: Loket ({name}) {done['tickets_per_s']} tickets/s (CPU s per "
                      f"worker: {done.get('worker_cpu_s')}; CPU ms a ticket: "
                      f"{done.get('cpu_ms_per_ticket')}; load average "
                      f"{os.getloadavg()[0]:.2f})", flush=True)
    finally:
        project.close(args.keep)

    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
        "wrk": {"threads": args.threads, "connections": args.connections,
                "duration_s": args.duration},
        "peer": {"django_helpdesk": args.peer_version, "workers": args.workers,
                 "worker_class": args.peer_worker_class, "journal": args.peer_journal,
                 "rounds": peer,
                 "median": summary(peer)},
    }
    journal = "WAL on both" if args.peer_journal == "wal" else "Loket WAL, the peer as shipped"
    print(f"\nSide by side, SQLite ({journal}), gunicorn {args.workers} workers each, wrk "
          f"{args.threads} threads / {args.connections} connections / {args.duration}s, "
          f"{args.rounds} alternated rounds, {os.cpu_count()} CPUs; medians")
    print(f"{'':34}{'tickets/s':>10}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
          f"{'non-2xx':>9}{'errors':>8}")
    print(row(f"django-helpdesk {args.peer_version} ({args.peer_worker_class})",
              results["peer"]["median"]))
    ok = all(r["non_2xx_3xx"] == 0 and r["socket_errors"] == 0
             and r["requests"] <= r["tickets_created"] <= r["requests"] + args.connections
             for r in peer)
    for index, (name, loket) in enumerate(lokets.items()):
        if not loket:
            continue
        # The first class's figures under the keys earlier runs saved them under.
        key = "loket" if index == 0 else f"loket_{name}"
        results[key] = {"worker_class": name, "rounds": loket, "median": summary(loket)}
        print(row(f"Loket {name} ({args.web_connections or 'default'} conn/worker)",
                  results[key]["median"]))
        ratio = results[key]["median"]["tickets_per_s"] / max(
            results["peer"]["median"]["tickets_per_s"], 0.1)
        results[f"ratio_{key}_to_peer"] = round(ratio, 2)
        print(f"Ratio Loket {name} / django-helpdesk (median tickets/s): {ratio:.2f}x")
        cpu = (results["peer"]["median"]["cpu_ms_per_ticket"]
               / max(results[key]["median"]["cpu_ms_per_ticket"], 0.01))
        results[f"ratio_{key}_cpu_per_ticket"] = round(cpu, 2)
        print(f"Server CPU per ticket (median): django-helpdesk "
              f"{results['peer']['median']['cpu_ms_per_ticket']} ms, Loket {name} "
              f"{results[key]['median']['cpu_ms_per_ticket']} ms: Loket needs {cpu:.2f}x less")
        ok = ok and all(r["run_py_exit"] == 0 for r in loket)
    print("Per round, tickets/s: django-helpdesk "
          + ", ".join(str(r["tickets_per_s"]) for r in peer)
          + "".join(f"; Loket {name} " + ", ".join(str(r["tickets_per_s"]) for r in loket)
                    for name, loket in lokets.items() if loket))
    print(f"Results: {base.save_results(results, 'peer')}")
    if not ok:
        print("FAILED: errors, non-2xx/3xx answers, or tickets created differ from requests",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
