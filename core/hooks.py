"""The hook marker plugins decorate with, and the isolated event call the services use.

It sits low in core (it imports nothing of core) so that the services can fire
events without importing the plugin manager, which sits above them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pluggy

log = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("loket")


def fire(pm: pluggy.PluginManager, hook_name: str, *,
         around: Callable[[], AbstractContextManager[Any]] | None = None,
         **kwargs: Any) -> list[Exception]:
    """Call an event hook with each implementation isolated from the others.

    ``around`` makes the context each implementation runs in (a savepoint, so that what
    a failing one wrote is undone with it). Returns the exceptions raised (already
    logged), so callers and tests can see them; they never propagate.
    """
    caller = getattr(pm.hook, hook_name)
    errors: list[Exception] = []
    # pluggy calls implementations last-registered first; keep that order.
    for impl in reversed(caller.get_hookimpls()):
        args = {name: kwargs[name] for name in impl.argnames if name in kwargs}
        try:
            with around() if around is not None else nullcontext():
                impl.function(**args)
        except Exception as exc:
            log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)
            errors.append(exc)
    return errors
