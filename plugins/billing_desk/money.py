"""Amounts of money as customers write them: currencies, their decimals, limits, text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class Currency:
    code: str
    decimals: int  # digits after the decimal point the currency uses
    largest: Decimal  # the most one billing dispute can plausibly be about
    symbols: tuple[str, ...] = ()


# IDR has 0 decimals here although ISO 4217 lists 2: no sen has circulated for decades,
# prices and card statements in Indonesia are in whole rupiah, and "150.000" there means
# one hundred fifty thousand. A statement that prints ISO's ",00" is still accepted
# (trailing zeros up to two places, below), a real fraction of a rupiah is refused.
CURRENCIES = {c.code: c for c in (
    Currency("USD", 2, Decimal("100000"), ("$", "us$", "usd")),
    Currency("EUR", 2, Decimal("100000"), ("€", "eur")),
    Currency("GBP", 2, Decimal("100000"), ("£", "gbp")),
    Currency("JPY", 0, Decimal("15000000"), ("¥", "jpy", "yen")),
    Currency("IDR", 0, Decimal("1500000000"), ("rp", "idr", "rupiah")),
    Currency("PHP", 2, Decimal("5000000"), ("₱", "php", "piso", "pesos")),
)}
# Statements print two places whatever the currency uses; zeros there say nothing more.
PRINTED_PLACES = 2


class AmountError(ValueError):
    """Why an amount cannot be taken; ``code`` picks the customer's message."""

    def __init__(self, code: str, currency: Currency | None = None):
        super().__init__(code)
        self.code = code
        self.currency = currency


_PLAIN = re.compile(r"^\d+(?:\.\d+)?$")


def parse_amount(text: str, code: str) -> Decimal:
    """An amount as typed on the billing form: digits, one point before the decimals.

    Refuses (``AmountError``) what is not a number, zero or less, more decimals
    than the currency has (zeros aside, up to two places), and more than the
    currency's ``largest``.
    """
    currency = CURRENCIES.get(code)
    if currency is None:
        raise AmountError("currency")
    cleaned = (text or "").strip().replace(" ", "")
    if cleaned.startswith("-"):
        raise AmountError("negative", currency)
    if not _PLAIN.match(cleaned):
        raise AmountError("format", currency)
    whole, _, fraction = cleaned.partition(".")
    significant = fraction.rstrip("0")
    if len(significant) > currency.decimals or len(fraction) > max(currency.decimals,
                                                                   PRINTED_PLACES):
        raise AmountError("decimals", currency)
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise AmountError("format", currency) from None
    if value <= 0:
        raise AmountError("negative", currency)
    if value > currency.largest:
        raise AmountError("huge", currency)
    return value.quantize(Decimal(1).scaleb(-currency.decimals))


def format_amount(value: Decimal, code: str) -> str:
    currency = CURRENCIES.get(code)
    places = currency.decimals if currency else 2
    return f"{code} {value:,.{places}f}"


# "$ 29.99", "USD 1,250.00", "Rp 5.000.000", "₱12,000", "29.99 EUR", "¥50000".
_SYMBOLS = sorted({s for c in CURRENCIES.values() for s in c.symbols}, key=len, reverse=True)
_SYMBOL = "|".join(re.escape(s) for s in _SYMBOLS)
_NUMBER = r"\d{1,3}(?:[.,\s]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_IN_TEXT = re.compile(
    rf"(?:(?<![\w])(?P<pre>{_SYMBOL})\s?(?P<a>{_NUMBER}))"
    rf"|(?:(?<![\w.,])(?P<b>{_NUMBER})\s?(?P<post>{_SYMBOL})(?![\w]))", re.IGNORECASE)


def _number(text: str) -> Decimal | None:
    """A number written with thousands separators of either kind and maybe decimals."""
    text = re.sub(r"\s", "", text)
    head, sep, tail = text[:-3], text[-3:-2], text[-2:]
    if sep in ".," and len(text) > 3 and tail.isdigit() and not re.search(r"[.,]", tail):
        # "1,250.00" / "150.000,50": the last separator two from the end marks decimals.
        integer, decimals = re.sub(r"[.,]", "", head), tail
    elif len(text) > 2 and text[-2] in ".," and text[-1].isdigit():
        integer, decimals = re.sub(r"[.,]", "", text[:-2]), text[-1]
    else:
        integer, decimals = re.sub(r"[.,]", "", text), ""
    try:
        return Decimal(f"{integer}.{decimals}" if decimals else integer)
    except InvalidOperation:
        return None


def amounts_in(text: str) -> list[tuple[Decimal, str]]:
    """The amounts of money written in ``text``, with their currency codes."""
    found = []
    by_symbol = {s: c.code for c in CURRENCIES.values() for s in c.symbols}
    for match in _IN_TEXT.finditer(text or ""):
        symbol = (match.group("pre") or match.group("post")).lower()
        value = _number(match.group("a") or match.group("b"))
        if value is not None and value > 0:
            found.append((value, by_symbol[symbol]))
    return found
