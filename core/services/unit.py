"""A unit of work: one write transaction, and the event hooks it fires after commit."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import peewee

from .. import db
from ..hooks import fire
from ..state import loket

log = logging.getLogger(__name__)
T = TypeVar("T")

_current: contextvars.ContextVar[Unit | None] = contextvars.ContextVar("loket_unit", default=None)


@dataclass
class Unit:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    after: list[Callable[[], object]] = field(default_factory=list)


def emit(hook_name: str, **kwargs: Any) -> None:
    """Queue an event hook; it fires after the outermost transaction commits."""
    unit = _current.get()
    if unit is None:
        raise RuntimeError("emit() outside a unit of work")
    unit.events.append((hook_name, kwargs))


def record(hook_name: str, **kwargs: Any) -> list[Exception]:
    """Call a hook now, inside the current unit's transaction, each implementation in a
    nested unit (a savepoint): one that raises is logged, what it wrote and the events it
    queued are undone, and the unit goes on. Returns the exceptions (already logged)."""
    if _current.get() is None:
        raise RuntimeError("record() outside a unit of work")
    return fire(loket().pm, hook_name, around=unit_of_work, **kwargs)


def after_commit(fn: Callable[[], object], once: bool = False) -> None:
    """Run ``fn`` after the outermost transaction commits (after the event hooks);
    ``once``: not again if it is to run already."""
    unit = _current.get()
    if unit is None:
        raise RuntimeError("after_commit() outside a unit of work")
    if not (once and fn in unit.after):
        unit.after.append(fn)


@contextlib.contextmanager
def unit_of_work() -> Iterator[Unit]:
    """One write transaction. Nested units join the outer one."""
    outer = _current.get()
    if outer is not None:
        # A savepoint: when it rolls back, what it queued never happened, so its events
        # must not fire with the outer unit's (the caller may catch the error and commit).
        events, after = len(outer.events), len(outer.after)
        try:
            with db.database.obj.atomic():
                yield outer
        except BaseException:
            del outer.events[events:]
            del outer.after[after:]
            raise
        return
    unit = Unit()
    token = _current.set(unit)
    try:
        with db.write_transaction():
            yield unit
    finally:
        _current.reset(token)
    pm = loket().pm
    for hook_name, kwargs in unit.events:
        fire(pm, hook_name, **kwargs)
    for fn in unit.after:
        try:
            fn()
        except Exception:
            log.exception("after-commit step failed")


def run_unit(fn: Callable[[], T], retries: int = 2) -> T:
    """Run ``fn`` in a unit of work, retrying when a concurrent writer won a unique key.

    Two deliveries of the same message, or two first messages from the same new
    address, can race past their look-ups on PostgreSQL; the loser's insert
    fails on a unique index, and on the retry its look-up finds the winner's row.
    """
    for attempt in range(retries + 1):
        try:
            with unit_of_work():
                return fn()
        except peewee.IntegrityError:
            if attempt == retries or _current.get() is not None:
                raise
            log.info("unique-key race, retrying (attempt %d)", attempt + 1)
    raise AssertionError("unreachable")
