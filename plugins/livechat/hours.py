"""Chat hours per weekday, in the desk's time zone.

The setting reads ``mon-fri 08:00-17:00; sat 09:00-12:00``: groups separated by
``;``, each a day or a range of days (``mon``…``sun``, ranges may wrap: ``sat-mon``)
or nothing (every day), then one or more ``HH:MM-HH:MM`` windows separated by
``,``. A window that ends before it starts runs over midnight and belongs to the
day it starts on (``fri 22:00-02:00`` is Friday night into Saturday). A day named
nowhere has no chat hours. Empty: always open.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")

Hours = dict[int, list[tuple[dt.time, dt.time]]]


def _days(spec: str) -> list[int]:
    if not spec:
        return list(range(7))
    first, _sep, last = spec.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise ValueError(f"unknown day {spec!r} (use mon, tue, wed, thu, fri, sat, sun)")
    start = DAYS.index(first)
    end = DAYS.index(last) if last else start
    return [(start + i) % 7 for i in range((end - start) % 7 + 1)]


def parse_hours(text: str) -> Hours | None:
    """Weekday (0 = Monday) to windows, or None for always; ValueError when malformed."""
    text = text.strip().lower()
    if not text:
        return None
    hours: Hours = {day: [] for day in range(7)}
    for group in filter(None, (g.strip() for g in text.split(";"))):
        days, _sep, windows = group.rpartition(" ")
        if not windows:
            raise ValueError(f"no hours in {group!r}")
        for window in windows.split(","):
            match = _WINDOW.match(window.strip())
            if match is None:
                raise ValueError(f"expected HH:MM-HH:MM, got {window!r} in {group!r}")
            h1, m1, h2, m2 = (int(x) for x in match.groups())
            begin, end = dt.time(h1, m1), dt.time(h2, m2)
            if begin == end:
                raise ValueError(f"an empty window {window!r}")
            for day in _days(days.strip()):
                hours[day].append((begin, end))
    return hours


def open_at(hours: Hours | None, moment: dt.datetime, zone: str) -> bool:
    """Whether chat is open at ``moment`` (naive UTC, as the desk stores time)."""
    if hours is None:
        return True
    local = moment.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone))
    day, now = local.weekday(), local.time()
    for begin, end in hours[day]:
        if (begin < end and begin <= now < end) or (begin > end and now >= begin):
            return True
    # Yesterday's windows that run over midnight into today.
    return any(begin > end and now < end for begin, end in hours[(day - 1) % 7])
