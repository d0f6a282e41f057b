#!/usr/bin/env python3
"""Pages a ticket submission writes, by b-tree: counted from the WAL, not timed.

Builds the desk of bench/run.py (on a copy of a seeded SQLite desk with
``--seeded-sqlite``), sends a few submissions in process to warm it, empties the WAL
(``wal_checkpoint(TRUNCATE)``), then sends ``--submissions`` more with the writers' own
checkpoints held off, reads each commit's frames from the WAL and names each page's b-tree
(table or index) with SQLite's ``dbstat``. Prints the pages and b-trees a commit writes on
average, then each b-tree's pages a commit. Deterministic where CPU time on a shared host is
not: a change to a submission's writes (an index, a trigger, a row) shows here exactly.

Usage (from the repository root):
    .venv/bin/python bench/wal_pages.py --seeded-sqlite /path/to/sq2-1m.db [--submissions 20]
        [--queue-batch N]
"""

from __future__ import annotations

import argparse
import collections
import json
import sqlite3
import struct
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import public_profile  # noqa: E402
from run import Desk  # noqa: E402

WAL_HEADER = 32
FRAME_HEADER = 24


def commits_in(wal: bytes) -> list[list[int]]:
    """Each commit's page numbers, in WAL order (a commit frame carries the database size)."""
    page_size = struct.unpack(">I", wal[8:12])[0]
    commits, current, at = [], [], WAL_HEADER
    while at + FRAME_HEADER + page_size <= len(wal):
        page, size_after_commit = struct.unpack(">II", wal[at:at + 8])
        current.append(page)
        if size_after_commit:
            commits.append(current)
            current = []
        at += FRAME_HEADER + page_size
    return commits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeded-sqlite", metavar="PATH", default="",
                        help="start from a copy of this seeded SQLite desk (bench/seed.py)")
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--queue-batch", type=int, default=0, metavar="N",
                        help="write queued search documents N at a time instead of "
                             "core.services.search_index.QUEUE_BATCH (to choose it)")
    args = parser.parse_args()
    desk = Desk("", [], args.seeded_sqlite)
    try:
        form_path, _tracking = desk.setup()
        from core import db
        from core.services import search_index

        if args.queue_batch:
            search_index.QUEUE_BATCH = args.queue_batch
        db.CHECKPOINT_EVERY = 10**9  # the WAL must keep every frame of the counted commits
        # ...and SQLite's own checkpoint (every 1,000 pages) must not restart it either: a
        # commit that merges the full-text index's segments writes hundreds of pages.
        db.database.obj.execute_sql("PRAGMA wal_autocheckpoint = 0")
        path = desk.app.extensions["loket"].database.database
        client = public_profile.Client(desk.app)
        cookie, token = public_profile.form_session(client, form_path)
        headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}

        def submit(n: int) -> None:
            client.call(client.environ(form_path, "POST",
                                       public_profile.submission(n, token), headers))
            if client.status != "302 FOUND":
                raise SystemExit(f"a submission answered {client.status}")

        for n in range(5):
            submit(10**9 + n)
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        for n in range(args.submissions):
            submit(n)
        commits = commits_in(Path(path + "-wal").read_bytes())
        if len(commits) < args.submissions:
            raise SystemExit(f"{len(commits)} commits in the WAL for {args.submissions} "
                             "submissions: some were lost")
        # More commits than submissions: the batches of search documents their commits wrote
        # (0032), part of what the submissions cost.
        wanted = {page for commit in commits for page in commit}
        names = {page: name for name, page in reader.execute("SELECT name, pageno FROM dbstat")
                 if page in wanted}
        per_btree: collections.Counter[str] = collections.Counter()
        for commit in commits:
            for page in set(commit):
                per_btree[names.get(page, "(no b-tree: freelist)")] += 1
        count = args.submissions
        print(json.dumps({"submissions": count, "commits": len(commits),
                          "queue_batch": search_index.QUEUE_BATCH,
                          "pages_a_submission": round(sum(per_btree.values()) / count, 1),
                          "btrees_a_submission": round(
                              sum(len({names.get(p) for p in set(c)}) for c in commits)
                              / count, 1)}))
        for name, pages in per_btree.most_common():
            print(f"{pages / count:6.2f}  {name}")
        return 0
    finally:
        desk.close(False)


if __name__ == "__main__":
    raise SystemExit(main())
