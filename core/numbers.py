"""Numbers from outside (URLs, query strings, forms, JSON) bounded to what the database holds."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter

# Row ids are 32-bit on PostgreSQL (serial); SQLite would take more, but one bound serves both,
# so a number PostgreSQL would refuse with an error is refused here first, as "not found".
MAX_ID = 2**31 - 1
# No list is ever this long; a larger page number is a typo or a probe, not a request.
MAX_PAGE = 1_000_000


def parse_id(value: Any) -> int | None:
    """A positive row id from JSON, a query string or a form; None when it cannot be one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            return None
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_ID:
        return None
    return value


def parse_page(value: Any) -> int | None:
    """A zero-based page number (absent: 0); None when it is negative, absurd or no number."""
    if value is None or value == "":
        return 0
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    page = int(value)
    return page if page <= MAX_PAGE else None


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: never a number the database cannot hold.

    A larger number becomes ``MAX_ID + 1``, which names no row on either database, so
    each view answers it with its own "not found" (the API's tracking 404 must look
    the same for a wrong key, a missing ticket and an absurd number).
    """

    def to_python(self, value: str) -> int:
        return min(super().to_python(value), MAX_ID + 1)
