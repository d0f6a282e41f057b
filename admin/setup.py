"""Build the console for one app: sign-in, core's views, then the plugins' views."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from core.models import (
    CannedReply,
    Category,
    Contact,
    Department,
    NotificationTemplate,
    Staff,
    Ticket,
    UserType,
)
from core.plugins import PluginError

from .auth import bp as auth_bp
from .auth import init_login
from .base import SecuredMixin, csp_nonce
from .dashboard import DashboardView
from .desk import (
    CannedReplyView,
    CategoryView,
    ContactView,
    DepartmentView,
    StaffView,
    UserTypeView,
)
from .notifications import NotificationTemplateView
from .plugins_page import PluginsView
from .profile import ProfileView
from .tickets import TicketListView, TicketPageView
from .translations import TranslationsView

DESK = "Desk"
SETUP = "Set-up"


def build_admin(app: Flask, state: Any) -> Admin:
    """A fresh Admin per app (never a module global), every view behind the secured base."""
    # Registered before Flask-Admin's blueprints so that admin/templates/ can replace
    # the few Flask-Admin templates that carry inline event handlers (the CSP blocks them).
    app.register_blueprint(auth_bp)
    init_login(app)
    admin = Admin(app, name="Loket", url="/admin",
                  index_view=DashboardView(name="Dashboard", url="/admin"),
                  theme=Bootstrap4Theme(base_template="loket_admin/base.html", fluid=True),
                  csp_nonce_generator=csp_nonce)
    views = [
        TicketListView(Ticket, name="Tickets", endpoint="tickets", url="tickets"),
        TicketPageView(name="Ticket", endpoint="ticket", url="ticket"),
        CannedReplyView(CannedReply, name="Canned replies", category=DESK,
                        endpoint="canned_replies"),
        ContactView(Contact, name="Contacts", category=DESK, endpoint="contacts"),
        UserTypeView(UserType, name="User types", category=SETUP, endpoint="user_types"),
        CategoryView(Category, name="Categories", category=SETUP, endpoint="categories"),
        DepartmentView(Department, name="Departments", category=SETUP, endpoint="departments"),
        StaffView(Staff, name="Staff", category=SETUP, endpoint="staff"),
        NotificationTemplateView(NotificationTemplate, name="Notifications", category=SETUP,
                                 endpoint="notifications"),
        TranslationsView(name="Translations", category=SETUP, endpoint="translations",
                         url="translations"),
        PluginsView(state, name="Plugins", category=SETUP, endpoint="plugins"),
        ProfileView(name="My profile", endpoint="profile", url="profile"),
    ]
    for view in views:
        admin.add_view(view)
    for plugin_name, view in plugin_views(state, admin):
        if not isinstance(view, SecuredMixin):
            raise PluginError(
                f"plugin {plugin_name!r}: admin view {view!r} does not derive from "
                "admin.base.SecuredView (or SecuredModelView); it would be open to anyone")
        admin.add_view(view)
    return admin


def plugin_views(state: Any, admin: Admin) -> list[tuple[str, Any]]:
    """(plugin name, view) for every view the enabled plugins contribute."""
    found = []
    for impl in state.pm.hook.register_admin_views.get_hookimpls():
        args = {"admin": admin} if "admin" in impl.argnames else {}
        for view in impl.function(**args) or ():
            found.append((impl.plugin_name, view))
    return found
