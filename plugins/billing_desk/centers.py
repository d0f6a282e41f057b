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


def _spans(runs: list[str]) -> set[str]:
    joined = set()
    for start in range(len(runs)):
        for end in range(start + 1, min(start + MAX_SPAN, len(runs)) + 1):
            joined.add("".join(runs[start:end]))
    return joined


def names_of(center: BillingCenter) -> list[str]:
    """Everything a statement or a customer may call a center: its name and descriptors."""
    return [center.name] + center.descriptor_list()


def match_center(text: str, centers: Iterable[BillingCenter]) -> CenterMatch | None:
    """The center whose name or descriptor occurs in ``text``; the longest match wins."""
    spans = _spans(letter_runs(text))
    best: tuple[int, CenterMatch] | None = None
    for center in centers:
        for name in names_of(center):
            key = "".join(letter_runs(name))
            if len(key) >= 3 and key in spans and (best is None or len(key) > best[0]):
                best = (len(key), CenterMatch(center, name))
    return best[1] if best else None


def active_centers() -> list[BillingCenter]:
    return cached_read("centers", lambda: list(
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
