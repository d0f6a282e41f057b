"""Schema migrations: numbered scripts per unit (core and each plugin), one history table each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from playhouse.migrations import Runner

from .state import Loket


@dataclass(frozen=True)
class UnitStatus:
    unit: str
    applied: list[str]
    pending: list[str]


def plugin_migration_dir(plugin: ModuleType | object | None) -> Path | None:
    """A plugin package's ``migrations/`` folder, if it has one with scripts."""
    path = getattr(plugin, "__file__", None)
    if not path:
        return None
    folder = Path(path).parent / "migrations"
    return folder if any(folder.glob("[0-9]*.py")) else None


def _runner(state: Loket, unit: str) -> Runner:
    table = "migrations_" + re.sub(r"\W", "_", unit)
    return Runner(state.database, state.migration_dirs[unit], table_name=table)


def units(state: Loket) -> list[str]:
    """Core first, then the enabled plugins in the order they are named, then any others."""
    ordered = ["core"] + [name for name in state.enabled if name in state.migration_dirs]
    return ordered + sorted(set(state.migration_dirs) - set(ordered))


def status(state: Loket) -> list[UnitStatus]:
    result = []
    for unit in units(state):
        rows = _runner(state, unit).status()
        result.append(UnitStatus(unit, [m.name for m in rows if m.applied],
                                 [m.name for m in rows if not m.applied and m.path]))
    return result


def upgrade(state: Loket) -> dict[str, list[str]]:
    """Apply every pending script, unit by unit; returns what ran."""
    done = {}
    with state.database.connection_context():
        for unit in units(state):
            done[unit] = _runner(state, unit).up()
    return done
