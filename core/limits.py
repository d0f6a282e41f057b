"""Abuse limits: request body sizes per endpoint, and rate limits per address, contact and account.

Both run as the app's first ``before_request`` step, so a body too large for
its endpoint is refused from its Content-Length before anything reads it
(CSRF included), and a client over a rate limit costs one counter look-up, not
a password hash or a ticket. Counters live in Redis when ``redis_url`` is set
(every host shares them) and in the process otherwise; the counting is the
``limits`` library's (the engine of Flask-Limiter) with a sliding window.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, abort, g, request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from werkzeug.exceptions import HTTPException, TooManyRequests
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Config
from .state import Loket

log = logging.getLogger(__name__)

# -- Body sizes --------------------------------------------------------------------------------

KB = 1024
MB = 1024 * KB
# A JSON container or list item costs Python 50-70 bytes however few bytes it took in the
# body ("{}," is three): a 63 MB array of empty objects grew a worker to 1.7 GB. An honest
# body is mostly strings (base64 files, text), so cap the structure rather than the bytes.
JSON_MAX_ITEMS = 20_000


def upload_body_limit(cfg: Config) -> int:
    """A multipart form with every allowed attachment, plus the form around them."""
    return cfg["upload_max_bytes"] * max(cfg["upload_max_files"], 1) + MB


def json_upload_body_limit(cfg: Config) -> int:
    """A JSON body carrying every allowed attachment in base64 (4/3 of its size)."""
    files = max(cfg["upload_max_files"], 1)
    return (cfg["upload_max_bytes"] * 4 // 3 + KB) * files + MB


def _small(size: int) -> Callable[[Config], int]:
    return lambda cfg: size


# Endpoints that take files get room for them; everything else stays small. An endpoint
# not named here gets its blueprint's default, then DEFAULT_BODY.
BODY_LIMITS: dict[str, Callable[[Config], int]] = {
    "helpcenter.new_ticket": upload_body_limit,
    "helpcenter.reply": upload_body_limit,
    "api_v1.open_ticket": json_upload_body_limit,
    "api_v1.add_message": json_upload_body_limit,
}
BLUEPRINT_BODY_LIMITS: dict[str, Callable[[Config], int]] = {
    "api_v1": _small(64 * KB),  # a status change, a filter, a tag list
    "loket_auth": _small(16 * KB),  # sign-in and sign-out: an address and a password
}
# The console's views (Flask-Admin names each endpoint after its view, not a blueprint):
# staff forms may carry attachments.
CONSOLE_PATH = "/admin/"
DEFAULT_BODY = _small(1 * MB)


def register_body_limit(endpoint: str, limit: Callable[[Config], int]) -> None:
    """Give a plugin's endpoint its own body limit (e.g. a webhook that receives mail)."""
    BODY_LIMITS[endpoint] = limit


def body_limit(cfg: Config, endpoint: str | None, path: str) -> int:
    """The largest body a request to ``endpoint`` (at ``path``) may send, in bytes."""
    if endpoint in BODY_LIMITS:
        return BODY_LIMITS[endpoint](cfg)
    blueprint = (endpoint or "").partition(".")[0]
    if blueprint in BLUEPRINT_BODY_LIMITS:
        return BLUEPRINT_BODY_LIMITS[blueprint](cfg)
    if path.startswith(CONSOLE_PATH):
        return upload_body_limit(cfg)
    return DEFAULT_BODY(cfg)


class BodyBudget:
    """``wsgi.input`` that answers 413 the moment a body goes over its budget, while it is read.

    Over ``limit`` bytes: a chunked body (no Content-Length) is refused, where werkzeug's
    ``read()`` would hand it back cut short. Over ``JSON_MAX_ITEMS`` objects, arrays and
    commas in a JSON body: refused after reading a few dozen kilobytes, never parsed, so a
    body of empty objects costs the worker no more memory than its first chunks.
    """

    def __init__(self, stream: Any, limit: int, is_json: bool):
        self.stream = stream
        self.limit = limit
        self.is_json = is_json
        self.size = 0
        self.items = 0

    def _count(self, data: bytes) -> bytes:
        self.size += len(data)
        if self.size > self.limit:
            abort(413)
        if self.is_json:
            self.items += data.count(b"{") + data.count(b"[") + data.count(b",")
            if self.items > JSON_MAX_ITEMS:
                g.body_too_complex = True
                abort(413)
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._count(self.stream.read(size) if size is not None and size >= 0
                           else self.stream.read())

    def readline(self, size: int | None = -1) -> bytes:
        return self._count(self.stream.readline(size) if size is not None and size >= 0
                           else self.stream.readline())

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


def check_body(cfg: Config) -> None:
    """Refuse (413) a body too large for this endpoint before it is read; watch the rest.

    Called before anything touches the body (CSRF, the rate limits' contact look-up).
    """
    limit = body_limit(cfg, request.endpoint, request.path)
    g.body_limit = limit
    if request.content_length is not None and request.content_length > limit:
        abort(413)
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        # One byte of room, so that BodyBudget (not werkzeug's silent cut) sees a chunked
        # body go over the limit.
        request.max_content_length = limit + 1
        request.environ["wsgi.input"] = BodyBudget(request.environ["wsgi.input"], limit,
                                                   request.is_json)


# -- Rate limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One limit on one endpoint: which setting, counted by what, and when.

    ``key`` names the counter: "address" (the client's address) or a function of
    the request giving an account or contact (None: not counted). With
    ``failures_only`` a request is checked first and counted only if it answers
    404 (a wrong tracking key), so a customer reading their own ticket is never
    limited by someone guessing others'.
    """

    setting: str
    key: str | Callable[[], str | None] = "address"
    methods: frozenset[str] = frozenset({"POST"})
    failures_only: bool = False


def _form_email() -> str | None:
    value = request.form.get("email", "")
    return value.strip().lower()[:254] or None


def _json_email() -> str | None:
    # Parsed here and dropped at once (not cached on the request): the view parses the body
    # again, and a body with attachments should not be held twice while it does.
    try:
        body = json.loads(request.get_data(cache=True)) if request.is_json else None
    except (ValueError, RecursionError):
        return None
    value = body.get("email") if isinstance(body, dict) else None
    return value.strip().lower()[:254] if isinstance(value, str) and value.strip() else None


def _customer_key_header() -> bool:
    return "X-Ticket-Key" in request.headers and "Authorization" not in request.headers


ALL = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
TRACKING = Rule("rate_limit_tracking", methods=ALL, failures_only=True)

# Ticket opening shares one counter ("rate_limit_open_ticket") between the web form and the
# API: a client cannot double its allowance by switching.
RULES: dict[str, tuple[Rule, ...]] = {
    "helpcenter.new_ticket": (Rule("rate_limit_open_ticket"),
                              Rule("rate_limit_open_ticket_contact", key=_form_email)),
    "api_v1.open_ticket": (Rule("rate_limit_open_ticket"),
                           Rule("rate_limit_open_ticket_contact", key=_json_email)),
    "helpcenter.tracking": (TRACKING,),
    "helpcenter.reply": (TRACKING,),
    "helpcenter.resolve": (TRACKING,),
    "helpcenter.attachment": (TRACKING,),
    "loket_auth.login": (Rule("rate_limit_login"),
                         Rule("rate_limit_login_account", key=_form_email)),
}
# Customer look-ups through the API count like the tracking page (agents send a token).
API_TRACKING = ("api_v1.get_ticket", "api_v1.add_message", "api_v1.get_attachment")
API_RULE = Rule("rate_limit_api", methods=ALL)


def count_as_ticket_opening(endpoint: str) -> None:
    """A plugin's form that opens tickets (``blueprint.view``) counts against the help
    center form's limits, on the same counters: a client gains nothing by switching forms."""
    RULES[endpoint] = RULES["helpcenter.new_ticket"]


class RateLimits:
    """The counters of one app."""

    def __init__(self, cfg: Config):
        uri = cfg["redis_url"] or "memory://"
        self.storage = storage_from_string(uri)
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.limits: dict[str, list[RateLimitItem]] = {}
        for name, value in cfg.values.items():
            if name.startswith("rate_limit_"):
                self.limits[name] = parse_many(value) if value else []

    def rules(self, endpoint: str | None) -> list[Rule]:
        found = list(RULES.get(endpoint or "", ()))
        if (endpoint or "").startswith("api_v1."):
            found.append(API_RULE)
            if endpoint in API_TRACKING and _customer_key_header():
                found.append(TRACKING)
        return [rule for rule in found if request.method in rule.methods]

    def identifiers(self, rule: Rule) -> tuple[str, str] | None:
        if rule.key == "address":
            return rule.setting, "address:" + (request.remote_addr or "-")
        value = rule.key()  # type: ignore[operator]
        return (rule.setting, "key:" + value) if value else None

    def check(self) -> None:
        """Count this request against its endpoint's limits; 429 when one is used up."""
        retry_after = 0.0
        failures: list[tuple[RateLimitItem, tuple[str, str]]] = []
        for rule in self.rules(request.endpoint):
            ids = self.identifiers(rule)
            if ids is None:
                continue
            for item in self.limits.get(rule.setting, ()):
                if rule.failures_only:
                    allowed = self.limiter.test(item, *ids)
                    failures.append((item, ids))
                else:
                    allowed = self.limiter.hit(item, *ids)
                if not allowed:
                    reset = self.limiter.get_window_stats(item, *ids).reset_time
                    retry_after = max(retry_after, reset - time.time(), 1.0)
        if retry_after:
            raise TooManyRequests(retry_after=math.ceil(retry_after))
        g.rate_limit_failures = failures

    def count_failure(self, status: int) -> None:
        """After the answer: a 404 (a wrong key) counts against the look-up limits."""
        if status == 404:
            for item, ids in g.get("rate_limit_failures", ()):
                self.limiter.hit(item, *ids)


def configure_limits(app: Flask, state: Loket) -> None:
    """Body limits and rate limits first of all request handling; client address from proxies."""
    cfg = state.config
    proxies = cfg["trusted_proxies"]
    if proxies:
        # Only the last `proxies` X-Forwarded-For entries were written by our own proxies;
        # any earlier ones come from the client and may be forged.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    counters = RateLimits(cfg) if cfg["rate_limits"] else None
    state.extras["rate_limits"] = counters

    @app.before_request
    def _limits() -> None:
        check_body(cfg)  # first: the rate limits may read the body (a contact's address)
        if counters is not None:
            _safely(counters.check)

    if counters is not None:
        @app.after_request
        def _count_failures(response: Any) -> Any:
            _safely(lambda: counters.count_failure(response.status_code))
            return response


def _safely(step: Callable[[], None]) -> None:
    """Run a limit step; when the counter store is down, serve rather than fail every request."""
    try:
        step()
    except HTTPException:
        raise
    except Exception as exc:  # redis down, say: log it and serve, never take the desk down
        log.warning("rate limits skipped: %s", exc)
