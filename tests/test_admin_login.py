"""Signing in to the console: lockout, safe next=, CSRF, sign-out."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import pytest

from admin.auth import GENERIC_FAILURE, safe_next
from core.models import Staff, utcnow

from .factories import PASSWORD
from .test_admin_helpers import csrf_token, sign_in


def test_sign_in_resets_failures_and_records_the_time(desk: Any, client: Any) -> None:
    Staff.update(failed_logins=2).where(Staff.id == desk.agent.id).execute()
    response = sign_in(client, "Agent@Desk.test")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/")
    staff = Staff.get_by_id(desk.agent.id)
    assert staff.failed_logins == 0 and staff.last_login_at is not None
    with client.session_transaction() as session:
        assert session.permanent
    assert client.get("/admin/tickets/").status_code == 200


def test_wrong_password_and_unknown_email_look_the_same(desk: Any, client: Any) -> None:
    wrong = sign_in(client, "agent@desk.test", "not the password").get_data(as_text=True)
    unknown = sign_in(client, "nobody@desk.test", "not the password").get_data(as_text=True)
    assert GENERIC_FAILURE in wrong
    assert GENERIC_FAILURE in unknown
    assert Staff.get_by_id(desk.agent.id).failed_logins == 1


def test_repeated_failures_lock_the_account(make_app: Any) -> None:
    from core import db as core_db

    from .factories import build_desk

    app = make_app(login_max_failures=3, login_lock_minutes=10)
    with app.app_context(), core_db.connection():
        desk = build_desk()
    client = app.test_client()
    for _ in range(3):
        assert GENERIC_FAILURE in sign_in(client, "agent@desk.test", "nope").get_data(as_text=True)
    with app.app_context(), core_db.connection():
        staff = Staff.get_by_id(desk.agent.id)
        assert staff.locked_until > utcnow() + dt.timedelta(minutes=9)
    # The right password is refused while locked.
    response = sign_in(client, "agent@desk.test", PASSWORD)
    assert response.status_code == 200
    assert GENERIC_FAILURE in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302
    # After the lock ends the right password works again.
    with app.app_context(), core_db.connection():
        Staff.update(locked_until=utcnow() - dt.timedelta(seconds=1)).where(
            Staff.id == desk.agent.id).execute()
    assert sign_in(client, "agent@desk.test", PASSWORD).status_code == 302


def test_a_locked_account_and_an_unknown_address_get_the_same_answer(make_app: Any) -> None:
    from core import db as core_db

    from .factories import build_desk

    app = make_app(login_max_failures=2)
    with app.app_context(), core_db.connection():
        build_desk()
    client = app.test_client()

    def answer(email: str) -> str:
        html = sign_in(client, email, "nope").get_data(as_text=True)
        # The alerts are all the page says about the attempt.
        return " ".join(re.findall(r'role="alert">(.*?)</div>', html, re.S))

    answers = {answer("agent@desk.test") for _ in range(4)}  # wrong, wrong+lock, locked, locked
    answers.add(answer("nobody@desk.test"))
    assert answers == {GENERIC_FAILURE}
    assert "locked until" not in GENERIC_FAILURE and ":" not in GENERIC_FAILURE


def test_parallel_wrong_passwords_cannot_slip_past_the_lock(make_app: Any,
                                                            monkeypatch: Any) -> None:
    """100 sign-ins at once: only login_max_failures passwords are ever checked."""
    import admin.auth
    from core import db as core_db

    from .factories import build_desk

    app = make_app(login_max_failures=5, login_lock_minutes=15)
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), core_db.connection():
        desk = build_desk()
    checked: list[str] = []
    lock = threading.Lock()
    real = admin.auth.verify_password

    def counting(stored: str | None, given: str) -> bool:
        if stored is not None:
            with lock:
                checked.append(given)
        return real(stored, given)

    monkeypatch.setattr(admin.auth, "verify_password", counting)
    start = threading.Barrier(20)
    # The right password is among them, at position 9 as in the report.
    passwords = [f"wrong {n}" for n in range(100)]
    passwords[9] = PASSWORD
    answers: list[int] = []
    # What went wrong in a thread, said by the test rather than lost as a warning: a sign-in
    # that raised (the test client passes the app's exceptions on) and one still waiting.
    errors: list[str] = []

    def attempt(chunk: list[str]) -> None:
        try:
            client = app.test_client()
            start.wait(timeout=30)
            for password in chunk:
                response = client.post("/admin/login", data={"email": "agent@desk.test",
                                                             "password": password})
                with lock:
                    answers.append(response.status_code)
        except Exception as exc:
            with lock:
                errors.append(f"{threading.current_thread().name}: {exc!r}")
            raise

    threads = [threading.Thread(target=attempt, args=(passwords[n::20],)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert [thread.name for thread in threads if thread.is_alive()] == []
    assert len(answers) == 100
    with app.app_context(), core_db.connection():
        staff = Staff.get_by_id(desk.agent.id)
    if PASSWORD in checked:
        # It came early enough to be one of the five: that is allowed, and a sign-in that
        # succeeds starts the count again, so at most five more are checked after it. The
        # list is in the order the checks began: attempts admitted among the first five
        # before the right password may begin their check after it, so the bound is the two
        # windows together, not the position of the right password plus five.
        assert checked.index(PASSWORD) < 5, checked
        assert len(checked) <= 5 + 5, checked
        assert answers.count(302) == 1, sorted(answers)
    else:
        assert len(checked) <= 5, checked
        assert answers.count(302) == 0, sorted(answers)
        assert staff.locked_until is not None and staff.locked_until > utcnow()


def test_inactive_staff_cannot_sign_in(desk: Any, client: Any) -> None:
    Staff.update(active=False).where(Staff.id == desk.agent.id).execute()
    assert sign_in(client, "agent@desk.test").status_code == 200
    assert client.get("/admin/").status_code == 302


def test_deactivating_ends_an_open_session(desk: Any, client: Any) -> None:
    sign_in(client, "agent@desk.test")
    assert client.get("/admin/").status_code == 200
    Staff.update(active=False).where(Staff.id == desk.agent.id).execute()
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("target", [
    "//evil.test/", "http://evil.test/", "https:evil.test", "/\\evil.test", "\\\\evil.test",
    "javascript:alert(1)", "evil.test", "/admin/\r\nSet-Cookie: x=1", "///evil.test",
])
def test_next_only_goes_to_local_paths(desk: Any, client: Any, target: str) -> None:
    assert safe_next(target) is None
    response = sign_in(client, "admin@desk.test", next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] in ("/admin/", "http://localhost/admin/")


def test_next_local_path_is_followed(desk: Any, client: Any) -> None:
    first = client.get("/admin/categories/?sort=1")
    assert first.status_code == 302
    assert "next=" in first.headers["Location"]
    login_page = client.get(first.headers["Location"]).get_data(as_text=True)
    assert 'value="/admin/categories/?sort=1"' in login_page
    response = sign_in(client, "admin@desk.test", next_url="/admin/categories/?sort=1")
    assert response.headers["Location"].endswith("/admin/categories/?sort=1")


def test_sign_in_needs_a_csrf_token(desk: Any, client: Any) -> None:
    assert client.application.config.get("WTF_CSRF_ENABLED", True)
    response = client.post("/admin/login", data={"email": "admin@desk.test",
                                                 "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_sign_out_is_a_post_with_csrf(desk: Any, client: Any) -> None:
    sign_in(client, "admin@desk.test")
    assert client.get("/admin/logout").status_code == 405
    assert client.post("/admin/logout").status_code == 400  # no token
    assert client.get("/admin/").status_code == 200
    token = csrf_token(client, "/admin/profile/")
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/").status_code == 302


def test_new_password_signs_out_other_sessions(desk: Any, app: Any) -> None:
    first, second = app.test_client(), app.test_client()
    sign_in(first, "agent@desk.test")
    sign_in(second, "agent@desk.test")
    token = csrf_token(first, "/admin/profile/")
    response = first.post("/admin/profile/", data={
        "csrf_token": token, "name": "Agus", "language": "en", "current_password": PASSWORD,
        "new_password": "a brand new passphrase", "confirm": "a brand new passphrase"})
    assert response.status_code == 302
    assert second.get("/admin/").status_code == 302
    assert first.get("/admin/").status_code == 302
    other = app.test_client()
    assert sign_in(other, "agent@desk.test", "a brand new passphrase").status_code == 302
