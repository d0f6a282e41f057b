"""Staff sign-in for the console: Flask-Login, lockout after repeated failures, safe next=."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length

from core.models import Staff, utcnow
from core.passwords import hash_password, needs_rehash, verify_password
from core.state import loket

bp = Blueprint("loket_auth", __name__, template_folder="templates", static_folder="static",
               static_url_path="/admin/_loket/static")


class StaffUser(UserMixin):
    """The signed-in staff member as Flask-Login sees them."""

    def __init__(self, staff: Staff):
        self.staff = staff

    @property
    def is_active(self) -> bool:
        return bool(self.staff.active)

    def get_id(self) -> str:
        return f"{self.staff.id}.{password_fingerprint(self.staff)}"


def password_fingerprint(staff: Staff) -> str:
    """Part of the session id: a new password signs out every other session."""
    return hashlib.sha256(f"{staff.id}:{staff.password_hash}".encode()).hexdigest()[:16]


def load_user(user_id: str) -> StaffUser | None:
    staff_id, _, fingerprint = (user_id or "").partition(".")
    if not staff_id.isdigit():
        return None
    staff = Staff.get_or_none(Staff.id == int(staff_id))
    if staff is None or not staff.active or fingerprint != password_fingerprint(staff):
        return None
    return StaffUser(staff)


def init_login(app: Flask) -> LoginManager:
    manager = LoginManager()
    manager.login_view = "loket_auth.login"
    manager.session_protection = "basic"
    manager.user_loader(load_user)
    manager.init_app(app)

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


GENERIC_FAILURE = "The email or password is not right."


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
            login_user(StaffUser(staff))
            return redirect(target)
        flash(message, "error")
    return render_template("loket_admin/login.html", form=form)


def authenticate(email: str, password: str) -> tuple[Staff | None, str]:
    """Check a sign-in; returns (staff, "") or (None, the reason to show)."""
    config = loket().config
    now = utcnow()
    staff = Staff.get_or_none(Staff.email == email.strip().lower())
    if staff is not None and staff.locked_until is not None and staff.locked_until > now:
        verify_password(None, password)  # same cost as a real check
        return None, locked_message(staff.locked_until)
    ok = verify_password(staff.password_hash if staff else None, password)
    if staff is None:
        return None, GENERIC_FAILURE
    if not ok or not staff.active:
        if not ok:
            return None, record_failure(staff, now, config["login_max_failures"],
                                        config["login_lock_minutes"])
        return None, GENERIC_FAILURE
    updates: dict[Any, Any] = {Staff.failed_logins: 0, Staff.locked_until: None,
                               Staff.last_login_at: now}
    if needs_rehash(staff.password_hash):
        try:
            updates[Staff.password_hash] = hash_password(password)
        except ValueError:
            pass  # an old short password still signs in; the admin can set a new one
    Staff.update(updates).where(Staff.id == staff.id).execute()
    return Staff.get_by_id(staff.id), ""


def record_failure(staff: Staff, now: dt.datetime, max_failures: int,
                   lock_minutes: int) -> str:
    Staff.update(failed_logins=Staff.failed_logins + 1).where(Staff.id == staff.id).execute()
    failures = Staff.get_by_id(staff.id).failed_logins
    if max_failures and failures >= max_failures:
        until = now + dt.timedelta(minutes=lock_minutes)
        Staff.update(failed_logins=0, locked_until=until).where(Staff.id == staff.id).execute()
        return locked_message(until)
    return GENERIC_FAILURE


def locked_message(until: dt.datetime) -> str:
    return ("This account is locked after too many failed sign-ins. "
            f"Try again after {until:%H:%M} UTC, or ask an admin to unlock it.")


@bp.route("/admin/logout", methods=["POST"])
def logout() -> Any:
    form = LogoutForm()
    if form.validate_on_submit():
        logout_user()
        session.clear()
        flash("You are signed out.", "success")
    return redirect(url_for("loket_auth.login"))
