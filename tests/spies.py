"""A plugin that records every event hook call, for tests."""

from __future__ import annotations

from typing import Any

from core import hookimpl


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
