"""Test spies: a plugin that records every event hook call, and the SQL peewee runs."""

from __future__ import annotations

import logging
import re
from typing import Any

from core import db, hookimpl


class Spy:
    """Registered with ``make_app(extra_plugins=(spy,))``; ``spy.calls`` lists (hook, kwargs)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, hook: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == hook]

    @hookimpl
    def ticket_created(self, ticket: Any, message: Any) -> None:
        self.calls.append(("ticket_created", {"ticket": ticket, "message": message}))

    @hookimpl
    def message_added(self, ticket: Any, message: Any) -> None:
        self.calls.append(("message_added", {"ticket": ticket, "message": message}))

    @hookimpl
    def ticket_status_changed(self, ticket: Any, old: str, new: str, actor: Any) -> None:
        self.calls.append(("ticket_status_changed",
                           {"ticket": ticket, "old": old, "new": new, "actor": actor}))

    @hookimpl
    def ticket_assigned(self, ticket: Any, old: Any, new: Any, actor: Any) -> None:
        self.calls.append(("ticket_assigned", {"ticket": ticket, "old": old, "new": new,
                                               "actor": actor}))

    @hookimpl
    def ticket_updated(self, ticket: Any, changes: dict, actor: Any) -> None:
        self.calls.append(("ticket_updated", {"ticket": ticket, "changes": changes,
                                              "actor": actor}))

    @hookimpl
    def ticket_escalated(self, ticket: Any, old: Any, new: Any, level: int, reason: str,
                         actor: Any) -> None:
        self.calls.append(("ticket_escalated", {"ticket": ticket, "old": old, "new": new,
                                                "level": level, "reason": reason}))

    @hookimpl
    def contact_identified(self, contact: Any, identity_kind: str, value: str) -> None:
        self.calls.append(("contact_identified", {"contact": contact, "kind": identity_kind,
                                                  "value": value}))

    @hookimpl
    def message_delivery_changed(self, ticket: Any, message: Any, old: str, new: str,
                                 error: str) -> None:
        self.calls.append(("message_delivery_changed", {"message": message, "old": old,
                                                        "new": new, "error": error}))


class Statements(logging.Handler):
    """The statements peewee runs while attached: ``with Statements() as caught: ...``.

    ``caught.caught`` holds (SQL, parameters) in order; ``keep`` (prefixes of the SQL, such
    as ``("SELECT", "WITH")``) narrows what is kept.
    """

    keep: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.caught: list[tuple[str, list[Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, tuple):
            sql = str(record.msg[0])
            if not self.keep or sql.lstrip().startswith(self.keep):
                self.caught.append((sql, list(record.msg[1] or ())))

    @property
    def sql(self) -> list[str]:
        return [sql for sql, _ in self.caught]

    @property
    def text(self) -> list[str]:
        """The SQL of each statement, a prepared one's (sent as ``EXECUTE "name"(...)`` on
        PostgreSQL, ``core.db``) read through its name."""
        return [as_sql(sql) for sql, _ in self.caught]

    @property
    def params(self) -> list[list[Any]]:
        return [params for _, params in self.caught]

    def __enter__(self) -> Statements:
        logger = logging.getLogger("peewee")
        self.level_before = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        logger = logging.getLogger("peewee")
        logger.removeHandler(self)
        logger.setLevel(self.level_before)



def as_sql(sent: str) -> str:
    """The SQL of a statement as sent: a named statement on PostgreSQL is sent as
    ``EXECUTE "name"(...)`` (prepared once per connection, ``core.db``)."""
    found = re.match(r'EXECUTE "([^"]+)"', sent)
    if found is None:
        return sent
    statement = db.STATEMENTS[found.group(1)]
    return statement.compile(statement.arity)[0]
