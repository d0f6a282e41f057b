"""The one secured base every console view derives from, plugin views included.

Flask-Admin views are open to anyone by default; these close them: a view
answers only a signed-in, active staff member whose role is in its ``roles``.
Anonymous visitors are sent to the sign-in page, other roles get 403.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import flask_admin
import peewee
from flask import abort, after_this_request, current_app, flash, g, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView
from flask_admin.actions import action
from flask_admin.babel import lazy_gettext
from flask_admin.contrib.peewee import ModelView
from flask_admin.form import BaseForm
from flask_babel import get_locale
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms.validators import ValidationError

from core import db
from core.models import Role, Staff
from core.security import CSP

ADMIN_ONLY = frozenset({Role.ADMIN})
STAFF = frozenset({Role.ADMIN, Role.AGENT})


def csp_nonce() -> str:
    """One nonce per request, for the few inline scripts Flask-Admin's templates carry."""
    nonce = g.get("_loket_csp_nonce")
    if nonce is None:
        nonce = g._loket_csp_nonce = secrets.token_urlsafe(18)
    return nonce


def _console_headers(response: Any) -> Any:
    # The app's strict policy, plus this request's nonce when a template used one.
    # Never 'unsafe-inline' for scripts: customer text is shown on these pages.
    if response.headers.get("Content-Security-Policy"):
        return response  # the view chose a stricter policy (downloads)
    nonce = g.get("_loket_csp_nonce")
    policy = CSP if nonce is None else CSP.replace(
        "script-src 'self'", f"script-src 'self' 'nonce-{nonce}'")
    response.headers["Content-Security-Policy"] = policy
    return response


def current_staff() -> Staff | None:
    """The signed-in staff member, or None."""
    # One look through the proxy, not two: menus ask this once per view they list.
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    if not user.is_authenticated:
        return None
    return user.staff


class AdminForm(BaseForm, FlaskForm):
    """Flask-Admin's form base with Flask-WTF's CSRF token.

    The app runs Flask-WTF's CSRFProtect on every POST, so the console's forms
    must carry that token; ``flask_admin.form.SecureForm`` signs its own,
    different token, which CSRFProtect would refuse.
    """


_STATIC_URLS: dict[tuple[Any, ...], str] = {}

# Templates this process has rendered once (so compiled): their first render holds a lock.
_RENDERED: set[str] = set()
_FIRST_RENDER = threading.RLock()

# Where the request's CSP nonce stood in a kept fragment; no page text holds a NUL.
_NONCE_MARK = "\x00loket-nonce\x00"
# Fragments kept per view; far more than its templates x languages x menus ever make.
FRAGMENTS_MAX = 256
# Only pages whose template is the console's own or Flask-Admin's keep fragments: a plugin's
# template may fill one of those blocks per request (a script with this ticket's number),
# and is then rendered afresh every time.
_OWN_TEMPLATES = (str(Path(__file__).parent / "templates"),
                  str(Path(flask_admin.__file__).parent / "templates"))
_KEEPS: dict[tuple[int, str], bool] = {}


def _keeps_fragments(template: str | None) -> bool:
    if template is None:
        return False
    key = (id(current_app.jinja_env), template)
    found = _KEEPS.get(key)
    if found is None:
        filename = current_app.jinja_env.get_template(template).filename or ""
        found = _KEEPS[key] = filename.startswith(_OWN_TEMPLATES)
    return found


def _shown(item: Any) -> Any:
    """Which of a menu entry's items this request may see, as a hashable value.

    Exactly what Flask-Admin's menu macro asks of each entry (``is_accessible`` and
    ``is_visible``; a category shows the children that pass both), so a menu kept for
    one answer is only ever served for the same answer.
    """
    if item.is_category():
        # The entries of one menu live as long as it: their ids name them. get_children()
        # has asked each child both questions; only a sub-category has more to ask.
        return tuple((id(child), _shown(child) if child.is_category() else True)
                     for child in item.get_children())
    return bool(item.is_accessible() and item.is_visible())


class SecuredMixin:
    """Sign-in and role check for any Flask-Admin view; put it first in the bases."""

    roles: ClassVar[frozenset[str]] = ADMIN_ONLY

    def is_accessible(self) -> bool:
        staff = current_staff()
        return staff is not None and staff.active and staff.role in self.roles

    def inaccessible_callback(self, name: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            target = request.full_path if request.method == "GET" else request.path
            return redirect(url_for("loket_auth.login", next=target.rstrip("?")))
        abort(403)

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        after_this_request(_console_headers)
        self.refuse_bad_return_address()
        return super()._handle_view(name, **kwargs)  # type: ignore[misc]

    def get_url(self, endpoint: str, **kwargs: Any) -> str:
        # Flask-Admin's templates link some twenty static files a page through here, each
        # a url_for; those links depend only on the file, its version and the script root.
        if endpoint.startswith(".") or not endpoint.endswith(".static"):
            return super().get_url(endpoint, **kwargs)  # type: ignore[misc]
        key = (request.script_root, endpoint, tuple(sorted(kwargs.items())))
        found = _STATIC_URLS.get(key)
        if found is None:
            found = _STATIC_URLS[key] = super().get_url(endpoint, **kwargs)  # type: ignore[misc]
        return found

    def render(self, template: str, **kwargs: Any) -> Any:
        g._loket_template = template  # part of every kept fragment's key
        if template in _RENDERED:
            return super().render(template, **kwargs)  # type: ignore[misc]
        # A new worker's first console pages compile the templates (some 70 ms of CPU), and
        # Jinja compiles them again in every thread that asks before the first is done: the
        # four threads of a worker made that a quarter of a second, the slowest pages of a
        # run. One thread compiles; the others wait for it and find them compiled.
        with _FIRST_RENDER:
            page = super().render(template, **kwargs)  # type: ignore[misc]
        _RENDERED.add(template)
        return page

    def kept_fragment(self, name: str, *key: Any, caller: Callable[[], str]) -> Markup:
        """A part of the page rendered once and kept: the menu, the static links.

        The frame around every console page cost about as much CPU as the page's own
        content, though most of it is the same for every request. Use it in a template as
        ``{% call admin_view.kept_fragment(name, *key) %}...{% endcall %}``: the body is
        rendered on the first request for its key and served from this view's store after.
        The key is ``name`` and ``key`` plus the template, the script root and the
        language; it must hold everything else the body reads. The request's CSP nonce is
        put into the kept text afresh each time. Pages rendered from a template outside the
        console's and Flask-Admin's own (a plugin's) keep nothing.
        """
        template = g.get("_loket_template")
        if not _keeps_fragments(template):
            return Markup(caller())
        full = (name, template, request.script_root, str(get_locale()), *key)
        store = self.__dict__.get("_loket_fragments")
        if store is None:
            store = self._loket_fragments = {}  # per view instance, so per app
        found = store.get(full)
        nonce = csp_nonce()
        if found is None:
            found = str(caller()).replace(nonce, _NONCE_MARK)
            if len(store) >= FRAGMENTS_MAX:
                store.clear()
            store[full] = found
        return Markup(found.replace(_NONCE_MARK, nonce) if _NONCE_MARK in found else found)

    def menu_key(self) -> tuple[Any, ...]:
        """What the console's menu bar shows this request: which entries this viewer may see."""
        admin = self.admin  # type: ignore[attr-defined]
        return (tuple(_shown(item) for item in admin.menu()),
                tuple(_shown(item) for item in admin.menu_links()))

    def refuse_bad_return_address(self) -> None:
        """400 for a ``url=`` (where to go back after a form) that holds control characters.

        Flask-Admin puts it in a Location header as it is; a CR LF there is either a
        crash in the header check or, behind a lax server, a forged header.
        """
        for value in request.values.getlist("url"):
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
                abort(400)


class SecuredBaseView(SecuredMixin, BaseView):
    """A custom console page (no model behind it)."""


# The name the hookspec documents for plugin authors.
SecuredView = SecuredBaseView


class SecuredIndexView(SecuredMixin, AdminIndexView):
    """The console's home page."""

    roles = STAFF


class SecuredModelView(SecuredMixin, ModelView):
    """A peewee model view: CSRF on every form, deletes that never cascade."""

    form_base_class = AdminForm
    page_size = 50
    can_set_page_size = True
    can_view_details = False
    can_export = False
    # Flask-Admin's default deletes related rows (recursive=True); here a row that
    # others still use is refused instead, with the reason.
    delete_refused_message: ClassVar[str] = "{name} is still in use and cannot be deleted."

    # -- Numbers from the query string and forms: bounded before they reach a query --------
    #
    # PostgreSQL refuses an id or offset out of its integer range with an error (a 500),
    # SQLite with an OverflowError; these refuse them first with 400, or find no row.

    def _get_list_extra_args(self) -> Any:
        from core.numbers import parse_page

        for name in ("page", "page_size"):
            if parse_page(request.args.get(name)) is None:
                abort(400)
        return super()._get_list_extra_args()

    def _get_list_filter_args(self) -> Any:
        from core.numbers import MAX_ID

        filters = super()._get_list_filter_args()
        for index, _name, value in filters or ():
            try:
                cleaned = self._filters[index].clean(value)
            except (TypeError, ValueError, OverflowError):
                abort(400)
            values = cleaned if isinstance(cleaned, (list, tuple)) else [cleaned]
            if any(isinstance(v, int) and not -MAX_ID <= v <= MAX_ID for v in values):
                abort(400)
        return filters

    def get_one(self, id: Any) -> Any:
        from core.numbers import parse_id

        if parse_id(id) is None:
            return None  # Flask-Admin answers "record does not exist"
        return super().get_one(id)

    def handle_action(self, return_view: str | None = None) -> Any:
        from core.numbers import parse_id

        if any(parse_id(rowid) is None for rowid in request.form.getlist("rowid")):
            abort(400)
        return super().handle_action(return_view)

    def delete_in_use(self, model: Any) -> str | None:
        """Why ``model`` must not be deleted (it is in use), or None."""
        return None

    def delete_model(self, model: Any) -> bool:
        reason = self.delete_in_use(model)
        if reason:
            flash(reason, "error")
            return False
        try:
            self.on_model_delete(model)
            with db.write_transaction():
                model.delete_instance(recursive=False)
        except ValidationError as exc:
            flash(str(exc), "error")
            return False
        except peewee.IntegrityError:
            flash(self.delete_refused_message.format(name=str(model)), "error")
            return False
        self.after_model_delete(model)
        return True

    @action("delete", lazy_gettext("Delete"),
            lazy_gettext("Are you sure you want to delete selected records?"))
    def action_delete(self, ids: Any) -> None:
        deleted = 0
        for model in self.get_query().where(self.model._meta.primary_key << list(ids)):
            if self.delete_model(model):
                deleted += 1
        if deleted:
            flash(f"{deleted} record(s) deleted.", "success")
