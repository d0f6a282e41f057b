"""Seed a desk with many realistic tickets fast, for the inbox, search and dashboard benchmarks.

    .venv/bin/python bench/seed.py --database-url sqlite:////work/bench/loket-1m.db --tickets 1000000
    .venv/bin/python bench/seed.py --database-url postgresql://postgres@127.0.0.1:5432/bench_1m \
        --tickets 1000000

The database is migrated first (``loket db upgrade``: every index and search table exists as
in production, so the seeding pays what production pays). Then, on top of whatever is there:
eight departments, three user types with eight categories each, 40 agents in one or two
departments, two admins, one contact per three tickets, and the tickets: two messages each
(the customer's question, then an agent's answer or the customer's follow-up), 40% active,
the rest resolved or closed, all opened over the past year, spread over channels,
categories, priorities, tags, agents and dates. Rows go in by ``executemany`` (SQLite) or
``COPY`` (PostgreSQL), one transaction per batch, with progress on stderr; from 50,000
tickets on, the secondary indexes are dropped first and built again at the end (the usual
bulk load: the database ends with the indexes it had).

It writes ``<--out>`` (JSON): an admin's and an agent's sign-in and API token, some tracking
paths (``/t/<number>/<key>``) and search words for the benchmark scripts.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import random
import secrets
import sys
import time
from collections.abc import Iterator
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _migration(name: str) -> Any:
    spec = spec_from_file_location(name, REPO / "core" / "migrations" / f"{name}.py")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The tickets' search documents and their triggers (migration 0011).
# The search documents as the newest migration keeps them.
SEARCH = _migration("0032_search_documents_in_batches").DOCUMENT

WORDS = ("account payment refund card subscription password login verify email photo upload "
         "studio model payout withdrawal invoice billing charge declined bank transfer "
         "stream camera broadcast chat message blocked suspended review document identity "
         "passport address tax country currency balance pending approved rejected error page "
         "loading mobile app android iphone browser cookie session token link expired reset "
         "notification schedule profile picture name change delete close reopen complaint "
         "fan tip gift private show token price discount promotion coupon partner referral "
         "contract agreement policy copyright report abuse harassment spam fraud chargeback").split()
SUBJECTS = ("Cannot log in to my account", "Payout not received", "Refund for a double charge",
            "Card declined at checkout", "Verify my identity documents", "Stream keeps freezing",
            "Change the name on my profile", "Subscription cancelled by mistake",
            "Withdrawal pending for a week", "Password reset link expired",
            "Question about the tax form", "Account suspended without reason",
            "Report a fake profile", "Chargeback on my statement", "Photo upload fails",
            "How do I close my account", "Promotion code does not work",
            "Private show billing question", "Camera not detected in the browser",
            "Studio contract renewal")
FIRST = ("Ana Budi Citra Dewi Eko Fajar Gita Hadi Indah Joko Kartika Lestari Maria Nur Putri "
         "Rina Sari Tono Wati Yusuf Jose Maria Juan Grace Paolo Angel Mark Joy Carlo Bea").split()
LAST = ("Santoso Wijaya Saputra Hidayat Lestari Pratama Kusuma Reyes Cruz Bautista Garcia "
        "Mendoza Santos Villanueva Ramos Aquino Tan Lim Halim Gunawan").split()
CHANNELS = (("web", 40), ("email", 30), ("telegram", 8), ("whatsapp", 10), ("messenger", 4),
            ("chat", 6), ("api", 2))
PRIORITIES = (("normal", 60), ("low", 15), ("high", 20), ("urgent", 5))
ACTIVE = (("new", 25), ("open", 45), ("pending", 20), ("on_hold", 10))
DONE = (("resolved", 30), ("closed", 70))
TAGS = ("vip", "refund", "chargeback", "kyc", "bug", "payout", "spam", "legal", "press",
        "partner", "duplicate", "follow-up", "mobile", "tax", "fraud", "escalated")
DEPARTMENTS = ("Support", "Billing", "Payouts", "Trust and safety", "Compliance",
               "Technical", "Studios", "Partners")
USER_TYPES = ("member", "model", "studio")
BATCH = 10_000


def weighted(choices: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    return [c for c, _ in choices], [w for _, w in choices]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


class Writer:
    """Bulk rows into one table: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, database: Any):
        self.database = database
        self.postgres = not database.__class__.__name__.lower().startswith("sqlite")

    def write(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        cursor = self.database.connection().cursor()
        if self.postgres:
            buffer = io.StringIO()
            out = csv.writer(buffer)
            for row in rows:
                out.writerow(["\\N" if v is None else v for v in row])
            buffer.seek(0)
            cursor.copy_expert(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN '
                               "WITH (FORMAT csv, NULL '\\N')", buffer)
        else:
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})',
                               rows)

    @contextlib.contextmanager
    def search_in_bulk(self) -> Iterator[None]:
        """Write the tickets' search documents in bulk after each batch, not by row triggers.

        The migration's triggers write a ticket's document with the ticket, then again with
        each message; one ``INSERT ... SELECT`` per batch (``index_for_search``) writes each
        document once. They are put back, as the migration wrote them, whatever happens.
        """
        SEARCH.drop_triggers(self.database)
        try:
            yield
        finally:
            SEARCH.create_triggers(self.database)

    @contextlib.contextmanager
    def indexes_after(self, tables: tuple[str, ...]) -> Iterator[None]:
        """Build the tables' secondary indexes once at the end instead of row by row.

        The classic bulk load: the unique indexes stay (they are rules, not speed), the
        others are dropped and created again from their own definitions afterwards, so
        the database ends with exactly the indexes it started with. The index of messages by
        ticket stays: each batch's search documents read their tickets' messages by it
        (without it every batch scans all messages so far, and a million takes an hour).
        """
        names = ", ".join(f"'{t}'" for t in tables)
        if self.postgres:
            found = self.database.execute_sql(
                "SELECT i.indexname, i.indexdef FROM pg_indexes AS i "
                "JOIN pg_class AS c ON c.relname = i.indexname "
                "JOIN pg_index AS x ON x.indexrelid = c.oid "
                f"WHERE i.tablename IN ({names}) AND i.schemaname = current_schema() "
                "AND NOT x.indisunique").fetchall()
        else:
            found = self.database.execute_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({names}) AND sql NOT LIKE 'CREATE UNIQUE%'").fetchall()
        found = [(name, sql) for name, sql in found if name not in KEPT_IN_BULK]
        for name, _sql in found:
            self.database.execute_sql(f'DROP INDEX "{name}"')
        try:
            yield
        finally:
            started = time.monotonic()
            for n, (_name, sql) in enumerate(found, 1):
                print(f"\rindexes {n} / {len(found)}", end="", file=sys.stderr, flush=True)
                self.database.execute_sql(sql)
            print(f" in {time.monotonic() - started:.0f} s", file=sys.stderr)

    @contextlib.contextmanager
    def rollups_after(self) -> Iterator[None]:
        """The dashboard's roll-ups counted once at the end, not by a trigger per row."""
        rollups = _migration("0007_dashboard_rollups")
        # 0010's tags and first-response minutes too (it counts the minutes from 0007's), as
        # 0016 and 0023 keep them (each tag row also holds its ticket's page columns).
        tags = _migration("0023_pg_tag_pages_from_ticket_tag")
        rollups.drop_triggers(self.database)
        tags.drop_triggers(self.database)
        try:
            yield
        finally:
            started = time.monotonic()
            rollups.rebuild(self.database)
            rollups.create_triggers(self.database)
            # As 0027 made it: for an update of the columns it counts only.
            _migration("0027_late_mark").rollup_trigger(self.database)
            tags.rebuild(self.database)
            tags.create_triggers(self.database)
            print(f"roll-ups counted in {time.monotonic() - started:.0f} s", file=sys.stderr)

    def index_for_search(self, table: str, first_id: int, last_id: int) -> None:
        """The search documents of a batch's tickets (call it once their messages are in)."""
        if table == "ticket" and first_id <= last_id:
            SEARCH.fill(self.database, first_id, last_id)

    def next_id(self, table: str) -> int:
        cursor = self.database.execute_sql(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{table}"')
        return int(cursor.fetchone()[0])

    def reset_sequence(self, table: str) -> None:
        if self.postgres:
            self.database.execute_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f'(SELECT MAX(id) FROM "{table}"))')


# Secondary indexes the bulk load reads (``Writer.indexes_after`` keeps them).
# (Before migration 0014 the index of messages by ticket alone; since, the longer one.)
KEPT_IN_BULK = frozenset({"message_ticket_id", "message_ticket_id_created_at"})


def base_desk() -> dict[str, Any]:
    """Departments, user types, categories and staff (added once; reused on a second run)."""
    from core.models import Category, Department, Role, Staff, StaffDepartment, UserType
    from core.passwords import hash_password, new_api_token

    if Department.select().where(Department.slug == "support").exists():
        return json.loads(Path(os.environ["LOKET_SEED_STATE"]).read_text())
    departments = [Department.create(slug=name.lower().replace(" ", "-"), name=name)
                   for name in DEPARTMENTS]
    categories = []
    for u, slug in enumerate(USER_TYPES):
        user_type = UserType.create(slug=slug, name=slug.capitalize(), position=u)
        for c in range(8):
            department = departments[(u * 3 + c) % len(departments)]
            categories.append(Category.create(
                user_type=user_type, slug=f"{slug}-topic-{c + 1}",
                name=f"{slug.capitalize()} topic {c + 1}", position=c,
                default_department=department))
    password = "bench-password-123"
    hashed = hash_password(password)
    admin_token, admin_hash = new_api_token()
    Staff.create(email="admin@bench.test", name="Bench Admin", role=Role.ADMIN,
                 password_hash=hashed, api_token_hash=admin_hash)
    Staff.create(email="admin2@bench.test", name="Second Admin", role=Role.ADMIN,
                 password_hash=hashed)
    agent_token, agent_hash = new_api_token()
    agents = []
    members: dict[int, list[int]] = {d.id: [] for d in departments}
    for a in range(40):
        agent = Staff.create(email=f"agent{a}@bench.test", name=f"Agent {a:02d}",
                             role=Role.AGENT, password_hash=hashed,
                             api_token_hash=agent_hash if a == 0 else None)
        own = [departments[a % len(departments)]]
        if a % 3 == 0:
            own.append(departments[(a + 3) % len(departments)])
        for department in own:
            StaffDepartment.create(staff=agent, department=department)
            members[department.id].append(agent.id)
        agents.append(agent.id)
    return {
        "password": password, "admin": "admin@bench.test", "agent": "agent0@bench.test",
        "admin_token": admin_token, "agent_token": agent_token,
        "categories": [(c.id, c.user_type_id, c.default_department_id) for c in categories],
        "members": {str(k): v for k, v in members.items()},
    }


def seed(database: Any, desk: dict[str, Any], count: int, rng: random.Random,
         now: dt.datetime) -> dict[str, Any]:
    writer = Writer(database)
    ticket_id = writer.next_id("ticket")
    message_id = writer.next_id("message")
    contact_id = writer.next_id("contact")
    identity_id = writer.next_id("contact_identity")
    channels, channel_weights = weighted(CHANNELS)
    priorities, priority_weights = weighted(PRIORITIES)
    active_states, active_weights = weighted(ACTIVE)
    done_states, done_weights = weighted(DONE)
    members = {int(k): v for k, v in desk["members"].items()}
    tracking: list[str] = []
    started = time.monotonic()
    contacts: list[tuple[int, str]] = []
    ticket_cols = ("id", "access_key", "subject", "status", "priority", "channel", "category_id",
                   "user_type_id", "department_id", "assignee_id", "contact_id", "language",
                   "form_data", "tags", "escalation_level", "created_at", "updated_at",
                   "first_response_at", "last_customer_message_at", "last_agent_message_at",
                   "resolved_at", "closed_at", "due_at", "requester_name", "late")
    message_cols = ("id", "ticket_id", "author_kind", "contact_id", "staff_id", "body_text",
                    "body_html", "is_internal", "channel", "external_id", "delivery_state",
                    "delivery_error", "raw_path", "raw_size", "raw_type", "notification",
                    "subject", "recipient", "delivery_attempts", "created_at")
    contact_cols = ("id", "name", "email", "language", "user_type_id", "created_at")
    identity_cols = ("id", "contact_id", "kind", "value", "verified", "created_at")
    false = False if writer.postgres else 0
    done = 0
    while done < count:
        size = min(BATCH, count - done)
        tickets, messages, new_contacts, identities = [], [], [], []
        for _ in range(size):
            # One contact per three tickets: a third of tickets come from a new customer.
            if not contacts or rng.random() < 1 / 3:
                first, last = rng.choice(FIRST), rng.choice(LAST)
                email = f"{first}.{last}.{contact_id}@example.com".lower()
                joined = now - dt.timedelta(days=rng.uniform(0, 400))
                new_contacts.append((contact_id, f"{first} {last}", email, "en", None, joined))
                identities.append((identity_id, contact_id, "email", email, false, joined))
                contacts.append((contact_id, email))
                contact_id += 1
                identity_id += 1
            contact, email = contacts[-1] if rng.random() < 0.5 else rng.choice(contacts)
            active = rng.random() < 0.4
            # Every ticket, active or done, opened at any time of the past year (as the
            # issue's figures were measured): a 30-day dashboard sees a twelfth of the desk.
            age = rng.uniform(0, 365)
            created = now - dt.timedelta(days=min(age, 365), seconds=rng.uniform(0, 3600))
            category, user_type, department = rng.choice(desk["categories"])
            status = (rng.choices(active_states, active_weights)[0] if active
                      else rng.choices(done_states, done_weights)[0])
            # Each event of a ticket's story happens only if its time has come: a reply or a
            # resolution due after now has not happened yet, and the ticket is still waiting
            # or active. (Cut at now instead, every ticket resolved or closed "in the future",
            # 0.6% of the desk, had one and the same updated_at, the newest of all, and each
            # page of the newest tickets passed that pile first: a pile growing with the desk.)
            answered = status != "new" and rng.random() < 0.9
            first_response = (created + dt.timedelta(minutes=rng.lognormvariate(4, 1.2))
                              if answered else None)
            if first_response is not None and first_response > now:
                answered, first_response = False, None
            assignee = (rng.choice(members[department])
                        if members[department] and rng.random() < (0.6 if active else 0.95)
                        else None)
            last_customer = created
            if not answered and status != "new":
                written = created + dt.timedelta(hours=rng.uniform(1, 24))
                last_customer = written if written <= now else created
            last_agent = first_response
            updated = max(x for x in (created, first_response, last_customer) if x)
            resolved = closed = None
            if not active:
                resolved = updated + dt.timedelta(hours=rng.uniform(1, 72))
                if resolved > now:
                    active, status, resolved = True, "open" if answered else "new", None
                else:
                    updated = resolved
                    if status == "closed":
                        closed = resolved + dt.timedelta(days=3)
                        if closed > now:
                            status, closed = "resolved", None
                        else:
                            updated = closed
            due = created + dt.timedelta(days=rng.uniform(1, 10)) if active else None
            tags = rng.sample(TAGS, k=rng.choices((0, 1, 2), (60, 30, 10))[0])
            channel = rng.choices(channels, channel_weights)[0]
            subject = f"{rng.choice(SUBJECTS)} {rng.choice(WORDS)}"
            key = secrets.token_urlsafe(24)
            tickets.append((
                ticket_id, key, subject, status, rng.choices(priorities, priority_weights)[0],
                channel, category, user_type, department, assignee, contact, "en", "{}",
                json.dumps(sorted(tags)), 0, created, updated, first_response, last_customer,
                last_agent, resolved, closed, due, "",
                # As the job (``core.services.late``) would have marked them by ``now``.
                (True if writer.postgres else 1) if due is not None and due < now else false))
            if len(tracking) < 200 and rng.random() < 0.01:
                tracking.append(f"/t/{ticket_id}/{key}")
            ref = f"INV-{rng.randrange(10**6, 10**7)}"
            question = f"{subject}. {sentence(rng, 18)} Reference {ref}. {sentence(rng, 10)}"
            messages.append((
                message_id, ticket_id, "contact", contact, None, question, "", false, channel,
                None, "", "", "", 0, "", "", "", "", 0, created))
            message_id += 1
            if answered:
                reply = f"Hello, thank you for writing. {sentence(rng, 20)} {sentence(rng, 8)}"
                messages.append((
                    message_id, ticket_id, "staff", None, assignee, reply, "", false, channel,
                    None, "sent", "", "", 0, "", "", "", email, 1, first_response))
            else:
                follow = f"Any news? {sentence(rng, 12)}"
                messages.append((
                    message_id, ticket_id, "contact", contact, None, follow, "", false,
                    channel, None, "", "", "", 0, "", "", "", "", 0, last_customer))
            message_id += 1
            ticket_id += 1
        with database.atomic():
            writer.write("contact", contact_cols, new_contacts)
            writer.write("contact_identity", identity_cols, identities)
            writer.write("ticket", ticket_cols, tickets)
            writer.write("message", message_cols, messages)
            writer.index_for_search("ticket", tickets[0][0], tickets[-1][0])
        done += size
        rate = done / max(time.monotonic() - started, 1e-6)
        print(f"\r{done:>9,} / {count:,} tickets  {rate:,.0f}/s", end="", file=sys.stderr,
              flush=True)
    print(file=sys.stderr)
    for table in ("contact", "contact_identity", "ticket", "message"):
        writer.reset_sequence(table)
    return {"tracking": tracking, "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--out", help="where to write the credentials and sample paths "
                                      "(default: next to a SQLite file, else bench/results/)")
    args = parser.parse_args()
    os.environ["LOKET_DATABASE_URL"] = args.database_url
    if args.database_url.startswith("postgres"):
        create_database(args.database_url)
    out = Path(args.out) if args.out else default_out(args.database_url)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ["LOKET_SEED_STATE"] = str(out)

    from core import create_app
    from core import db as core_db
    from core.migrate import upgrade

    app = create_app({"database_url": args.database_url, "plugins": [],
                      "secret_key": secrets.token_hex(16),
                      "instance_path": str(out.parent / "seed-instance")})
    state = app.extensions["loket"]
    upgrade(state)
    rng = random.Random(args.seed)
    with app.app_context(), core_db.connection():
        desk = base_desk()
        writer = Writer(state.database)
        if not writer.postgres:
            # A throwaway bench file: a crash mid-seed means seeding again, so no fsyncs.
            for pragma in ("synchronous = OFF", "cache_size = -200000"):
                state.database.execute_sql(f"PRAGMA {pragma}")
        deferred = (writer.indexes_after(("ticket", "message", "contact", "contact_identity",
                                          "ticket_search"))
                    if args.tickets >= 50_000 else contextlib.nullcontext())
        with writer.search_in_bulk(), writer.rollups_after(), deferred:
            result = seed(state.database, desk, args.tickets, rng, dt.datetime.now(dt.UTC)
                          .replace(tzinfo=None, microsecond=0))
        state.database.execute_sql("ANALYZE")
    desk["tracking"] = (desk.get("tracking", []) + result["tracking"])[:200]
    desk["search_words"] = ["chargeback", "passport", "Santoso", "INV-1234", "withdrawal"]
    out.write_text(json.dumps(desk, indent=1))
    print(f"seeded {args.tickets:,} tickets in {result['seconds']} s; details in {out}",
          file=sys.stderr)


def default_out(url: str) -> Path:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1])
        return path.with_suffix(".seed.json")
    name = url.rsplit("/", 1)[-1].split("?")[0]
    return REPO / "bench" / "results" / f"seed-{name}.json"


def create_database(url: str) -> None:
    """CREATE DATABASE for a PostgreSQL URL whose database does not exist yet."""
    import psycopg2
    from playhouse.db_url import parse

    params = {k: v for k, v in parse(url).items() if v is not None}
    name = params.pop("database")
    conn = psycopg2.connect(dbname="postgres", **params)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


if __name__ == "__main__":
    main()
