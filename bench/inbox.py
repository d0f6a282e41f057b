"""Agents' views at scale: the inbox, the API list, search and the dashboard over a seeded desk.

    .venv/bin/python bench/seed.py --database-url sqlite:////work/bench/loket-1m.db --tickets 1000000
    .venv/bin/python bench/inbox.py --database-url sqlite:////work/bench/loket-1m.db

It serves the seeded database with the repository's ``gunicorn.conf.py`` (2 workers, as the
README serves), signs in to the console as the seed's admin and agent (a real session
cookie, CSRF on), and runs ``wrk --latency`` (2 threads, 8 connections by default) against
each scenario in turn. Each answer is checked once before it is timed (200, and a page that
lists tickets), then served untimed for ``--warmup`` seconds at the same concurrency, so that
every worker has compiled its templates and filled its caches: each worker's first console
page costs some 70 ms of CPU (Jinja compiles the console's templates, up to once per thread
at the same time), and without the warm-up that landed in the first console scenario's p99
(the admin's default inbox: p99 233 ms against an agent's 76-124). It reports requests/s, p50/p90/p99 and the peak RSS of each worker, and
writes them to ``bench/results/<time>-inbox-<database>.json``.

Two sizes of desk side by side (is the 1M page as quick as the 10k one?)::

    .venv/bin/python bench/inbox.py --database-url sqlite:////work/bench/loket-10k.db \
        --against sqlite:////work/bench/loket-1m.db --rounds 4 --only "console inbox"

serves both desks at once (the second on the next port; the idle one costs nothing) and runs
each scenario on one, then the other, the order swapped each round (A B, B A, ...), so the
two are timed seconds apart in the same spell of a shared, noisy host rather than minutes
apart. It prints and saves each run and, per scenario, the median p99 and CPU a request of
each desk and how much the second's exceed the first's. Serving one desk against a copy of
itself (``--against`` a copied file) shows how far two identical desks differ on the host
that day: the noise any difference between sizes must be read against.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from run import REPO, Server, _ms, argument_parser, save_results  # noqa: E402
from seed import default_out  # noqa: E402


class SeededDesk:
    """What ``run.Server`` needs of a desk: the environment and an instance folder."""

    def __init__(self, database_url: str):
        self.instance = Path(f"/tmp/loket-inbox-bench-{uuid.uuid4().hex[:8]}")
        self.instance.mkdir(parents=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOKET_")}
        self.env.update({
            "LOKET_INSTANCE_PATH": str(self.instance), "LOKET_DATABASE_URL": database_url,
            "LOKET_SECRET_KEY": uuid.uuid4().hex, "LOKET_JOBS": "sqlite",
            # One address signs in and reads thousands of pages a second here.
            "LOKET_RATE_LIMITS": "false",
        })


def console_cookie(base: str, email: str, password: str) -> str:
    """Sign in through the console's form: returns the Cookie header of the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/admin/login", timeout=10).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert token is not None, "no csrf_token on the sign-in form"
    body = urllib.parse.urlencode({"csrf_token": token.group(1), "email": email,
                                   "password": password, "next": ""}).encode()
    opener.open(base + "/admin/login", data=body, timeout=30).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def check(base: str, path: str, headers: dict[str, str], marker: str) -> None:
    request = urllib.request.Request(base + path, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        text = answer.read().decode()
        if answer.status != 200 or marker not in text:
            raise SystemExit(f"{path} answered {answer.status} without {marker!r}")


def console_filters(base: str, headers: dict[str, str]) -> dict[str, str]:
    """The console inbox's filter numbers by name (Flask-Admin numbers them in order)."""
    request = urllib.request.Request(base + "/admin/tickets/", headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        text = answer.read().decode()
    found = re.search(r'id="filter-groups-data" class="d-none">(.*?)</div>', text, re.S)
    groups = json.loads(found.group(1)) if found else {}
    return {name: str(items[0]["index"]) for name, items in groups.items() if items}


def wrk(args: Any, url: str, headers: dict[str, str]) -> dict[str, Any]:
    # A request slower than this counts as a timeout, not a latency (django-helpdesk's lists
    # at 100k tickets take seconds: bench/peer_views.py waits longer).
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
           "--latency", "--timeout", f"{getattr(args, 'wrk_timeout', 10)}s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    timeouts = re.search(r"Socket errors: .*timeout (\d+)", out)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(total.group(1)) if total else 0,
            "latency_ms": {p: _ms(v) for p, v in
                           re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M)},
            "non_2xx_3xx": int(found.group(1)) if found else 0,
            "timeouts": int(timeouts.group(1)) if timeouts else 0, "raw": out}


def database_cpu_seconds(database_url: str) -> float:
    """CPU time (user + system) the PostgreSQL server's processes serving this database have
    used so far, when the server runs on this host (0 for SQLite, or a server elsewhere): on
    a shared host a page's cost is the worker's CPU and the database's together."""
    if database_url.startswith("sqlite"):
        return 0.0
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    ticks, used = os.sysconf("SC_CLK_TCK"), 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes().decode(errors="replace")
            if not title.startswith("postgres: ") or f" {name} " not in title:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            used += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue
    return used


def scenarios_of(server: Server, seed: dict[str, Any]) -> list[tuple[str, str, dict, str]]:
    """Every scenario as (name, path, headers, marker), signed in to this desk."""
    admin = {"Cookie": console_cookie(server.base, seed["admin"], seed["password"])}
    agent = {"Cookie": console_cookie(server.base, seed["agent"], seed["password"])}
    admin_api = {"Authorization": f"Bearer {seed['admin_token']}"}
    agent_api = {"Authorization": f"Bearer {seed['agent_token']}"}
    word = "inv-12345"  # a reference: a few tickets
    common = "passport"  # in about a quarter of the seed's messages
    agent_flt = console_filters(server.base, agent)
    tracking = (seed.get("tracking") or [None])[0]
    scenarios = [
        ("API list, admin, default", "/api/v1/tickets", admin_api, '"tickets"'),
        ("API list, agent, default", "/api/v1/tickets", agent_api, '"tickets"'),
        ("API list, agent, active + mine", "/api/v1/tickets?active=true&assignee=me",
         agent_api, '"tickets"'),
        ("API list, agent, tag", "/api/v1/tickets?tag=kyc", agent_api, '"tickets"'),
        ("API search q (a reference)", f"/api/v1/tickets?q={word}", agent_api, '"tickets"'),
        ("API search q (a common word)", f"/api/v1/tickets?q={common}", agent_api,
         '"tickets"'),
        # A reference's start (in 1% of the desk), a number, and two common words that
        # never meet (a contact has one last name): each once walked or sorted too much.
        ("API search q (a phrase prefix)", "/api/v1/tickets?q=inv-12", agent_api,
         '"tickets"'),
        ("API search q (a number)", "/api/v1/tickets?q=999999", agent_api, '"tickets"'),
        ("API search q (two words that never meet)", "/api/v1/tickets?q=santoso+halim",
         agent_api, '"tickets"'),
        ("console inbox, admin, default", "/admin/tickets/", admin, "loket-ticket-link"),
        ("console inbox, agent, default", "/admin/tickets/", agent, "loket-ticket-link"),
        ("console inbox, agent, by due time", "/admin/tickets/?sort=10", agent,
         "loket-ticket-link"),
    ]
    for label, name, value in (("pending", "Status", "pending"),
                               ("urgent", "Priority", "urgent"),
                               ("mine", "Assignee", "me"), ("tag", "Tag", "kyc"),
                               ("waiting on us", "Waiting on us", "yes"),
                               ("overdue", "Overdue", "yes")):
        if name in agent_flt:
            scenarios.append((f"console inbox, agent, {label}",
                              f"/admin/tickets/?flt0_{agent_flt[name]}={value}", agent,
                              "loket-ticket-link"))
    scenarios += [
        ("console search (a reference)", f"/admin/tickets/?search={word}", agent,
         "Showing active"),
        ("console search (a common word)", f"/admin/tickets/?search={common}", agent,
         "loket-ticket-link"),
        ("dashboard, admin", "/admin/", admin, "answered ticket"),
        ("dashboard, agent", "/admin/", agent, "answered ticket"),
    ]
    if tracking:
        scenarios.append(("public tracking page", tracking, {}, "<"))
    return scenarios


def timed(args: Any, server: Server, database_url: str, path: str,
          headers: dict[str, str]) -> dict[str, Any]:
    """One scenario on one desk: warmed up, then timed, with the CPU it cost."""
    if args.warmup:
        wrk(argparse.Namespace(threads=args.threads, connections=args.connections,
                               duration=args.warmup), server.base + path, headers)
    before = sum(server.cpu_seconds().values())
    database_before = database_cpu_seconds(database_url)
    result = wrk(args, server.base + path, headers)
    used = sum(server.cpu_seconds().values()) - before
    database_used = database_cpu_seconds(database_url) - database_before
    done = result["requests"]
    result["worker_cpu_ms_per_request"] = round(used * 1000 / max(done, 1), 1)
    result["database_cpu_ms_per_request"] = round(database_used * 1000 / max(done, 1), 1)
    return result


def line(name: str, result: dict[str, Any]) -> str:
    lat = result["latency_ms"]
    return (f"{name:40} {result['requests_per_s']:8.1f} req/s  "
            f"p50 {lat.get('50')} ms  p99 {lat.get('99')} ms  "
            f"CPU {result['worker_cpu_ms_per_request']} ms/req  "
            f"DB CPU {result['database_cpu_ms_per_request']} ms/req  "
            f"non-2xx {result['non_2xx_3xx']}  load {os.getloadavg()[0]:.1f}")


def open_desk(args: Any, database_url: str, seed_file: str | None,
              port: int) -> tuple[Server, list[tuple[str, str, dict, str]]]:
    seed = json.loads(Path(seed_file or default_out(database_url)).read_text())
    desk = SeededDesk(database_url)
    # A database seeded by an older tree lacks the newest migrations; the pages would answer
    # 503 ("the database is not ready") where they read a new column.
    subprocess.run([sys.executable, "-m", "core.cli", "db", "upgrade"], cwd=REPO, env=desk.env,
                   check=True)
    server = Server(desk, argparse.Namespace(**dict(vars(args), port=port)))
    server.wait_ready("/api/v1/openapi.json", timeout=120)
    return server, scenarios_of(server, seed)


def compared(args: Any, servers: list[Server], lists: list[list[tuple]],
             urls: list[str]) -> dict[str, Any]:
    """Each scenario on both desks in turn, ``--rounds`` times, the order swapped each round
    (A B, B A, ...): two sizes of desk timed seconds apart, in the same spell of a shared
    host, instead of minutes or sessions apart. Returns each scenario's runs per desk and
    the medians, with the second desk's median p99 and CPU against the first's."""
    results: dict[str, Any] = {}
    by_name = [{s[0]: s[1:] for s in scenarios} for scenarios in lists]
    for name, *_ in lists[0]:
        if (args.only and args.only not in name) or name not in by_name[1]:
            continue
        runs: list[list[dict[str, Any]]] = [[], []]
        for side in (0, 1):
            path, headers, marker = by_name[side][name]
            check(servers[side].base, path, headers, marker)
        for round_ in range(args.rounds):
            for side in ((0, 1) if round_ % 2 == 0 else (1, 0)):
                path, headers, _marker = by_name[side][name]
                result = timed(args, servers[side], urls[side], path, headers)
                runs[side].append(result)
                print(line(f"{'AB'[side]} {name}", result), flush=True)
        summary = []
        for side in (0, 1):
            summary.append({
                "p99_ms": statistics.median([r["latency_ms"]["99"] for r in runs[side]]),
                "p50_ms": statistics.median([r["latency_ms"]["50"] for r in runs[side]]),
                "cpu_ms": statistics.median([r["worker_cpu_ms_per_request"]
                                  + r["database_cpu_ms_per_request"] for r in runs[side]]),
                "requests_per_s": statistics.median([r["requests_per_s"] for r in runs[side]]),
            })
        growth = {key: round(100 * (summary[1][key] / summary[0][key] - 1), 1)
                  if summary[0][key] else None for key in ("p99_ms", "cpu_ms")}
        results[name] = {"runs": runs, "median": summary, "growth_percent": growth}
        print(f"= {name:38} p99 {summary[0]['p99_ms']:.1f} -> {summary[1]['p99_ms']:.1f} ms "
              f"({growth['p99_ms']:+.1f}%), CPU {summary[0]['cpu_ms']:.2f} -> "
              f"{summary[1]['cpu_ms']:.2f} ms ({growth['cpu_ms']:+.1f}%)", flush=True)
    return results


def main() -> int:
    parser = argument_parser(__doc__.splitlines()[0], 8089)
    parser.add_argument("--seed-file", help="the seed's JSON (default: where seed.py wrote it)")
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed seconds of load before each scenario (0: none)")
    parser.add_argument("--against", metavar="DATABASE_URL",
                        help="a second seeded desk (another size), served beside the first; "
                             "each scenario then alternates between the two (--rounds)")
    parser.add_argument("--against-seed-file", help="the second desk's seed JSON")
    parser.add_argument("--rounds", type=int, default=3,
                        help="with --against: runs of each scenario on each desk")
    parser.set_defaults(connections=8, duration=10)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url: the seeded database (bench/seed.py) to serve")
    urls = [args.database_url] + ([args.against] if args.against else [])
    seeds = [args.seed_file, args.against_seed_file]
    servers: list[Server] = []
    lists: list[list[tuple]] = []
    results: dict[str, Any] = {}
    try:
        for side, url in enumerate(urls):
            server, scenarios = open_desk(args, url, seeds[side], args.port + side)
            servers.append(server)
            lists.append(scenarios)
        samplers = [server.sample_rss() for server in servers]
        if args.against:
            results = compared(args, servers, lists, urls)
        else:
            for name, path, headers, marker in lists[0]:
                if args.only and args.only not in name:
                    continue
                check(servers[0].base, path, headers, marker)
                results[name] = timed(args, servers[0], urls[0], path, headers)
                print(line(name, results[name]), flush=True)
        for server, sampler in zip(servers, samplers, strict=True):
            server._sampling = False
            sampler.join(timeout=2)
    finally:
        for server in servers:
            server.stop()
    peaks = [[round(kb / 1024, 1) for kb in sorted(server.peak_rss_kb.values())]
             for server in servers]
    for side, rss in enumerate(peaks):
        print(f"Peak RSS per gunicorn worker{' of ' + urls[side] if args.against else ''}: "
              f"{', '.join(map(str, rss))} MB")
    kind = "sqlite" if args.database_url.startswith("sqlite") else "postgresql"
    saved = save_results({"when": time.strftime("%Y-%m-%d %H:%M:%S"),
                          "database_url": args.database_url, "against": args.against,
                          "rounds": args.rounds if args.against else 1, "scenarios": results,
                          "peak_rss_mb_per_worker": peaks[0] if peaks else [],
                          "against_peak_rss_mb_per_worker": peaks[1] if len(peaks) > 1 else None,
                          "wrk": {"threads": args.threads, "connections": args.connections,
                                  "duration_s": args.duration}},
                         f"inbox-{kind}" + ("-compared" if args.against else ""))
    print(f"Results: {saved}")
    if args.against:
        return 0 if all(r["non_2xx_3xx"] == 0 for v in results.values()
                        for side in v["runs"] for r in side) else 1
    return 0 if all(r["non_2xx_3xx"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
