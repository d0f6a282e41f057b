"""core.db: write transactions, and each named statement writing and reading what it should."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import re
import threading
import time
from pathlib import Path
from typing import Any

import peewee as pw
import pytest

# Importing them registers their statements: core's, the console's and the API's.
import admin.auth  # noqa: F401
import admin.desk  # noqa: F401
import admin.tickets  # noqa: F401
import core.api.v1  # noqa: F401
import core.builtin  # noqa: F401
import core.services.access  # noqa: F401
import core.services.answers  # noqa: F401
import core.services.contacts  # noqa: F401
import core.services.tickets  # noqa: F401
import core.web.helpcenter  # noqa: F401
from core import db
from core.models import (
    Attachment,
    Category,
    CategoryField,
    Contact,
    ContactIdentity,
    Department,
    Message,
    Staff,
    StaffSession,
    Ticket,
    TicketParticipant,
    UserType,
)

from .conftest import PG_URL

# -- Values that tell columns apart --------------------------------------------------------

_ids = itertools.count(7001)


def _fields(model: type[pw.Model]) -> list[pw.Field]:
    return [f for f in model.select().selected_columns if not f.primary_key]


def _distinct(field: pw.Field, n: int, salt: str = "") -> object:
    """A value for ``field`` that no other column of the row holds (booleans aside)."""
    if isinstance(field, pw.ForeignKeyField):
        return _row(field.rel_model)
    if isinstance(field, pw.BooleanField):
        return False
    if isinstance(field, pw.DateTimeField):
        return dt.datetime(2021, 1, 1) + dt.timedelta(hours=n)
    if isinstance(field, pw.IntegerField):
        return 100 + n
    if isinstance(field, core.models.JSONField):
        return {"column": n}
    return f"v{n}{salt}"


def _row(model: type[pw.Model]) -> int:
    """A row of ``model`` with an id no other table's rows share, written by plain peewee."""
    row_id = next(_ids)
    values = {f.name: _distinct(f, i, str(row_id)) for i, f in enumerate(_fields(model))
              if not f.null and f.default is None}
    model.insert(id=row_id, **values).execute()
    return row_id


def _name(field: pw.Field) -> str:
    # A foreign key compares by id: reading the related row is not what is under test.
    return field.object_id_name if isinstance(field, pw.ForeignKeyField) else field.name


def _write_and_read(statement: db.Insert, values: dict[str, object]) -> None:
    instance = statement.model(**values)
    statement(instance)
    stored = statement.model.get_by_id(instance.id)
    assert {n: getattr(stored, n) for n in values} == values


# -- Inserts -------------------------------------------------------------------------------

INSERTS = sorted(name for name, s in db.STATEMENTS.items() if isinstance(s, db.Insert))


@pytest.mark.parametrize("name", INSERTS)
def test_each_insert_writes_every_column_where_it_belongs(ctx, name):
    statement = db.STATEMENTS[name]
    fields = _fields(statement.model)
    assert statement.fields == fields
    sql, _plan = statement.compile(len(fields))
    table, listed = re.match(r'INSERT INTO "(\w+)" \(([^)]*)\)', sql).groups()
    columns = {c.name for c in db.database.obj.get_columns(table)}
    assert {c.strip('" ') for c in listed.split(",")} | {"id"} == columns  # none left out
    values = {_name(f): _distinct(f, i) for i, f in enumerate(fields)}
    _write_and_read(statement, values)
    # Booleans hold only two values: each one alone true shows where it went.
    # (The text changes each time: unique keys.)
    for k, flag in enumerate(f for f in fields if isinstance(f, pw.BooleanField)):
        values = {_name(f): _distinct(f, i, f"b{k}") for i, f in enumerate(fields)}
        values[flag.name] = True
        _write_and_read(statement, values)


def test_insert_fills_defaults_and_sets_the_id(ctx):
    insert_contact = db.STATEMENTS["contact.insert"]
    insert_ticket = db.STATEMENTS["ticket.insert"]
    contact = insert_contact(Contact(name="Siti", email="siti@example.id"))
    ticket = insert_ticket(Ticket(subject="Refund", contact=contact, form_data={"tx": "A1"},
                                  tags=["billing"]))
    again = insert_ticket(Ticket(subject="Second", contact=contact))
    stored = Ticket.get_by_id(ticket.id)
    assert again.id > ticket.id
    assert stored.form_data == {"tx": "A1"} and stored.tags == ["billing"]
    assert stored.access_key == ticket.access_key and len(stored.access_key) >= 30
    assert stored.status == "new" and stored.contact_id == contact.id
    assert Ticket.get_by_id(again.id).form_data == {}


# -- Selects: each argument lands on its own column ------------------------------------------


def test_contact_by_identity_matches_kind_and_value_each_on_its_own_column(ctx):
    statement = db.STATEMENTS["contact.by_identity"]
    first, second = Contact.create(name="first"), Contact.create(name="second")
    ContactIdentity.create(contact=first, kind="telegram", value="whatsapp")
    ContactIdentity.create(contact=second, kind="whatsapp", value="telegram")
    assert statement.first("telegram", "whatsapp").name == "first"
    assert statement.first("whatsapp", "telegram").name == "second"
    assert statement.first("telegram", "telegram") is None


def test_message_by_external_id_matches_channel_and_id_each_on_its_own_column(ctx):
    statement = db.STATEMENTS["message.by_external_id"]
    ticket = Ticket.create(subject="s", contact=Contact.create())
    a = Message.create(ticket=ticket, author_kind="contact", channel="sms", external_id="email")
    b = Message.create(ticket=ticket, author_kind="contact", channel="email", external_id="sms")
    assert statement.first("sms", "email").id == a.id
    assert statement.first("email", "sms").id == b.id
    assert statement.first("sms", "sms") is None


def _category(user_type: UserType, slug: str, **values: object) -> Category:
    return Category.create(user_type=user_type, slug=slug, name=slug.title(), **values)


def test_visible_category_by_slugs_matches_each_slug_and_hides_what_is_hidden(ctx):
    statement = db.STATEMENTS["category.visible_by_slugs"]
    member, guest = UserType.create(slug="member", name="M"), UserType.create(slug="guest", name="G")
    login = _category(member, "guest")
    other = _category(guest, "member")
    _category(member, "hidden", visible=False)
    assert statement.first("member", "guest").id == login.id
    assert statement.first("guest", "member").id == other.id
    assert statement.first("member", "member") is None
    assert statement.first("member", "hidden") is None
    member.active = False
    member.save()
    assert statement.first("member", "guest") is None


def _same_row(found: pw.Model | None, expected: pw.Model) -> None:
    assert found is not None
    fields = expected.select().selected_columns
    assert [getattr(found, _name(f)) for f in fields] == [getattr(expected, _name(f))
                                                          for f in fields]


def test_category_by_id_reads_the_whole_row(ctx):
    statement = db.STATEMENTS["category.by_id"]
    member = UserType.create(slug="member", name="M")
    parent = _category(member, "parent")
    child = _category(member, "child", parent=parent, position=3, description="d",
                      default_priority="high", visible=False)
    _same_row(statement.first(child.id), Category.get_by_id(child.id))
    assert statement.first(child.id + 1000) is None


def test_department_by_id_reads_the_whole_row(ctx):
    statement = db.STATEMENTS["department.by_id"]
    up = Department.create(slug="up", name="Up")
    down = Department.create(slug="down", name="Down", email="d@x.test", escalates_to=up,
                             active=False)
    _same_row(statement.first(down.id), Department.get_by_id(down.id))
    _same_row(statement.first(up.id), Department.get_by_id(up.id))


def test_department_by_slug_reads_the_whole_row_active_or_not(ctx):
    statement = db.STATEMENTS["department.by_slug"]
    up = Department.create(slug="up", name="Up")
    down = Department.create(slug="down", name="Down", email="d@x.test", escalates_to=up,
                             active=False)
    _same_row(statement.first("down"), Department.get_by_id(down.id))
    _same_row(statement.first("up"), Department.get_by_id(up.id))
    assert statement.first("Up") is None  # slugs are matched exactly


def test_questions_of_a_category_come_in_the_admins_order(ctx):
    statement = db.STATEMENTS["category_field.of_category"]
    member = UserType.create(slug="member", name="M")
    mine, other = _category(member, "mine"), _category(member, "other")
    CategoryField.create(category=mine, name="b", label="B", position=2)
    CategoryField.create(category=mine, name="a", label="A", position=1)
    CategoryField.create(category=other, name="c", label="C", position=0)
    assert [f.name for f in statement.all(mine.id)] == ["a", "b"]
    assert [f.name for f in statement.all(other.id)] == ["c"]


def test_ticket_by_id_reads_the_whole_row(ctx):
    statement = db.STATEMENTS["ticket.by_id"]
    ticket_id = _row(Ticket)
    _same_row(statement.first(ticket_id), Ticket.get_by_id(ticket_id))
    assert statement.first(ticket_id + 1000) is None


def test_latest_unfinished_ticket_on_a_channel_is_the_contacts_newest_open_one(ctx):
    statement = db.STATEMENTS["ticket.latest_unfinished_on_channel"]
    contact, stranger = Contact.create(), Contact.create()
    day = dt.datetime(2024, 5, 1)

    def ticket(hours: int, **values: object) -> Ticket:
        values = {"contact": contact, "channel": "livechat", "status": "open", **values}
        return Ticket.create(subject="s", updated_at=day + dt.timedelta(hours=hours), **values)

    ticket(1)
    newest_open = ticket(2, status="pending")
    ticket(3, status="closed")  # finished: a new message opens a follow-up instead
    ticket(4, channel="email")  # another channel
    ticket(5, contact=stranger)  # someone else
    found = statement.first(contact.id, "livechat")
    _same_row(found, Ticket.get_by_id(newest_open.id))
    resolved = ticket(6, status="resolved")  # resolved still takes the next message
    assert statement.first(contact.id, "livechat").id == resolved.id
    assert statement.first(contact.id, "telegram") is None


def test_public_messages_leave_out_notes_and_notifications_oldest_first(ctx):
    statement = db.STATEMENTS["message.public_of_ticket"]
    ticket = Ticket.create(subject="s", contact=Contact.create())
    other = Ticket.create(subject="o", contact=Contact.create())
    day = dt.datetime(2024, 5, 1)

    def message(**values: object) -> Message:
        return Message.create(author_kind="contact", body_text="t", **values)

    later = message(ticket=ticket, created_at=day + dt.timedelta(hours=2))
    earlier = message(ticket=ticket, created_at=day)
    message(ticket=ticket, created_at=day, is_internal=True)
    message(ticket=ticket, created_at=day, notification="ticket_opened")
    message(ticket=other, created_at=day)
    found = statement.all(ticket.id)
    assert [m.id for m in found] == [earlier.id, later.id]
    _same_row(found[0], Message.get_by_id(earlier.id))


def test_attachments_of_a_ticket_are_its_own_in_order(ctx):
    statement = db.STATEMENTS["attachment.of_ticket"]
    ticket = Ticket.create(subject="s", contact=Contact.create())
    other = Ticket.create(subject="o", contact=Contact.create())

    def attachment(owner: Ticket, name: str) -> Attachment:
        return Attachment.create(ticket=owner, sha256="0" * 64, filename=name,
                                 content_type="text/plain", size=1)

    first, second = attachment(ticket, "a.txt"), attachment(ticket, "b.txt")
    attachment(other, "c.txt")
    found = statement.all(ticket.id)
    assert [a.id for a in found] == [first.id, second.id]
    _same_row(found[1], Attachment.get_by_id(second.id))


def test_tracking_page_reads_ticket_category_public_thread_agents_and_files_in_one(ctx):
    """``ticket.tracking_page``: the ticket and its category once, its public messages oldest
    first (no note, no notification, no other ticket's), each with its agent's name and its
    own attachments in order; a ticket without a public message is one row."""
    statement = db.STATEMENTS["ticket.tracking_page"]
    member = UserType.create(slug="member", name="M")
    category = _category(member, "payments", description="d")
    agent = _staff("agent@example.com", name="Agus")
    ticket = Ticket.create(subject="s", contact=Contact.create(), category=category)
    other = Ticket.create(subject="o", contact=Contact.create())
    day = dt.datetime(2024, 5, 1)

    def message(owner: Ticket, hours: int, **values: object) -> Message:
        return Message.create(ticket=owner, author_kind=values.pop("author_kind", "contact"),
                              body_text=f"t{hours}", created_at=day + dt.timedelta(hours=hours),
                              **values)

    def attachment(owner: Ticket, on: Message, name: str) -> Attachment:
        return Attachment.create(ticket=owner, message=on, sha256="0" * 64, filename=name,
                                 content_type="text/plain", size=len(name))

    reply = message(ticket, 2, author_kind="staff", staff=agent)
    first = message(ticket, 1)
    note = message(ticket, 1, author_kind="staff", staff=agent, is_internal=True)
    message(ticket, 1, notification="ticket_opened")
    message(other, 0)
    files = [attachment(ticket, first, "a.txt"), attachment(ticket, first, "b.txt")]
    attachment(ticket, note, "secret.txt")
    attachment(ticket, None, "field.txt")  # a form field's file, on no message
    attachment(other, first, "stray.txt")  # another ticket's row naming this message
    rows = statement.all(ticket.id)
    assert [(m.id, s and s.name, a and a.id) for _t, _c, m, s, a in rows] == [
        (first.id, None, files[0].id), (first.id, None, files[1].id),
        (reply.id, "Agus", None)]
    assert len({id(t) for t, *_ in rows}) == 1 and len({id(r[2]) for r in rows[:2]}) == 1
    found, shown = rows[0][0], rows[0][1]
    _same_row(found, Ticket.get_by_id(ticket.id))
    _same_row(shown, Category.get_by_id(category.id))
    _same_row(rows[2][2], Message.get_by_id(reply.id))
    _same_row(rows[1][4], Attachment.get_by_id(files[1].id))
    quiet = Ticket.create(subject="q", contact=Contact.create())
    message(quiet, 0, is_internal=True)
    ((alone, no_category, *nothing),) = statement.all(quiet.id)
    assert alone.id == quiet.id and no_category is None and nothing == [None, None, None]
    assert statement.all(quiet.id + 1000) == []


def test_a_joined_statement_needs_each_primary_key_and_only_its_models_columns(ctx):
    cases = [("test.joined_no_key", (Ticket, Category),
              lambda i: Ticket.select(Ticket.id, Category.name).join(Category)
              .where(Ticket.id == i), "Category's primary key is not selected"),
             ("test.joined_foreign", (Ticket,),
              lambda i: Ticket.select(Ticket.id, Category.id).join(Category)
              .where(Ticket.id == i), "no column of Ticket"),
             ("test.joined_twice", (Ticket,),
              lambda i: Ticket.select(Ticket.id, Ticket.id).where(Ticket.id == i),
              "selected twice")]
    for name, models, build, error in cases:
        statement = db.Joined(name, models, build)
        try:
            with pytest.raises(ValueError, match=error):
                statement.all(1)
        finally:
            del db.STATEMENTS[name]
    with pytest.raises(ValueError, match="joined twice"):
        db.Joined("test.joined_model_twice", (Ticket, Ticket), lambda: Ticket.select())
    assert "test.joined_model_twice" not in db.STATEMENTS


def _staff(email: str, **values) -> Staff:
    return Staff.create(email=email, name=values.pop("name", email.split("@")[0]), **values)


def test_console_session_staff_reads_a_live_session_with_its_whole_staff_row(ctx):
    """The session and its staff member in one statement: the fingerprint, the stamp of the
    console's names, then every column of the staff row, as the console's sign-in look-up reads them (admin/auth.load_user)."""
    from admin.auth import _STAFF_FIELDS

    statement = db.STATEMENTS["console.session_staff"]
    now = dt.datetime(2026, 11, 29, 12, 0)
    ana = _staff("ana@x.test", role="admin", language="id", failed_logins=2,
                 locked_until=now - dt.timedelta(days=1))
    ben = _staff("ben@x.test", active=False, api_token_hash="d" * 64)
    StaffSession.create(token_hash="a" * 64, staff=ana, password_fingerprint="f1",
                        expires_at=now + dt.timedelta(hours=1))
    StaffSession.create(token_hash="b" * 64, staff=ana, password_fingerprint="f2",
                        expires_at=now - dt.timedelta(seconds=1))
    StaffSession.create(token_hash="e" * 64, staff=ben, password_fingerprint="f3",
                        expires_at=now + dt.timedelta(hours=1))
    stamp = db.database.obj.execute_sql('SELECT stamp FROM "console_names_stamp"').fetchone()[0]
    for token, staff, fingerprint in (("a" * 64, ana, "f1"), ("e" * 64, ben, "f3")):
        ((found, names_stamp, *values),) = statement.all(token, now)
        assert found == fingerprint
        assert names_stamp == stamp  # the console's names' stamp (migration 0018)
        made = Staff(**{name: convert(value)
                        for (name, convert), value in zip(_STAFF_FIELDS, values, strict=True)})
        _same_row(made, Staff.get_by_id(staff.id))
    assert statement.all("b" * 64, now) == []  # expired
    assert statement.all("c" * 64, now) == []


def test_api_staff_by_token_finds_only_an_active_agent(ctx):
    """The names' stamp (migration 0018), then every column of the staff row, as the API's
    token look-up reads them (core.api.v1._agent_from_token)."""
    from core.api.v1 import _STAFF_FIELDS

    statement = db.STATEMENTS["api.staff_by_token"]
    ana = _staff("ana@x.test", api_token_hash="e" * 64, language="id", failed_logins=1)
    _staff("ben@x.test", api_token_hash="f" * 64, active=False)
    stamp = db.database.obj.execute_sql('SELECT stamp FROM "console_names_stamp"').fetchone()[0]
    ((names_stamp, *values),) = statement.all("e" * 64)
    assert names_stamp == stamp
    _same_row(Staff(**{name: convert(value) for (name, convert), value
                       in zip(_STAFF_FIELDS, values, strict=True)}), Staff.get_by_id(ana.id))
    assert statement.all("f" * 64) == []  # deactivated
    assert statement.all("0" * 64) == []


def test_console_look_ups_read_plain_rows_in_name_order(ctx):
    """Categories, departments and staff in one statement: each kind by name, its own rows."""
    ben = _staff("ben@x.test", name="Ben", active=False)
    ana = _staff("ana@x.test", name="Ana")
    sales = Department.create(slug="sales", name="Sales", active=False)
    billing = Department.create(slug="billing", name="Billing")
    member = UserType.create(slug="member", name="Member")
    parent = _category(member, "parent")
    child = _category(member, "child", parent=parent)
    rows = db.STATEMENTS["console.names"].all()
    # SQLite gives a flag as 0 or 1, PostgreSQL too here (CASE): the callers read it with bool().
    assert [(r[1], r[2], bool(r[3])) for r in rows if r[0] == 3] == [
        (ana.id, "Ana", True), (ben.id, "Ben", False)]
    assert [(r[1], r[2], bool(r[3])) for r in rows if r[0] == 2] == [
        (billing.id, "Billing", True), (sales.id, "Sales", False)]
    assert {r[1]: tuple(r[2:]) for r in rows if r[0] == 1} == {
        parent.id: (parent.name, None, "Member", parent.slug),
        child.id: (child.name, parent.id, "Member", child.slug)}
    assert all(r[4] is None for r in rows if r[0] != 1)
    # The last column: a category's or department's slug, a staff member's address (the API).
    assert {r[1]: r[5] for r in rows if r[0] == 2} == {billing.id: "billing", sales.id: "sales"}
    assert {r[1]: r[5] for r in rows if r[0] == 3} == {ana.id: "ana@x.test", ben.id: "ben@x.test"}


def test_participation_matches_ticket_and_contact_each_on_its_own_column(ctx):
    statement = db.STATEMENTS["ticket_participant.of_ticket_and_contact"]
    ticket, other = _row(Ticket), _row(Ticket)
    contact, stranger = _row(Contact), _row(Contact)
    TicketParticipant.create(ticket=ticket, contact=contact)
    TicketParticipant.create(ticket=other, contact=stranger)
    found = statement.first(ticket, contact)
    assert (found.ticket_id, found.contact_id) == (ticket, contact)
    assert statement.first(ticket, stranger) is None
    assert statement.first(other, contact) is None
    assert statement.first(contact, ticket) is None


def test_every_named_statement_has_its_test():
    selects = {"contact.by_identity", "message.by_external_id", "category.visible_by_slugs",
               "category.by_id", "department.by_id", "department.by_slug",
               "category_field.of_category",
               "ticket.by_id", "message.public_of_ticket", "attachment.of_ticket",
               "ticket.latest_unfinished_on_channel", "ticket_participant.of_ticket_and_contact",
               "console.session_staff", "console.names",
               "api.staff_by_token",
               "staff.name_by_id", "ticket.tracking_page"}
    # A plugin's statements are named after it and tested with the plugin.
    plugins = {p.name for p in (Path(__file__).resolve().parents[1] / "plugins").iterdir()}
    # Statements made per shape of a query (db.Shapes) are tested with their query.
    core = {name for name, statement in db.STATEMENTS.items()
            if name.split(".")[0] not in plugins and not isinstance(statement, db.Shaped)}
    assert core == selects | set(INSERTS)


def test_a_statement_name_is_taken_once_and_each_argument_used_once(ctx):
    with pytest.raises(ValueError, match="exists already"):
        db.Select("category.by_id", Category, lambda i: Category.select())
    # The name is the prepared statement's on PostgreSQL: a quoted identifier of 63 bytes.
    for name in ('t."quoted"', "t." + "x" * 62):
        with pytest.raises(ValueError, match="prepared statement's"):
            db.Select(name, Category, lambda i: Category.select())
        assert name not in db.STATEMENTS
    twice = db.Select("t.twice", Category,
                      lambda slug: Category.select().where((Category.slug == slug)
                                                           | (Category.name == slug)))
    try:
        with pytest.raises(ValueError, match="once"):
            twice.first("x")
    finally:
        del db.STATEMENTS["t.twice"]


# -- Write transactions --------------------------------------------------------------------


def test_writers_in_many_threads_all_commit(app, ctx):
    """Writers queue on the writer lock instead of failing with "database is locked"."""
    errors = []
    insert_contact = db.STATEMENTS["contact.insert"]

    def write(n):
        try:
            with app.app_context(), db.connection():
                for i in range(20):
                    with db.write_transaction():
                        count = Contact.select().count()  # read, then write
                        insert_contact(Contact(name=f"{n}-{i}-{count}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert Contact.select().count() == 80


def test_an_insert_on_its_own_queues_as_a_writer_and_one_in_a_transaction_joins_it(
        ctx, monkeypatch):
    """A named insert outside any transaction (a plugin's row after the ticket's commit)
    takes the writers' queue on SQLite, rather than SQLite's write lock past it; inside a
    transaction it is part of that transaction's write."""
    queued: list[str] = []
    real = db._writer_lock

    def spy(path: str) -> Any:
        queued.append(path)
        return real(path)

    monkeypatch.setattr(db, "_writer_lock", spy)
    insert_contact = db.STATEMENTS["contact.insert"]
    alone = insert_contact(Contact(name="Alone"))
    assert Contact.get_by_id(alone.id).name == "Alone"
    assert queued == ([db.database.obj.database] if db.is_sqlite() else [])
    queued.clear()
    with db.write_transaction():
        insert_contact(Contact(name="Within"))
    assert len(queued) == (1 if db.is_sqlite() else 0)  # the transaction's own, once
    assert Contact.select().where(Contact.name == "Within").count() == 1


def test_the_wal_is_checkpointed_after_the_writers_queue_is_let_go(ctx, monkeypatch):
    """SQLite: a writer checkpoints the WAL every ``CHECKPOINT_EVERY`` commits of its
    process, after it lets the writers' queue go (SQLite's automatic checkpoint ran inside
    the commit, every other writer queued behind it), and the WAL stays small."""
    if not db.is_sqlite():
        pytest.skip("SQLite's WAL")
    database = db.database.obj
    assert database.execute_sql("PRAGMA wal_autocheckpoint").fetchone() == (10000,)
    held = [False]
    real_lock = db._writer_lock

    @contextlib.contextmanager
    def lock(path: str) -> Any:
        with real_lock(path):
            held[0] = True
            try:
                yield
            finally:
                held[0] = False

    checkpoints: list[bool] = []
    real_execute = database.execute_sql

    def execute(sql: str, *args: Any, **kwargs: Any) -> Any:
        if "wal_checkpoint" in sql:
            checkpoints.append(held[0])
        return real_execute(sql, *args, **kwargs)

    monkeypatch.setattr(db, "_writer_lock", lock)
    monkeypatch.setattr(database, "execute_sql", execute)
    insert_contact = db.STATEMENTS["contact.insert"]
    commits = 25 * db.CHECKPOINT_EVERY
    for n in range(commits):
        with db.write_transaction():
            insert_contact(Contact(name=f"Writer {n}"))
    assert checkpoints == [False] * 25  # every one with the queue let go
    _busy, frames, _copied = real_execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert 0 <= frames < commits // 2  # started again from its beginning, not grown


# -- Rows a select makes: as peewee makes them -------------------------------------------------


def test_a_selected_row_holds_what_peewee_would_read_and_saves_what_it_is_told(ctx):
    # Made through the model's public constructor (core.db touches no private attribute of
    # peewee), so every field counts as set; nothing in Loket saves "only what is dirty".
    statement = db.STATEMENTS["ticket.by_id"]
    contact = Contact.create(name="Siti")
    made = Ticket.create(subject="Refund", contact=contact, form_data={"tx": "A1"},
                         tags=["billing"], created_at=dt.datetime(2024, 5, 1, 9, 30))
    found, expected = statement.first(made.id), Ticket.get_by_id(made.id)
    assert type(found) is Ticket and found.__data__ == expected.__data__
    assert found.form_data == {"tx": "A1"} and found.tags == ["billing"]
    assert found.created_at == dt.datetime(2024, 5, 1, 9, 30)
    assert found.contact_id == contact.id and found.contact.name == "Siti"  # loads on demand
    found.subject = "Refund, please"
    Ticket.update(status="open").where(Ticket.id == made.id).execute()  # someone else's change
    found.save(only=[Ticket.subject])
    again = Ticket.get_by_id(made.id)
    assert again.subject == "Refund, please" and again.status == "open"
    assert [m.id for m in db.STATEMENTS["message.public_of_ticket"].all(made.id)] == []


def test_a_select_of_columns_its_model_lacks_is_refused(ctx):
    statement = db.Select("test.foreign_columns", Category,
                          lambda slug: UserType.select().where(UserType.slug == slug))
    try:
        UserType.create(slug="member", name="M")
        with pytest.raises(ValueError, match="no column of Category"):
            statement.first("member")
    finally:
        del db.STATEMENTS["test.foreign_columns"]


def test_staff_names_come_one_by_one_for_a_few_and_in_one_query_for_many(ctx):
    from core.models import Staff
    from core.services import access

    staff = [Staff.create(email=f"agent{n}@example.com", name=f"Agent {n}", role="agent")
             for n in range(5)]
    unknown = max(s.id for s in staff) + 100
    assert access.staff_names({staff[0].id, staff[3].id, unknown}) == {
        staff[0].id: "Agent 0", staff[3].id: "Agent 3"}
    assert access.staff_names({s.id for s in staff} | {unknown}) == {
        s.id: s.name for s in staff}
    row = db.STATEMENTS["staff.name_by_id"].first(staff[2].id)
    assert (row.id, row.name) == (staff[2].id, "Agent 2")



@pytest.mark.skipif(not PG_URL, reason="PostgreSQL's pool of connections")
def test_the_pool_hands_out_a_live_connection_without_a_round_trip_and_replaces_a_dead_one():
    """A checked-in connection is handed out again with no ``SELECT 1`` first; one the server
    ended meanwhile (``pg_terminate_backend``, as a restart ends them all) is noticed by its
    socket and replaced, and the statement after it runs."""
    import psycopg2.extensions
    from playhouse.db_url import parse

    from .conftest import _pg_admin_connect

    sent: list[str] = []

    class Counting(psycopg2.extensions.cursor):
        def execute(self, sql: Any, args: Any = None) -> Any:
            sent.append(str(sql))
            return super().execute(sql, args)

    assert type(db.open_database(PG_URL)) is db.PooledPostgres
    database = db.PooledPostgres(**parse(PG_URL), cursor_factory=Counting, max_connections=4)
    try:
        database.connect()
        (first,) = database.execute_sql("SELECT pg_backend_pid()").fetchone()
        database.close()  # back to the pool
        sent.clear()
        database.connect()
        assert sent == []  # handed out again without asking the server
        assert database.execute_sql("SELECT pg_backend_pid()").fetchone() == (first,)
        database.close()
        admin = _pg_admin_connect()
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (first,))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # until the server process has ended
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first,))
                if cursor.fetchone() is None:
                    break
                time.sleep(0.05)
        admin.close()
        database.connect()
        (second,) = database.execute_sql("SELECT pg_backend_pid()").fetchone()
        assert second != first
        database.close()
    finally:
        db.close_all(database)


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL's JIT compiler")
def test_postgresql_connections_plan_and_run_without_the_jit_unless_the_url_asks() -> None:
    """The desk's connections run with ``jit = off`` (a far-off estimate made the JIT
    compile a page's walk for a second); options in the URL are kept, and a URL that sets
    ``jit`` itself is obeyed."""
    scheme, rest = PG_URL.split("://", 1)
    assert scheme in ("postgres", "postgresql")
    separator = "&" if "?" in rest else "?"
    cases = [(rest, "off", None),
             (f"{rest}{separator}options=-c%20statement_timeout%3D12345", "off", "12345ms"),
             (f"{rest}{separator}options=-c%20jit%3Don", "on", None)]
    for url, jit, timeout in cases:
        database = db.open_database(f"postgresql://{url}")
        try:
            database.connect()
            assert database.execute_sql("SHOW jit").fetchone()[0] == jit, url
            if timeout:
                assert database.execute_sql("SHOW statement_timeout").fetchone()[0] == timeout
        finally:
            db.close_all(database)


def _prepared_here(database: pw.Database) -> dict[str, str]:
    rows = database.execute_sql("SELECT name, statement FROM pg_prepared_statements").fetchall()
    return dict(rows)


@pytest.mark.skipif(not PG_URL, reason="prepared statements are PostgreSQL's")
def test_on_postgresql_a_named_statement_is_prepared_once_per_connection_and_then_executed(ctx):
    """The first run on a connection PREPAREs (off peewee's log), every run EXECUTEs; the
    arguments become ``$n`` and the query's constants are written into the PREPARE (a
    generic plan knows them); a statement made with ``prepare=False`` runs its SQL."""
    from .spies import Statements

    database = db.database.obj
    ticket = Ticket.create(subject="s", contact=Contact.create())
    Message.create(ticket=ticket, author_kind="contact", body_text="t")
    statement = db.STATEMENTS["message.public_of_ticket"]
    with Statements() as caught:
        for _ in range(3):
            assert len(statement.all(ticket.id)) == 1
    assert caught.sql == ['EXECUTE "message.public_of_ticket"(%s)'] * 3
    assert caught.params == [[ticket.id]] * 3
    text = _prepared_here(database)["message.public_of_ticket"]
    assert '"ticket_id" = $1' in text and "$2" not in text
    assert "\"notification\" = ''" in text
    unprepared = db.Select("test.unprepared", Ticket,
                           lambda i: Ticket.select(Ticket.id).where(Ticket.id == i),
                           prepare=False)
    try:
        with Statements() as caught:
            assert unprepared.first(ticket.id).id == ticket.id
        assert caught.sql[0].startswith('SELECT "t1"."id" FROM "ticket"')
        assert "test.unprepared" not in _prepared_here(database)
    finally:
        del db.STATEMENTS["test.unprepared"]


@pytest.mark.skipif(not PG_URL, reason="prepared statements are PostgreSQL's")
def test_a_prepared_name_is_known_per_connection_through_discard_and_a_new_connection(ctx):
    """``DISCARD ALL`` (a pooler's reset) drops the session's statements: outside a
    transaction the statement is prepared again and runs; inside one the failed transaction
    raises, and the next unit prepares anew. A connection the pool opens afresh prepares
    its own."""
    database = db.database.obj
    statement = db.STATEMENTS["ticket.by_id"]
    ticket = Ticket.create(subject="s", contact=Contact.create())
    assert statement.first(ticket.id).id == ticket.id
    assert "ticket.by_id" in _prepared_here(database)
    database.execute_sql("DISCARD ALL")
    assert statement.first(ticket.id).id == ticket.id
    database.execute_sql("DEALLOCATE ALL")
    with pytest.raises(pw.OperationalError, match="does not exist"):
        with database.atomic():
            statement.first(ticket.id)
    assert statement.first(ticket.id).id == ticket.id
    (before,) = database.execute_sql("SELECT pg_backend_pid()").fetchone()
    db.close_all(database)
    database.connect(reuse_if_open=True)
    (after,) = database.execute_sql("SELECT pg_backend_pid()").fetchone()
    assert after != before and "ticket.by_id" not in _prepared_here(database)
    assert statement.first(ticket.id).id == ticket.id
    assert "ticket.by_id" in _prepared_here(database)


@pytest.mark.skipif(not PG_URL, reason="prepared statements are PostgreSQL's")
def test_prepare_false_in_the_url_runs_named_statements_unprepared(ctx, db_url):
    """``?prepare=false`` (a pooler that hands each transaction another server connection)
    runs every named statement as its SQL, preparing nothing; the URL's other options still
    reach the connection."""
    from .spies import Statements

    ticket = Ticket.create(subject="s", contact=Contact.create())
    database = db.open_database(f"{db_url}&prepare=false")
    statement = db.STATEMENTS["ticket.by_id"]
    desk = db.database.obj
    try:
        database.connect()
        db.bind(database)
        with Statements() as caught:
            assert statement.first(ticket.id).id == ticket.id
        assert caught.sql and not caught.sql[0].startswith("EXECUTE")
        assert _prepared_here(database) == {}
    finally:
        db.bind(desk)
        db.close_all(database)
    assert desk.prepares_statements and not database.prepares_statements
    for word, prepares in (("off", False), ("0", False), ("true", True), ("yes", True)):
        assert db.open_database(f"{db_url}&prepare={word}").prepares_statements is prepares
    with pytest.raises(ValueError, match="prepare= must be true or false"):
        db.open_database(f"{db_url}&prepare=maybe")


def test_shapes_build_a_statement_once_per_shape_and_bind_each_request_s_arguments(ctx):
    """``db.Shapes``: a shape's SQL is built the first time it is asked and never again; the
    arguments go where their slots are, an argument used twice in both places; another shape
    is another statement, named after its shape; past ``kept`` shapes one is built and run
    unnamed each time (not kept, not prepared)."""
    from .spies import Statements

    shapes = db.Shapes("test.shape", kept=2)
    a, b, c = (Ticket.create(subject=s, status="open", contact=Contact.create())
               for s in ("a", "b", "c"))
    built: list[Any] = []

    def statement(status: str) -> db.Shaped:
        def build(low: pw.Node, high: pw.Node) -> pw.Query:
            built.append(status)
            # ``high`` twice, ``status`` a constant of the shape.
            return (Ticket.select(Ticket.id)
                    .where((Ticket.id >= low) & (Ticket.id <= high) & (Ticket.id <= high)
                           & (Ticket.status == status)).order_by(Ticket.id))
        return shapes.statement(("by status", status), 2, build)

    def ids(status: str, low: int, high: int) -> list[int]:
        return [row[0] for row in statement(status).run((low, high)).fetchall()]

    try:
        assert ids("open", a.id, b.id) == [a.id, b.id]
        assert ids("open", b.id, c.id) == [b.id, c.id]
        assert ids("open", c.id, a.id) == []
        assert built == ["open"]
        assert ids("new", a.id, c.id) == []
        assert built == ["open", "new"]
        assert statement("open") is statement("open")
        assert statement("open").name != statement("new").name
        assert statement("open").name.startswith("test.shape.")
        assert db.STATEMENTS[statement("open").name] is statement("open")
        # A third shape is past ``kept``: built on every request, unnamed, unprepared.
        with Statements() as caught:
            Ticket.update(status="closed").where(Ticket.id == b.id).execute()
            assert ids("closed", a.id, c.id) == [b.id]
            assert ids("closed", a.id, a.id) == []
        assert built == ["open", "new", "closed", "closed"]
        assert not any(sql.startswith("EXECUTE") for sql in caught.sql[1:])
        assert not [name for name in db.STATEMENTS if "closed" in name]
    finally:
        for name in [n for n in db.STATEMENTS if n.startswith("test.shape.")]:
            del db.STATEMENTS[name]


def test_a_shaped_statement_may_use_an_argument_twice_but_must_use_each(ctx):
    shaped = db.Shaped("test.shaped", 2, lambda first, _second: Ticket.select(Ticket.id).where(
        (Ticket.id == first) | (Ticket.id == first)), named=False)
    with pytest.raises(ValueError, match="each argument"):
        shaped.compile(2)


@pytest.mark.skipif(not PG_URL, reason="prepared statements are PostgreSQL's")
def test_on_postgresql_a_shape_is_prepared_once_per_connection_its_repeats_one_parameter(ctx):
    from .spies import Statements

    shapes = db.Shapes("test.shape")
    ticket = Ticket.create(subject="s", status="pending", contact=Contact.create())
    shaped = shapes.statement(("pending",), 1, lambda number: Ticket.select(Ticket.id).where(
        (Ticket.id == number) & (Ticket.id >= number) & (Ticket.status == "pending")))
    try:
        with Statements() as caught:
            for _ in range(3):
                assert shaped.run((ticket.id,)).fetchall() == [(ticket.id,)]
        assert caught.sql == [f'EXECUTE "{shaped.name}"(%s)'] * 3
        text = _prepared_here(db.database.obj)[shaped.name]
        assert text.count("$1") == 2 and "$2" not in text and "'pending'" in text
    finally:
        del db.STATEMENTS[shaped.name]
