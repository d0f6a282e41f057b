"""The admin console (Flask-Admin) at /admin."""

from __future__ import annotations

from typing import Any

from flask import Flask


def init_admin(app: Flask, state: Any) -> None:
    """Build a fresh Admin for this app; core's views, then the plugins' views."""
    from .setup import build_admin

    build_admin(app, state)
