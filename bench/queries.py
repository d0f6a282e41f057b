"""The inbox's queries alone, timed in-process over a seeded desk: is the database part flat?

    .venv/bin/python bench/queries.py --database-url sqlite:////work/bench/loket-1m.db

For each view (the same ``core.services.access`` calls the console and the API make: scope,
filter, keyset page of 50, the page after it), search words and the dashboard's aggregates,
it runs the query ``--runs`` times one after another in one process and prints p50 and p99
in milliseconds. No HTTP, no templates: ``bench/inbox.py`` measures those.

``--queued N`` (SQLite) first queues the desk's N newest tickets for a new search document
(0032; they are then tested on their own rows by every search, as tickets written since the
last batch are) and unqueues them at the end; ``--judge-every-time`` forgets the kept
judgement of a search before each run, as a write between two searches does on a busy desk.
Together they show what a longer queue (``core.services.search_index.QUEUE_BATCH``) costs a
search.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from seed import default_out  # noqa: E402


def server_cpu_ms(backend: int | None) -> float:
    """CPU milliseconds (user + system) the PostgreSQL backend ``backend`` has used so far,
    when the server runs on this host (0 for SQLite, or a server elsewhere)."""
    if backend is None:
        return 0.0
    try:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed(work: Callable[[], Any], runs: int, name: str = "",
          backend: int | None = None) -> tuple[float, float, float, float]:
    """(p50, p99) wall milliseconds, the median CPU milliseconds of this process, and the
    mean CPU milliseconds of the PostgreSQL backend serving it (``backend``, its pid).

    On a shared, overloaded host the wall time is mostly waiting for a core; the CPU time
    of this process is the work itself (all of it on SQLite, which runs in-process); on
    PostgreSQL the server's share is the last column (the kernel counts it in ticks of
    10 ms: a mean over the runs).
    """
    work()  # warm the caches once
    spent, cpu = [], []
    served = server_cpu_ms(backend)
    for _ in range(runs):
        started, used = time.perf_counter(), time.process_time()
        work()
        spent.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
    served = (server_cpu_ms(backend) - served) / runs
    spent.sort()
    found = (statistics.median(spent), spent[min(len(spent) - 1, int(len(spent) * 0.99))],
             statistics.median(cpu), served)
    print(f"{name:48}{found[0]:>9.1f}{found[1]:>9.1f}{found[2]:>9.1f}{found[3]:>9.1f}",
          flush=True)
    return found


_QUEUED_HERE: list[int] = []  # the queue rows --queued added, taken away at the end


def queue_newest(count: int) -> None:
    """Queue the ``count`` newest tickets' documents, as if written since the last batch."""
    from core import db
    from core.services.search import QUEUE

    database = db.database.obj
    with db.write_transaction():
        for (number,) in database.execute_sql(
                "SELECT id FROM ticket ORDER BY id DESC LIMIT ?", (count,)).fetchall():
            cursor = database.execute_sql(f"INSERT INTO {QUEUE} (ticket_id) VALUES (?)",
                                          (number,))
            _QUEUED_HERE.append(cursor.lastrowid)


def unqueue() -> None:
    from core import db
    from core.services.search import QUEUE

    with db.write_transaction():
        for row in _QUEUED_HERE:
            db.database.obj.execute_sql(f"DELETE FROM {QUEUE} WHERE id = ?", (row,))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--only", help="run only the queries whose name contains this")
    parser.add_argument("--queued", type=int, default=0, metavar="N",
                        help="SQLite: queue the N newest tickets' documents first (0032)")
    parser.add_argument("--judge-every-time", action="store_true",
                        help="forget each search's kept judgement before every run")
    args = parser.parse_args()
    seeded = json.loads(default_out(args.database_url).read_text())

    from flask_login import login_user  # noqa: F401  (the console's scope reads the session)

    import admin.dashboard as dashboard
    from core import create_app
    from core import db as core_db
    from core.models import Message, Staff, Ticket
    from core.services import access, search

    app = create_app({"database_url": args.database_url, "plugins": [], "secret_key": "x",
                      "instance_path": "/tmp/loket-queries-bench"})
    results: dict[str, tuple[float, float, float, float]] = {}
    with app.test_request_context(), core_db.connection():
        total = Ticket.select().count()
        backend = None if core_db.is_sqlite() else Ticket._meta.database.execute_sql(
            "SELECT pg_backend_pid()").fetchone()[0]
        if args.queued:
            queue_newest(args.queued)
        print(f"{'query':48}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms':>9}{'DB CPU':>9}")
        reference = Message.select(Message.body_text).where(
            Message.body_text.contains("Reference INV-")).order_by(Message.id.desc()).first()
        word = reference.body_text.split("Reference ", 1)[1].split(".")[0].lower()
        for email in (seeded["admin"], seeded["agent"]):
            staff = Staff.get(Staff.email == email)
            F = access.InboxFilter
            views = {
                "default (active)": F(active=True), "every status": F(),
                "status pending": F(status="pending"), "priority urgent": F(priority="urgent"),
                "channel email": F(channel="email"), "department": F(department_id=2),
                "category": F(category_slug="member-topic-1"), "mine": F(assignee="me"),
                "unassigned": F(active=True, assignee="none"), "tag": F(active=True, tag="vip"),
                "waiting on us": F(active=True, waiting=True),
                "overdue": F(active=True, overdue=True),
                "search: a reference": F(text=word),
                "search: a common word": F(text="passport"),
                "search: a phrase prefix": F(text="inv-12"),
                "search: a number": F(text="999999"),
                "search: two words that never meet": F(text="santoso halim"),
            }
            for name, wanted in views.items():
                def page(wanted: Any = wanted, staff: Staff = staff) -> Any:
                    if args.judge_every_time:
                        search._kept.clear()
                    query = access.filter_inbox(access.inbox(staff), staff, wanted)
                    first = access.inbox_page(query)
                    if first.next_cursor:  # and the page after it, by its cursor
                        access.inbox_page(query, cursor=access.decode_cursor(first.next_cursor))
                label = f"{staff.role} {name}"
                if not args.only or args.only in label:
                    results[label] = timed(page, args.runs, label, backend)
            for sort in ("id", "due_at"):
                def sorted_page(sort: str = sort, staff: Staff = staff) -> Any:
                    return access.inbox_page(access.inbox(staff).where(access.active()),
                                             sort=sort, descending=sort == "id")
                label = f"{staff.role} sort {sort}"
                if not args.only or args.only in label:
                    results[label] = timed(sorted_page, args.runs, label, backend)
            dashboard.current_staff = lambda staff=staff: staff
            since = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=29)
                     ).replace(hour=0, minute=0, second=0, microsecond=0)

            def figures(since: dt.datetime = since) -> Any:
                scope = dashboard.viewer_scope()
                counts = dashboard.open_counts(scope)
                return (dashboard.first_response_stats(since, scope),
                        dashboard.per_day(scope, since.date()),
                        dashboard.top_categories(scope, since.date() + dt.timedelta(days=29)),
                        dashboard.open_by_status(counts), dashboard.open_by_department(counts))
            label = f"{staff.role} dashboard figures"
            if not args.only or args.only in label:
                results[label] = timed(figures, max(3, args.runs // 5), label, backend)
        if args.queued:
            unqueue()
    print(f"{args.database_url}: {total:,} tickets, {args.runs} runs each, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    out = BENCH / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}-queries.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"database_url": args.database_url, "tickets": total,
                               "queued": args.queued,
                               "judge_every_time": args.judge_every_time,
                               "load_average": list(os.getloadavg()),
                               "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
