"""Abuse limits: body sizes per endpoint, rate limits (429 + Retry-After), the form's spam traps."""

from __future__ import annotations

import contextlib
import http.client
import http.cookiejar
import io
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import TimestampSigner
from werkzeug.test import EnvironBuilder

from core import db as core_db
from core.config import ConfigError
from core.models import Ticket

from .factories import build_desk, fresh_rate_window

FORM = "/help/member/registration-and-login/new"
REDIS_URL = "redis://127.0.0.1:6379/15"
# Generous limits for what a test is not about, so only the one under test can trip.
OPEN = {"rate_limit_open_ticket": "1000/minute", "rate_limit_open_ticket_contact": "1000/minute",
        "rate_limit_tracking": "1000/minute", "rate_limit_api": "1000/minute",
        "rate_limit_login": "1000/minute", "rate_limit_login_account": "1000/minute"}


def limited_app(make_app: Any, **config: Any) -> Any:
    """An app with the limits on (conftest turns them off) and the small desk in its database."""
    settings = dict(OPEN, rate_limits=True)
    settings.update(config)
    app = make_app(**settings)
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), core_db.connection():
        build_desk()
    fresh_rate_window()
    return app


def api_ticket(**overrides: Any) -> dict[str, Any]:
    body = {"user_type": "member", "category": "registration-and-login", "name": "Rina",
            "email": "rina@example.com", "subject": "Cannot sign in",
            "description": "The code never arrives.",
            "fields": {"registered_email": "rina@example.com"}}
    body.update(overrides)
    return body


def form(**overrides: Any) -> dict[str, Any]:
    data = {"name": "Rina", "email": "rina@example.com", "subject": "Cannot sign in",
            "description": "The code never arrives.", "extra_registered_email": "rina@example.com"}
    data.update(overrides)
    return data


def ip(address: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def tickets(app: Any) -> int:
    with app.app_context(), core_db.connection():
        return Ticket.select().count()


def random_address() -> str:
    """An address no earlier run used: counters in the shared Redis outlive a test."""
    return "10." + ".".join(str(random.randrange(1, 255)) for _ in range(3))


# -- Body sizes ------------------------------------------------------------------------------


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    read_from = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        type(self).read_from = True
        raise AssertionError("the body was read")


def call(app: Any, builder: EnvironBuilder, **environ: Any) -> tuple[str, dict[str, str], bytes]:
    """Call the WSGI app with a hand-made environ (a client always sends a true length)."""
    env = builder.get_environ()
    env.update(environ)
    if env.get("CONTENT_LENGTH") is None:
        env.pop("CONTENT_LENGTH", None)  # chunked: no length at all
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, dict(headers)

    body = b"".join(app(env, start_response))
    return captured["status"], captured["headers"], body


def test_an_oversized_body_is_refused_from_its_content_length_without_being_read(
        make_app: Any) -> None:
    app = limited_app(make_app)
    builder = EnvironBuilder(path="/api/v1/tickets", method="POST",
                             content_type="application/json")
    status, _headers, body = call(app, builder, CONTENT_LENGTH=str(500 * 1024 * 1024),
                                  **{"wsgi.input": io.BufferedReader(Unreadable())})
    assert status.startswith("413")
    assert json.loads(body)["error"]["code"] == "too_large"
    assert not Unreadable.read_from


def test_a_status_change_gets_a_smaller_body_than_a_ticket_with_attachments(
        make_app: Any) -> None:
    app = limited_app(make_app)
    client = app.test_client()
    padding = "x" * (100 * 1024)
    patch = client.patch("/api/v1/tickets/1", json={"status": "open", "note": padding},
                         headers={"Authorization": "Bearer whatever"})
    assert patch.status_code == 413
    assert patch.get_json()["error"]["code"] == "too_large"
    # The same size is fine where files may come (it fails validation, not the size check).
    opened = client.post("/api/v1/tickets", json=api_ticket(description=padding))
    assert opened.status_code == 422
    assert "description" in opened.get_json()["error"]["fields"]


def test_a_body_without_content_length_is_cut_off_at_the_endpoints_limit(make_app: Any) -> None:
    app = limited_app(make_app, upload_max_bytes=1024, upload_max_files=1)  # limit about 1 MB
    text = "x" * (3 * 1024 * 1024)
    chunks = io.BytesIO(json.dumps(api_ticket(description=text)).encode())
    builder = EnvironBuilder(path="/api/v1/tickets", method="POST",
                             content_type="application/json")
    env_extra = {"wsgi.input": chunks, "wsgi.input_terminated": True}
    status, _headers, body = call(app, builder, CONTENT_LENGTH=None, **env_extra)
    assert status.startswith("413")
    assert json.loads(body)["error"]["code"] == "too_large"
    assert chunks.tell() <= 1200 * 1024  # read up to the limit, not to the end
    assert tickets(app) == 0


def test_a_json_body_of_many_empty_objects_is_refused_after_its_first_kilobytes(
        make_app: Any) -> None:
    app = limited_app(make_app)
    body = io.BytesIO(b"[" + b"{}," * 2_000_000 + b"{}]")  # 6 MB: as a Python list, ~140 MB
    builder = EnvironBuilder(path="/api/v1/tickets", method="POST",
                             content_type="application/json")
    tracemalloc.start()
    try:
        status, _headers, answer = call(app, builder, CONTENT_LENGTH=str(len(body.getvalue())),
                                        **{"wsgi.input": body})
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status.startswith("413")
    assert json.loads(answer)["error"]["code"] == "too_complex"
    assert body.tell() <= 256 * 1024  # never read to the end, never parsed
    assert peak < 8 * 1024 * 1024


def test_an_honest_ticket_with_a_long_text_is_not_too_complex(make_app: Any) -> None:
    app = limited_app(make_app)
    text = "Hello, world. " * 3000  # 42 KB with 3,000 commas
    response = app.test_client().post("/api/v1/tickets", json=api_ticket(description=text))
    assert response.status_code == 201


def test_an_oversized_form_gets_the_html_error_page(make_app: Any) -> None:
    app = limited_app(make_app, upload_max_bytes=1024, upload_max_files=1)
    response = app.test_client().post(
        FORM, data=form(attachments=(io.BytesIO(b"x" * (3 * 1024 * 1024)), "big.txt")),
        content_type="multipart/form-data")
    assert response.status_code == 413
    assert "text/html" in response.headers["Content-Type"]
    assert tickets(app) == 0


# -- Rate limits -----------------------------------------------------------------------------


def test_opening_tickets_is_limited_per_address_across_the_form_and_the_api(
        make_app: Any) -> None:
    app = limited_app(make_app, rate_limit_open_ticket="3/minute")
    client = app.test_client()
    assert client.post("/api/v1/tickets", json=api_ticket(), **ip("10.0.0.1")).status_code == 201
    assert client.post(FORM, data=form(), **ip("10.0.0.1")).status_code == 302
    assert client.post("/api/v1/tickets", json=api_ticket(), **ip("10.0.0.1")).status_code == 201
    refused = client.post("/api/v1/tickets", json=api_ticket(), **ip("10.0.0.1"))
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    page = client.post(FORM, data=form(), **ip("10.0.0.1"))
    assert page.status_code == 429
    assert "text/html" in page.headers["Content-Type"]
    assert int(page.headers["Retry-After"]) >= 1
    assert tickets(app) == 3
    # Another address is not limited.
    assert client.post(FORM, data=form(), **ip("10.0.0.2")).status_code == 302


def test_opening_tickets_is_limited_per_contact_from_any_address(make_app: Any) -> None:
    app = limited_app(make_app, rate_limit_open_ticket_contact="2/minute")
    client = app.test_client()
    assert client.post(FORM, data=form(email="Rina@Example.com"), **ip("10.0.0.1")).status_code == 302
    assert client.post("/api/v1/tickets", json=api_ticket(),
                       **ip("10.0.0.2")).status_code == 201
    assert client.post(FORM, data=form(), **ip("10.0.0.3")).status_code == 429
    assert client.post("/api/v1/tickets", json=api_ticket(),
                       **ip("10.0.0.4")).status_code == 429
    other = client.post(FORM, data=form(email="budi@example.com"), **ip("10.0.0.3"))
    assert other.status_code == 302


def test_wrong_tracking_keys_are_limited_per_address_but_right_ones_are_not_counted(
        make_app: Any) -> None:
    app = limited_app(make_app, rate_limit_tracking="3/minute")
    client = app.test_client()
    opened = client.post("/api/v1/tickets", json=api_ticket()).get_json()
    number, key = opened["number"], opened["access_key"]
    for _ in range(10):  # the owner reading their ticket is never limited
        assert client.get(f"/t/{number}/{key}", **ip("10.0.0.1")).status_code == 200
    for guess in range(3):
        assert client.get(f"/t/{number}/guess{guess}", **ip("10.0.0.1")).status_code == 404
    refused = client.get(f"/t/{number}/guess9", **ip("10.0.0.1"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # The API's key header counts against the same limit.
    api = client.get(f"/api/v1/tickets/{number}", headers={"X-Ticket-Key": "guess"},
                     **ip("10.0.0.1"))
    assert api.status_code == 429
    assert client.get(f"/t/{number}/{key}", **ip("10.0.0.2")).status_code == 200


def test_wrong_ticket_keys_through_the_api_are_limited(make_app: Any) -> None:
    app = limited_app(make_app, rate_limit_tracking="2/minute")
    client = app.test_client()
    number = client.post("/api/v1/tickets", json=api_ticket()).get_json()["number"]
    for _ in range(2):
        assert client.get(f"/api/v1/tickets/{number}",
                          headers={"X-Ticket-Key": "nope"}).status_code == 404
    refused = client.post(f"/api/v1/tickets/{number}/messages", json={"text": "hi"},
                          headers={"X-Ticket-Key": "nope"})
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers


def test_the_api_is_limited_per_address(make_app: Any) -> None:
    app = limited_app(make_app, rate_limit_api="3/minute")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/v1/user-types").status_code == 200
    assert client.get("/api/v1/user-types").status_code == 429
    assert client.get("/api/v1/user-types", **ip("10.0.0.9")).status_code == 200


def test_sign_in_is_limited_per_address_before_any_password_is_checked(
        make_app: Any, monkeypatch: Any) -> None:
    import admin.auth

    checked: list[str] = []
    real = admin.auth.verify_password
    monkeypatch.setattr(admin.auth, "verify_password",
                        lambda stored, given: checked.append(given) or real(stored, given))
    app = limited_app(make_app, rate_limit_login="3/minute")
    client = app.test_client()
    for n in range(3):
        page = client.post("/admin/login", data={"email": f"x{n}@desk.test", "password": "no"})
        assert page.status_code == 200
    refused = client.post("/admin/login", data={"email": "agent@desk.test", "password": "no"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert len(checked) == 3
    other = client.post("/admin/login", data={"email": "agent@desk.test", "password": "no"},
                        **ip("10.0.0.5"))
    assert other.status_code == 200


def test_sign_in_is_limited_per_account_from_any_address(make_app: Any) -> None:
    app = limited_app(make_app, rate_limit_login_account="2/minute")
    client = app.test_client()
    for n in range(2):
        assert client.post("/admin/login", data={"email": "Agent@desk.test", "password": "no"},
                           **ip(f"10.0.1.{n}")).status_code == 200
    assert client.post("/admin/login", data={"email": "agent@desk.test", "password": "no"},
                       **ip("10.0.1.9")).status_code == 429
    assert client.post("/admin/login", data={"email": "admin@desk.test", "password": "no"},
                       **ip("10.0.1.9")).status_code == 200


def test_a_forged_x_forwarded_for_does_not_escape_the_limit_by_default(make_app: Any) -> None:
    app = limited_app(make_app, rate_limit_api="2/minute")
    client = app.test_client()
    answers = [client.get("/api/v1/user-types",
                          headers={"X-Forwarded-For": f"192.0.2.{n}"}).status_code
               for n in range(4)]
    assert answers == [200, 200, 429, 429]


def test_a_trusted_proxy_names_the_client_and_only_its_own_entry_counts(make_app: Any) -> None:
    app = limited_app(make_app, rate_limit_api="2/minute", trusted_proxies=1)
    client = app.test_client()

    def get(forwarded: str) -> int:
        return client.get("/api/v1/user-types", headers={"X-Forwarded-For": forwarded},
                          **ip("127.0.0.1")).status_code

    assert [get("198.51.100.7") for _ in range(3)] == [200, 200, 429]
    assert get("198.51.100.8") == 200
    # A client prepending its own entry does not change what the proxy appended.
    assert get("203.0.113.1, 198.51.100.7") == 429


def test_counters_in_redis_are_shared_by_every_app(make_app: Any) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    one = limited_app(make_app, redis_url=REDIS_URL, jobs="immediate", rate_limit_api="2/minute")
    two = make_app(**dict(OPEN, rate_limits=True, redis_url=REDIS_URL, jobs="immediate",
                          rate_limit_api="2/minute"), migrate=False)
    address = random_address()
    assert one.test_client().get("/api/v1/user-types", **ip(address)).status_code == 200
    assert two.test_client().get("/api/v1/user-types", **ip(address)).status_code == 200
    assert one.test_client().get("/api/v1/user-types", **ip(address)).status_code == 429
    assert two.test_client().get("/api/v1/user-types", **ip(address)).status_code == 429


def test_a_counter_store_that_is_down_does_not_take_the_desk_down(make_app: Any) -> None:
    app = limited_app(make_app, redis_url="redis://127.0.0.1:1/0", jobs="immediate",
                      rate_limit_api="1/minute")
    client = app.test_client()
    assert [client.get("/api/v1/user-types").status_code for _ in range(2)] == [200, 200]


def test_a_bad_rate_limit_setting_stops_start_up_with_one_line(make_app: Any) -> None:
    with pytest.raises(ConfigError) as info:
        make_app(rate_limit_api="lots", migrate=False)
    assert str(info.value).startswith("LOKET_RATE_LIMIT_API: expected limits like")
    assert "\n" not in str(info.value)


# -- Spam traps on the public form -------------------------------------------------------------


SHOWN_AT = re.compile(r'name="shown_at"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="shown_at"')


def shown_at(client: Any) -> str:
    match = SHOWN_AT.search(client.get(FORM).get_data(as_text=True))
    assert match, "no shown_at on the form"
    return match.group(1) or match.group(2)


def minute_ago(monkeypatch: Any) -> None:
    """Forms shown from now on were shown a minute ago."""
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 60)


def test_a_bot_filling_the_trap_field_gets_no_ticket_and_no_reason(
        make_app: Any, monkeypatch: Any) -> None:
    app = limited_app(make_app, form_min_seconds=3)
    client = app.test_client()
    minute_ago(monkeypatch)
    page = client.post(FORM, data=form(shown_at=shown_at(client), website="http://spam.test"))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Please check your answers and send the form again." in html
    assert "website" not in html.split("flash-error", 1)[1].split("</div>", 1)[0]
    assert 'value="http://spam.test"' not in html
    assert tickets(app) == 0


def test_a_form_sent_too_soon_after_it_was_shown_is_asked_again(make_app: Any,
                                                                 monkeypatch: Any) -> None:
    app = limited_app(make_app, form_min_seconds=3)
    client = app.test_client()
    hurried = client.post(FORM, data=form(shown_at=shown_at(client)))
    assert hurried.status_code == 200
    assert "Please check your answers and send the form again." in hurried.get_data(as_text=True)
    assert tickets(app) == 0
    # The same form, sent again after a while (the page carries a fresh stamp), goes through.
    minute_ago(monkeypatch)
    again = client.post(FORM, data=form())
    fresh = SHOWN_AT.search(again.get_data(as_text=True))
    assert again.status_code == 200 and tickets(app) == 0
    assert fresh is not None
    sent = client.post(FORM, data=form(shown_at=fresh.group(1) or fresh.group(2)))
    assert sent.status_code == 302
    assert tickets(app) == 1


@pytest.mark.parametrize("stamp", [None, "", "form.bogus.stamp"])
def test_a_form_without_a_genuine_stamp_makes_no_ticket(make_app: Any, stamp: str | None) -> None:
    app = limited_app(make_app, form_min_seconds=3)
    data = form() if stamp is None else form(shown_at=stamp)
    assert app.test_client().post(FORM, data=data).status_code == 200
    assert tickets(app) == 0


def test_a_person_without_javascript_who_takes_their_time_opens_a_ticket(
        make_app: Any, monkeypatch: Any) -> None:
    app = limited_app(make_app, form_min_seconds=3)
    client = app.test_client()
    page = client.get(FORM).get_data(as_text=True)
    assert "<script" not in page  # nothing on the form depends on script
    assert 'aria-hidden="true"' in page and 'tabindex="-1"' in page
    minute_ago(monkeypatch)
    response = client.post(FORM, data=form(shown_at=shown_at(client), website=""))
    assert response.status_code == 302
    assert tickets(app) == 1


# -- Slow clients ----------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(make_app: Any, db_url: str, tmp_path: Path, workers: int = 1, threads: int = 2,
            **settings: str) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    """gunicorn as `loket serve` runs it (gunicorn.conf.py), with the given workers and threads
    (and other settings: ``LOKET_…`` environment variables)."""
    app = make_app()  # migrates the database the server uses
    port = free_port()
    env = {**os.environ, "LOKET_BIND": f"127.0.0.1:{port}", "LOKET_WEB_WORKERS": str(workers),
           "LOKET_WEB_THREADS": str(threads), "LOKET_DATABASE_URL": db_url,
           "LOKET_JOBS": "immediate",
           "LOKET_INSTANCE_PATH": app.extensions["loket"].config["instance_path"],
           "LOKET_SECRET_KEY": "test-secret-key", "LOKET_PLUGINS": "",
           "LOKET_REQUEST_READ_SECONDS": "2", **settings}
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config",
                                 str(REPO / "gunicorn.conf.py")], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/api/v1/user-types", timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield base, log, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def served(make_app: Any, db_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """1 worker with 2 threads: few enough that slow clients could starve it."""
    with serving(make_app, db_url, tmp_path) as (base, log, _proc):
        yield base, log


def _connections_per_worker(server: subprocess.Popen, port: int) -> dict[int, int]:
    """How many client connections to ``port`` each gunicorn worker holds open (from /proc)."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                established.add(fields[9])  # the socket's inode
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    counts = {}
    for pid in map(int, children):
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in established:
                held += 1
        counts[pid] = held
    return counts


def _workers_in_their_loop(server: subprocess.Popen, expected: int) -> bool:
    """True when ``expected`` workers wait on their event loop (it watches a descriptor)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    ready = 0
    for pid in children:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == "anon_inode:[eventpoll]" and \
                        "tfd:" in Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text():
                    ready += 1
                    break
            except OSError:
                continue
    return ready >= expected


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_kept_alive_connections_spread_over_the_workers(make_app: Any, db_url: str,
                                                        tmp_path: Path) -> None:
    """Eight connections opened at once (a proxy's pool, a load tester) use both workers."""
    with serving(make_app, db_url, tmp_path, workers=2, threads=2) as (base, log, proc):
        port = int(base.rsplit(":", 1)[1])
        deadline = time.monotonic() + 60
        while not _workers_in_their_loop(proc, 2):  # the second may still be loading the app
            assert time.monotonic() < deadline, "the workers never started serving"
            time.sleep(0.2)
        clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(8)]
        try:
            for client in clients:  # each asks once and keeps its connection
                client.request("GET", "/api/v1/user-types")
            for client in clients:
                response = client.getresponse()
                response.read()
                assert response.status == 200
            counts = _connections_per_worker(proc, port)
        finally:
            for client in clients:
                client.close()
    assert len(counts) == 2 and sum(counts.values()) == 8, counts
    assert min(counts.values()) >= 2, f"connections per worker: {counts}"
    assert "Traceback" not in log.read_text()


def test_sync_workers_behind_a_proxy_open_tickets(make_app: Any, db_url: str,
                                                  tmp_path: Path) -> None:
    """LOKET_WEB_WORKER=sync: gunicorn's own sync worker, one thread, serves the desk (a
    customer's form read and sent with its session cookie and CSRF token, over HTTP)."""
    app = make_app()
    with app.app_context(), core_db.connection():
        build_desk()
    with serving(make_app, db_url, tmp_path, threads=4, LOKET_WEB_WORKER="sync",
                 LOKET_FORM_MIN_SECONDS="0") as (base, log, _proc):
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect())
        page = opener.open(base + FORM, timeout=10).read().decode()
        hidden = dict(re.findall(r'name="(csrf_token|submission|shown_at)"[^>]*value="([^"]*)"',
                                 page))
        assert set(hidden) == {"csrf_token", "submission", "shown_at"}, hidden
        body = urllib.parse.urlencode(form(**hidden)).encode()
        with pytest.raises(urllib.error.HTTPError) as sent:
            opener.open(urllib.request.Request(base + FORM, data=body), timeout=10)
        assert sent.value.code == 302 and "/t/" in sent.value.headers["Location"]
        text = log.read_text()
    assert "Using worker: core.serving.SyncWorker" in text and "Traceback" not in text
    assert tickets(app) == 1


def test_a_sync_worker_closes_a_connection_with_nothing_unread_at_once() -> None:
    """gunicorn's sync worker waits, after each answer, for the client to close too (up to
    two seconds, ``close_graceful``): a client that keeps the connection open held the
    worker. Loket's (``core.serving.SyncWorker``) closes at once when the client sent
    nothing more, and drains what it did send, as gunicorn does."""
    from gunicorn.util import close_graceful

    from core.serving import PromptlyClosedSocket

    def closed_by_the_server(sent: bytes) -> tuple[PromptlyClosedSocket, socket.socket]:
        server, client = socket.socketpair()
        client.sendall(sent)
        wrapped = PromptlyClosedSocket(server)
        done = threading.Thread(target=close_graceful, args=(wrapped, 60.0))
        done.start()
        if sent:
            client.shutdown(socket.SHUT_WR)  # the rest of what it sends: nothing
        done.join(20)
        assert not done.is_alive(), "the server waited for the client to close"
        return wrapped, client

    wrapped, client = closed_by_the_server(b"")
    assert not wrapped._draining and client.recv(10) == b""  # closed, client still open
    client.close()
    wrapped, client = closed_by_the_server(b"GET /more HTTP/1.1\r\n")
    assert wrapped._draining and client.recv(10) == b""  # read what was sent, then closed
    client.close()


def test_an_unknown_web_worker_stops_the_server_with_its_name(tmp_path: Path) -> None:
    env = {**os.environ, "LOKET_WEB_WORKER": "eventlet", "LOKET_BIND": f"127.0.0.1:{free_port()}"}
    done = subprocess.run([sys.executable, "-m", "gunicorn", "--config",
                           str(REPO / "gunicorn.conf.py"), "--check-config"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "LOKET_WEB_WORKER must be one of: buffered, sync (got 'eventlet')" in (
        done.stdout + done.stderr)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_slow_clients_cannot_starve_the_threads_and_are_cut_off(
        served: tuple[str, Path]) -> None:
    base, log = served
    port = int(base.rsplit(":", 1)[1])
    slow = []
    for n in range(20):  # ten times the worker's threads
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(f"GET /api/v1/user-types HTTP/1.1\r\nHost: x\r\nX-Slow: {n}\r\n".encode())
        slow.append(sock)
    try:
        # Normal requests are answered while every slow client is still connected.
        for _ in range(5):
            with urllib.request.urlopen(base + "/api/v1/user-types", timeout=5) as response:
                assert response.status == 200
        # A slow client never finishing its head is disconnected (after 2 s here).
        slow[0].settimeout(10)
        for line in range(20):
            try:
                slow[0].sendall(f"X-More-{line}: still typing\r\n".encode())
                if slow[0].recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        else:
            pytest.fail("the slow client was never disconnected")
    finally:
        for sock in slow:
            sock.close()
    assert "Traceback" not in log.read_text()


def test_a_large_body_trickled_byte_by_byte_is_cut_off(served: tuple[str, Path]) -> None:
    base, log = served
    port = int(base.rsplit(":", 1)[1])
    size = 200 * 1024  # more than the event loop buffers: a thread reads it
    head = (f"POST /api/v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head + b"[" + b" " * (70 * 1024))  # past the buffer, then a trickle
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 20:
            try:
                sock.sendall(b" " * 100)
            except OSError:
                closed = True
                break
            sock.settimeout(0.5)
            try:
                sock.recv(65536)  # an answer or the end: either way the thread let go
            except TimeoutError:
                continue
            except OSError:
                pass
            closed = True
            break
        assert closed, "a trickled body held its thread for 20 s"
        assert time.monotonic() - started < 15
    # Meanwhile and afterwards, others are served.
    with urllib.request.urlopen(base + "/api/v1/user-types", timeout=5) as response:
        assert response.status == 200


def test_a_request_sent_in_pieces_within_the_time_is_served(served: tuple[str, Path]) -> None:
    base, _log = served
    port = int(base.rsplit(":", 1)[1])
    body = json.dumps(api_ticket()).encode()
    head = (f"POST /api/v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for piece in (head[:20], head[20:], body[:10], body[10:]):
            sock.sendall(piece)
            time.sleep(0.1)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    # No desk in this database, so the category is unknown: validated, not cut off.
    assert answer.startswith(b"HTTP/1.1 422"), answer[:200]


def test_each_part_of_the_site_has_its_body_limit(make_app: Any) -> None:
    from core.limits import body_limit

    app = make_app()
    cfg = app.extensions["loket"].config
    upload = 10 * 1024 * 1024 * 5
    assert body_limit(cfg, "helpcenter.new_ticket", "/help/a/b/new") > upload
    assert body_limit(cfg, "api_v1.open_ticket", "/api/v1/tickets") > upload * 4 // 3
    assert body_limit(cfg, "api_v1.update_ticket", "/api/v1/tickets/1") == 64 * 1024
    assert body_limit(cfg, "loket_auth.login", "/admin/login") == 16 * 1024
    assert body_limit(cfg, "ticket.reply", "/admin/tickets/1/reply") > upload
    assert body_limit(cfg, "helpcenter.resolve", "/t/1/key/resolve") == 1024 * 1024
    assert body_limit(cfg, None, "/no/such/page") == 1024 * 1024


@pytest.mark.parametrize(("data", "ready"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n", False),  # head not finished
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345", False),  # body on its way
    (b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\n1234567890", True),
    (b"POST / HTTP/1.1\r\nContent-Length: 9000000\r\n\r\n", True),  # an upload: the thread's
    (b"POST / HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 70_000, None),  # no browser's head
])
def test_the_worker_hands_over_a_request_once_it_is_complete(data: bytes,
                                                             ready: bool | None) -> None:
    from core.serving import request_ready

    assert request_ready(data) is ready


# -- A response's head goes out with its body ----------------------------------------------------


class _Wire:
    """A client socket that records each send."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))

    def sendfile(self, *args: Any, **kwargs: Any) -> None:
        self.sends.append(b"<file>")


def test_the_head_waits_for_the_body_and_goes_with_it() -> None:
    from core.serving import BufferedSocket

    wire = _Wire()
    sock = BufferedSocket(wire)  # type: ignore[arg-type]
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
    sock.sendall(head)
    assert wire.sends == []
    sock.sendall(b"page")
    assert wire.sends == [head + b"page"]
    sock.sendall(b"more")  # the rest of a body goes as it comes
    assert wire.sends[-1] == b"more"
    sock.sendall(head)  # a head with no body (HEAD, 304): sent at the end of the request
    sock.flush()
    assert wire.sends[-1] == head
    sock.sendall(head)  # the socket used directly (a file sent by sendfile): the head first
    sock.sendfile(io.BytesIO(b"x"))
    assert wire.sends[-2:] == [head, b"<file>"]
    sock.flush()
    assert len(wire.sends) == 5


def test_kept_alive_answers_with_and_without_bodies_come_whole_and_in_order(
        served: tuple[str, Path]) -> None:
    """HEAD (a head and no body), GET of a page and of a file (sendfile), one connection."""
    base, _log = served
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
    try:
        for method, path in (("HEAD", "/api/v1/user-types"), ("GET", "/api/v1/user-types"),
                             ("HEAD", "/static/loket/loket.css"),
                             ("GET", "/static/loket/loket.css"), ("GET", "/no-such-page")):
            conn.request(method, path)
            response = conn.getresponse()
            body = response.read()
            assert response.status == (404 if path == "/no-such-page" else 200), (method, path)
            if method == "HEAD":
                assert body == b""
            else:
                assert len(body) == int(response.headers["Content-Length"]) > 0
        conn.request("GET", "/static/loket/loket.css")
        assert b".skip-link" in conn.getresponse().read()
    finally:
        conn.close()


class _Timeouts:
    """A client socket that records each timeout set on it."""

    def __init__(self) -> None:
        self.set: list[float | None] = []

    def settimeout(self, value: float | None) -> None:
        self.set.append(value)

    def recv(self, size: int) -> bytes:
        return b"x" * size


def test_a_timeout_set_again_to_the_same_value_costs_no_call_on_the_socket() -> None:
    from core.serving import IDLE_READ_SECONDS, BufferedSocket

    wire = _Timeouts()
    sock = BufferedSocket(wire)  # type: ignore[arg-type]
    sock.setblocking(False)  # the loop reads ahead
    sock.setblocking(False)
    sock.setblocking(True)  # a thread serves
    sock.setblocking(True)
    sock.settimeout(4.5)  # gunicorn bounds the drain of a body, then puts it back
    sock.settimeout(IDLE_READ_SECONDS)
    sock.setblocking(True)
    sock.setblocking(False)  # kept alive
    assert wire.set == [0.0, IDLE_READ_SECONDS, 4.5, IDLE_READ_SECONDS, 0.0]


def test_a_kept_alive_connections_next_body_is_timed_from_its_own_start(monkeypatch) -> None:
    """The slowest pace a body may keep is measured per request: a connection whose first
    request began long ago is not cut off in the middle of its next upload."""
    from core import serving

    clock = [1000.0]
    monkeypatch.setattr(serving.time, "monotonic", lambda: clock[0])
    sock = serving.BufferedSocket(_Timeouts())  # type: ignore[arg-type]
    sock.setblocking(True)  # the first request's thread
    sock.recv(10)
    clock[0] += serving.REQUEST_READ_SECONDS * 6  # a minute of pages on one connection
    sock.next_request()
    sock.setblocking(True)  # the upload's thread starts reading
    clock[0] += 1
    assert len(sock.recv(4096)) == 4096  # within its first seconds: no pace asked yet
    clock[0] += serving.REQUEST_READ_SECONDS
    with pytest.raises(TimeoutError):  # 8 KB in 11 s: slower than BODY_MIN_RATE
        sock.recv(4096)
