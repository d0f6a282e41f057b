"""What admins shape: categories and fields, departments, staff, contacts; dashboard, plugins."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from core.models import (
    Category,
    CategoryField,
    Contact,
    ContactIdentity,
    Department,
    Priority,
    Staff,
    Ticket,
    utcnow,
)
from core.passwords import verify_password

from .test_admin_helpers import csrf_token, new_ticket, post, sign_in


def test_category_with_a_required_field_is_created(desk: Any, client: Any) -> None:
    sign_in(client, "admin@desk.test")
    response = post(client, "/admin/categories/new/", {
        "user_type": str(desk.member.id), "parent": "__None", "name": "Chargebacks",
        "slug": "chargebacks", "description": "", "position": "3",
        "default_department": str(desk.billing.id), "default_priority": "high",
        "visible": "y",
        "fields-0-name": "transaction_id", "fields-0-label": "Transaction id",
        "fields-0-kind": "text", "fields-0-required": "y", "fields-0-choices": "",
        "fields-0-help_text": "", "fields-0-position": "1",
    }, token_from="/admin/categories/new/")
    assert response.status_code == 302, response.get_data(as_text=True)
    category = Category.get(Category.slug == "chargebacks")
    assert category.default_department_id == desk.billing.id
    field = CategoryField.get(CategoryField.category == category)
    assert (field.name, field.required) == ("transaction_id", True)


def test_editing_a_category_bumps_updated_at(desk: Any, client: Any) -> None:
    old = utcnow() - dt.timedelta(days=3)
    Category.update(updated_at=old).where(Category.id == desk.refunds.id).execute()
    sign_in(client, "admin@desk.test")
    url = f"/admin/categories/edit/?id={desk.refunds.id}"
    response = post(client, url, {
        "user_type": str(desk.member.id), "parent": str(desk.payments.id), "name": "Refunds!",
        "slug": "refunds", "description": "", "position": "1", "default_department": "__None",
        "default_priority": "normal", "visible": "y"}, token_from=url)
    assert response.status_code == 302
    fresh = Category.get_by_id(desk.refunds.id)
    assert fresh.name == "Refunds!" and fresh.updated_at > old
    # The list says when, as a person reads it, not as the database stores it.
    html = client.get("/admin/categories/").get_data(as_text=True)
    assert re.search(r'<time datetime="[-\dT:]+Z" title="\d+ \w{3} \d{4} \d\d:\d\d UTC">'
                     r"(just now|1 min ago)</time>", html)
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", html)


def test_category_parent_of_another_user_type_is_refused(desk: Any, client: Any) -> None:
    sign_in(client, "admin@desk.test")
    response = post(client, "/admin/categories/new/", {
        "user_type": str(desk.studio.id), "parent": str(desk.payments.id), "name": "Mixed",
        "slug": "mixed", "position": "1", "default_priority": "normal"},
        token_from="/admin/categories/new/")
    assert "another user type" in response.get_data(as_text=True)
    assert not Category.select().where(Category.slug == "mixed").exists()


def test_deleting_a_used_category_or_department_is_refused(desk: Any, client: Any) -> None:
    new_ticket(desk.login)
    sign_in(client, "admin@desk.test")
    token = csrf_token(client, "/admin/categories/")
    response = client.post("/admin/categories/delete/", data={
        "csrf_token": token, "id": desk.login.id, "url": "/admin/categories/"},
        follow_redirects=True)
    assert "used by tickets" in response.get_data(as_text=True)
    assert Category.get_or_none(Category.id == desk.login.id) is not None
    assert CategoryField.select().where(CategoryField.category == desk.login).exists()

    response = client.post("/admin/departments/delete/", data={
        "csrf_token": token, "id": desk.support.id, "url": "/admin/departments/"},
        follow_redirects=True)
    assert "has tickets" in response.get_data(as_text=True)
    assert Department.get_or_none(Department.id == desk.support.id) is not None
    # The bulk delete action is guarded the same way.
    client.post("/admin/departments/action/", data={
        "csrf_token": token, "action": "delete", "rowid": [desk.support.id]})
    assert Department.get_or_none(Department.id == desk.support.id) is not None
    assert Ticket.select().count() == 1
    # An unused one goes.
    unused = Department.create(slug="spare", name="Spare")
    client.post("/admin/departments/delete/", data={"csrf_token": token, "id": unused.id})
    assert Department.get_or_none(Department.id == unused.id) is None


def test_delete_needs_csrf(desk: Any, client: Any) -> None:
    unused = Department.create(slug="spare", name="Spare")
    sign_in(client, "admin@desk.test")
    assert client.post("/admin/departments/delete/", data={"id": unused.id}).status_code == 400
    assert Department.get_or_none(Department.id == unused.id) is not None


def test_staff_password_is_hashed_and_never_shown(desk: Any, client: Any) -> None:
    sign_in(client, "admin@desk.test")
    response = post(client, "/admin/staff/new/", {
        "name": "Nina New", "email": "Nina@Desk.test", "role": "agent", "active": "y",
        "language": "en", "locked_until": "", "departments": [str(desk.billing.id)],
        "new_password": "a long enough password"}, token_from="/admin/staff/new/")
    assert response.status_code == 302, response.get_data(as_text=True)
    staff = Staff.get(Staff.email == "nina@desk.test")
    assert verify_password(staff.password_hash, "a long enough password")
    assert staff.department_ids() == {desk.billing.id}
    for url in ("/admin/staff/", f"/admin/staff/edit/?id={staff.id}"):
        html = client.get(url).get_data(as_text=True)
        assert "$argon2" not in html and staff.password_hash not in html
    # A short password is refused with the reason.
    response = post(client, f"/admin/staff/edit/?id={staff.id}", {
        "name": "Nina New", "email": "nina@desk.test", "role": "agent", "active": "y",
        "language": "en", "new_password": "short"}, token_from="/admin/staff/")
    assert "at least 10 characters" in response.get_data(as_text=True)
    # Unlocking: clearing locked_until.
    Staff.update(locked_until=utcnow() + dt.timedelta(minutes=5), failed_logins=0).where(
        Staff.id == staff.id).execute()
    post(client, f"/admin/staff/edit/?id={staff.id}", {
        "name": "Nina New", "email": "nina@desk.test", "role": "agent", "active": "y",
        "language": "en", "locked_until": "", "departments": [str(desk.billing.id)]},
        token_from="/admin/staff/")
    assert Staff.get_by_id(staff.id).locked_until is None
    assert client.post("/admin/staff/delete/", data={
        "csrf_token": csrf_token(client, "/admin/staff/"), "id": staff.id}).status_code == 302
    assert Staff.get_or_none(Staff.id == staff.id) is not None  # staff are deactivated


def test_contacts_merge(desk: Any, client: Any) -> None:
    keep_ticket = new_ticket(desk.login, email="one@example.test")
    dup_ticket = new_ticket(desk.login, email="two@example.test")
    keep, dup = keep_ticket.contact, dup_ticket.contact
    sign_in(client, "admin@desk.test")
    token = csrf_token(client, "/admin/contacts/")
    page = client.post("/admin/contacts/action/", data={
        "csrf_token": token, "action": "merge", "rowid": [keep.id, dup.id]})
    assert page.status_code == 200 and "Merge" in page.get_data(as_text=True)
    response = client.post("/admin/contacts/merge/", data={
        "csrf_token": token, "keep": keep.id, "contact": [keep.id, dup.id]})
    assert response.status_code == 302
    assert Contact.get_by_id(dup.id).merged_into_id == keep.id
    assert Ticket.get_by_id(dup_ticket.id).contact_id == keep.id
    assert ContactIdentity.select().where(ContactIdentity.contact == keep).count() == 2


def test_agent_is_refused_admin_work(desk: Any, client: Any) -> None:
    sign_in(client, "agent@desk.test")
    token = csrf_token(client, "/admin/profile/")
    one = new_ticket(desk.login, email="one@example.test").contact
    two = new_ticket(desk.login, email="two@example.test").contact
    assert client.post("/admin/contacts/merge/", data={
        "csrf_token": token, "keep": one.id, "contact": [one.id, two.id]}).status_code == 403
    assert Contact.get_by_id(two.id).merged_into_id is None
    assert client.post("/admin/departments/delete/", data={
        "csrf_token": token, "id": desk.management.id}).status_code == 403


def test_dashboard_draws_svg_scoped_to_the_viewer(desk: Any, client: Any) -> None:
    from core.services.tickets import Actor, reply, update_ticket

    answered = new_ticket(desk.login, subject="a")
    reply(answered, desk.agent, "hello")
    hidden = new_ticket(desk.account, channel="email", subject="b")
    update_ticket(hidden, Actor.agent(desk.admin), department=desk.billing)
    sign_in(client, "admin@desk.test")
    html = client.get("/admin/").get_data(as_text=True)
    assert html.count("<svg") == 5
    assert "<script" not in html.split("<svg", 1)[1].rsplit("</svg>", 1)[0]
    assert "Web form" in html and "email" in html and "Billing" in html  # declared labels
    assert "answered ticket" in html
    agent = client.application.test_client()
    sign_in(agent, "agent@desk.test")
    html = agent.get("/admin/").get_data(as_text=True)
    assert "<svg" in html and "Billing" not in html


def test_plugins_page_lists_installed_plugins(make_app: Any) -> None:
    from core import db as core_db

    from .factories import build_desk

    app = make_app(plugins=["billing_desk"])
    with app.app_context(), core_db.connection():
        build_desk()
    client = app.test_client()
    sign_in(client, "admin@desk.test")
    html = client.get("/admin/plugins/").get_data(as_text=True)
    rows = {name: row for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)
            for name in re.findall(r'<td class="plugin-name">(\w+)<', row)}
    assert {"billing_desk", "email_intake", "console"} <= set(rows)
    assert "route_ticket" in rows["billing_desk"] and "contact_channels" in rows["billing_desk"]
    assert "not loaded" in rows["email_intake"] and "contact_channels" not in rows["email_intake"]


def test_a_category_default_priority_is_chosen_from_the_four_priorities(desk: Any,
                                                                         client: Any) -> None:
    sign_in(client, "admin@desk.test")
    url = f"/admin/categories/edit/?id={desk.payments.id}"
    html = client.get(url).get_data(as_text=True)
    select = re.search(r'<select[^>]*id="default_priority"[^>]*>(.*?)</select>', html, re.S)
    assert select, "default priority is not a select"
    options = re.findall(r'<option[^>]*value="([^"]*)"', select.group(1))
    assert options == list(Priority.ALL)
    assert re.search(r'<option selected value="high">|<option value="high" selected',
                     select.group(1))
    data = {"user_type": str(desk.member.id), "parent": "__None", "name": "Payments",
            "slug": "payments-and-subscriptions", "description": "", "position": "2",
            "default_department": "__None", "visible": "y"}
    assert post(client, url, dict(data, default_priority="urgent"),
                token_from=url).status_code == 302
    assert Category.get_by_id(desk.payments.id).default_priority == Priority.URGENT
    post(client, url, dict(data, default_priority="whenever"), token_from=url)
    assert Category.get_by_id(desk.payments.id).default_priority == Priority.URGENT


def test_categories_that_share_a_name_show_their_user_type(desk: Any, client: Any) -> None:
    studio_payments = Category.create(user_type=desk.studio, slug="payments",
                                      name="Payments and subscriptions", position=3)
    new_ticket(desk.payments, subject="Member paid twice")
    new_ticket(studio_payments, email="s@example.test", subject="Studio paid twice")
    sign_in(client, "admin@desk.test")
    member_label = "Member › Payments and subscriptions"
    studio_label = "Studio › Payments and subscriptions"
    # The dashboard's chart of top categories.
    html = client.get("/admin/").get_data(as_text=True)
    assert member_label in html and studio_label in html
    # The inbox: its category column and its category filter's choices.
    html = client.get("/admin/tickets/").get_data(as_text=True)
    assert member_label in html and studio_label in html
    groups = json.loads(re.search(r'id="filter-groups-data" class="d-none">(.*?)</div>',
                                  html, re.S).group(1))
    choices = {label for _, label in groups["Category"][0]["options"]}
    assert {member_label, studio_label,
            "Member › Payments and subscriptions › Refunds"} <= choices
    # The category list (a sub-category's parent) and the parent select box.
    html = client.get("/admin/categories/").get_data(as_text=True)
    assert member_label in html
    html = client.get(f"/admin/categories/edit/?id={desk.refunds.id}").get_data(as_text=True)
    assert f">{member_label}</option>" in html and f">{studio_label}</option>" in html


def _texts(svg: str) -> tuple[float, list[tuple[float, str, str]]]:
    width = float(re.search(r'viewBox="0 0 (\d+)', svg).group(1))
    texts = re.findall(r'<text x="([\d.]+)"[^>]*text-anchor="(\w+)"[^>]*>(?:<title>[^<]*</title>)?'
                       r"([^<]*)</text>", svg)
    return width, [(float(x), anchor, text) for x, anchor, text in texts]


def test_chart_labels_fit_inside_the_chart_and_keep_their_full_text() -> None:
    from markupsafe import Markup

    from admin.charts import horizontal_bars, stacked_bars, text_width

    long = ("Independent model › Payments and subscriptions › Refund requests for "
            "subscriptions bought through a mobile app store")
    svg = str(horizontal_bars("Top", [(long, [3, 12]), ("Short", [1, 0])],
                              ("this week", "last week")))
    width, texts = _texts(svg)
    assert texts, svg
    for x, anchor, text in texts:
        drawn = text_width(Markup(text).unescape(), 11)
        assert anchor == "start" and x + drawn <= width, (text, x, drawn, width)
    assert f"<title>{Markup.escape(long)}</title>" in svg  # shortened on screen, whole on hover
    assert any(text.endswith("…") for _, _, text in texts)
    # A legend of many series wraps onto more rows instead of running off the right edge.
    series = {f"channel number {i}": [i, 1] for i in range(8)}
    svg = str(stacked_bars("Opened", ["11-28", "11-29"], series))
    width, texts = _texts(svg)
    legend = [(x, text) for x, anchor, text in texts if text.startswith("channel")]
    assert len(legend) == 8
    assert all(x + text_width(text, 10) <= width for x, text in legend)
    assert len({y for y in re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="10"', svg)}) > 1
