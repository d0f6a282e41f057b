"""PostgreSQL: a walked search's page of every status, before and after 0026, alternated.

In process on one seeded PostgreSQL desk that holds both ``ticket_updated`` (before 0026)
and ``ticket_updated_scope`` (0026): each round drops one of the two inside a transaction
(rolled back at the end of the round: nothing changes) and runs the API's search page (its
first page and the next, as ``bench/queries.py`` does) for the admin and the agent:

* before: ``ticket_updated`` only, the page walked as one query (``ids_first`` off);
* after: ``ticket_updated_scope`` only, the page's numbers found first (``walks_far``).

Each page is run as a *first* search (the kept judgements forgotten before each run: the
estimate and the sample run again) and as a *repeated* one. Printed: the PostgreSQL
backend's CPU per run (ms, from /proc: the server runs on this host) and this process's.

    .venv/bin/python bench/walked_ab.py --database-url postgresql://.../odds_1m --rounds 6
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from queries import server_cpu_ms  # noqa: E402
from seed import default_out  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=10, help="pages a side a round")
    parser.add_argument("--words", default="inv-12,passport")
    parser.add_argument("--far-share", type=float, default=None,
                        help="search.FAR_SHARE for the after side (1: numbers first always)")
    args = parser.parse_args()
    seeded = json.loads(default_out(args.database_url).read_text())

    from core import create_app
    from core import db as core_db
    from core.models import Staff, Ticket
    from core.services import access, search

    if args.far_share is not None:
        search.FAR_SHARE = args.far_share
    app = create_app({"database_url": args.database_url, "plugins": [], "secret_key": "x",
                      "instance_path": "/tmp/loket-walked-ab"})
    sides = {"before": ("ticket_updated_scope", False), "after": ("ticket_updated", True)}
    found: dict[tuple[str, str, str, str], list[tuple[float, float]]] = {}
    with app.test_request_context(), core_db.connection():
        database = Ticket._meta.database
        backend = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        staff = [Staff.get(Staff.email == seeded[who]) for who in ("admin", "agent")]

        def page(viewer: Any, words: str, ids_first: bool) -> int:
            wanted = access.InboxFilter(text=words)
            query = access.filter_inbox(access.inbox(viewer, related=False), viewer, wanted)
            first = access.inbox_page(query, ids_first=ids_first and access.walks_far(wanted))
            if first.next_cursor:
                access.inbox_page(query, cursor=access.decode_cursor(first.next_cursor),
                                  ids_first=ids_first and access.walks_far(wanted))
            return len(first.tickets)

        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                dropped, ids_first = sides[side]
                with database.atomic() as transaction:
                    database.execute_sql(f'DROP INDEX "{dropped}"')
                    for viewer in staff:
                        for words in args.words.split(","):
                            for kind in ("first", "repeated"):
                                page(viewer, words, ids_first)  # warm
                                served, used = server_cpu_ms(backend), time.process_time()
                                for _ in range(args.runs):
                                    if kind == "first":
                                        search._kept.clear()
                                    page(viewer, words, ids_first)
                                key = (side, viewer.role, words, kind)
                                found.setdefault(key, []).append((
                                    (server_cpu_ms(backend) - served) / args.runs,
                                    (time.process_time() - used) * 1000 / args.runs))
                    transaction.rollback()
    print(f"{'side':8}{'who':7}{'words':10}{'search':10}{'server CPU ms (median; each round)':>40}"
          f"{'process CPU ms':>16}")
    for (side, who, words, kind), runs in sorted(found.items(), key=lambda i: i[0][1:] + i[0][:1]):
        servers = [s for s, _p in runs]
        print(f"{side:8}{who:7}{words:10}{kind:10}{statistics.median(servers):>10.1f}  "
              f"[{' '.join(f'{s:.1f}' for s in servers)}]"
              f"{statistics.median(p for _s, p in runs):>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
