"""Every console view is closed: anonymous → sign-in, agents → 403 on admin views, admins in."""

from __future__ import annotations

from typing import Any

import pytest
from flask_admin import BaseView, expose

from admin.base import SecuredBaseView, SecuredMixin
from core import hookimpl
from core.models import Role
from core.plugins import PluginError

from .test_admin_helpers import csrf_token, new_ticket, sign_in


class PluginPage(SecuredBaseView):
    """A plugin's admin page, to prove plugin views go through the same walk."""

    @expose("/")
    def index(self) -> str:
        return self.render("loket_admin/plugins.html", plugins=[])


class GoodPlugin:
    @hookimpl
    def register_admin_views(self, admin: Any) -> list[Any]:
        return [PluginPage(name="Plugin page", endpoint="plugin_page", url="plugin-page")]


class OpenPage(BaseView):
    @expose("/")
    def index(self) -> str:
        return "anyone"


class BadPlugin:
    @hookimpl
    def register_admin_views(self) -> list[Any]:
        return [OpenPage(name="Open", endpoint="open_page")]


def console_views(app: Any) -> list[Any]:
    (admin,) = app.extensions["admin"]
    return list(admin._views)  # Flask-Admin has no public accessor for hidden views


def console_rules(app: Any, view: Any, ticket_id: int) -> list[tuple[str, str]]:
    """(method, url) for every route of a view, with path arguments filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] != view.endpoint or rule.endpoint.endswith(".static"):
            continue
        args = {name: ticket_id if name == "number" else 1 for name in rule.arguments}
        url = rule.build(args)[1] if args else rule.rule
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


@pytest.fixture
def walk_app(make_app: Any, spy: Any) -> Any:
    return make_app(extra_plugins=(spy, GoodPlugin()))


def test_every_view_is_secured(walk_app: Any) -> None:
    from core import db as core_db

    from .factories import build_desk

    app = walk_app
    with app.app_context(), core_db.connection():
        desk = build_desk()
        ticket = new_ticket(desk.login)
        secret_subject = ticket.subject
    views = console_views(app)
    assert {v.endpoint for v in views} >= {"admin", "tickets", "ticket", "categories", "staff",
                                           "departments", "user_types", "contacts",
                                           "canned_replies", "plugins", "profile",
                                           "plugin_page"}
    assert all(isinstance(v, SecuredMixin) for v in views)

    anonymous = app.test_client()
    agent = app.test_client()
    sign_in(agent, "agent@desk.test")
    admin = app.test_client()
    sign_in(admin, "admin@desk.test")

    walked = 0
    for view in views:
        for method, url in console_rules(app, view, ticket.id):
            walked += 1
            for who, client in (("anonymous", anonymous), ("agent", agent), ("admin", admin)):
                data = {"csrf_token": csrf_token(client)} if method == "POST" else None
                response = client.open(url, method=method, data=data)
                body = response.get_data(as_text=True)
                where = f"{who} {method} {url}"
                if who == "anonymous":
                    assert response.status_code == 302, where
                    assert "/admin/login" in response.headers["Location"], where
                    assert secret_subject not in body, where
                elif who == "agent" and Role.AGENT not in view.roles:
                    assert response.status_code == 403, where
                    assert secret_subject not in body, where
                else:
                    assert response.status_code < 500, where
                    assert "/admin/login" not in response.headers.get("Location", ""), where
                    assert response.status_code != 403, where
        # The view's own page answers its users.
        index = view.url.rstrip("/") + "/"
        if view.endpoint != "ticket":  # its root only redirects to the inbox
            assert admin.get(index).status_code == 200, index
            if Role.AGENT in view.roles:
                assert agent.get(index).status_code == 200, index
    assert walked > 40


def test_agent_cannot_open_another_departments_ticket(desk: Any, client: Any) -> None:
    theirs = new_ticket(desk.payments, subject="Refund please")  # support department
    from core.services.tickets import Actor, update_ticket

    update_ticket(theirs, Actor.agent(desk.admin), department=desk.billing)
    sign_in(client, "agent@desk.test")
    assert client.get(f"/admin/ticket/{theirs.id}/").status_code == 404
    listing = client.get("/admin/tickets/").get_data(as_text=True)
    assert "Refund please" not in listing
    token = csrf_token(client, "/admin/profile/")
    assert client.post(f"/admin/ticket/{theirs.id}/reply",
                       data={"csrf_token": token, "text": "hi", "status": "pending"}
                       ).status_code == 404
    # The billing agent sees it.
    other = client.application.test_client()
    sign_in(other, "billing@desk.test")
    assert other.get(f"/admin/ticket/{theirs.id}/").status_code == 200


def test_register_admin_views_adds_the_plugins_views(walk_app: Any) -> None:
    from core import db as core_db

    from .factories import build_desk

    with walk_app.app_context(), core_db.connection():
        build_desk()
    assert "plugin_page" in {v.endpoint for v in console_views(walk_app)}
    client = walk_app.test_client()
    assert client.get("/admin/plugin-page/").status_code == 302  # secured like core's views
    sign_in(client, "admin@desk.test")
    assert client.get("/admin/plugin-page/").status_code == 200
    assert "Plugin page" in client.get("/admin/").get_data(as_text=True)  # in the menu


def test_register_admin_views_refuses_a_view_outside_the_secured_base(make_app: Any) -> None:
    with pytest.raises(PluginError, match="SecuredView"):
        make_app(extra_plugins=(BadPlugin(),))


def test_security_headers_on_console_pages(desk: Any, client: Any) -> None:
    sign_in(client, "admin@desk.test")
    response = client.get("/admin/categories/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["Cache-Control"] == "no-store"
    nonce = policy.split("'nonce-")[1].split("'")[0]
    html = response.get_data(as_text=True)
    assert f'nonce="{nonce}"' in html
    # Inline handlers would be blocked by the CSP (admin/templates/ replaces them);
    # the javascript: links left in Flask-Admin's menus are neutralised by loket_admin.js.
    assert " onclick=" not in html
