"""What one app holds for Loket: its settings, database, plugin manager and job queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import peewee
import pluggy
from flask import current_app

if TYPE_CHECKING:
    from .channels import Channels
    from .config import Config
    from .jobs import JobQueue


@dataclass
class Loket:
    config: Config
    database: peewee.Database
    pm: pluggy.PluginManager
    enabled: list[str]
    jobs: JobQueue | None = None
    channels: Channels | None = None
    models: dict[str, list[type]] = field(default_factory=dict)  # unit name -> models
    migration_dirs: dict[str, str] = field(default_factory=dict)  # unit name -> folder
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        return self.pm.hook


def loket() -> Loket:
    """The Loket state of the current app."""
    return current_app.extensions["loket"]
