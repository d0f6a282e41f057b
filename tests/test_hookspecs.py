"""Every hook is documented and tested: a new hook without both fails here."""

from __future__ import annotations

import inspect
import re
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


def _test_function_names() -> set[str]:
    names = set()
    for path in TESTS.rglob("test_*.py"):
        names.update(re.findall(r"^\s*def (test_\w+)", path.read_text(), re.M))
    return names


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    """A test named test_<hook>_... must exist somewhere in the suite."""
    names = _test_function_names()
    assert any(name.startswith(f"test_{hook}") for name in names), (
        f"no test is named test_{hook}_...: write one that proves the hook is called "
        f"and its result used")
