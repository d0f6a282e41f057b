"""Rate limits of ``POST /email/inbound``, on the desk's shared counters (Redis when set).

Two counters, the ``limits`` library's sliding window as in core: posts with the right
token are counted per token (a provider posts from many addresses; a leaked token is
what must be bounded), posts without it per client address (so the token cannot be
guessed at speed). An address that used up its failures is refused before its token is
compared, the right one included, until its window moves on.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from core.state import loket

KEY = "email_intake.rate_limiter"
PLUGIN = "email_intake"


def _limiter() -> tuple[SlidingWindowCounterRateLimiter, dict[str, list[RateLimitItem]]]:
    state = loket()
    found = state.extras.get(KEY)
    if found is None:
        config = state.config
        storage = storage_from_string(config["redis_url"] or "memory://")
        settings = config.plugin(PLUGIN)
        items = {name: parse_many(settings[name]) if settings[name] else []
                 for name in ("rate_limit_inbound", "rate_limit_inbound_failures")}
        found = state.extras[KEY] = (SlidingWindowCounterRateLimiter(storage), items)
    return found


def _retry_after(limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem,
                 *ids: str) -> int:
    reset = limiter.get_window_stats(item, *ids).reset_time
    return max(math.ceil(reset - time.time()), 1)


def _run(step: str, token: str = "") -> int:
    """0 when allowed, else the seconds to wait; the counter store down means allowed."""
    if not loket().config["rate_limits"]:
        return 0
    limiter, items = _limiter()
    if step == "token":
        # The token itself is never a counter's name (counters may sit in a shared Redis).
        ids = ("email_inbound_token", hashlib.sha256(token.encode()).hexdigest()[:32])
        name, hit = "rate_limit_inbound", True
    else:
        ids = ("email_inbound_failures", request.remote_addr or "-")
        name, hit = "rate_limit_inbound_failures", step == "failure"
    try:
        for item in items[name]:
            allowed = limiter.hit(item, *ids) if hit else limiter.test(item, *ids)
            if not allowed:
                return _retry_after(limiter, item, *ids)
    except Exception:  # serve rather than fail every mail, as core does
        return 0
    return 0


def failures_exhausted() -> int:
    """Whether this client address has used up its failed attempts (seconds to wait, or 0)."""
    return _run("check")


def count_failure() -> int:
    """Count a post without the right token against its address."""
    return _run("failure")


def count_accepted(token: str) -> int:
    """Count a post with the right token against the token; seconds to wait when over."""
    return _run("token", token)
