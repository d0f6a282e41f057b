"""Reading a new ticket: is it about billing, which center, does it need a senior person now.

One function, ``assess``, decides from the ticket's category, form answers and
text and the admins' tables; ``route_ticket`` turns its answer into a routing,
and ``record_new_ticket`` records it, so both always agree.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from core.models import Category

from . import words
from .centers import active_centers, center_named, match_center
from .models import (
    BillingCenter,
    BillingPhrase,
    DisputeThreshold,
    PhraseKind,
    RequestKind,
    cached_read,
)
from .money import CURRENCIES, amounts_in, format_amount

# When several phrases say what the customer wants, the first of these wins.
_KIND_ORDER = (RequestKind.REFUND, RequestKind.EXPLAIN, RequestKind.CANCEL, RequestKind.RENEW)
# What counts as disputing a charge (cancelling or renewing is not).
DISPUTES = (RequestKind.REFUND, RequestKind.EXPLAIN, "")


@dataclass
class Assessment:
    billing: bool = False
    why: str = ""  # "billing category", "billing form", "billing words: refund, ditagih"
    matched: list[str] = field(default_factory=list)
    center: BillingCenter | None = None
    descriptor: str = ""
    request_kind: str = ""
    amount: Decimal | None = None
    currency: str = ""
    chargeback: bool = False
    escalate_reason: str = ""


def active_phrases() -> words.PhraseTable:
    """The active phrases in their order, with their words worked out (``words.find``)."""

    def load() -> words.PhraseTable:
        rows = (BillingPhrase.select(BillingPhrase.text, BillingPhrase.language,
                                     BillingPhrase.kind, BillingPhrase.request_kind)
                .where(BillingPhrase.active).order_by(BillingPhrase.id).tuples())
        return words.PhraseTable(words.Phrase(*row) for row in rows
                                 if row[1] in words.LANGUAGES)

    return cached_read("phrases", load)


def thresholds() -> dict[str, Decimal]:
    return cached_read("thresholds", lambda: {row.currency: Decimal(row.amount)
                                              for row in DisputeThreshold.select()})


def speaks_of_billing(found: list[words.Found], text: str) -> bool:
    """Strong words route alone; a weak word ("cancel") needs a context word, an amount of
    money, or a second weak word elsewhere in the text ("cancel the renewal")."""
    kinds = [f.phrase.kind for f in found]
    if PhraseKind.STRONG in kinds or PhraseKind.CHARGEBACK in kinds:
        return True
    # Counted by place: "cancel" matches the English and the Filipino entry at once.
    weak = {f.at for f in found if f.phrase.kind == PhraseKind.WEAK}
    if not weak:
        return False
    return PhraseKind.CONTEXT in kinds or len(weak) >= 2 or bool(amounts_in(text))


def _form_amount(form_data: dict[str, Any]) -> tuple[Decimal | None, str]:
    currency = str(form_data.get("currency") or "")
    try:
        amount = Decimal(str(form_data.get("amount")))
    except (InvalidOperation, TypeError, ValueError):
        return None, ""
    return (amount, currency) if currency in CURRENCIES and amount.is_finite() else (None, "")


def _request_kind(form_data: dict[str, Any], found: list[words.Found]) -> str:
    asked = str(form_data.get("request_kind") or "")
    if asked in RequestKind.ALL:
        return asked
    kinds = {f.phrase.request_kind for f in found if f.phrase.request_kind}
    return next((kind for kind in _KIND_ORDER if kind in kinds), "")


# The latest answers of ``assess``: routing asks before the write and ``record_new_ticket``
# inside it, about the same ticket. An answer is reused only while the tables it was
# read from are the very ones the cache holds (a change through the models, or the cache's
# own expiry, gives new objects), so it is never staler than those reads.
_ASSESSED_KEEP = 64
_assessed: dict[tuple[Any, ...], tuple[tuple[object, ...], Assessment]] = {}
_assessed_lock = threading.Lock()


def assess(category: Category | None, form_data: dict[str, Any], text: str,
           is_billing_category: Any) -> Assessment:
    """What the desk makes of a new ticket; reads the database, changes nothing.

    The answer may be shared with another caller about the same ticket: read it, never
    change it.
    """
    form_data = form_data or {}
    tables = (active_phrases(), active_centers(), thresholds())
    key = ((category.id, category.slug, category.parent_id) if category is not None else None, text,
           repr(sorted(form_data.items())), is_billing_category)
    with _assessed_lock:
        seen = _assessed.get(key)
    if seen is not None and all(a is b for a, b in zip(seen[0], tables, strict=True)):
        return seen[1]
    result = _assess(category, form_data, text, is_billing_category, *tables)
    with _assessed_lock:
        while len(_assessed) >= _ASSESSED_KEEP:
            _assessed.pop(next(iter(_assessed)))
        _assessed[key] = (tables, result)
    return result


def _assess(category: Category | None, form_data: dict[str, Any], text: str,
            is_billing_category: Any, phrases: words.PhraseTable, centers: list[BillingCenter],
            limits: dict[str, Decimal]) -> Assessment:
    """``assess`` with the tables it read once (phrases, active centers, thresholds)."""
    found = words.find(phrases, text)
    result = Assessment(matched=list(dict.fromkeys(f.phrase.text for f in found)))
    in_text = match_center(text, centers)
    named = center_named(str(form_data.get("billing_center") or ""))
    chosen = named or (in_text.center if in_text else None)
    if chosen is not None:
        result.center = chosen
        result.descriptor = in_text.descriptor if in_text and in_text.center == chosen \
            else chosen.name
    reasons = []
    if category is not None and is_billing_category(category):
        reasons.append("billing category")
    if str(form_data.get("request_kind") or "") in RequestKind.ALL:
        reasons.append("billing form")
    if speaks_of_billing(found, text):
        reasons.append("billing words: " + ", ".join(dict.fromkeys(result.matched)))
    if in_text is not None:
        reasons.append(f"billing center named: {in_text.descriptor}")
    result.billing = bool(reasons)
    result.why = "; ".join(reasons)
    if not result.billing:
        return result
    result.request_kind = _request_kind(form_data, found)
    result.chargeback = any(f.phrase.kind == PhraseKind.CHARGEBACK for f in found)
    result.amount, result.currency = _form_amount(form_data)
    if result.amount is None:
        # The amount written in the text that goes furthest over its threshold.
        written = [(a, c) for a, c in amounts_in(text) if c in limits]
        if written:
            result.amount, result.currency = max(written, key=lambda ac: ac[0] / limits[ac[1]])
    if result.chargeback:
        result.escalate_reason = "the customer mentions a chargeback"
    elif (result.request_kind in DISPUTES and result.amount is not None
          and result.currency in limits and result.amount > limits[result.currency]):
        result.escalate_reason = (
            f"a dispute of {format_amount(result.amount, result.currency)}, above the "
            f"{format_amount(limits[result.currency], result.currency)} threshold")
    return result


def charged_on(form_data: dict[str, Any]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(form_data.get("charged_on") or ""))
    except ValueError:
        return None
