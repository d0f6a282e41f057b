#!/usr/bin/env python3
"""PostgreSQL: what a submission costs and writes with 0024's triggers and with those before.

On a copy of a seeded PostgreSQL desk (it adds tickets to it: never the original), the ticket
form is sent in process as bench/public_profile.py sends it, in rounds that alternate 0024's
triggers (a new ticket's search document written once, its insert waiting for the commit) with
the ones before them (0024's ``down``: the ticket's insert writes the document, the first
message's updates it). Per submission, each round reports:

* ``client_ms``: CPU of this process (the app: Flask, the services, psycopg2);
* ``server_ms``: CPU of the database's backends serving it (``/proc/PID/schedstat``, so
  PostgreSQL must run on this host);
* ``wal``: WAL bytes of the records that touch this database's pages (``pg_walinspect``, so
  other databases' writes on a shared server are left out), ``fpi`` the full-page images
  among them (they follow checkpoints, not the submission), ``records`` how many;
* ``search_wal``, ``search_fpi``: the part of each for ``ticket_search`` and its indexes;
* ``trigger_ms``: time in the search documents' trigger functions (``pg_stat_user_functions``,
  with ``track_functions`` set for the copy while it runs; 0020's words trigger runs inside
  them), and ``inserted``, ``updated``: rows of ``ticket_search`` (``pg_stat_user_tables``).

Usage (the copy is upgraded to this tree's migrations first; 0024 is left up at the end):
    .venv/bin/python bench/pg_document_writes.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/NAME_1m [--rounds 8] [--per-round 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from public_profile import Client, form_session  # noqa: E402
from run import Desk  # noqa: E402

MIGRATION = "core.migrations.0024_pg_search_document_once"


def _monitor(url: str) -> Any:
    import psycopg2
    from playhouse.db_url import parse

    params = {k: v for k, v in parse(url).items() if v is not None}
    conn = psycopg2.connect(dbname=params.pop("database"), **params)
    conn.autocommit = True
    return conn


def _one(conn: Any, sql: str, params: tuple = ()) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, params or None)
        return cur.fetchone() if cur.description else None


def _backends(conn: Any) -> dict[int, int]:
    """Nanoseconds of CPU of each client backend of this database but the monitor's own."""
    with conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
        pids = [pid for (pid,) in cur.fetchall()]
    spent = {}
    for pid in pids:
        try:
            spent[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except OSError:  # ended meanwhile
            pass
    return spent


def _wal(conn: Any, start: str, end: str) -> dict[str, int]:
    """Bytes, full-page image bytes and records of the WAL between two positions that touch
    this database's pages; the bytes of those of ``ticket_search`` and its indexes."""
    search = [str(oid) for (oid,) in _rows(conn, (
        "SELECT pg_relation_filenode(c.oid) FROM pg_class AS c WHERE c.oid = "
        "'ticket_search'::regclass OR c.oid IN (SELECT indexrelid FROM pg_index WHERE "
        "indrelid = 'ticket_search'::regclass)"))]
    bytes_, fpi, records, in_search, search_fpi = _one(conn, (
        "WITH r AS (SELECT record_length, fpi_length, block_ref FROM "
        "pg_get_wal_records_info(%s, %s) WHERE block_ref ~ ('rel [0-9]+/' || "
        "(SELECT oid FROM pg_database WHERE datname = current_database()) || '/')) "
        "SELECT coalesce(sum(record_length), 0), coalesce(sum(fpi_length), 0), count(*), "
        "coalesce(sum(record_length) FILTER (WHERE substring(block_ref FROM "
        "'rel [0-9]+/[0-9]+/([0-9]+)') = ANY(%s)), 0), "
        "coalesce(sum(fpi_length) FILTER (WHERE substring(block_ref FROM "
        "'rel [0-9]+/[0-9]+/([0-9]+)') = ANY(%s)), 0) FROM r"), (start, end, search, search))
    return {"wal": int(bytes_), "fpi": int(fpi), "records": int(records),
            "search_wal": int(in_search), "search_fpi": int(search_fpi)}


def _search_stats(conn: Any) -> dict[str, float]:
    """The search triggers' time (ms) so far, and the rows of ``ticket_search`` written."""
    _one(conn, "SELECT pg_stat_clear_snapshot()")
    (spent,) = _one(conn, "SELECT coalesce(sum(total_time), 0) FROM pg_stat_user_functions "
                          "WHERE funcname LIKE 'ticket\\_search\\_%'")
    inserted, updated = _one(conn, "SELECT n_tup_ins, n_tup_upd FROM pg_stat_user_tables "
                                   "WHERE relid = 'ticket_search'::regclass")
    return {"trigger_ms": float(spent), "inserted": inserted, "updated": updated}


def _rows(conn: Any, sql: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def submission(run: str, n: int, token: str) -> bytes:
    return urlencode({"name": "Bench Customer", "email": f"bench-{run}-{n}@example.com",
                      "subject": f"Benchmark ticket {run} {n}",
                      "description": "My payment page does not load after I sign in. Please help.",
                      "csrf_token": token, "submission": f"{run}-{n}"}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a copy of a seeded desk")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of each, alternated")
    parser.add_argument("--per-round", type=int, default=300, help="submissions a round")
    parser.add_argument("--warm", type=int, default=100, help="submissions before the first")
    args = parser.parse_args()
    desk = Desk("", [f"LOKET_DATABASE_URL={args.database_url}"])
    monitor = _monitor(args.database_url)
    name = _one(monitor, "SELECT current_database()")[0]
    # Every new connection of the copy times its PL/pgSQL functions (the app's are new).
    _one(monitor, f'ALTER DATABASE "{name}" SET track_functions = \'pl\'')
    try:
        form_path, _tracking = desk.setup()
        app = desk.app
        database = app.extensions["loket"].database
        migration = import_module(MIGRATION)
        _one(monitor, "CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        client = Client(app)
        cookie, token = form_session(client, form_path)
        headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        run = uuid.uuid4().hex[:8]
        sent = iter(range(10**9))

        def submit(count: int) -> None:
            for prepared in [client.environ(form_path, "POST", submission(run, next(sent), token),
                                            headers) for _ in range(count)]:
                client.call(prepared)
                if client.status != "302 FOUND":
                    raise SystemExit(f"a submission answered {client.status}")

        def reported() -> dict[str, float]:
            """The app's connection reports its statistics now (else up to 10 s later)."""
            from core import db

            with app.app_context(), db.connection():
                database.execute_sql("SELECT pg_stat_force_next_flush()")
            time.sleep(0.3)
            return _search_stats(monitor)

        def triggers(once: bool) -> None:
            from core import db

            with app.app_context(), db.connection(), db.write_transaction():
                (migration.up if once else migration.down)(None, database)

        submit(args.warm)
        results: dict[str, list[dict[str, float]]] = {"before": [], "0024": []}
        for n in range(args.rounds * 2):
            # before, 0024, 0024, before, before, 0024...: each pair in both orders.
            once = (n % 4) in (1, 2)
            triggers(once)
            submit(10)  # the new triggers' plans made
            start = _one(monitor, "SELECT pg_current_wal_insert_lsn()")[0]
            stats = reported()
            spent = _backends(monitor)
            cpu = time.process_time()
            submit(args.per_round)
            cpu = time.process_time() - cpu
            after = _backends(monitor)
            stats = {k: v - stats[k] for k, v in reported().items()}
            # Every submission committed, so its records are flushed: pg_walinspect reads
            # no further than that.
            end = _one(monitor, "SELECT pg_current_wal_flush_lsn()")[0]
            server = sum(ns - spent.get(pid, 0) for pid, ns in after.items())
            wal = _wal(monitor, start, end)
            row = {"client_ms": cpu * 1000 / args.per_round,
                   "server_ms": server / 1e6 / args.per_round,
                   **{k: v / args.per_round for k, v in {**wal, **stats}.items()}}
            results["0024" if once else "before"].append(row)
            print(json.dumps({"round": n, "triggers": "0024" if once else "before",
                              **{k: round(v, 3) for k, v in row.items()}}), flush=True)
        triggers(True)
        summary = {name: {key: round(statistics.median(r[key] for r in rows), 3)
                          for key in rows[0]} for name, rows in results.items()}
        print(json.dumps({"median per submission": summary,
                          "rounds": args.rounds, "per_round": args.per_round}, indent=1))
        return 0
    finally:
        _one(monitor, f'ALTER DATABASE "{name}" RESET track_functions')
        monitor.close()
        desk.close(False)
        os.environ.pop("LOKET_DATABASE_URL", None)


if __name__ == "__main__":
    raise SystemExit(main())
