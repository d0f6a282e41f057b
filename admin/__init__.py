"""The admin console (Flask-Admin) at /admin: the built-in plugin "console".

Core never imports this package: it finds it through the ``console`` entry point
in the ``loket.plugins`` group, as it finds any plugin, and calls ``mount_console``.
The ``console`` setting (on by default) decides whether it is loaded at all.

What a plugin may import from the console is ``PLUGIN_API``: the secured bases its
``register_admin_views`` views derive from, and the server-side SVG charts, so a
plugin's report page draws its charts the way the dashboard does.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from core import hookimpl
from core.state import loket

PLUGIN_API: tuple[str, ...] = ("admin.base", "admin.charts")


@hookimpl
def mount_console(app: Flask) -> Any:
    """Build a fresh Admin for this app; core's views, then the plugins' views."""
    from .setup import build_admin

    # The factory has no app context yet; the console reads the app's state the one way.
    with app.app_context():
        return build_admin(app, loket())


@hookimpl
def register_jobs(jobs: Any) -> None:
    from core.jobs import crontab

    @jobs.periodic(crontab(minute="41"), name="console.forget_expired_sessions")
    def forget_expired_sessions() -> int:
        """Delete sign-ins that ran out; a staff member who never comes back leaves none."""
        from .auth import forget_expired_sessions

        return forget_expired_sessions()
