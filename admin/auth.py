"""Staff sign-in for the console: server-side sessions, an atomic lockout, safe next=."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from peewee import Case
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length

from core import db
from core.db import write_transaction
from core.models import Staff, StaffSession, utcnow
from core.passwords import hash_password, needs_rehash, verify_password
from core.services.names import STAMP as NAMES_STAMP
from core.state import loket

from .desk import names_stamp

bp = Blueprint("loket_auth", __name__, template_folder="templates", static_folder="static",
               static_url_path="/admin/_loket/static")


class StaffUser(UserMixin):
    """The signed-in staff member as Flask-Login sees them, with their server-side session."""

    def __init__(self, staff: Staff, session_id: str):
        self.staff = staff
        self.session_id = session_id

    @property
    def is_active(self) -> bool:
        return bool(self.staff.active)

    def get_id(self) -> str:
        # What the cookie carries: the session's random id, never the staff id.
        return self.session_id


def password_fingerprint(staff: Staff) -> str:
    """Stored with each session: a new password ends every session opened with the old one."""
    return hashlib.sha256(f"{staff.id}:{staff.password_hash}".encode()).hexdigest()[:16]


def _token_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(staff: Staff) -> StaffUser:
    """A new server-side session for ``staff`` (and tidy away their expired ones)."""
    now = utcnow()
    session_id = secrets.token_urlsafe(32)
    with write_transaction():  # one commit, in the writers' queue
        StaffSession.delete().where((StaffSession.staff == staff.id)
                                    & (StaffSession.expires_at <= now)).execute()
        StaffSession.create(
            token_hash=_token_hash(session_id), staff=staff.id,
            password_fingerprint=password_fingerprint(staff), created_at=now,
            expires_at=now + dt.timedelta(minutes=loket().config["session_minutes"]))
    return StaffUser(staff, session_id)


def forget_expired_sessions() -> int:
    """Delete every expired session row (hourly, from the console's job)."""
    with write_transaction():
        return StaffSession.delete().where(StaffSession.expires_at <= utcnow()).execute()


def end_session(session_id: str) -> None:
    """Sign-out: the session is gone on the server, so a copied cookie no longer works."""
    with write_transaction():
        StaffSession.delete().where(StaffSession.token_hash == _token_hash(session_id)).execute()


def end_sessions(staff_id: int) -> int:
    """End every session of a staff member (new password, deactivation); returns how many."""
    with write_transaction():
        return StaffSession.delete().where(StaffSession.staff == staff_id).execute()


def load_user(session_id: str) -> StaffUser | None:
    if not session_id or len(session_id) > 100:
        return None
    found = _session_staff.all(_token_hash(session_id), utcnow())
    if not found:
        return None
    fingerprint, stamp, *values = found[0]
    staff = Staff(**{name: convert(value)
                     for (name, convert), value in zip(_STAFF_FIELDS, values, strict=True)})
    if not staff.active:
        return None
    if fingerprint != password_fingerprint(staff):
        return None
    names_stamp(stamp)
    return StaffUser(staff, session_id)


# Every console page looks its session up, with its staff member and the stamp of the names
# the console shows (admin.desk keeps them under it): one statement (a round trip on
# PostgreSQL, and a statement for the server to plan), its SQL built once (core.db.Rows).
# The staff member's row is made from its columns as peewee would read them.
_STAFF_FIELDS = [(field.name, field.python_value) for field in Staff.select().selected_columns]
_session_staff = db.Rows(
    "console.session_staff",
    lambda token_hash, now: StaffSession.select(StaffSession.password_fingerprint,
                                                NAMES_STAMP,
                                                *Staff.select().selected_columns)
    .join(Staff, on=(StaffSession.staff == Staff.id))
    .where((StaffSession.token_hash == token_hash) & (StaffSession.expires_at > now)).limit(1))


def init_login(app: Flask) -> LoginManager:
    manager = LoginManager()
    manager.login_view = "loket_auth.login"
    manager.session_protection = "basic"
    manager.user_loader(load_user)
    # Templates get ``current_user`` as the lazy proxy it is: Flask-Login's own context
    # processor loads the user (and hashes the visitor's address and browser for session
    # protection) for every page rendered, the help center's included, where no template
    # asks who is signed in.
    manager.init_app(app, add_context_processor=False)
    app.context_processor(lambda: {"current_user": current_user})

    @app.before_request
    def _fresh_user() -> None:
        # Flask-Login caches the user on g. A request normally gets a fresh app
        # context, but requests made inside an already pushed one (tests, scripts)
        # share g, and would inherit the previous request's user and CSP nonce.
        g.pop("_login_user", None)
        g.pop("_loket_csp_nonce", None)

    return manager


_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None.

    Refuses //host, scheme:..., backslashes (browsers read them as slashes)
    and control characters.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or _SCHEME.match(target):
        return None
    return target


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class LogoutForm(FlaskForm):
    """Only the CSRF token: signing out is a POST from the console."""


# One answer for a wrong password, an unknown address and a locked account, so that the
# sign-in page never tells whether an address belongs to a staff member.
GENERIC_FAILURE = ("The email or password is not right. After several failed tries an "
                   "account is locked for a while.")


@bp.route("/admin/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    target = safe_next(form.next.data) or url_for("admin.index")
    if current_user.is_authenticated and request.method == "GET":
        return redirect(target)
    if form.validate_on_submit():
        staff, message = authenticate(form.email.data or "", form.password.data or "")
        if staff is not None:
            session.clear()
            session.permanent = True
            login_user(start_session(staff))
            return redirect(target)
        flash(message, "error")
    return render_template("loket_admin/login.html", form=form)


def authenticate(email: str, password: str) -> tuple[Staff | None, str]:
    """Check a sign-in; returns (staff, "") or (None, the message to show).

    The attempt is counted, and the lock taken when it is the last one allowed, in one
    UPDATE before the password is verified; an account that is locked (or unknown)
    matches no row. Parallel attempts therefore queue on the row: at most
    ``login_max_failures`` of them are ever verified per lock period.
    """
    config = loket().config
    now = utcnow()
    address = email.strip().lower()
    max_failures = config["login_max_failures"]
    attempt = Staff.failed_logins + 1
    if max_failures:
        last_try = attempt >= max_failures
        lock_until = now + dt.timedelta(minutes=config["login_lock_minutes"])
        updates: dict[Any, Any] = {
            Staff.failed_logins: Case(None, [(last_try, 0)], attempt),
            Staff.locked_until: Case(None, [(last_try, lock_until)], None),
        }
    else:
        updates = {Staff.failed_logins: attempt}
    not_locked = Staff.locked_until.is_null() | (Staff.locked_until <= now)
    with write_transaction():
        admitted = Staff.update(updates).where((Staff.email == address) & not_locked).execute()
    staff = Staff.get_or_none(Staff.email == address) if admitted else None
    ok = verify_password(staff.password_hash if staff else None, password)  # same cost always
    if staff is None or not ok or not staff.active:
        return None, GENERIC_FAILURE
    updates = {Staff.failed_logins: 0, Staff.locked_until: None, Staff.last_login_at: now}
    if needs_rehash(staff.password_hash):
        try:
            updates[Staff.password_hash] = hash_password(password)
        except ValueError:
            pass  # an old short password still signs in; the admin can set a new one
    # In the writers' queue like the count above: a bare write waits on SQLite's busy handler,
    # which polls, and many sign-ins at once could outwait its timeout.
    with write_transaction():
        Staff.update(updates).where(Staff.id == staff.id).execute()
    return Staff.get_by_id(staff.id), ""


@bp.route("/admin/logout", methods=["POST"])
def logout() -> Any:
    form = LogoutForm()
    if form.validate_on_submit():
        if current_user.is_authenticated:
            end_session(current_user.session_id)
        logout_user()
        session.clear()
        flash("You are signed out.", "success")
    return redirect(url_for("loket_auth.login"))
