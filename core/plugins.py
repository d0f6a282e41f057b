"""The plugin manager of one app: entry points, the enabled list, and isolated event calls."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from . import builtin, hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "loket.plugins"
CORE_PLUGIN_NAME = "core"


class PluginError(Exception):
    """An enabled plugin cannot be loaded. The message is one line."""


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    module: str
    enabled: bool
    hooks: tuple[str, ...]


def installed_plugins() -> dict[str, importlib.metadata.EntryPoint]:
    """Every plugin installed in this environment, by entry-point name."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def build_manager(enabled: Iterable[str], extra: Iterable[Any] = ()) -> pluggy.PluginManager:
    """Build a manager with core's defaults and the enabled plugins only.

    Plugins not named in ``enabled`` are never imported. ``extra`` registers
    plugin objects directly (tests use it for spies).
    """
    pm = pluggy.PluginManager("loket")
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name=CORE_PLUGIN_NAME)
    available = installed_plugins()
    for name in enabled:
        ep = available.get(name)
        if ep is None:
            known = ", ".join(sorted(available)) or "none"
            raise PluginError(f"LOKET_PLUGINS: {name!r} is not installed (installed: {known})")
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin stops start-up, with the reason
            raise PluginError(f"LOKET_PLUGINS: plugin {name!r} failed to import: {exc}") from exc
        pm.register(module, name=name)
    for obj in extra:
        pm.register(obj)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin hook error: {exc}") from exc
    return pm


def describe(pm: pluggy.PluginManager | None, enabled: Iterable[str]) -> list[PluginInfo]:
    """Installed plugins with version, enabled flag and the hooks each implements."""
    enabled = set(enabled)
    infos = []
    for name, ep in sorted(installed_plugins().items()):
        version = ep.dist.version if ep.dist else "?"
        hooks: tuple[str, ...] = ()
        if pm is not None and pm.get_plugin(name) is not None:
            hooks = _hooks_of(pm, pm.get_plugin(name))
        elif name not in enabled or pm is None:
            # Not loaded here: read its hooks without registering it anywhere.
            hooks = _declared_hooks(ep)
        infos.append(PluginInfo(name, version, ep.value, name in enabled, hooks))
    return infos


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))


def _declared_hooks(ep: importlib.metadata.EntryPoint) -> tuple[str, ...]:
    scratch = pluggy.PluginManager("loket")
    scratch.add_hookspecs(hookspecs)
    try:
        module: ModuleType = ep.load()
        scratch.register(module)
    except Exception as exc:
        log.warning("plugin %s cannot be inspected: %s", ep.name, exc)
        return ()
    return _hooks_of(scratch, module)


def fire(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[Exception]:
    """Call an event hook with each implementation isolated from the others.

    Returns the exceptions raised (already logged), so callers and tests can
    see them; they never propagate.
    """
    caller = getattr(pm.hook, hook_name)
    errors: list[Exception] = []
    # pluggy calls implementations last-registered first; keep that order.
    for impl in reversed(caller.get_hookimpls()):
        args = {name: kwargs[name] for name in impl.argnames if name in kwargs}
        try:
            impl.function(**args)
        except Exception as exc:
            log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)
            errors.append(exc)
    return errors
