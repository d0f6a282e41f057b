"""A rate limit for the suggestion endpoint, on the desk's shared counters (Redis when set)."""

from __future__ import annotations

from flask import request
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from core.state import loket

KEY = "knowledge_base.rate_limiter"


def _limiter() -> tuple[SlidingWindowCounterRateLimiter, list]:
    state = loket()
    found = state.extras.get(KEY)
    if found is None:
        config = state.config
        storage = storage_from_string(config["redis_url"] or "memory://")
        rate = config.plugin("knowledge_base")["rate_limit_suggest"]
        found = state.extras[KEY] = (SlidingWindowCounterRateLimiter(storage),
                                     parse_many(rate) if rate else [])
    return found


def suggestion_limit_reached() -> bool:
    """Count this request against the client address's allowance; True when it is used up."""
    if not loket().config["rate_limits"]:
        return False
    limiter, items = _limiter()
    address = request.remote_addr or "-"
    try:
        return not all([limiter.hit(item, "kb_suggest", address) for item in items])
    except Exception:  # the counter store is down: serve rather than fail, as core does
        return False
