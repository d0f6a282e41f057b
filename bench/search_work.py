#!/usr/bin/env python3
"""The work of a search request's statements on PostgreSQL, counted: rows and buffers.

Serves a seeded desk (``bench/seed.py``) in process as the seed's agent (or admin), sends a
search the way ``bench/inbox.py``'s scenarios do (the API's ``q``, the console's ``search``),
catches every statement the request runs (peewee's log), and runs each again under
``EXPLAIN (ANALYZE, BUFFERS)``: its time on the server, the rows its scans read and the
buffers it touched. A request is sent twice: the first judges the search (``search._judge``:
the planner's estimate, the sample, the index), the second finds a walk's judgement kept.

    .venv/bin/python bench/search_work.py \
        --database-url postgresql://postgres@127.0.0.1:5432/bench_1m --seed-file …seed.json \
        --path "/api/v1/tickets?q=inv-12" [--who admin] [--plans]

Buffers and rows do not move with the host's load; the times do (run it twice, read the
second).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from page_work import Caught  # noqa: E402


def _counts(node: dict[str, Any]) -> tuple[int, int]:
    """Rows read by the plan's scans (kept and filtered out, every loop), buffers touched."""
    rows = 0
    if "Scan" in node["Node Type"]:
        loops = node.get("Actual Loops", 1)
        rows += int((node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                     + node.get("Rows Removed by Index Recheck", 0)) * loops)
    for child in node.get("Plans", ()):
        rows += _counts(child)[0]
    buffers = node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
    return rows, buffers


def _short(text: str, most: int = 300) -> str:
    """A line of a plan or statement cut short (a gathered search's ids run to thousands)."""
    return text if len(text) <= most else text[:most] + f"… ({len(text)} characters)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seed-file", help="the seed's JSON (default: where seed.py wrote it)")
    parser.add_argument("--path", action="append", required=True,
                        help="a request, e.g. '/api/v1/tickets?q=inv-12' (repeatable)")
    parser.add_argument("--who", default="agent", choices=["agent", "admin"])
    parser.add_argument("--plans", action="store_true", help="print each statement's plan")
    parser.add_argument("--sql", action="store_true", help="print each statement's SQL")
    parser.add_argument("--times", type=int, default=2, help="requests sent for each path")
    args = parser.parse_args()
    from inbox_sweep import desk

    url = args.database_url
    if url.startswith("sqlite"):
        parser.error("PostgreSQL only: SQLite's work is counted by bench/page_work.py")
    url += ("&" if "?" in url else "?") + "prepare=false"  # text statements, to explain
    _clock, clients, _views = desk(url, args.seed_file)
    from core import create_app, db

    app = create_app()
    logger = logging.getLogger("peewee")
    logger.setLevel(logging.DEBUG)
    for path in args.path:
        who = args.who + ("_api" if path.startswith("/api/") else "")
        client, headers = clients[who]
        for attempt in range(args.times):
            caught = Caught()
            logger.addHandler(caught)
            try:
                response = client.get(path, headers=headers)
            finally:
                logger.removeHandler(caught)
            found = len(re.findall(r'"number"|loket-ticket-link', response.get_data(
                as_text=True)))
            print(f"{args.who} {path} (request {attempt + 1}): {response.status_code}, "
                  f"{len(caught.statements)} statements, {found} ticket marks")
            total = [0.0, 0, 0]
            with app.app_context(), db.connection() as database:
                for sql, params in caught.statements:
                    if not re.match(r"\s*(SELECT|WITH)", sql, re.I):
                        continue
                    (row,) = database.execute_sql(
                        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).fetchall()
                    plan = (json.loads(row[0]) if isinstance(row[0], str) else row[0])[0]
                    rows, buffers = _counts(plan["Plan"])
                    ms = plan["Execution Time"] + plan.get("Planning Time", 0)
                    total[0] += ms
                    total[1] += rows
                    total[2] += buffers
                    print(f"  {ms:8.2f} ms  {rows:>8} rows  {buffers:>7} buffers  "
                          f"{' '.join(sql.split())[:150]}")
                    if args.sql:
                        print("    " + _short(sql, 3000))
                    if args.plans:
                        lines = [line for (line,) in database.execute_sql(
                            "EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()]
                        print("    " + "\n    ".join(_short(line) for line in lines))
            print(f"  {total[0]:8.2f} ms  {total[1]:>8} rows  {total[2]:>7} buffers  in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
