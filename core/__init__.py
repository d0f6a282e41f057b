"""Loket's core: all a plugin imports is ``hookimpl`` (and ``create_app`` to serve it)."""

import pluggy

hookimpl = pluggy.HookimplMarker("loket")


def create_app(config=None, **kwargs):
    """Build the app (see ``core.app.create_app``); imported lazily to keep plugins light."""
    from .app import create_app as _create_app

    return _create_app(config, **kwargs)


__all__ = ["hookimpl", "create_app"]
