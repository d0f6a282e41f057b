"""core.db: write transactions and statements compiled once, checked against peewee's own."""

from __future__ import annotations

import threading

from core import db
from core.models import Category, Contact, Ticket, UserType


def test_insert_fills_defaults_and_sets_the_id(ctx):
    contact = db.insert(Contact(name="Siti", email="siti@example.id"))
    ticket = db.insert(Ticket(subject="Refund", contact=contact, form_data={"tx": "A1"},
                              tags=["billing"]))
    again = db.insert(Ticket(subject="Second", contact=contact))
    stored = Ticket.get_by_id(ticket.id)
    assert again.id == ticket.id + 1
    assert stored.form_data == {"tx": "A1"} and stored.tags == ["billing"]
    assert stored.access_key == ticket.access_key and len(stored.access_key) >= 30
    assert stored.status == "new" and stored.contact_id == contact.id
    assert Ticket.get_by_id(again.id).form_data == {}


def test_select_helpers_reuse_sql_and_match_peewee(ctx):
    member = UserType.create(slug="member", name="Member")
    Category.create(user_type=member, slug="login", name="Login", position=2)
    Category.create(user_type=member, slug="account", name="Account", position=1)

    def by_slug(slug):
        return Category.select().where(Category.slug == slug)

    def of_type(type_id):
        return Category.select().where(Category.user_type == type_id).order_by(Category.position)

    for _ in range(2):  # the second call runs the cached SQL
        assert db.select_one(Category, "t.by_slug", by_slug, "login").name == "Login"
        assert db.select_one(Category, "t.by_slug", by_slug, "nope") is None
        assert [c.slug for c in db.select_all(Category, "t.of_type", of_type, member.id)] == [
            "account", "login"]


def test_a_shape_whose_parameters_do_not_line_up_is_never_cached(ctx):
    def shifted(slug):  # a parameter that is not among the arguments
        return Category.select().where((Category.slug == slug) & (Category.position > 0))

    member = UserType.create(slug="member", name="Member")
    Category.create(user_type=member, slug="login", name="Login", position=2)
    assert db.select_one(Category, "t.shifted", shifted, "login").slug == "login"
    assert db.select_one(Category, "t.shifted", shifted, "login").slug == "login"
    assert [v for k, v in db._statements.items() if k[-1] == "t.shifted"] == [None]


def test_writers_in_many_threads_all_commit(app, ctx):
    """Writers queue on the writer lock instead of failing with "database is locked"."""
    errors = []

    def write(n):
        try:
            with app.app_context(), db.connection():
                for i in range(20):
                    with db.write_transaction():
                        count = Contact.select().count()  # read, then write
                        db.insert(Contact(name=f"{n}-{i}-{count}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert Contact.select().count() == 80
