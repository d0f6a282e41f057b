"""Every hook is documented and tested: a new hook without both fails here."""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path

import pluggy
import pytest

from core import hookspecs

TESTS = Path(__file__).parent

def _hook_names() -> list[str]:
    pm = pluggy.PluginManager("loket")
    pm.add_hookspecs(hookspecs)
    return sorted(name for name in vars(pm.hook) if not name.startswith("_"))


HOOKS = _hook_names()


def test_there_are_hooks():
    assert {"route_ticket", "ticket_created", "deliver_message", "contact_channels",
            "register_blueprints", "register_jobs"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    fn = getattr(hookspecs, hook)
    doc = inspect.getdoc(fn) or ""
    assert len(doc) > 40, f"hook {hook} needs a docstring stating its contract"
    hints = inspect.get_annotations(fn)
    assert "return" in hints, f"hook {hook} needs a return annotation"
    for name in inspect.signature(fn).parameters:
        assert name in hints, f"hook {hook}: parameter {name} needs a type"


def _checks_something(fn: ast.AST, helpers: dict[str, ast.FunctionDef], seen: set[str]) -> bool:
    """Whether ``fn`` asserts (``assert`` or ``pytest.raises``), itself or through a helper."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
            if name == "raises":
                return True
            if name in helpers and name not in seen:
                seen.add(name)
                if _checks_something(helpers[name], helpers, seen):
                    return True
    return False


@functools.cache
def _checking_test_names() -> frozenset[str]:
    """Names of the suite's tests that check something; an empty test does not count."""
    names = set()
    for path in TESTS.rglob("test_*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        helpers = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
                    and _checks_something(node, helpers, {node.name})):
                names.add(node.name)
    return frozenset(names)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    """A test named test_<hook>_... that asserts something must exist somewhere in the suite."""
    names = _checking_test_names()
    assert any(name == f"test_{hook}" or name.startswith(f"test_{hook}_") for name in names), (
        f"no test named test_{hook}_... asserts anything: write one that proves the hook is "
        f"called and its result used")
