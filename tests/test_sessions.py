"""Console sessions live on the server: sign-out, a new password and deactivation end them at once."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from admin.auth import end_sessions
from core import db as core_db
from core.models import Staff, StaffSession, utcnow

from .factories import PASSWORD
from .test_admin_helpers import csrf_token, sign_in


def copy_of(app: Any, client: Any) -> Any:
    """Another browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief.set_cookie("session", cookie.value)
    return thief


def test_signing_out_ends_the_session_for_a_copied_cookie_too(desk: Any, app: Any) -> None:
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    thief = copy_of(app, client)
    assert thief.get("/admin/").status_code == 200
    assert client.post("/admin/logout",
                       data={"csrf_token": csrf_token(client, "/admin/profile/")}).status_code == 302
    assert thief.get("/admin/").status_code == 302
    assert StaffSession.select().count() == 0


def test_each_sign_in_is_its_own_session_and_ending_one_keeps_the_other(desk: Any,
                                                                         app: Any) -> None:
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, "agent@desk.test")
    sign_in(phone, "agent@desk.test")
    assert StaffSession.select().where(StaffSession.staff == desk.agent.id).count() == 2
    laptop.post("/admin/logout", data={"csrf_token": csrf_token(laptop, "/admin/profile/")})
    assert laptop.get("/admin/").status_code == 302
    assert phone.get("/admin/").status_code == 200


def test_a_new_password_ends_every_session_including_copies(desk: Any, app: Any) -> None:
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    thief = copy_of(app, client)
    response = client.post("/admin/profile/", data={
        "csrf_token": csrf_token(client, "/admin/profile/"), "name": "Agus", "language": "en",
        "current_password": PASSWORD, "new_password": "a brand new passphrase",
        "confirm": "a brand new passphrase"})
    assert response.status_code == 302
    assert thief.get("/admin/").status_code == 302
    assert client.get("/admin/").status_code == 302
    assert StaffSession.select().where(StaffSession.staff == desk.agent.id).count() == 0


def test_a_password_set_elsewhere_ends_sessions_opened_with_the_old_one(desk: Any,
                                                                         app: Any) -> None:
    from core.passwords import hash_password

    client = app.test_client()
    sign_in(client, "agent@desk.test")
    # As `loket create-admin` or an admin's edit would: straight to the row.
    Staff.update(password_hash=hash_password("set by the admin 1")).where(
        Staff.id == desk.agent.id).execute()
    assert client.get("/admin/").status_code == 302


def test_deactivation_ends_a_copied_session_at_once(desk: Any, app: Any) -> None:
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    thief = copy_of(app, client)
    Staff.update(active=False).where(Staff.id == desk.agent.id).execute()
    assert thief.get("/admin/").status_code == 302
    assert client.get("/admin/").status_code == 302


def test_ending_all_sessions_of_one_staff_member_leaves_the_others(desk: Any, app: Any) -> None:
    agent, admin = app.test_client(), app.test_client()
    sign_in(agent, "agent@desk.test")
    sign_in(admin, "admin@desk.test")
    assert end_sessions(desk.agent.id) == 1
    assert agent.get("/admin/").status_code == 302
    assert admin.get("/admin/").status_code == 200


def test_a_session_ends_on_the_server_when_it_expires(desk: Any, app: Any) -> None:
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    row = StaffSession.get(StaffSession.staff == desk.agent.id)
    assert row.expires_at > utcnow() + dt.timedelta(minutes=470)  # session_minutes = 480
    StaffSession.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    assert client.get("/admin/").status_code == 302


def test_the_cookie_carries_a_random_session_id_stored_only_as_a_hash(desk: Any,
                                                                       app: Any) -> None:
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    with client.session_transaction() as session:
        session_id = session["_user_id"]
    assert len(session_id) >= 40 and str(desk.agent.id) != session_id
    row = StaffSession.get(StaffSession.staff == desk.agent.id)
    assert session_id not in row.token_hash
    # A forged id in an otherwise valid cookie opens nothing.
    with client.session_transaction() as session:
        session["_user_id"] = str(desk.agent.id)
    assert client.get("/admin/").status_code == 302


def test_expired_sessions_are_forgotten_by_the_consoles_hourly_job(make_app: Any) -> None:
    import datetime as dt

    from core.models import StaffSession, utcnow

    from .factories import build_desk

    app = make_app()
    assert "console.forget_expired_sessions" in app.extensions["loket"].jobs.tasks
    with app.app_context(), core_db.connection():
        desk = build_desk()
        for minutes, token in ((-5, "a" * 64), (30, "b" * 64)):
            StaffSession.create(token_hash=token, staff=desk.agent, password_fingerprint="x",
                                expires_at=utcnow() + dt.timedelta(minutes=minutes))
    assert app.extensions["loket"].jobs.tasks["console.forget_expired_sessions"].call_local() == 1
    with app.app_context(), core_db.connection():
        assert [s.token_hash for s in StaffSession.select()] == ["b" * 64]


def test_the_cookie_signer_is_kept_and_follows_a_new_secret_key(app: Any) -> None:
    # One serializer serves every request; changing the key (or its fallbacks) makes a new
    # one, and a cookie signed with a key moved to the fallbacks still reads.
    from flask import request, session

    interface = app.session_interface
    first = interface.get_signing_serializer(app)
    assert interface.get_signing_serializer(app) is first
    with app.test_request_context():
        session["probe"] = "kept"
        cookie = first.dumps(dict(session))
    old_key = app.secret_key
    app.secret_key = "another key for this test"
    try:
        assert interface.get_signing_serializer(app) is not first
        with app.test_request_context(headers={"Cookie": f"session={cookie}"}):
            assert "probe" not in interface.open_session(app, request)
        app.config["SECRET_KEY_FALLBACKS"] = [old_key]
        with app.test_request_context(headers={"Cookie": f"session={cookie}"}):
            assert interface.open_session(app, request)["probe"] == "kept"
    finally:
        app.secret_key = old_key
        app.config["SECRET_KEY_FALLBACKS"] = []


def test_a_console_page_does_not_send_the_unchanged_session_cookie_again(desk: Any,
                                                                        app: Any) -> None:
    client = app.test_client()
    response = sign_in(client, "agent@desk.test")
    assert "session=" in response.headers.get("Set-Cookie", "")  # a sign-in changes it
    client.get("/admin/tickets/")  # the first page stores the session's CSRF token
    for path in ("/admin/tickets/", "/admin/profile/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers, path
    # A change (a chosen language) is sent.
    assert "session=" in client.get("/admin/?lang=id").headers.get("Set-Cookie", "")


def test_an_unsent_cookie_is_still_refused_at_once_when_its_session_ends(desk: Any,
                                                                         app: Any) -> None:
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    thief = copy_of(app, client)
    assert thief.get("/admin/tickets/").status_code == 200
    assert thief.get("/admin/tickets/").status_code == 200
    end_sessions(desk.agent.id)
    assert thief.get("/admin/tickets/").status_code == 302
    assert client.get("/admin/tickets/").status_code == 302


def test_the_kept_csrf_token_is_bound_to_its_session(desk: Any, app: Any) -> None:
    first, second = app.test_client(), app.test_client()
    sign_in(first, "agent@desk.test")
    sign_in(second, "agent@desk.test")
    from core import security

    token = csrf_token(first, "/admin/tickets/")
    assert csrf_token(first, "/admin/tickets/") == token
    assert token in {kept for kept, _made in security._SIGNED.values()}  # signed once
    assert csrf_token(second, "/admin/tickets/") != token
    # The other session's token is refused; the session's own passes the guard.
    data = {"name": "Agus", "language": "en"}
    assert second.post("/admin/profile/", data={**data, "csrf_token": token}).status_code == 400
    assert first.post("/admin/profile/", data={**data, "csrf_token": token}).status_code == 302
    # Signed out and in again: a new session, whose pages carry a new token; the old refused.
    first.post("/admin/logout", data={"csrf_token": token})
    sign_in(first, "agent@desk.test")
    assert csrf_token(first, "/admin/tickets/") != token
    assert first.post("/admin/profile/", data={**data, "csrf_token": token}).status_code == 400


def test_a_kept_csrf_token_is_renewed_within_a_tenth_of_a_time_limit(desk: Any,
                                                                     app: Any) -> None:
    from core import security

    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    client = app.test_client()
    sign_in(client, "agent@desk.test")
    token = csrf_token(client, "/admin/tickets/")
    assert csrf_token(client, "/admin/tickets/") == token
    (key,) = [key for key, (kept, _made) in security._SIGNED.items() if kept == token]
    security._SIGNED[key] = ("an old token", time.monotonic() - 361)  # older than a tenth
    renewed = csrf_token(client, "/admin/tickets/")
    assert renewed != "an old token"
    assert time.monotonic() - security._SIGNED[key][1] < 60
    assert client.post("/admin/profile/", data={"name": "Agus", "language": "en",
                                                "csrf_token": renewed}).status_code == 302


def test_a_posted_ticket_form_signs_no_new_csrf_token_and_shows_the_sessions_kept_one(
        make_app: Any, monkeypatch: Any) -> None:
    # Flask-WTF's form field signed a fresh token for every form built, a posted one too;
    # the form now carries the session's kept token (core.security.FormCsrf), which the
    # guard checks as every token: a form shown again after an error posts with it.
    import re

    import flask_wtf.csrf

    from core import security

    from .factories import build_desk

    app = make_app()  # CSRF on
    with app.app_context(), core_db.connection():
        build_desk()
    client = app.test_client()
    page = client.get("/help/member/registration-and-login/new").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    signed: list[str] = []
    real = flask_wtf.csrf.URLSafeTimedSerializer

    class Counting(real):  # type: ignore[misc,valid-type]
        def dumps(self, obj: Any, salt: Any = None) -> Any:
            signed.append(obj)
            return super().dumps(obj, salt)

    monkeypatch.setattr(flask_wtf.csrf, "URLSafeTimedSerializer", Counting)
    failed = client.post("/help/member/registration-and-login/new", data={"csrf_token": token, "name": "Siti"})
    assert failed.status_code == 200 and signed == []  # checked, nothing signed
    shown = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      failed.get_data(as_text=True)).group(1)
    assert shown == token and token in {kept for kept, _made in security._SIGNED.values()}
    refused = app.test_client().post("/help/member/registration-and-login/new",
                                     data={"csrf_token": token, "name": "Siti"})
    assert refused.status_code == 400  # another browser's session: the guard refuses it


def test_the_session_cookie_is_signed_as_flask_signs_it_with_each_key_derived_once(
        app: Any) -> None:
    from flask.sessions import SecureCookieSessionInterface

    ours = app.session_interface.get_signing_serializer(app)
    flasks = SecureCookieSessionInterface().get_signing_serializer(app)
    data = {"probe": "kept", "n": 3}
    assert ours.loads(flasks.dumps(data)) == data
    assert flasks.loads(ours.dumps(data)) == data
    assert ours.make_signer() is ours.make_signer()  # one signer for every request
    signer = ours.make_signer()
    assert signer.derive_key() == flasks.make_signer().derive_key()
    assert list(signer._derived) == [signer.secret_keys[-1]]


def test_a_posted_token_is_checked_with_a_kept_checker_and_still_refused_when_wrong(
        make_app: Any, monkeypatch: Any, caplog: Any) -> None:
    # Flask-WTF built a serializer, a signer and its derived key for every token it checked;
    # the guard's check (core.security.validate_csrf) keeps them per secret key. What it
    # checks stays Flask-WTF's: a missing, forged, expired or another session's token is
    # refused with Flask-WTF's reason, and a good one passes.
    import logging
    import re

    import flask_wtf.csrf
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    from core import security

    from .factories import build_desk

    app = make_app()  # CSRF on
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    with app.app_context(), core_db.connection():
        build_desk()
    form = "/help/member/registration-and-login/new"
    client = app.test_client()
    page = client.get(form).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    built: list[object] = []
    real = flask_wtf.csrf.URLSafeTimedSerializer

    class Counting(real):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(flask_wtf.csrf, "URLSafeTimedSerializer", Counting)
    security._CHECKERS.clear()
    data = {"name": "Siti"}  # the form fails on its own fields: it is shown again, unsent
    assert client.post(form, data={**data, "csrf_token": token}).status_code == 200
    assert client.post(form, data={**data, "csrf_token": token}).status_code == 200
    assert built == [] and list(security._CHECKERS) == [app.secret_key]  # one checker, kept

    class Old(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 7200  # two hours: past Flask-WTF's default hour

    with client.session_transaction() as session:
        raw = session["csrf_token"]
    expired = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token",
                                     signer=Old).dumps(raw)
    other = app.test_client()
    other.get(form)
    with caplog.at_level(logging.INFO, logger="flask_wtf.csrf"):
        refused = {
            "missing": client.post(form, data=data).status_code,
            "forged": client.post(form, data={**data, "csrf_token": token[:-2] + "xx"}).status_code,
            "expired": client.post(form, data={**data, "csrf_token": expired}).status_code,
            "another session's": other.post(form, data={**data, "csrf_token": token}).status_code,
        }
    assert refused == dict.fromkeys(refused, 400)
    assert [record.getMessage() for record in caplog.records
            if record.name == "flask_wtf.csrf"] == [
        "The CSRF token is missing.", "The CSRF token is invalid.",
        "The CSRF token has expired.", "The CSRF tokens do not match."]
    # A new secret key: tokens signed with the old one are refused, its own pass.
    app.secret_key = "a-new-secret-key-for-this-test"
    assert client.post(form, data={**data, "csrf_token": token}).status_code == 400
    fresh = app.test_client()
    page = fresh.get(form).get_data(as_text=True)
    new_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert fresh.post(form, data={**data, "csrf_token": new_token}).status_code == 200
    assert app.secret_key in security._CHECKERS
