"""Finding a billing center from whatever a customer copies off their card statement.

Statements print a descriptor ("EPOCH.COM", "CCBILL.COM*SITE 8885969279 AZ",
"SEGPAY*EU 24.95"), in capitals, with asterisks, dots, phone numbers and store
ids around it. Both the statement text and each descriptor are reduced to their
letter runs; a descriptor matches when its letters, joined, equal the joined
letters of consecutive words of the text: "EPOCH.COM" matches "epoch com" and
"EPOCHCOM", "CC BILL" matches "CCBILL", but "EPOCH" never matches "EPOCHAL".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .models import BillingCenter, cached_read
from .words import normalise

_LETTERS = re.compile(r"[^\W\d_]+")
MAX_SPAN = 6  # consecutive statement words one descriptor may span ("E P O C H")


def letter_runs(text: str) -> list[str]:
    """The text's runs of letters: case, punctuation, asterisks, digits and ids dropped."""
    return _LETTERS.findall(normalise(text))


@dataclass(frozen=True)
class CenterMatch:
    center: BillingCenter
    descriptor: str  # the descriptor or alias that matched


def names_of(center: BillingCenter) -> list[str]:
    """Everything a statement or a customer may call a center: its name and descriptors."""
    return [center.name] + center.descriptor_list()


class CenterTable(list):  # type: ignore[type-arg]
    """Centers in their order, with the letters of each of their names worked out once:
    (letters, center, name), names of fewer than three letters left out (they would
    match by chance). Kept with the centers routing reads (``active_centers``)."""

    def __init__(self, centers: Iterable[BillingCenter] = ()):
        super().__init__(centers)
        self.keys = [(key, center, name) for center in self for name in names_of(center)
                     if len(key := "".join(letter_runs(name))) >= 3]


def _spanned(key: str, joined: str, starts: dict[int, int], ends: dict[int, int]) -> bool:
    """``key`` equals the letters of up to MAX_SPAN consecutive runs: it occurs in the
    joined runs starting where a run starts and ending where one ends."""
    at = joined.find(key)
    while at >= 0:
        first = starts.get(at)
        if first is not None:
            last = ends.get(at + len(key))
            if last is not None and last - first < MAX_SPAN:
                return True
        at = joined.find(key, at + 1)
    return False


def match_center(text: str, centers: Iterable[BillingCenter]) -> CenterMatch | None:
    """The center whose name or descriptor occurs in ``text``; the longest match wins."""
    table = centers if isinstance(centers, CenterTable) else CenterTable(centers)
    runs = letter_runs(text)
    joined = "".join(runs)
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    offset = 0
    for index, run in enumerate(runs):
        starts[offset] = index
        offset += len(run)
        ends[offset] = index
    best: tuple[int, CenterMatch] | None = None
    for key, center, name in table.keys:
        if (best is None or len(key) > best[0]) and _spanned(key, joined, starts, ends):
            best = (len(key), CenterMatch(center, name))
    return best[1] if best else None


def active_centers() -> CenterTable:
    return cached_read("centers", lambda: CenterTable(
        BillingCenter.select().where(BillingCenter.active)
        .order_by(BillingCenter.position, BillingCenter.name)))


def center_named(name: str) -> BillingCenter | None:
    """The center a form answer names (its exact name, any case), active or not."""
    wanted = (name or "").strip().casefold()
    if not wanted:
        return None
    for center in BillingCenter.select():
        if center.name.casefold() == wanted:
            return center
    return None
