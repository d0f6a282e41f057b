"""The layers hold: no import cycle in core, core runs without the console, plugins use only the published API.

The import contracts themselves (core never imports admin or plugins, plugins never
import each other, core's internal layers) are in .importlinter, checked by
``lint-imports`` in ./dev test; these tests pin what a contract cannot say.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import admin
import core

REPO = Path(__file__).resolve().parents[1]


def _cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The import cycles among ``package``'s modules: strongly connected groups of two or more."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(f"{package}."))
    inside = set(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module) & inside):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_the_modules_of_core_import_one_another_without_a_cycle():
    # Every import counts, inside functions and under TYPE_CHECKING too: a lazy import
    # hides a cycle from Python at start-up, not from the next reader.
    graph = grimp.build_graph("core")
    assert _cycles(graph, "core") == []


def test_the_cycle_finder_sees_a_cycle():
    graph = grimp.build_graph("core")
    graph.add_import(importer="core.db", imported="core.services.tickets")  # tickets -> db
    assert any({"core.db", "core.services.tickets"} <= set(group)
               for group in _cycles(graph, "core"))


# -- the published plugin API -----------------------------------------------------------


def _is_private(module: str, name: str) -> bool:
    """An underscore name, unless the module lists it in ``__all__`` (as core.i18n does ``_``)."""
    exported = getattr(importlib.import_module(module), "__all__", ())
    return name.startswith("_") and name not in exported


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _unpublished_imports(path: Path) -> list[str]:
    """Imports in one plugin file of a core (or console) module or name it does not publish."""
    published = set(core.PLUGIN_API) | set(admin.PLUGIN_API)
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            imported = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in imported:
            if module.split(".")[0] not in {"core", "admin"}:
                continue
            if name is not None and _is_module(f"{module}.{name}"):
                module, name = f"{module}.{name}", None  # `from core import db` imports core.db
            where = f"{path.name}:{node.lineno}"
            if module not in published:
                bad.append(f"{where} imports {module}, which core does not publish")
            elif name is not None and _is_private(module, name):
                bad.append(f"{where} imports the private name {module}.{name}")
    return list(dict.fromkeys(bad))  # `from core.config import a, b` is one finding


def test_built_in_plugins_import_only_what_core_publishes():
    files = sorted((REPO / "plugins").rglob("*.py"))
    assert len(files) >= 5
    bad = [f"{path.parent.name}/{line}" for path in files for line in _unpublished_imports(path)]
    assert bad == [], "\n".join(bad)


def test_the_plugin_api_check_catches_unpublished_modules_and_private_names(tmp_path):
    plugin = tmp_path / "plugin.py"
    plugin.write_text("from core import serving\nimport core.app\nfrom core.i18n import _\n"
                      "from core.settings import Setting\nfrom core.config import _as_list\n"
                      "from core.services import unit\nfrom admin.base import SecuredView\n"
                      "from core.hookspecs import _private_helper\n")
    assert _unpublished_imports(plugin) == [
        "plugin.py:1 imports core.serving, which core does not publish",
        "plugin.py:2 imports core.app, which core does not publish",
        "plugin.py:5 imports core.config, which core does not publish",
        "plugin.py:6 imports core.services.unit, which core does not publish",
        "plugin.py:8 imports the private name core.hookspecs._private_helper",
    ]


def test_every_published_module_exists():
    missing = [name for name in core.PLUGIN_API + admin.PLUGIN_API if not _is_module(name)]
    assert missing == []


# -- one accessor for the app's state ---------------------------------------------------


def test_only_core_state_reaches_into_the_current_apps_extensions():
    # Everything else asks core.state.loket() for the settings, hook caller and job queue.
    found = []
    for folder in ("core", "admin", "plugins"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Attribute) and node.attr == "extensions"
                        and isinstance(node.value, ast.Name) and node.value.id == "current_app"):
                    found.append(str(path.relative_to(REPO)))
    assert found == ["core/state.py"]


# -- the console is a plugin ------------------------------------------------------------


PROBE = """
import json, sys
from core import create_app
create_app({"instance_path": sys.argv[1], "database_url": "sqlite:///" + sys.argv[1] + "/x.db",
            "secret_key": "k", "jobs": "immediate", "plugins": [], "console": sys.argv[2]})
print(json.dumps(sorted(m for m in sys.modules if m == "admin" or m.startswith("admin."))))
"""


def _console_modules_loaded(tmp_path: Path, console: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path), console],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("console, loaded", [("off", False), ("on", True)])
def test_create_app_imports_the_console_only_as_the_enabled_plugin(tmp_path, console, loaded):
    # A fresh interpreter: this test process has imported admin already.
    assert bool(_console_modules_loaded(tmp_path, console)) is loaded


def test_the_console_is_found_through_its_entry_point():
    from core.plugins import CONSOLE_PLUGIN_NAME, installed_plugins

    assert installed_plugins()[CONSOLE_PLUGIN_NAME].value == "admin"
