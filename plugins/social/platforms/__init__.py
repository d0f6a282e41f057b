"""Platform adapters, one module each, and the registry that finds them by name.

A fourth platform (Instagram, LINE) is a module with a ``Platform`` subclass
(see ``base.py``) and one line in ``_MODULES``.
"""

from __future__ import annotations

import importlib

from .base import Platform

_MODULES = {"telegram": "telegram", "whatsapp": "whatsapp", "messenger": "messenger"}
_loaded: dict[str, Platform] = {}


def names() -> list[str]:
    return list(_MODULES)


def get(name: str) -> Platform | None:
    if name not in _MODULES:
        return None
    if name not in _loaded:
        module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
        _loaded[name] = module.register()
    return _loaded[name]


def all_platforms() -> list[Platform]:
    return [p for p in (get(name) for name in names()) if p is not None]
