"""Events to visitors' sockets between processes: Redis pub/sub, or the database alone.

With ``LOKET_REDIS_URL`` every process publishes what a visitor must see on one
channel, and every chat process delivers it to the sockets it holds. Without
Redis there is one chat process, which polls the database for messages it did
not write itself (an agent's reply committed by a web process); nothing is
published. Either way the database holds every message, so a widget that was
away catches up by resuming from the last message it saw.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from core.state import loket

log = logging.getLogger(__name__)
_clients: dict[str, Any] = {}


def channel() -> str:
    return loket().config.plugin("livechat")["redis_channel"]


def publish(visitor: str, event: dict[str, Any]) -> bool:
    """Tell every chat process (True), or say it could not (False, logged); without Redis
    there is nothing to tell (True): the chat process reads the database."""
    url = loket().config["redis_url"]
    if not url:
        return True
    try:
        client = _clients.get(url)
        if client is None:
            import redis

            client = _clients[url] = redis.Redis.from_url(url)
        client.publish(channel(), json.dumps({"visitor": visitor, "event": event}))
        return True
    except Exception as exc:
        log.warning("livechat: could not publish to Redis (%s); the widget resumes from the "
                    "database", exc)
        return False
