"""The plugins page: what is installed, what this deployment enabled, and their hooks."""

from __future__ import annotations

from typing import Any

from flask_admin import expose

from core.plugins import describe

from .base import SecuredBaseView


class PluginsView(SecuredBaseView):
    """Read-only: plugins are chosen in the configuration, not here."""

    def __init__(self, state: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.state = state

    @expose("/")
    def index(self) -> Any:
        return self.render("loket_admin/plugins.html",
                           plugins=describe(self.state.pm, self.state.enabled))
