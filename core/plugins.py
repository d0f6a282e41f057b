"""The plugin manager of one app: entry points, the enabled list, and isolated event calls."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from . import builtin, hookspecs
from .channels import Channels, DeclaredChannel
from .hooks import fire
from .hookspecs import ChannelSpec

__all__ = ["PluginError", "PluginInfo", "build_manager", "describe", "enabled_plugins", "fire",
           "installed_plugins"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "loket.plugins"
CORE_PLUGIN_NAME = "core"
# The staff console (package admin/) is a plugin core finds by this entry-point name, so core
# never imports it; it is on unless the `console` setting is off.
CONSOLE_PLUGIN_NAME = "console"


class PluginError(Exception):
    """An enabled plugin cannot be loaded. The message is one line."""


@dataclass(frozen=True)
class PluginInfo:
    """An installed plugin as its distribution's metadata describes it."""

    name: str
    version: str
    module: str
    enabled: bool
    hooks: tuple[str, ...]  # only for a plugin this app loaded; () for the others
    loaded: bool = False


def installed_plugins() -> dict[str, importlib.metadata.EntryPoint]:
    """Every plugin installed in this environment, by entry-point name."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def enabled_plugins(config: Mapping[str, Any]) -> list[str]:
    """The entry points this deployment loads: the console (unless off), then ``plugins``."""
    names = [name for name in config["plugins"] if name != CONSOLE_PLUGIN_NAME]
    if config["console"]:
        names.insert(0, CONSOLE_PLUGIN_NAME)
    return names


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
        if ep is None and name == CONSOLE_PLUGIN_NAME:
            raise PluginError("LOKET_CONSOLE: the console is not installed (reinstall Loket, "
                              "or set LOKET_CONSOLE=off to run without it)")
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
    """Installed plugins with version, module and enabled flag, and the hooks of loaded ones.

    Read from the distributions' metadata: a plugin this app did not load is not
    imported here either (importing runs its code, which enabling is meant to gate).
    """
    enabled = set(enabled)
    infos = []
    for name, ep in sorted(installed_plugins().items()):
        version = ep.dist.version if ep.dist else "?"
        plugin = pm.get_plugin(name) if pm is not None else None
        hooks = _hooks_of(pm, plugin) if pm is not None and plugin is not None else ()
        infos.append(PluginInfo(name, version, ep.value, name in enabled, hooks,
                                loaded=plugin is not None))
    return infos


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))


def collect_channels(pm: pluggy.PluginManager) -> Channels:
    """Ask every enabled plugin for its channels; two owners of one name stop start-up."""
    declared: dict[str, DeclaredChannel] = {}
    for impl in pm.hook.register_channels.get_hookimpls():
        for spec in impl.function() or ():
            if not isinstance(spec, ChannelSpec):
                raise PluginError(f"plugin {impl.plugin_name!r}: register_channels returned "
                                  f"{spec!r}, not a core.hookspecs.ChannelSpec")
            if not spec.name or not spec.name.replace("_", "").isalnum() or len(spec.name) > 32:
                raise PluginError(f"plugin {impl.plugin_name!r}: channel name {spec.name!r} "
                                  "must be 1-32 letters, digits or _")
            other = declared.get(spec.name)
            if other is not None:
                raise PluginError(f"channel {spec.name!r} is declared by both "
                                  f"{other.owner!r} and {impl.plugin_name!r}; enable only one")
            declared[spec.name] = DeclaredChannel(spec, impl.plugin_name)
    return Channels(list(declared.values()))
