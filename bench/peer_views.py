#!/usr/bin/env python3
"""Side by side at the same size: django-helpdesk's API ticket list and public ticket page
against Loket's, each desk seeded with as many tickets, in one run.

Usage (from the repository root):
    .venv/bin/python bench/peer_views.py --tickets 100000 \\
        --loket-database-url sqlite:////work/bench/loket-100k.db [--rounds 3] [--duration 6]

``bench/peer.py`` compares the public form, the peer starting empty. This compares what an
agent and a customer read once the desk has grown: it seeds the peer (django-helpdesk, as
``peer.py`` installs it) with ``--tickets`` tickets in the shape of ``bench/seed.py``'s (two
follow-ups each, 40% open, the rest resolved or closed, a year of dates, one submitter per
three tickets), signs in to both as an administrator, and runs ``wrk`` on:

* **the API ticket list**, the first page as each ships it: django-helpdesk's
  ``/helpdesk/api/tickets/`` (Django REST framework, 25 a page, with the total count) and
  Loket's ``/api/v1/tickets`` (25 a page, keyset, no count); each as the administrator
  (django-helpdesk's API is for staff who are admins);
* **the public ticket page**: django-helpdesk's ``/helpdesk/view/?ticket=…&email=…&key=…``
  and Loket's private tracking link, for a ticket with two messages.

Each page is first asked for three times one request at a time (the median: "alone"), then
put under load: each scenario alternates between the two servers, ``--rounds`` times, the
order swapped each round (``bench/inbox.py --against`` does the same for two Loket desks),
each timed after ``--warmup`` seconds of untimed load. A page so slow alone that a
connection would finish fewer than two in a run (django-helpdesk's API list: about 0.5 s at
3,000 tickets, growing with the desk) is not put under load; its time alone is the figure. Both are served by gunicorn with 2 workers:
django-helpdesk's sync workers (its deployment documentation's and gunicorn's default) on
SQLite as it ships (``--peer-journal wal`` for Loket's settings), Loket's default worker on
the desk given. Per scenario it prints requests/s, p50 and p99 and the workers' CPU a
request, the medians, and how many times Loket's requests/s the peer's is; it saves
everything in ``bench/results/<time>-peer-views.json``. The seeded peer is kept in a
temporary folder for the run only (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import inbox  # noqa: E402  (Loket's scenarios, their timing and wrk)
import peer  # noqa: E402  (the peer's virtualenv, project and server)
from run import save_results  # noqa: E402

PASSWORD = "bench-peer-admin"
LOGIN_PATH = "/helpdesk/login/"
API_PATH = "/helpdesk/api/tickets/"

# Run inside the peer's own Django (``manage.py shell``): ``count`` tickets like bench/seed.py's,
# written with bulk inserts in one transaction, an administrator, and one ticket's public link.
SEED = """\
import datetime as dt, random
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from helpdesk.models import FollowUp, Queue, Ticket

count, rng = {count}, random.Random(7)
subjects = ["Card declined at checkout", "Refund for a double charge", "Payout not received",
            "Cannot log in to my account", "Verify my identity documents", "Stream keeps freezing",
            "Password reset link expired", "Question about the tax form"]
words = ["passport", "payment", "account", "studio", "invoice", "browser", "android", "refund"]
queues = [Queue.objects.get_or_create(slug=f"desk{{n}}", defaults={{
    "title": f"Desk {{n}}", "allow_public_submission": True}})[0] for n in range(8)]
User = get_user_model()
admin = User.objects.filter(username="admin").first() or User.objects.create_superuser(
    "admin", "admin@bench.test", {password!r})
now = timezone.now()
batch = 2000
with transaction.atomic():
    for first in range(0, count, batch):
        tickets = []
        for n in range(first, min(first + batch, count)):
            created = now - dt.timedelta(seconds=rng.randrange(365 * 86400))
            active = rng.random() < 0.4
            tickets.append(Ticket(
                title=f"{{rng.choice(subjects)}} {{rng.choice(words)}}", queue=rng.choice(queues),
                created=created, modified=created + dt.timedelta(hours=rng.randrange(1, 48)),
                submitter_email=f"member{{n // 3}}@example.com",
                status=Ticket.OPEN_STATUS if active else rng.choice(
                    [Ticket.RESOLVED_STATUS, Ticket.CLOSED_STATUS]),
                priority=rng.choice([1, 2, 3, 4, 5]),
                description=f"Reference INV-{{n:07d}}. My {{rng.choice(words)}} does not work.",
                assigned_to=admin if rng.random() < 0.3 else None))
        Ticket.objects.bulk_create(tickets, batch_size=batch)
        made = list(Ticket.objects.order_by("-id")[:len(tickets)])
        FollowUp.objects.bulk_create(
            [FollowUp(ticket=t, date=t.created, title="Ticket opened", comment=t.description,
                      public=True) for t in made]
            + [FollowUp(ticket=t, date=t.modified, title="Answered", user=admin, public=True,
                        comment="Thank you, we are looking into it.") for t in made],
            batch_size=batch)
        print(f"{{first + len(tickets)}} / {{count}} tickets", flush=True)
ticket = Ticket.objects.order_by("-id").first()
print("LINK", ticket.ticket_for_url, ticket.submitter_email, ticket.secret_key)
"""


def peer_cookie(base: str) -> str:
    """Sign in to django-helpdesk's staff login form: the Cookie header of the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + LOGIN_PATH, timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"', page)
    if token is None:
        raise SystemExit("no CSRF token on django-helpdesk's login form")
    body = urllib.parse.urlencode({"username": "admin", "password": PASSWORD,
                                   "csrfmiddlewaretoken": token.group(1), "next": API_PATH}).encode()
    request = urllib.request.Request(base + LOGIN_PATH, data=body,
                                     headers={"Referer": base + LOGIN_PATH})
    opener.open(request, timeout=30).read()
    if not any(cookie.name == "sessionid" for cookie in jar):
        raise SystemExit("django-helpdesk's login did not sign the administrator in")
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def one_at_a_time(base: str, path: str, headers: dict[str, str], times: int = 3) -> float:
    """The median seconds of ``times`` requests sent one after another (after one untimed)."""
    spent = []
    for n in range(times + 1):
        started = time.monotonic()
        with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers),
                                    timeout=600) as answer:
            answer.read()
        if n:
            spent.append(time.monotonic() - started)
    return statistics.median(spent)


def main() -> int:
    parser = inbox.argument_parser(__doc__.splitlines()[0], 8091)
    parser.add_argument("--tickets", type=int, default=100_000, help="the peer's tickets")
    parser.add_argument("--loket-database-url", required=True,
                        help="a Loket desk seeded with as many tickets (bench/seed.py)")
    parser.add_argument("--loket-seed-file", help="its seed JSON (default: beside it)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--venv", default="/tmp/loket-peer-venv")
    parser.add_argument("--peer-version", default=peer.PEER_VERSION)
    parser.add_argument("--peer-journal", default="shipped", choices=sorted(peer.SQLITE_OPTIONS))
    parser.add_argument("--peer-port", type=int, default=8097)
    parser.add_argument("--wrk-timeout", type=int, default=60,
                        help="seconds before wrk counts a request as timed out")
    parser.set_defaults(connections=8, duration=6, keep=False)
    args = parser.parse_args()

    python = peer.ensure_venv(Path(args.venv), args.peer_version)
    project = peer.PeerProject(python, args.peer_journal)
    started = time.monotonic()
    project.manage("migrate", "--noinput")
    out = peer.subprocess.run(
        [str(python), "-m", "django", "shell"], cwd=project.folder, env=project.env,
        input=SEED.format(count=args.tickets, password=PASSWORD), capture_output=True,
        text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"seeding django-helpdesk failed:\n{out.stderr[-3000:]}")
    link = out.stdout.strip().splitlines()[-1].split()
    print(f"django-helpdesk seeded with {args.tickets:,} tickets in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    tracking = "/helpdesk/view/?" + urllib.parse.urlencode(
        {"ticket": link[1], "email": link[2], "key": link[3]})

    servers: list[Any] = []
    results: dict[str, Any] = {}
    try:
        peer_server = peer.PeerServer(project, argparse.Namespace(
            port=args.peer_port, workers=args.workers, peer_worker_class="sync",
            peer_threads=1))
        servers.append(peer_server)
        peer_server.wait_ready(LOGIN_PATH, timeout=60)
        cookie = {"Cookie": peer_cookie(peer_server.base)}
        loket_server, scenarios = inbox.open_desk(args, args.loket_database_url,
                                                  args.loket_seed_file, args.port)
        servers.append(loket_server)
        loket = {name: (path, headers) for name, path, headers, _marker in scenarios}
        pairs = {
            "API ticket list, first page": ((API_PATH, cookie, '"results"'),
                                            loket["API list, admin, default"]),
            "public ticket page": ((tracking, {}, link[2]), loket["public tracking page"]),
        }
        sides = (("django-helpdesk", peer_server, "sqlite:peer"),
                 ("Loket", loket_server, args.loket_database_url))
        for name, (peer_view, loket_view) in pairs.items():
            inbox.check(peer_server.base, *peer_view)
            views = {"django-helpdesk": peer_view[:2], "Loket": loket_view}
            servers_of = {label: server for label, server, _url in sides}
            # One request at a time first, the server otherwise idle. Under wrk each of the
            # workers serves connections / workers requests in turn, so a page is put under
            # load only when each connection would finish at least two in a run (else its
            # figures would be those of a handful of requests, or of none).
            alone = {label: one_at_a_time(servers_of[label].base, *views[label])
                     for label in views}
            runs: dict[str, list[dict[str, Any]]] = {"django-helpdesk": [], "Loket": []}
            loaded = [side for side in sides if alone[side[0]] * args.connections
                      / args.workers < args.duration / 2]
            for round_ in range(args.rounds):
                for label, server, url in (loaded if round_ % 2 == 0 else loaded[::-1]):
                    path, headers = views[label]
                    done = inbox.timed(args, server, url, path, headers)
                    runs[label].append(done)
                    print(inbox.line(f"{label[:6]} {name}", done), flush=True)
            medians = {label: {
                "alone_ms": round(alone[label] * 1000, 1),
                "requests_per_s": statistics.median(r["requests_per_s"] for r in rs),
                "p50_ms": statistics.median(r["latency_ms"].get("50", 0.0) for r in rs),
                "p99_ms": statistics.median(r["latency_ms"].get("99", 0.0) for r in rs),
                "cpu_ms": statistics.median(r["worker_cpu_ms_per_request"]
                                            + r["database_cpu_ms_per_request"] for r in rs),
            } if rs else {"alone_ms": round(alone[label] * 1000, 1), "under_load": False}
                for label, rs in runs.items()}
            results[name] = {"runs": runs, "median": medians}
            said = []
            for label, figures in medians.items():
                text = f"{label} alone {figures['alone_ms']:.1f} ms"
                if "requests_per_s" in figures:
                    text += (f", loaded {figures['requests_per_s']:.1f} req/s (p50 "
                             f"{figures['p50_ms']:.1f}, p99 {figures['p99_ms']:.1f} ms, CPU "
                             f"{figures['cpu_ms']:.1f} ms a request)")
                else:
                    text += ", not loaded (too slow alone)"
                said.append(text)
            results[name]["ratio_alone"] = round(
                alone["django-helpdesk"] / max(alone["Loket"], 1e-6), 1)
            said.append(f"alone, Loket {results[name]['ratio_alone']:.1f}x as fast")
            if all("requests_per_s" in figures for figures in medians.values()):
                ratio = medians["Loket"]["requests_per_s"] / max(
                    medians["django-helpdesk"]["requests_per_s"], 0.01)
                results[name]["ratio"] = round(ratio, 1)
                said.append(f"Loket {ratio:.1f}x the requests/s")
            print(f"= {name}: " + "; ".join(said), flush=True)
    finally:
        for server in servers:
            server.stop()
        project.close(args.keep)
    saved = save_results({"when": time.strftime("%Y-%m-%d %H:%M:%S"), "tickets": args.tickets,
                          "loket_database_url": args.loket_database_url,
                          "peer": {"django_helpdesk": args.peer_version,
                                   "journal": args.peer_journal, "worker_class": "sync"},
                          "wrk": {"threads": args.threads, "connections": args.connections,
                                  "duration_s": args.duration}, "scenarios": results},
                         "peer-views")
    print(f"Results: {saved}")
    return 0 if all(r["non_2xx_3xx"] == 0 for v in results.values()
                    for rs in v["runs"].values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
