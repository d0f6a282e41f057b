#!/usr/bin/env python3
"""Which of the ticket table's indexes the desk's statements use, by the database's plans.

Every index on ``ticket`` is written by every new ticket that its condition admits (a
submission at a million tickets spends about 0.6 ms of its CPU on them, ``bench/README.md``),
so one that no statement's plan reads is pure cost. This serves a seeded desk
(``bench/seed.py``) in process as the seed's agent and admin, catches every statement
(peewee's log) of:

* each view of ``bench/inbox_sweep.py`` (every console filter in every order) and the page
  after it;
* the API list with each of its parameters, and its search;
* the console's search, the dashboard (admin and agent), a ticket's page and its contact's;
* the late-marking job;

then asks the database for each statement's plan (SQLite ``EXPLAIN QUERY PLAN``,
PostgreSQL ``EXPLAIN (FORMAT JSON)``) and prints, for each index of the ticket table, how
many statements' plans read it. An index none reads here may still serve what this does not
run (a foreign key's delete, a command): read the list, don't drop by it blindly.

    .venv/bin/python bench/index_use.py --database-url sqlite:////work/bench/loket-1m.db
    .venv/bin/python bench/index_use.py --database-url postgresql://postgres@127.0.0.1:5432/bench_1m
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from page_work import NEXT_PAGE, Caught, _literal  # noqa: E402

API_LISTS = ["", "?status=pending", "?status=resolved", "?priority=urgent", "?channel=email",
             "?assignee=me", "?assignee=none", "?tag=kyc", "?waiting=true",
             "?overdue=true", "?overdue=false", "?active=false", "?category={category}",
             "?department={department}", "?updated_since=2026-01-01T00:00:00Z",
             "?q=passport", "?q={reference}"]


def _paths(seed: dict[str, Any], values: dict[str, str]) -> list[tuple[str, str]]:
    """(who, path) of the pages beyond the sweep's."""
    reference = next((word for word in seed.get("search_words", []) if "-" in word), "INV-1")
    found = []
    for who in ("agent", "admin"):
        found += [(f"{who}_api", "/api/v1/tickets" + query.format(reference=reference, **values))
                  for query in API_LISTS]
        found += [(who, "/admin/tickets/?search=passport"),
                  (who, f"/admin/tickets/?search={reference}"), (who, "/admin/")]
    return found


def _plan_indexes_sqlite(db: Any, sql: str, params: list[Any]) -> set[str]:
    literal = sql
    for value in params:
        literal = literal.replace("?", _literal(value), 1)
    rows = db.execute_sql("EXPLAIN QUERY PLAN " + literal).fetchall()
    found = set()
    for row in rows:
        detail = row[-1]
        match = re.search(r"USING (?:COVERING )?INDEX (\w+)", detail)
        if match:
            found.add(match.group(1))
    return found


def _plan_indexes_pg(db: Any, sql: str, params: list[Any]) -> set[str]:
    plan = db.execute_sql("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0]
    return set(re.findall(r'"Index Name": "(\w+)"',
                          plan if isinstance(plan, str) else json.dumps(plan)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seed-file", help="the seed's JSON (default: beside the database)")
    parser.add_argument("--show", action="store_true", help="list each statement's indexes")
    args = parser.parse_args()
    from inbox_sweep import desk

    url = args.database_url
    if not url.startswith("sqlite"):  # text statements, which EXPLAIN can take
        url += ("&" if "?" in url else "?") + "prepare=false"
    _clock, clients, views = desk(url, args.seed_file)
    from core import create_app, db
    from core.models import Category, Department, Staff, StaffDepartment, Ticket

    app = create_app()
    seed_file = args.seed_file
    if seed_file is None:
        from seed import default_out
        seed_file = str(default_out(args.database_url))
    seed = json.loads(Path(seed_file).read_text())
    with app.app_context(), db.connection():
        agent = Staff.get(Staff.email == seed["agent"])
        theirs = [d.department_id for d in StaffDepartment.select().where(
            StaffDepartment.staff == agent)]
        values = {"department": Department.get_by_id(theirs[0]).slug,
                  "category": Category.select().first().slug}
        ticket = Ticket.select().where(Ticket.department.in_(theirs)).order_by(
            Ticket.id.desc()).first()
    logger = logging.getLogger("peewee")
    logger.setLevel(logging.DEBUG)
    caught = Caught()
    logger.addHandler(caught)
    pages = [(who, path) for who in ("agent", "admin") for _label, path in views]
    pages += _paths(seed, values)
    pages += [(who, f"/admin/ticket/{ticket.id}/") for who in ("agent", "admin")]
    pages += [("admin", f"/admin/contacts/edit/?id={ticket.contact_id}")]
    try:
        for who, path in pages:
            client, headers = clients[who]
            response = client.get(path, headers=headers)
            if response.status_code != 200:  # a page not read is a page not counted: say so
                print(f"  not read: {who} {path}: {response.status_code}", file=sys.stderr)
                continue
            after = NEXT_PAGE.search(response.get_data(as_text=True))
            if after:
                client.get(after.group(1).replace("&amp;", "&"), headers=headers)
        with app.app_context(), db.connection():
            from core.services import late

            late.mark()
    finally:
        logger.removeHandler(caught)
    statements = {sql: params for sql, params in caught.statements
                  if re.match(r"\s*(SELECT|WITH|UPDATE|DELETE)", sql, re.I)
                  and re.search(r'\bticket\b|"ticket"', sql)}
    used: collections.Counter[str] = collections.Counter()
    with app.app_context(), db.connection() as database:
        explain = _plan_indexes_sqlite if db.is_sqlite(database) else _plan_indexes_pg
        for sql, params in statements.items():
            try:
                found = explain(database, sql, list(params))
            except Exception as exc:  # a statement EXPLAIN cannot take as written
                print(f"  not explained ({exc.__class__.__name__}): {sql[:100]}",
                      file=sys.stderr)
                continue
            used.update(found)
            if args.show:
                print(sorted(found), sql[:160])
        if db.is_sqlite(database):
            names = [name for (name,) in database.execute_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ticket'")]
        else:
            names = [name for (name,) in database.execute_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'ticket'")]
    print(f"{len(statements)} statements on tickets, {len(names)} ticket indexes")
    for name in sorted(names, key=lambda n: (used[n], n)):
        print(f"{used[name]:>5}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
