#!/usr/bin/env python3
"""Every console filter in every order, both pages, for the agent and the admin: CPU a page.

The benchmark (``bench/inbox.py``) measures the views agents use most under load; this sweep
looks at all the others once, in process (Flask's test client over a seeded desk, as
``bench/inbox_profile.py``), to find a view that is slow at this size: each filter of the
console's list (one value each, and two pairs) in each of its orders (newest or oldest
first, by number, by due time; both ways), the first page and the page after it. Each page
is run three times and the least time counts (this is a search for plans that read too much,
not a latency figure): on SQLite the CPU time of this process, which is all of a page's work
(on a shared machine the clock counts other processes' turns too); on PostgreSQL the clock,
which counts the server's work as well. Views over ``--limit`` ms are marked.

    .venv/bin/python bench/inbox_sweep.py --database-url sqlite:////work/bench/loket-1m.db
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from inbox_profile import console, signed_in  # noqa: E402

# (filter, value) pairs, one filter each or two (a query's filters in order); "{department}"
# and "{category}" are the seed's agent's first department and a category of the desk.
FILTERS: list[list[tuple[str, str]]] = [
    [], [("Assignee", "me")], [("Assignee", "unassigned")], [("Tag", "kyc")],
    [("Tag", "refund")], [("Status", "new")], [("Status", "pending")],
    [("Status", "resolved")], [("Status", "closed")], [("Priority", "urgent")],
    [("Priority", "low")], [("Channel", "email")], [("Channel", "api")],
    [("Category", "{category}")], [("Department", "{department}")],
    [("Department", "{other_department}")], [("Waiting on us", "yes")],
    [("Overdue", "yes")], [("Overdue", "no")], [("Open", "no")], [("Open", "all")],
    [("Assignee", "me"), ("Overdue", "yes")], [("Tag", "kyc"), ("Status", "pending")],
]
ORDERS = ("updated_at", "id", "due_at")


def fastest(client: Any, path: str, clock: Any, times: int = 3) -> tuple[float, str]:
    """The page's least time by ``clock`` in ``times`` requests (ms), and its HTML."""
    best, text = float("inf"), ""
    for _ in range(times):
        start = clock()
        response = client.get(path)
        best = min(best, clock() - start)
        assert response.status_code == 200, (path, response.status_code)
        text = response.get_data(as_text=True)
    return best * 1000, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seed-file", help="the seed's JSON (default: where seed.py wrote it)")
    parser.add_argument("--limit", type=float, default=10.0,
                        help="mark pages taking more ms than this")
    parser.add_argument("--only", help="only views whose label contains this")
    args = parser.parse_args()
    if args.seed_file is None:
        from seed import default_out

        args.seed_file = str(default_out(args.database_url))
    seed = json.loads(Path(args.seed_file).read_text())
    os.environ.update({"LOKET_INSTANCE_PATH": tempfile.mkdtemp(prefix="loket-sweep-"),
                       "LOKET_DATABASE_URL": args.database_url,
                       "LOKET_SECRET_KEY": uuid.uuid4().hex, "LOKET_JOBS": "sqlite",
                       "LOKET_RATE_LIMITS": "false"})
    sys.path.insert(0, str(BENCH.parent))
    from core import create_app, db
    from core.models import Category, Department, Staff, StaffDepartment

    app = create_app()
    clock = time.process_time if db.is_sqlite(app.extensions["loket"].database) else (
        time.perf_counter)
    clients = signed_in(app, seed)
    view = console(app)
    flt = {str(f.name): i for i, f in enumerate(view._filters)}
    columns = [name for name, _label in view._list_columns]
    with app.app_context(), db.connection():
        agent = Staff.get(Staff.email == seed["agent"])
        theirs = [d.department_id for d in StaffDepartment.select().where(
            StaffDepartment.staff == agent)]
        other = Department.select().where(Department.id.not_in(theirs)).first()
        values = {"department": str(theirs[0]), "other_department": str(other.id),
                  "category": str(Category.select().first().id)}
    views = []
    for chosen in FILTERS:
        for order in ORDERS:
            for desc in (False, True):
                query = [f"sort={columns.index(order)}"] + (["desc=1"] if desc else [])
                for n, (name, value) in enumerate(chosen):
                    query.append(f"flt{n}_{flt[name]}={value.format(**values)}")
                label = (" & ".join(f"{n}={v.format(**values)}" for n, v in chosen) or "all"
                         ) + f", {order} {'desc' if desc else 'asc'}"
                if not args.only or args.only in label:
                    views.append((label, "/admin/tickets/?" + "&".join(query)))
    slow, done = [], 0
    print(f"{len(views)} views x agent, admin: ms of page 1 and page 2 "
          f"({'CPU' if clock is time.process_time else 'clock'}); over {args.limit:g} ms "
          "marked", flush=True)
    for who in ("agent", "admin"):
        client, _headers = clients[who]
        for label, path in views:
            first, text = fastest(client, path, clock)
            after = re.search(r'href="([^"]*after=[^"]*)"', text)
            second = fastest(client, after.group(1).replace("&amp;", "&"), clock)[0] if after else None
            worst = max(first, second or 0.0)
            mark = " <<<" if worst > args.limit else ""
            shown = f"{second:8.1f}" if second is not None else "       -"
            print(f"{who:5} {label:48} {first:8.1f} {shown}{mark}", flush=True)
            if mark:
                slow.append((who, label, worst))
            done += 1
        print(f"-- {who}: {done} views done", file=sys.stderr, flush=True)
    print(f"\n{len(slow)} of {2 * len(views)} views over {args.limit:g} ms:")
    for who, label, worst in sorted(slow, key=lambda s: -s[2]):
        print(f"  {who:5} {label:48} {worst:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
