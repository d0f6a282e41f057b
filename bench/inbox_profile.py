#!/usr/bin/env python3
"""What one inbox page costs in process: CPU ms per page and function calls per page.

Serves a seeded database (``bench/seed.py``) through the WSGI app with Flask's test client
(no socket, no gunicorn: the app's own cost), signed in as the seed's agent (console) or with
its API token (API), and for each view reports CPU ms per page (``time.process_time`` over
``--pages`` pages; on PostgreSQL also the CPU its server's processes for that database used) and, under cProfile, function calls per page; ``--top`` prints the
functions that take the most time for one view.

    .venv/bin/python bench/inbox_profile.py --database-url sqlite:////work/bench/loket-100k.db

``--repo`` runs another checkout's code (say, an export of the base commit) with this script,
so a change is measured against its base in the same run, alternated (``--rounds``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent

VIEWS = [
    ("console, agent, default", "agent", "/admin/tickets/"),
    ("console, agent, mine", "agent", "/admin/tickets/?flt0_{Assignee}=me"),
    ("console, agent, tag", "agent", "/admin/tickets/?flt0_{Tag}=kyc"),
    ("console, agent, tag by due time", "agent", "/admin/tickets/?flt0_{Tag}=kyc&sort=10"),
    ("console, agent, pending", "agent", "/admin/tickets/?flt0_{Status}=pending"),
    ("console, agent, urgent", "agent", "/admin/tickets/?flt0_{Priority}=urgent"),
    ("console, agent, by due time", "agent", "/admin/tickets/?sort=10"),
    ("console, admin, default", "admin", "/admin/tickets/"),
    ("console, agent, profile page", "agent", "/admin/profile/"),
    ("console, agent, dashboard", "agent", "/admin/"),
    ("API, agent, default", "agent_api", "/api/v1/tickets"),
    ("API, agent, mine", "agent_api", "/api/v1/tickets?active=true&assignee=me"),
    ("API, agent, tag", "agent_api", "/api/v1/tickets?tag=kyc"),
    ("API, admin, default", "admin_api", "/api/v1/tickets"),
    ("API, agent, search a phrase prefix", "agent_api", "/api/v1/tickets?q=inv-12"),
    ("API, agent, search a reference", "agent_api", "/api/v1/tickets?q=inv-12345"),
    ("API, agent, search a common word", "agent_api", "/api/v1/tickets?q=passport"),
    ("API, agent, search two names", "agent_api", "/api/v1/tickets?q=santoso+halim"),
    ("API, agent, search a number", "agent_api", "/api/v1/tickets?q=999999"),
    ("console, agent, search a phrase prefix", "agent", "/admin/tickets/?search=inv-12"),
]


def signed_in(app: Any, seed: dict[str, Any]) -> dict[str, tuple[Any, dict[str, str]]]:
    """Test clients (and their headers) of the seed's agent and admin, by who: "agent" and
    "admin" signed in to the console, "agent_api" and "admin_api" with their API tokens."""
    clients: dict[str, tuple[Any, dict[str, str]]] = {}
    for who in ("agent", "admin"):
        client = app.test_client()
        page = client.get("/admin/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
            r'value="([^"]+)"[^>]*name="csrf_token"', page)
        assert token is not None
        client.post("/admin/login", data={"csrf_token": token.group(1), "email": seed[who],
                                          "password": seed["password"], "next": ""})
        clients[who] = (client, {})
        clients[f"{who}_api"] = (app.test_client(),
                                 {"Authorization": f"Bearer {seed[f'{who}_token']}"})
    return clients


def console(app: Any) -> Any:
    """The console's ticket list view."""
    return next(v for v in app.extensions["admin"][0]._views if v.endpoint == "tickets")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in the child process, with ``--repo`` first on the path."""
    repo = Path(args.repo).resolve()
    sys.path.insert(0, str(BENCH))
    # inbox.py puts this checkout first on the path and imports some of its ``core``: the
    # path is ``repo`` first afterwards and those modules forgotten, or another checkout's
    # run would measure this one's code.
    from inbox import database_cpu_seconds

    sys.path.insert(0, str(repo))
    for name in [m for m in sys.modules if m.split(".")[0] in ("core", "admin", "plugins")]:
        del sys.modules[name]
    os.chdir(repo)
    seed = json.loads(Path(args.seed_file).read_text())
    instance = Path(tempfile.mkdtemp(prefix="loket-inbox-profile-"))
    os.environ.update({"LOKET_INSTANCE_PATH": str(instance),
                       "LOKET_DATABASE_URL": args.database_url,
                       "LOKET_SECRET_KEY": uuid.uuid4().hex, "LOKET_JOBS": "sqlite",
                       "LOKET_RATE_LIMITS": "false"})
    from core import create_app

    app = create_app()
    import core

    assert Path(core.__file__).resolve().is_relative_to(repo), (core.__file__, repo)
    clients = signed_in(app, seed)
    flt = {str(f.name).replace(" ", ""): i for i, f in enumerate(console(app)._filters)}
    results: dict[str, Any] = {}
    for name, who, path in VIEWS:
        if args.only and args.only not in name:
            continue
        path = path.format(**flt)
        client, headers = clients[who]

        def get(path: str = path, client: Any = client, headers: Any = headers) -> Any:
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code)
            return response

        text = get().get_data(as_text=True)
        assert "tickets" not in path or "loket-ticket-link" in text or '"tickets"' in text, path
        for _ in range(5):
            get()
        start, server = time.process_time(), database_cpu_seconds(args.database_url)
        for _ in range(args.pages):
            get()
        cpu_ms = (time.process_time() - start) * 1000 / args.pages
        server_ms = (database_cpu_seconds(args.database_url) - server) * 1000 / args.pages
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(10):
            get()
        profile.disable()
        stats = pstats.Stats(profile)
        results[name] = {"cpu_ms": round(cpu_ms, 2), "server_ms": round(server_ms, 2),
                         "calls": stats.total_calls // 10}  # type: ignore[attr-defined]
        if args.top and args.only:
            stats.sort_stats(args.sort).print_stats(args.top)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seed-file", help="the seed's JSON (default: where seed.py wrote it)")
    parser.add_argument("--repo", action="append",
                        help="a checkout to measure (repeatable; default: this one)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--only", help="only views whose name contains this")
    parser.add_argument("--top", type=int, default=0, help="with --only: print the top N")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_file is None:
        sys.path.insert(0, str(BENCH))
        from seed import default_out

        args.seed_file = str(default_out(args.database_url))
    if args.child:
        args.repo = args.repo[0]
        print(json.dumps(measure(args)))
        return 0
    repos = args.repo or [str(BENCH.parent)]
    for round_ in range(args.rounds):
        for repo in repos:
            cmd = [sys.executable, __file__, "--child", "--repo", repo, "--database-url",
                   args.database_url, "--seed-file", args.seed_file, "--pages", str(args.pages),
                   "--top", str(args.top), "--sort", args.sort]
            if args.only:
                cmd += ["--only", args.only]
            out = subprocess.run(cmd, capture_output=not args.top, text=True, check=True)
            if args.top:
                continue
            found = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"round {round_ + 1}, {repo}: load {os.getloadavg()[0]:.1f}")
            for name, figures in found.items():
                print(f"  {name:32} {figures['cpu_ms']:7.2f} ms CPU/page "
                      f"{figures['server_ms']:7.2f} ms database server CPU/page "
                      f"{figures['calls']:7d} calls/page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
