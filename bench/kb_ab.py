#!/usr/bin/env python3
"""Knowledge-base search, this tree against an older commit, interleaved on one kept desk.

Usage (after ``bench/kb_search.py --keep``, which prints the kept instance or schema):
    .venv/bin/python bench/kb_ab.py --instance /tmp/loket-bench-xxxx [--against e6f274a]
    .venv/bin/python bench/kb_ab.py --database-url 'postgresql://...?options=-csearch_path%3Dbench_x'

Each query of kb_search.py's mix runs with both versions of plugins/knowledge_base/search.py,
alternating which goes first, ``--rounds`` times, as a full search and as a suggestion. CPU
is this process's plus, on PostgreSQL, the server backend's (from /proc, in 10 ms ticks:
compare the means, not single queries). The load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", help="a kept SQLite bench instance folder")
    parser.add_argument("--database-url", help="a kept PostgreSQL bench schema's URL")
    parser.add_argument("--against", default="e6f274a", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    if args.database_url:
        os.environ["LOKET_DATABASE_URL"] = args.database_url
    elif args.instance:
        os.environ["LOKET_INSTANCE_PATH"] = args.instance
        os.environ["LOKET_DATABASE_URL"] = f"sqlite:///{args.instance}/loket.db"
    else:
        parser.error("--instance or --database-url")
    os.environ.setdefault("LOKET_SECRET_KEY", "bench-" + "x" * 32)
    os.environ["LOKET_PLUGINS"] = "knowledge_base"
    old_source = subprocess.run(["git", "show", f"{args.against}:plugins/knowledge_base/search.py"],
                                cwd=REPO, check=True, capture_output=True, text=True).stdout
    old_path = REPO / "plugins" / "knowledge_base" / "_search_compared.py"
    old_path.write_text(old_source)
    try:
        from kb_search import QUERIES

        from core import create_app, db
        from core.models import UserType
        from plugins.knowledge_base import _search_compared as old
        from plugins.knowledge_base import search as new
    finally:
        old_path.unlink()
    app = create_app()
    with app.test_request_context("/"), db.connection():
        database = app.extensions["loket"].database
        server_cpu = _server_cpu(database)
        member = UserType.get(UserType.slug == "member")
        versions = {args.against: old, "this tree": new}
        wall: dict[str, list[float]] = {name: [] for name in versions}
        cpu: dict[str, list[float]] = {name: [] for name in versions}
        same = total = 0
        for round_number in range(args.rounds):
            order = list(versions.items())
            if round_number % 2:
                order.reverse()
            for language, queries in QUERIES.items():
                for query in queries:
                    for partial in (False, True):
                        tops = {}
                        for name, module in order:
                            started, cpu_started = time.perf_counter(), time.process_time()
                            server_started = server_cpu()
                            hits = module.search(query, language, user_type_id=member.id,
                                                 limit=10, partial=partial)
                            wall[name].append(1000 * (time.perf_counter() - started))
                            cpu[name].append(1000 * (time.process_time() - cpu_started)
                                             + server_cpu() - server_started)
                            tops[name] = [hit.article_id for hit in hits[:3]]
                        total += 1
                        same += len({tuple(top) for top in tops.values()}) == 1
    load = Path("/proc/loadavg").read_text().split()[0]
    for name in versions:
        w, c = sorted(wall[name]), cpu[name]
        print(f"{name:>10}: {len(w)} searches, wall p50 {_at(w, .5):.2f} p90 {_at(w, .9):.2f} "
              f"p99 {_at(w, .99):.2f} max {w[-1]:.2f} ms; CPU mean {statistics.fmean(c):.2f} "
              f"p99 {_at(sorted(c), .99):.2f} ms (load {load})")
    print(f"same first three results: {same} of {total}")
    return 0


def _at(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _server_cpu(database: object):  # type: ignore[no-untyped-def]
    """Milliseconds of CPU the PostgreSQL backend of this connection has used (0 on SQLite)."""
    import peewee

    if isinstance(database, peewee.SqliteDatabase):
        return lambda: 0.0
    pid = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[attr-defined]
    tick = 1000 / os.sysconf("SC_CLK_TCK")

    def used() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * tick

    return used


if __name__ == "__main__":
    raise SystemExit(main())
