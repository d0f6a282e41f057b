"""The tracking page in process: its HTML for many tickets, and what a view costs.

    # a small desk whose tickets have files, notes, notifications, several agents, languages
    .venv/bin/python bench/tracking_cost.py make-desk --database-url URL --links links.json
    # every link in three languages, as HTML (CSRF tokens blanked), to compare two trees
    .venv/bin/python bench/tracking_cost.py html --database-url URL --links links.json --out a.json
    # views of the links in turn: worker CPU, statements, round trips and the PostgreSQL
    # backend's CPU (from /proc, same host) per view; --unprepared: statements planned each time
    .venv/bin/python bench/tracking_cost.py cost --database-url URL --links links.json --views 2000

``--links`` is a JSON list of ``/t/<number>/<key>`` paths, or a seed file of
``bench/seed.py`` (its ``tracking`` list). Run it with each tree's own interpreter and working
directory to compare them side by side; the test client serves in this process, so the
figures are the page's own (no HTTP server, no wrk). The desk is only read (``html``,
``cost``), except by ``make-desk``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path.cwd()))


def _app(database_url: str) -> Any:
    from core import create_app

    instance = tempfile.mkdtemp(prefix="loket-tracking-")
    return create_app({"database_url": database_url, "instance_path": instance,
                       "secret_key": "tracking-cost", "rate_limits": False, "jobs": "immediate",
                       "public_url": "http://desk.test"})


def _links(path: str) -> list[str]:
    found = json.loads(Path(path).read_text())
    return found["tracking"] if isinstance(found, dict) else found


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, tuple):  # (sql, params); not the pool's messages
            self.count += 1


def make_desk(args: argparse.Namespace) -> None:
    from core import db
    from core.attachments import Storage
    from core.migrate import upgrade
    from core.models import Status
    from core.services import tickets as svc
    from core.state import loket
    from tests.factories import build_desk, make_staff

    app = _app(args.database_url)
    upgrade(app.extensions["loket"])
    links = []
    with app.app_context(), db.connection():
        desk = build_desk()
        other = make_staff("other@desk.test", "Oki Other", departments=(desk.support,))
        config = loket().config
        storage = Storage(config["attachments_path"])

        def stored(name: str, data: bytes) -> Any:
            return storage.save_bytes(data, name, max_bytes=config["upload_max_bytes"],
                                      allowed_types=config["upload_allowed_types"])

        png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08"
               b"\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00"
               b"\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
        for n in range(args.tickets):
            language = ("en", "id", "fil")[n % 3]
            files = [stored(f"receipt-{n}-{k}.png", png + bytes([k])) for k in range(n % 3)]
            ticket = svc.open_ticket(
                identity=svc.Identity(kind="email", value=f"c{n}@example.com", name=f"C {n}"),
                subject=f"Ticket <{n}> & co", text=f"Charged on <b>May {n}</b>\nhttps://x.test/{n}",
                category=(desk.payments, desk.refunds, None)[n % 3],
                user_type_id=desk.member.id, language=language, attachments=files)
            if n % 2:
                svc.add_note(ticket, desk.agent, f"INTERNAL {n}",
                             attachments=[stored(f"note-{n}.png", png + b"note")])
            if n % 4 != 3:
                svc.reply(ticket, (desk.agent, other)[n % 2], f"fallback {n}",
                          html=f"<p>We <strong>refunded</strong> #{n}.</p>",
                          attachments=[stored(f"reply-{n}.png", png + b"r")] if n % 5 == 0
                          else [])
            if n % 3 == 0:
                svc.add_customer_reply(ticket, f"Thanks {n}\nsecond line")
            if n % 7 == 0:
                svc.reply(ticket, desk.admin, f"plain reply {n}")
            if n % 6 == 5:
                svc.change_status(ticket, Status.CLOSED, svc.Actor.agent(desk.admin))
            links.append(f"/t/{ticket.id}/{ticket.access_key}")
    Path(args.links).write_text(json.dumps(links))
    print(f"{len(links)} tickets, links in {args.links}")


_CSRF = re.compile(r'(name="csrf_token" value=")[^"]*(")')


def html(args: argparse.Namespace) -> None:
    app = _app(args.database_url)
    client = app.test_client()
    pages = {}
    for link in _links(args.links):
        for language in ("en", "id", "fil"):
            answer = client.get(f"{link}?lang={language}")
            pages[f"{link} {language}"] = [answer.status_code,
                                           _CSRF.sub(r"\1\2", answer.get_data(as_text=True))]
        wrong = client.get(link[:-1] + ("x" if link[-1] != "x" else "y"))
        pages[f"{link} wrong key"] = [wrong.status_code, wrong.get_data(as_text=True)]
    Path(args.out).write_text(json.dumps(pages, indent=0, sort_keys=True))
    print(f"{len(pages)} pages in {args.out}")


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cost(args: argparse.Namespace) -> None:
    from core import db

    app = _app(args.database_url)
    if args.unprepared:  # this tree's named statements planned on each run, as before
        for statement in db.STATEMENTS.values():
            statement.prepare = False
    client = app.test_client()
    links = _links(args.links)
    for link in links[:50]:  # templates compiled, caches filled, statements prepared
        assert client.get(link).status_code == 200, link
    database = app.extensions["loket"].database
    pid = None
    if not db.is_sqlite(database):
        with app.app_context():
            database.connect(reuse_if_open=True)
            pid = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
            database.close()  # back to the pool: the views below get it again
    counter = _Counter()
    logger = logging.getLogger("peewee")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    walls = []
    cpu_before = time.process_time()
    server_before = _backend_cpu(pid) if pid else 0.0
    for n in range(args.views):
        started = time.perf_counter()
        answer = client.get(links[n % len(links)])
        walls.append(time.perf_counter() - started)
        assert answer.status_code == 200
    cpu = time.process_time() - cpu_before
    server = (_backend_cpu(pid) - server_before) if pid else 0.0
    logger.removeHandler(counter)
    walls.sort()
    result = {"views": args.views, "worker_cpu_ms": round(cpu * 1000 / args.views, 3),
              "server_cpu_ms": round(server * 1000 / args.views, 3) if pid else None,
              "statements": round(counter.count / args.views, 2),
              "wall_p50_ms": round(statistics.median(walls) * 1000, 3),
              "wall_p99_ms": round(walls[int(len(walls) * 0.99)] * 1000, 3)}
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("make-desk", "html", "cost"))
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--links", required=True)
    parser.add_argument("--out")
    parser.add_argument("--tickets", type=int, default=60)
    parser.add_argument("--views", type=int, default=2000)
    parser.add_argument("--unprepared", action="store_true",
                        help="cost: run the named statements unprepared on PostgreSQL")
    args = parser.parse_args()
    {"make-desk": make_desk, "html": html, "cost": cost}[args.mode](args)


if __name__ == "__main__":
    main()
