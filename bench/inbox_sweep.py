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

``--compare`` runs a second desk beside the first (each in a process of its own, the same
view on each in turn) and prints each view's figures on both and their ratio, marking the
views that grew by more than ``--grown`` times and ``--grown-ms``: how flat the console is
from a small desk to a big one (issue 22: the 1M figure within 20% of 10k's).

    .venv/bin/python bench/inbox_sweep.py --database-url sqlite:////work/bench/lead-10k.db \
        --compare sqlite:////work/bench/loket-1m.db
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


def desk(database_url: str, seed_file: str | None,
         repo: str | None = None) -> tuple[Any, Any, list[tuple[str, str]]]:
    """The sweep's desk: its clock, its signed-in clients and its views, each as (label,
    path), served by the code of ``repo`` (default: this checkout). A label names a
    department or category by the seed's role in it (``{department}``), not its number, so
    that two desks' views are matched by label (``--compare``)."""
    if seed_file is None:
        from seed import default_out

        seed_file = str(default_out(database_url))
    seed = json.loads(Path(seed_file).read_text())
    os.environ.update({"LOKET_INSTANCE_PATH": tempfile.mkdtemp(prefix="loket-sweep-"),
                       "LOKET_DATABASE_URL": database_url,
                       "LOKET_SECRET_KEY": uuid.uuid4().hex, "LOKET_JOBS": "sqlite",
                       "LOKET_RATE_LIMITS": "false"})
    sys.path.insert(0, str(Path(repo).resolve() if repo else BENCH.parent))
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
                label = (" & ".join(f"{n}={v}" for n, v in chosen) or "all"
                         ) + f", {order} {'desc' if desc else 'asc'}"
                views.append((label, "/admin/tickets/?" + "&".join(query)))
    return clock, clients, views


def sweep_page(client: Any, path: str, clock: Any) -> tuple[float, float | None, int]:
    """A view's first page and the page after it (None: there is none), ms each, and how
    many links to tickets the first page holds (two a row)."""
    first, text = fastest(client, path, clock)
    after = re.search(r'href="([^"]*after=[^"]*)"', text)
    second = fastest(client, after.group(1).replace("&amp;", "&"), clock)[0] if after else None
    return first, second, text.count("loket-ticket-link")


def serve(args: argparse.Namespace) -> int:
    """``--compare``'s child: the views' labels (one JSON line), then for each line "who
    label" read, that view's figures (one JSON line)."""
    clock, clients, views = desk(args.database_url, args.seed_file, args.repo)
    paths = dict(views)
    print(json.dumps({"labels": [label for label, _path in views],
                      "clock": "CPU" if clock is time.process_time else "clock"}), flush=True)
    for line in sys.stdin:
        who, label = line.rstrip("\n").split("\t")
        print(json.dumps(sweep_page(clients[who][0], paths[label], clock)), flush=True)
    return 0


def worst(figures: tuple[float, float | None, int] | tuple[float, float | None]) -> float:
    return max(figures[0], figures[1] or 0.0)


def compare(args: argparse.Namespace) -> int:
    """Two desks (``--database-url`` and ``--compare``), each in a process of its own, the
    same view on each in turn (which goes first alternates), and the second's figure over
    the first's per view: a page that grows with the desk is one whose ratio is high. A view
    whose first page lists fewer tickets on one desk than on the other (a small desk with
    fewer than a page of them) is not marked: rendering more rows costs more, whatever the
    plan; its rows are shown."""
    import subprocess

    children = []
    for url, seed_file, repo in ((args.database_url, args.seed_file, args.repo),
                                 (args.compare, args.compare_seed_file, args.compare_repo)):
        command = [sys.executable, __file__, "--serve", "--database-url", url]
        for option, value in (("--seed-file", seed_file), ("--repo", repo)):
            if value:
                command += [option, value]
        children.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True))
    heads = [json.loads(child.stdout.readline()) for child in children]
    labels = [label for label in heads[0]["labels"] if label in set(heads[1]["labels"])
              and (not args.only or args.only in label)]

    def ask(child: Any, who: str, label: str) -> tuple[float, float | None, int]:
        child.stdin.write(f"{who}\t{label}\n")
        child.stdin.flush()
        return tuple(json.loads(child.stdout.readline()))

    print(f"{len(labels)} views x agent, admin: worst of page 1 and 2, ms ({heads[0]['clock']}"
          f", {heads[1]['clock']}), least of {args.rounds} round(s): first desk, second desk, "
          f"second / first; grown (over {args.grown:g}x and {args.grown_ms:g} ms more) marked",
          flush=True)
    # Each round walks every view on both desks (which goes first alternates); a view's
    # figure on a desk is its least over the rounds, so that a page another process slowed
    # in one round is not read as grown.
    least: dict[tuple[str, str], list[float]] = {}
    rows_of: dict[tuple[str, str], list[int]] = {}
    n = 0
    for round_ in range(args.rounds):
        for who in ("agent", "admin"):
            for label in labels:
                order = children if n % 2 == 0 else children[::-1]
                found = {id(child): ask(child, who, label) for child in order}
                n += 1
                figures = [worst(found[id(child)]) for child in children]
                kept = least.setdefault((who, label), figures)
                least[(who, label)] = [min(a, b) for a, b in zip(kept, figures, strict=True)]
                rows_of[(who, label)] = [found[id(child)][2] for child in children]
        if args.rounds > 1:
            print(f"-- round {round_ + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    grown = []
    for (who, label), (a, b) in least.items():
        rows = rows_of[(who, label)]
        ratio = b / a if a else float("inf")
        mark = " <<<" if ratio > args.grown and b - a > args.grown_ms else ""
        if mark and rows[0] != rows[1]:
            mark = f" (rows {rows[0]} / {rows[1]})"
        print(f"{who:5} {label:52} {a:8.1f} {b:8.1f} {ratio:6.2f}{mark}", flush=True)
        if mark == " <<<":
            grown.append((who, label, a, b, ratio))
    ratios = sorted(b / a for a, b in least.values() if a)
    if ratios:
        print(f"\nsecond / first by view: median {ratios[len(ratios) // 2]:.2f}, "
              f"dearest on the second desk {max(b for _a, b in least.values()):.1f} ms")
    for child in children:
        child.stdin.close()
        child.wait()
    print(f"\n{len(grown)} of {2 * len(labels)} views grown:")
    for who, label, a, b, ratio in sorted(grown, key=lambda g: -g[4]):
        print(f"  {who:5} {label:52} {a:8.1f} {b:8.1f} {ratio:6.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seed-file", help="the seed's JSON (default: where seed.py wrote it)")
    parser.add_argument("--limit", type=float, default=10.0,
                        help="mark pages taking more ms than this")
    parser.add_argument("--only", help="only views whose label contains this")
    parser.add_argument("--compare", metavar="DATABASE_URL",
                        help="a second desk (say a bigger one): each view on both, alternated")
    parser.add_argument("--compare-seed-file", help="the second desk's seed JSON")
    parser.add_argument("--repo", help="serve the (first) desk with another checkout's code "
                        "(say, an export of the base commit)")
    parser.add_argument("--compare-repo", help="serve the second desk with this checkout's "
                        "code: the same desk before and after a change, each migrated for "
                        "its code")
    parser.add_argument("--grown", type=float, default=1.2,
                        help="with --compare, mark views whose second figure is this many "
                        "times the first's or more ...")
    parser.add_argument("--grown-ms", type=float, default=1.0, help="... and this many ms more")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --compare, walk every view this many times on both desks and "
                        "keep each view's least figure (separates a noisy host from growth)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args)
    if args.compare:
        return compare(args)
    clock, clients, views = desk(args.database_url, args.seed_file, args.repo)
    views = [(label, path) for label, path in views if not args.only or args.only in label]
    slow, done = [], 0
    print(f"{len(views)} views x agent, admin: ms of page 1 and page 2 "
          f"({'CPU' if clock is time.process_time else 'clock'}); over {args.limit:g} ms "
          "marked", flush=True)
    for who in ("agent", "admin"):
        client, _headers = clients[who]
        for label, path in views:
            first, second, _rows = sweep_page(client, path, clock)
            mark = " <<<" if worst((first, second)) > args.limit else ""
            shown = f"{second:8.1f}" if second is not None else "       -"
            print(f"{who:5} {label:48} {first:8.1f} {shown}{mark}", flush=True)
            if mark:
                slow.append((who, label, worst((first, second))))
            done += 1
        print(f"-- {who}: {done} views done", file=sys.stderr, flush=True)
    print(f"\n{len(slow)} of {2 * len(views)} views over {args.limit:g} ms:")
    for who, label, most in sorted(slow, key=lambda s: -s[2]):
        print(f"  {who:5} {label:48} {most:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
