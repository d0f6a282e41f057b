"""The names the console shows (categories, departments, staff) are kept by each worker under
a stamp that triggers change (migration 0018) and every page reads with its session: a
change made anywhere (another worker, another connection, SQL by hand) shows on the next
page, and a page whose names did not change reads none."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from flask import g
from playhouse.db_url import connect

from admin import desk as desk_names
from core import db
from core.models import Category, Department, Staff, Ticket, UserType, utcnow

from .spies import Statements
from .test_admin_helpers import new_ticket, sign_in

STAMP = import_module("core.migrations.0018_kept_names_and_overdue")


def _stamp() -> int:
    return db.database.obj.execute_sql('SELECT stamp FROM "console_names_stamp"').fetchone()[0]


@pytest.fixture
def other(db_url: str) -> Any:
    """A second connection to the desk's database, as another worker or a person with SQL."""
    connection = connect(db_url)
    connection.connect()
    yield connection
    connection.close()


def _inbox(client: Any) -> str:
    return client.get("/admin/tickets/").get_data(as_text=True)


def test_a_name_changed_through_another_connection_shows_on_the_next_page(
        desk: Any, client: Any, other: Any) -> None:
    ticket = new_ticket(desk.payments)
    Ticket.update(assignee=desk.agent.id).where(Ticket.id == ticket.id).execute()
    sign_in(client, "admin@desk.test")
    page = _inbox(client)
    assert "Member › Payments and subscriptions" in page and "Agus Agent" in page
    assert ">Support</td>" in page and "Move to Billing" in page
    with Statements() as caught:
        _inbox(client)
    assert not any('"department"' in sql for sql in caught.text)  # kept: no names read

    changes = [
        (f"UPDATE \"department\" SET name = 'Customer care' WHERE id = {desk.support.id}",
         ">Customer care</td>", ">Support</td>"),
        (f"UPDATE \"category\" SET name = 'Billing and plans' WHERE id = {desk.payments.id}",
         "Member › Billing and plans", "Payments and subscriptions"),
        (f"UPDATE \"user_type\" SET name = 'Members' WHERE id = {desk.member.id}",
         "Members › Billing and plans", "Member ›"),
        (f"UPDATE \"staff\" SET name = 'Agus Santoso' WHERE id = {desk.agent.id}",
         "Agus Santoso", "Agus Agent"),
        (f'UPDATE "department" SET active = FALSE WHERE id = {desk.billing.id}',
         "Move to Management", "Move to Billing"),
        (f'UPDATE "category" SET parent_id = {desk.login.id} WHERE id = {desk.payments.id}',
         "Members › Registration and login › Billing and plans", "Members › Billing and plans<"),
    ]
    for sql, shown, gone in changes:
        other.execute_sql(sql)
        page = _inbox(client)
        assert shown in page, sql
        assert gone not in page, sql
        # The filters' choices (kept with the names) too.
        choices = page.split('id="filter-groups-data"', 1)[1].split("</div>", 1)[0]
        if "department\" SET name" in sql:
            assert '"Customer care"' in choices and '"Support"' not in choices
        if "staff\" SET name" in sql:
            assert '"Agus Santoso"' in choices and '"Agus Agent"' not in choices


def test_added_and_deleted_rows_change_the_names(desk: Any, client: Any, other: Any) -> None:
    sign_in(client, "admin@desk.test")
    assert "Move to Escalations" not in _inbox(client)
    other.execute_sql("INSERT INTO \"department\" (slug, name, email, active) "
                      "VALUES ('escalations', 'Escalations', '', TRUE)")
    assert "Move to Escalations" in _inbox(client)
    other.execute_sql("DELETE FROM \"department\" WHERE slug = 'escalations'")
    assert "Move to Escalations" not in _inbox(client)


def test_the_stamp_changes_with_every_shown_name_and_only_then(desk: Any) -> None:
    seen = {_stamp()}

    def changed(change: Any) -> bool:
        before = _stamp()
        change()
        after = _stamp()
        seen.add(after)
        return after != before

    # What the console shows: each changes the stamp, to a value not seen before.
    assert changed(lambda: Department.update(name="Help").where(
        Department.id == desk.support.id).execute())
    assert changed(lambda: Department.update(active=False).where(
        Department.id == desk.billing.id).execute())
    assert changed(lambda: Staff.update(name="Agus S.").where(Staff.id == desk.agent.id).execute())
    assert changed(lambda: Staff.update(active=False).where(Staff.id == desk.agent.id).execute())
    assert changed(lambda: Category.update(name="Pay").where(
        Category.id == desk.payments.id).execute())
    assert changed(lambda: Category.update(parent=desk.login.id).where(
        Category.id == desk.refunds.id).execute())
    assert changed(lambda: Category.update(user_type=desk.studio.id).where(
        Category.id == desk.login.id).execute())
    assert changed(lambda: UserType.update(name="Members").where(
        UserType.id == desk.member.id).execute())
    new = Department.create(slug="new", name="New")
    assert changed(lambda: Department.delete().where(Department.id == new.id).execute())
    assert changed(lambda: Staff.create(email="x@desk.test", name="X"))
    assert changed(lambda: Staff.update(email="agus@desk.test").where(
        Staff.id == desk.agent.id).execute())
    assert changed(lambda: Department.update(slug="help").where(
        Department.id == desk.support.id).execute())
    assert changed(lambda: Category.update(slug="pay").where(
        Category.id == desk.payments.id).execute())
    assert len(seen) == 14
    # What it does not show: the stamp stays (every worker keeps its names).
    assert not changed(lambda: Staff.update(last_login_at=utcnow(), failed_logins=3).where(
        Staff.id == desk.admin.id).execute())
    assert not changed(lambda: Department.update(email="money@desk.test").where(
        Department.id == desk.billing.id).execute())
    assert not changed(lambda: Category.update(position=9).where(
        Category.id == desk.payments.id).execute())
    assert not changed(lambda: Staff.update(name="Ada Admin").where(
        Staff.id == desk.admin.id).execute())  # the same name again


def test_names_read_inside_a_rolled_back_change_are_not_kept(desk: Any, app: Any) -> None:
    """A rename rolled back after a page read it: the stamp goes back to its old value,
    which is not the one the rolled-back names were kept under."""

    def names() -> set[str]:
        # ctx's g, emptied as a new request's (a request's end would close the connection,
        # and with it the transaction).
        g.pop("_loket_names", None)
        desk_names.names_stamp(_stamp())  # as the session's look-up reads it
        return {name for _id, name, _active in desk_names.departments()}

    assert "Support" in names()
    with db.database.obj.atomic() as transaction:
        Department.update(name="Renamed").where(Department.id == desk.support.id).execute()
        assert "Renamed" in names()
        transaction.rollback()
    assert "Support" in names() and "Renamed" not in names()


def test_without_a_stamp_the_names_are_read_for_the_request(desk: Any, app: Any) -> None:
    """Outside a signed-in page (no session look-up, so no stamp) the names are read for the
    request, not taken from what the process kept."""
    made = []
    for _request in range(2):
        g.pop("_loket_names", None)
        desk_names.names_stamp(None)
        with Statements() as caught:
            assert desk_names.departments()
            made.append(desk_names.kept_by_names("test", lambda: object()))
        assert len(caught.sql) == 1
    assert made[0] is not made[1]


def _scope_index() -> list[str]:
    return [row[2] for row in db.database.obj.execute_sql(
        "PRAGMA index_info(ticket_active_updated_scope)").fetchall()]


def test_the_migration_down_and_up(desk: Any) -> None:
    database = db.database.obj
    sqlite = db.is_sqlite()
    if sqlite:
        assert _scope_index()[-1] == "due_at"
    STAMP.down(None, database)
    if sqlite:  # 0009's index again
        assert _scope_index() == ["updated_at", "id", "department_id", "assignee_id", "tags"]
    assert not database.table_exists("console_names_stamp")
    Department.update(name="Help").where(Department.id == desk.support.id).execute()  # no trigger
    STAMP.up(None, database)
    if sqlite:
        assert _scope_index() == ["updated_at", "id", "department_id", "assignee_id", "tags",
                                  "due_at"]
    first = _stamp()
    Department.update(name="Support").where(Department.id == desk.support.id).execute()
    assert _stamp() != first


def test_the_api_list_shows_a_change_made_through_another_connection_at_once(
        desk: Any, client: Any, other: Any) -> None:
    """The API's categories, departments and assignees come from the kept names too: the
    list is two statements (the token with the stamp, the tickets), and a change shows on the
    next list."""
    from .test_api import bearer, give_token

    ticket = new_ticket(desk.payments)
    Ticket.update(assignee=desk.agent.id).where(Ticket.id == ticket.id).execute()
    headers = bearer(give_token(Staff.get_by_id(desk.admin.id)))

    def listed() -> dict[str, Any]:
        found = client.get("/api/v1/tickets", headers=headers).get_json()["tickets"]
        return next(t for t in found if t["number"] == ticket.id)

    first = listed()
    assert first["category"] == {"slug": "payments-and-subscriptions",
                                 "name": "Payments and subscriptions"}
    assert first["department"]["slug"] == "support"
    assert first["assignee"]["email"] == "agent@desk.test"
    with Statements() as caught:
        assert listed() == first
    assert len(caught.sql) == 2, caught.sql
    assert '"console_names_stamp"' in caught.text[0] and 'FROM "ticket"' in caught.text[1]
    other.execute_sql(f"UPDATE \"category\" SET slug = 'plans' WHERE id = {desk.payments.id}")
    assert listed()["category"]["slug"] == "plans"
    other.execute_sql(f"UPDATE \"department\" SET slug = 'care', name = 'Care' "
                      f"WHERE id = {desk.support.id}")
    assert listed()["department"] == {"id": desk.support.id, "slug": "care", "name": "Care"}
    other.execute_sql(f"UPDATE \"staff\" SET email = 'agus@desk.test' WHERE id = {desk.agent.id}")
    assert listed()["assignee"]["email"] == "agus@desk.test"
