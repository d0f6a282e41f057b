"""Rate limits of POST /email/inbound: per token once it is right, per address while it is not."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from core import db
from core.models import Ticket
from tests.factories import build_desk, fresh_rate_window
from tests.test_email_ingest import mail

URL = "/email/inbound"


def address() -> str:
    """A client address of this test alone (counters may live in a shared Redis)."""
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def desk_app(make_app: Any, token: str, **more: Any) -> Any:
    app = make_app(plugins=["email_intake"], **{
        "rate_limits": True, "email_intake.address": "help@desk.test",
        "email_intake.inbound_token": token, **more})
    with app.app_context(), db.connection():
        build_desk()
    fresh_rate_window()
    return app


def post(app: Any, token: str, remote: str, n: int = 0) -> Any:
    return app.test_client().post(
        URL, data=mail(subject=f"Mail {n}"), content_type="message/rfc822",
        headers={"Authorization": f"Bearer {token}"}, environ_base={"REMOTE_ADDR": remote})


def tickets_in(app: Any) -> int:
    with app.app_context(), db.connection():
        return Ticket.select().count()


def test_a_token_over_its_rate_is_answered_429_and_nothing_is_stored(make_app: Any) -> None:
    token = secrets.token_hex(16)
    app = desk_app(make_app, token, **{"email_intake.rate_limit_inbound": "3/minute"})
    # A provider posts from several addresses: the token is what is counted.
    answers = [post(app, token, address(), n).status_code for n in range(3)]
    assert answers == [202, 202, 202]
    over = post(app, token, address(), 4)
    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert tickets_in(app) == 3


def test_wrong_tokens_lock_out_their_address_even_for_the_right_token(make_app: Any) -> None:
    token = secrets.token_hex(16)
    app = desk_app(make_app, token, **{"email_intake.rate_limit_inbound_failures": "2/minute"})
    guesser, provider = address(), address()
    assert post(app, "guess-1", guesser).status_code == 403
    client = app.test_client()
    no_token = client.post(URL, data=mail(), content_type="message/rfc822",
                           environ_base={"REMOTE_ADDR": guesser})
    assert no_token.status_code == 401
    # Used up: refused before the token is compared, so guessing on is pointless.
    locked = post(app, "guess-2", guesser)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    assert post(app, token, guesser).status_code == 429
    assert tickets_in(app) == 0
    # Another address with the right token is served.
    assert post(app, token, provider).status_code == 202


def test_the_counters_are_shared_by_every_web_process_through_redis(make_app: Any) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=1).ping()
    except Exception as exc:  # pragma: no cover - depends on the host
        pytest.skip(f"no Redis on 127.0.0.1:6379 ({exc})")
    token = secrets.token_hex(16)
    settings = {"redis_url": "redis://127.0.0.1:6379/0",
                "email_intake.rate_limit_inbound": "2/minute"}
    first = desk_app(make_app, token, **settings)
    second = make_app(plugins=["email_intake"], rate_limits=True, **{
        "email_intake.address": "help@desk.test", "email_intake.inbound_token": token,
        **settings})
    assert post(first, token, address(), 1).status_code == 202
    assert post(second, token, address(), 2).status_code == 202
    assert post(first, token, address(), 3).status_code == 429
    assert post(second, token, address(), 4).status_code == 429


def test_with_rate_limits_off_the_endpoint_counts_nothing(make_app: Any) -> None:
    token = secrets.token_hex(16)
    app = desk_app(make_app, token, rate_limits=False,
                   **{"email_intake.rate_limit_inbound": "1/minute",
                      "email_intake.rate_limit_inbound_failures": "1/minute"})
    remote = address()
    assert [post(app, "wrong", remote).status_code for _ in range(3)] == [403, 403, 403]
    assert [post(app, token, remote, n).status_code for n in range(3)] == [202, 202, 202]
