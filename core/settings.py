"""Declaring settings, for core and plugins alike: ``Setting`` and the value parsers.

Part of the published plugin API: a plugin returns ``Setting`` objects from its
``plugin_settings`` hook and may use any parser here. A parser takes the raw value
(a string from the environment, or a TOML value) and returns the parsed value or
raises ``ValueError`` with a short reason; the configuration turns that into one
line naming the setting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

__all__ = ["Setting", "as_bool", "as_http_url", "as_int", "as_list", "as_rate", "as_seconds",
           "as_str"]


@dataclass(frozen=True)
class Setting:
    """One setting: its name (lower case), default, parser and help text."""

    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    secret: bool = False


def as_str(value: Any) -> str:
    """Text, as given."""
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


def as_int(value: Any) -> int:
    """A whole number, zero or more."""
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise ValueError(f"must not be negative, got {number}")
    return number


def as_bool(value: Any) -> bool:
    """true/false, yes/no, on/off or 1/0; empty is false."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def as_list(value: Any) -> list[str]:
    """A list of words: a TOML array, or text separated by commas or spaces."""
    if isinstance(value, str):
        items = value.replace(",", " ").split()
    elif isinstance(value, Iterable):
        items = [str(item).strip() for item in value]
    else:
        raise ValueError(f"expected a list, got {value!r}")
    return [item for item in items if item]


def as_http_url(value: Any) -> str:
    """An http(s):// address, without a trailing slash."""
    url = as_str(value).rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ValueError(f"expected an http(s):// address, got {url!r}")
    return url


def as_seconds(value: Any) -> float:
    """A duration in seconds: more than 0, at most an hour."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds, got {value!r}") from None
    if not 0 < seconds <= 3600:
        raise ValueError(f"expected more than 0 and at most 3600 seconds, got {value!r}")
    return seconds


def as_rate(value: Any) -> str:
    """Rate limits such as ``10/minute;100/hour`` (the ``limits`` library's notation), or empty."""
    text = as_str(value).strip()
    if text:
        from limits import parse_many

        try:
            parse_many(text)
        except ValueError:
            raise ValueError(f"expected limits like '10/minute;100/hour' (or empty for none), "
                             f"got {value!r}") from None
    return text
