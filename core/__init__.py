"""Loket's core: all a plugin imports is ``hookimpl`` (and ``create_app`` to serve it)."""

from typing import Any

import pluggy

hookimpl = pluggy.HookimplMarker("loket")


def create_app(config=None, **kwargs):
    """Build the app (see ``core.app.create_app``); imported lazily to keep plugins light."""
    from .app import create_app as _create_app

    return _create_app(config, **kwargs)


def csrf_exempt(view: Any) -> Any:
    """Take a plugin's webhook blueprint (or view) out of CSRF protection.

    A platform posting to a webhook has no CSRF token; the plugin must check
    the request's own signature instead (in constant time, over the raw body,
    before parsing it). Use as a decorator or call it on the blueprint.
    """
    from .app import csrf

    return csrf.exempt(view)


__all__ = ["hookimpl", "create_app", "csrf_exempt"]
