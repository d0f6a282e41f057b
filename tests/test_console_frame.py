"""The console's frame (menu, static links) is rendered once and kept: never for the wrong viewer."""

from __future__ import annotations

import re
from typing import Any

from flask_admin import expose
from flask_babel import get_locale

from admin.base import SecuredBaseView
from core import hookimpl
from core.models import Role, Staff

from .test_admin_helpers import sign_in


def menu_links(html: str) -> set[str]:
    """The hrefs of the menu bar (the navbar before the signed-in staff member's links)."""
    nav = html.split('id="admin-navbar-collapse"', 1)[1].split('href="/admin/profile/"', 1)[0]
    return set(re.findall(r'href="([^"]+)"', nav))


def test_an_agent_never_gets_the_menu_kept_for_an_admin(desk: Any, app: Any) -> None:
    admin, agent = app.test_client(), app.test_client()
    sign_in(admin, "admin@desk.test")
    sign_in(agent, "agent@desk.test")
    for _ in range(2):  # the second round is served from what the first kept
        admins = menu_links(admin.get("/admin/tickets/").get_data(as_text=True))
        agents = menu_links(agent.get("/admin/tickets/").get_data(as_text=True))
        assert "/admin/staff/" in admins and "/admin/departments/" in admins
        assert "/admin/staff/" not in agents and "/admin/departments/" not in agents
        assert "/admin/tickets/" in agents


def test_an_admin_gets_the_admins_menu_after_an_agent_filled_the_store(desk: Any,
                                                                     app: Any) -> None:
    agent, admin = app.test_client(), app.test_client()
    sign_in(agent, "agent@desk.test")
    sign_in(admin, "admin@desk.test")
    assert "/admin/staff/" not in menu_links(agent.get("/admin/tickets/").get_data(as_text=True))
    assert "/admin/staff/" in menu_links(admin.get("/admin/tickets/").get_data(as_text=True))


def test_a_role_change_shows_in_the_next_pages_menu(desk: Any, app: Any) -> None:
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    assert "/admin/staff/" not in menu_links(client.get("/admin/").get_data(as_text=True))
    Staff.update(role=Role.ADMIN).where(Staff.id == desk.agent.id).execute()
    assert "/admin/staff/" in menu_links(client.get("/admin/").get_data(as_text=True))


def test_the_menu_marks_the_page_it_is_on(desk: Any, app: Any) -> None:
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    for _ in range(2):
        inbox = client.get("/admin/tickets/").get_data(as_text=True)
        profile = client.get("/admin/profile/").get_data(as_text=True)
        assert re.search(r'<li class="active">\s*<a class="nav-link " href="/admin/tickets/"',
                         inbox)
        assert not re.search(r'<li class="active">\s*<a class="nav-link " href="/admin/tickets/"',
                             profile)


class LocaleName:
    """A menu entry's name in the request's language, as a translated name would be."""

    def __str__(self) -> str:
        return f"Reports-{get_locale()}"


class ReportsPage(SecuredBaseView):
    @expose("/")
    def index(self) -> str:
        return self.render("loket_admin/plugins.html", plugins=[])


class ReportsPlugin:
    @hookimpl
    def register_admin_views(self) -> list[Any]:
        return [ReportsPage(name=LocaleName(), endpoint="reports", url="reports")]


def test_the_menu_kept_for_one_language_is_not_served_in_another(make_app: Any) -> None:
    from core import db as core_db

    from .factories import build_desk

    app = make_app(extra_plugins=(ReportsPlugin(),))
    with app.app_context(), core_db.connection():
        build_desk()
    english, indonesian = app.test_client(), app.test_client()
    sign_in(english, "admin@desk.test")
    sign_in(indonesian, "admin@desk.test")
    assert "Reports-id" in indonesian.get("/admin/reports/?lang=id").get_data(as_text=True)
    for _ in range(2):
        page = english.get("/admin/reports/").get_data(as_text=True)
        assert "Reports-en" in page and "Reports-id" not in page
        page = indonesian.get("/admin/reports/").get_data(as_text=True)
        assert "Reports-id" in page and "Reports-en" not in page


def test_each_page_gets_its_own_nonce_in_the_kept_links(desk: Any, app: Any) -> None:
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    seen = set()
    for _ in range(3):
        response = client.get("/admin/tickets/")
        nonce = response.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
        html = response.get_data(as_text=True)
        scripts = re.findall(r"<script ([^>]*)>", html)
        assert scripts and all(f'nonce="{nonce}"' in attrs for attrs in scripts
                               if "nonce=" in attrs)
        assert set(re.findall(r'nonce="([^"]+)"', html)) == {nonce}
        seen.add(nonce)
    assert len(seen) == 3


def test_the_lists_kept_links_follow_each_requests_own_arguments(desk: Any, app: Any) -> None:
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    for _ in range(2):
        for word in ("first", "sec<ond>"):
            html = client.get("/admin/tickets/", query_string={"search": word}).get_data(
                as_text=True)
            head = html.split("<thead>", 1)[1].split("</thead>", 1)[0]
            sort_links = re.findall(r'href="([^"]+)"', head)
            assert sort_links and all("search=" in link for link in sort_links)
            kept = "sec%3Cond%3E" if "<" in word else word
            assert all(f"search={kept}" in link for link in sort_links)
            sizes = re.findall(r'class="dropdown-item[^"]*" href="([^"]+page_size=[^"]+)"', html)
            assert sizes and all(f"search={kept}" in link for link in sizes)
            assert "<ond>" not in html.split("</thead>")[0].split("<thead>")[-1]
    plain = client.get("/admin/tickets/").get_data(as_text=True)
    head = plain.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert "search=" not in head


def test_first_pages_asked_at_once_each_get_their_own_page(desk: Any, app: Any) -> None:
    """A template's first render holds a lock (one thread compiles, the others wait): pages
    asked at the same moment by different staff are each their own, and after it the
    template renders without the lock."""
    import threading

    from admin import base

    clients = {}
    for email in ("admin@desk.test", "agent@desk.test", "billing@desk.test"):
        clients[email] = app.test_client()
        sign_in(clients[email], email)
    base._RENDERED.discard("loket_admin/profile.html")
    barrier, pages = threading.Barrier(len(clients)), {}

    def ask(email: str) -> None:
        barrier.wait()
        pages[email] = clients[email].get("/admin/profile/").get_data(as_text=True)

    threads = [threading.Thread(target=ask, args=(email,)) for email in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "Ada Admin (admin)" in pages["admin@desk.test"]
    assert "Agus Agent (agent)" in pages["agent@desk.test"]
    assert "Bea Billing (agent)" in pages["billing@desk.test"]
    assert "/admin/staff/" in menu_links(pages["admin@desk.test"])
    assert "/admin/staff/" not in menu_links(pages["billing@desk.test"])
    assert "loket_admin/profile.html" in base._RENDERED


class NotePage(SecuredBaseView):
    """A plugin's page whose template puts this request's value in a kept block."""

    @expose("/")
    def index(self) -> str:
        from flask import request

        return self.render("notes_plugin/page.html", note=request.args.get("note", ""))


class NotesPlugin:
    @hookimpl
    def register_admin_views(self) -> list[Any]:
        return [NotePage(name="Notes", endpoint="plugin_notes", url="plugin-notes")]


def test_a_plugin_template_that_fills_a_kept_block_per_request_is_rendered_afresh(
        make_app: Any) -> None:
    from jinja2 import ChoiceLoader, DictLoader

    from core import db as core_db

    from .factories import build_desk

    app = make_app(extra_plugins=(NotesPlugin(),))
    app.jinja_env.loader = ChoiceLoader([DictLoader({"notes_plugin/page.html": (
        "{% extends 'admin/master.html' %}"
        "{% block tail_js %}{{ super() }}<script>var note = {{ note|tojson }};</script>"
        "{% endblock %}"
        "{% block menu_links %}<li class='note'>{{ note }}</li>{% endblock %}")}),
        app.jinja_env.loader])
    with app.app_context(), core_db.connection():
        build_desk()
    client = app.test_client()
    sign_in(client, "admin@desk.test")
    for note in ("first", "second", "third"):
        response = client.get(f"/admin/plugin-notes/?note={note}")
        assert response.status_code == 200, response.status_code
        html = response.get_data(as_text=True)
        assert f'var note = "{note}";' in html and f"<li class='note'>{note}</li>" in html
        assert html.count("var note") == 1
