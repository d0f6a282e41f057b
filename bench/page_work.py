#!/usr/bin/env python3
"""The work of each inbox view's page statement on SQLite, counted, not timed.

Serves a seeded SQLite desk (``bench/seed.py``) through the WSGI app as the seed's agent,
catches the SQL of each view's page (peewee's log) and runs it through the ``sqlite3``
shell with ``.stats on``: its virtual machine steps and the pages it touched (cache hits
and misses). Unlike CPU time these do not move with the host's load, so a change and its
base, or 10k and 1M, compare exactly (same seed, same views).

    .venv/bin/python bench/page_work.py --database-url sqlite:////work/bench/loket-1m.db
    .venv/bin/python bench/page_work.py --repo /tmp/main-export --database-url …  # the base

``--repo`` runs another checkout's code (its schema must match the database's).

``--sweep`` counts every view of ``bench/inbox_sweep.py`` instead (each filter in each
order, agent and admin, the first page); with ``--compare`` a second desk's counts beside
the first's and their ratio, the views whose work grew by more than ``--grown`` times
marked: a page that reads more at 1M than at 10k, told apart from a noisy host's timings.
``--pages N`` sums each view's first N pages: a page that walks an index testing a filter
ends where the desk's draw put its 51st match (at a quarter of the tickets passing, some
+-14% a page), so one page of two desks can differ by 1.2-1.4x with the same share.

    .venv/bin/python bench/page_work.py --sweep --database-url sqlite:////work/bench/lead-10k.db \
        --compare sqlite:////work/bench/loket-1m.db
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent

VIEWS = [
    ("console, default", "/admin/tickets/"),
    ("console, tag", "/admin/tickets/?flt0_{Tag}=kyc"),
    ("console, tag by due time", "/admin/tickets/?flt0_{Tag}=kyc&sort=10"),
    ("console, tag by number", "/admin/tickets/?flt0_{Tag}=kyc&sort=0"),
    ("console, pending", "/admin/tickets/?flt0_{Status}=pending"),
    ("console, urgent", "/admin/tickets/?flt0_{Priority}=urgent"),
    ("console, mine", "/admin/tickets/?flt0_{Assignee}=me"),
    ("API, tag", "/api/v1/tickets?tag=kyc"),
]


class Caught(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[tuple[str, list[Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, tuple) and len(record.msg) == 2:
            self.statements.append((record.msg[0], list(record.msg[1] or ())))


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def work(path: str, sql: str, params: list[Any]) -> tuple[int, int]:
    """(VM steps, pages touched) of one statement, by the sqlite3 shell."""
    values = iter(params)
    text = re.sub(r"\?", lambda _m: _literal(next(values)), sql)
    out = subprocess.run(["sqlite3", "-readonly", path], input=f".stats on\n{text};\n",
                         capture_output=True, text=True, check=True).stdout

    def stat(name: str) -> int:
        found = re.search(rf"{name}:\s+(\d+)", out)
        return int(found.group(1)) if found else 0

    return stat("Virtual Machine Steps"), stat("Page cache hits") + stat("Page cache misses")


def page_statements(statements: list[tuple[str, list[Any]]]) -> list[tuple[str, list[Any]]]:
    """The statements that read a page of tickets (the list's own, not the look-ups around)."""
    return [(sql, params) for sql, params in statements
            if 'FROM "ticket" AS "t1"' in sql and "LIMIT" in sql]


def pg_work(url: str) -> Any:
    """PostgreSQL's counterpart of ``work``: (rows the plan's scans read, shared buffers
    touched) of one statement, from its EXPLAIN (ANALYZE, BUFFERS)."""
    import psycopg2

    connection = psycopg2.connect(url.split("?")[0])
    connection.autocommit = True

    def count(sql: str, params: list[Any]) -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql.replace("?", "%s"),
                           params)
            plan = cursor.fetchone()[0][0]["Plan"]
        rows = 0
        stack = [plan]
        while stack:
            node = stack.pop()
            if "Scan" in node["Node Type"]:
                rows += int(node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
                            + node.get("Rows Removed by Filter", 0) * node.get("Actual Loops", 1))
            stack.extend(node.get("Plans", []))
        return rows, plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)

    return count


def sweep_work(database_url: str, seed_file: str | None,
               pages: int = 1) -> dict[str, tuple[int, int]]:
    """Each sweep view's first ``pages`` pages (by its "Next page" link), agent and admin:
    (VM steps, pages touched) on SQLite, (rows the scans read, buffers) on PostgreSQL, summed
    over its page statements and pages, by ``who label``."""
    sys.path.insert(0, str(BENCH))
    from inbox_sweep import desk

    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")

        def counted_by(sql: str, params: list[Any]) -> tuple[int, int]:
            return work(path, sql, params)
    else:
        counted_by = pg_work(database_url)
        # Statements sent as text, not prepared by name (which another connection cannot
        # explain): the setting the README gives for PgBouncer's transaction pooling.
        database_url += ("&" if "?" in database_url else "?") + "prepare=false"
    _clock, clients, views = desk(database_url, seed_file)
    logger = logging.getLogger("peewee")
    logger.setLevel(logging.DEBUG)
    found: dict[str, tuple[int, int]] = {}
    for who in ("agent", "admin"):
        client = clients[who][0]
        for label, view_path in views:
            counted: list[tuple[int, int]] = []
            page_path: str | None = view_path
            for _page in range(pages):
                if page_path is None:
                    break
                caught = Caught()
                logger.addHandler(caught)
                try:
                    response = client.get(page_path)
                finally:
                    logger.removeHandler(caught)
                assert response.status_code == 200, (label, response.status_code)
                counted += [counted_by(sql, params)
                            for sql, params in page_statements(caught.statements)]
                after = NEXT_PAGE.search(response.get_data(as_text=True))
                page_path = after.group(1).replace("&amp;", "&") if after else None
            found[f"{who} {label}"] = (sum(c[0] for c in counted), sum(c[1] for c in counted))
    return found


# The console's link to the page after this one (its other links may carry a cursor too).
NEXT_PAGE = re.compile(r'class="[^"]*loket-next-page[^"]*" href="([^"]+)"')


def sweep(args: argparse.Namespace) -> int:
    if args.serve:
        print(json.dumps(sweep_work(args.database_url, args.seed_file, args.pages)))
        return 0
    desks = [(args.database_url, args.seed_file)]
    if args.compare:
        desks.append((args.compare, args.compare_seed_file))
    counts = []
    for url, seed_file in desks:  # each in a process of its own (one app per process)
        command = [sys.executable, __file__, "--sweep", "--serve", "--database-url", url,
                   "--pages", str(args.pages)]
        if seed_file:
            command += ["--seed-file", seed_file]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        counts.append(json.loads(done.stdout.strip().splitlines()[-1]))
    grown = []
    for label, (steps, pages) in counts[0].items():
        line = f"{label:60} {steps:>9,} {pages:>6,}"
        if len(counts) > 1 and label in counts[1]:
            steps2, pages2 = counts[1][label]
            ratio = max(steps2 / max(steps, 1), pages2 / max(pages, 1))
            mark = " <<<" if ratio > args.grown else ""
            line += f" {steps2:>9,} {pages2:>6,} {ratio:6.2f}{mark}"
            if mark:
                grown.append(label)
        print(line)
    if len(counts) > 1:
        print(f"\n{len(grown)} of {len(counts[0])} views do more than {args.grown:g}x the work "
              "on the second desk (VM steps or pages touched on SQLite; rows scanned or buffers "
              "on PostgreSQL)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="sqlite:////path.db")
    parser.add_argument("--seed-file", help="the seed's JSON (default: beside the database)")
    parser.add_argument("--repo", default=str(BENCH.parent), help="the checkout to run")
    parser.add_argument("--sweep", action="store_true",
                        help="every view of bench/inbox_sweep.py, agent and admin")
    parser.add_argument("--compare", metavar="DATABASE_URL", help="with --sweep: a second desk")
    parser.add_argument("--compare-seed-file", help="the second desk's seed JSON")
    parser.add_argument("--grown", type=float, default=1.2,
                        help="with --compare: mark views doing more than this many times the work")
    parser.add_argument("--pages", type=int, default=1,
                        help="with --sweep: the first N pages of each view, summed (a walk's "
                             "first page alone ends where the desk's draw put its 51st ticket)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sweep:
        return sweep(args)
    path = args.database_url.removeprefix("sqlite:///")
    seed_file = args.seed_file or str(Path(path).with_suffix(".seed.json"))
    seed = json.loads(Path(seed_file).read_text())
    sys.path.insert(0, str(Path(args.repo).resolve()))
    os.chdir(args.repo)
    os.environ.update({"LOKET_INSTANCE_PATH": tempfile.mkdtemp(prefix="loket-page-work-"),
                       "LOKET_DATABASE_URL": args.database_url,
                       "LOKET_SECRET_KEY": uuid.uuid4().hex, "LOKET_JOBS": "sqlite",
                       "LOKET_RATE_LIMITS": "false"})
    from core import create_app

    app = create_app()
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert token is not None
    client.post("/admin/login", data={"csrf_token": token.group(1), "email": seed["agent"],
                                      "password": seed["password"], "next": ""})
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "tickets")
    flt = {str(f.name).replace(" ", ""): i for i, f in enumerate(view._filters)}
    api = {"Authorization": f"Bearer {seed['agent_token']}"}
    logger = logging.getLogger("peewee")
    logger.setLevel(logging.DEBUG)
    for name, view_path in VIEWS:
        caught = Caught()
        logger.addHandler(caught)
        try:
            response = client.get(view_path.format(**flt),
                                  headers=api if view_path.startswith("/api") else {})
        finally:
            logger.removeHandler(caught)
        assert response.status_code == 200, (name, response.status_code)
        for sql, params in page_statements(caught.statements):
            steps, touched = work(path, sql, params)
            print(f"{name:28} {steps:>9,} VM steps {touched:>6,} pages touched", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
