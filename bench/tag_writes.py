#!/usr/bin/env python3
"""What a ticket's writes cost the database: tickets opened and answered once, in process.

Over a seeded database (``bench/seed.py``), as the seed's agent: ``--tickets`` tickets each
opened by a customer (carrying ``--tags``, as routing would give them), then answered once
by the agent. Reports the process's CPU ms and, on PostgreSQL on this host, the server's
CPU ms (``inbox.database_cpu_seconds``) per ticket. The tickets it writes stay in the
database: run it on a copy.

    .venv/bin/python bench/tag_writes.py --database-url postgresql://…/pgtag_10k \\
        --seed-file /work/bench_scale/pg-10k.seed.json --tickets 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seed-file", required=True)
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--tags", default="kyc,vip", help="comma-separated; '' for none")
    args = parser.parse_args()
    seed = json.loads(Path(args.seed_file).read_text())
    os.environ.update({"LOKET_INSTANCE_PATH": tempfile.mkdtemp(prefix="loket-tag-writes-"),
                       "LOKET_DATABASE_URL": args.database_url,
                       "LOKET_SECRET_KEY": uuid.uuid4().hex, "LOKET_JOBS": "sqlite",
                       "LOKET_RATE_LIMITS": "false"})
    from inbox import database_cpu_seconds

    from core import create_app
    from core import db as core_db
    from core.models import Staff, Ticket
    from core.services.tickets import Identity, open_ticket, reply

    app = create_app()
    tags = [tag for tag in args.tags.split(",") if tag]
    run = uuid.uuid4().hex[:8]
    with app.app_context(), core_db.connection():
        agent = Staff.get(Staff.email == seed["agent"])

        def once(n: int) -> None:
            ticket = open_ticket(identity=Identity("email", f"w{run}-{n}@example.test"),
                                 subject=f"write cost {n}", text="My payout is late.",
                                 notify=False)
            if tags:
                Ticket.update(tags=tags).where(Ticket.id == ticket.id).execute()
            reply(Ticket.get_by_id(ticket.id), agent, "We are on it.")

        for n in range(5):  # warm-up
            once(-n - 1)
        start, server = time.process_time(), database_cpu_seconds(args.database_url)
        for n in range(args.tickets):
            once(n)
        cpu = (time.process_time() - start) * 1000 / args.tickets
        server_ms = (database_cpu_seconds(args.database_url) - server) * 1000 / args.tickets
    print(json.dumps({"tickets": args.tickets, "tags": tags, "cpu_ms": round(cpu, 2),
                      "server_ms": round(server_ms, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
