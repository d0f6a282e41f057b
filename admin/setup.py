"""Placeholder until the console lands: no admin views are mounted."""

from __future__ import annotations

from typing import Any

from flask import Flask


def build_admin(app: Flask, state: Any) -> None:
    return None
