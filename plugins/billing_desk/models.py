"""The billing desk's tables: billing centers, the words that route, thresholds, cases."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

import peewee as pw

from core.models import BaseModel, Department, Ticket, utcnow

T = TypeVar("T")


class PhraseKind:
    """How a phrase counts when the desk reads a ticket's text."""

    STRONG = "strong"  # speaks of billing on its own: refund, tagihan, singil
    WEAK = "weak"  # billing only beside a context word: cancel, renew, terpotong
    CONTEXT = "context"  # makes a weak word count: card, statement, kartu, membership
    CHARGEBACK = "chargeback"  # a chargeback: billing, and escalated at once
    ALL = (STRONG, WEAK, CONTEXT, CHARGEBACK)


class RequestKind:
    """What the customer wants done about a charge."""

    REFUND = "refund"
    CANCEL = "cancel"
    RENEW = "renew"
    EXPLAIN = "explain"
    ALL = (REFUND, CANCEL, RENEW, EXPLAIN)


# What routing reads for every new ticket (active centers, phrases, thresholds), kept per
# database for READ_CACHE_SECONDS: an admin's edit applies at once in the process that saved
# it (every save and delete forgets the cache) and within seconds in the others.
READ_CACHE_SECONDS = 10.0
_read_cache: dict[tuple[str, str], tuple[float, object]] = {}


def cached_read(name: str, load: Callable[[], T]) -> T:
    """``load()``'s answer for this desk's database, reused for READ_CACHE_SECONDS."""
    from core.state import loket

    key = (str(loket().config["database_url"]), name)
    now = time.monotonic()
    found = _read_cache.get(key)
    if found is not None and now - found[0] < READ_CACHE_SECONDS:
        return found[1]  # type: ignore[return-value]
    value = load()
    _read_cache[key] = (now, value)
    return value


def forget_reads() -> None:
    _read_cache.clear()


class _ReadByRouting(BaseModel):
    """A table routing reads on every ticket: any change through the model forgets the cache.

    (Queries run on the database's own, past peewee, are seen after READ_CACHE_SECONDS.)
    """

    def save(self, *args: object, **kwargs: object) -> int:
        forget_reads()
        return super().save(*args, **kwargs)

    def delete_instance(self, *args: object, **kwargs: object) -> int:
        forget_reads()
        return super().delete_instance(*args, **kwargs)

    # Queries that change rows without instances (a script, a test) forget it as well.
    @classmethod
    def update(cls, *args: object, **kwargs: object) -> pw.ModelUpdate:
        forget_reads()
        return super().update(*args, **kwargs)

    @classmethod
    def insert(cls, *args: object, **kwargs: object) -> pw.ModelInsert:
        forget_reads()
        return super().insert(*args, **kwargs)

    @classmethod
    def insert_many(cls, *args: object, **kwargs: object) -> pw.ModelInsert:
        forget_reads()
        return super().insert_many(*args, **kwargs)

    @classmethod
    def delete(cls) -> pw.ModelDelete:
        forget_reads()
        return super().delete()


class BillingCenter(_ReadByRouting):
    """A payment processor as it appears on card statements, with its contacts."""

    name = pw.CharField(max_length=120, unique=True)
    slug = pw.CharField(max_length=64, unique=True)
    # What statements print, one per line: "EPOCH.COM", "EPOCH *SUPPORT", aliases too.
    descriptors = pw.TextField(default="")
    email = pw.CharField(max_length=254, default="")
    phone = pw.CharField(max_length=64, default="")
    website = pw.CharField(max_length=300, default="")
    notes = pw.TextField(default="")
    department = pw.ForeignKeyField(Department, null=True, on_delete="SET NULL")
    active = pw.BooleanField(default=True)
    position = pw.IntegerField(default=0)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "billing_center"

    def __str__(self) -> str:
        return self.name

    def descriptor_list(self) -> list[str]:
        return [line.strip() for line in self.descriptors.splitlines() if line.strip()]


class BillingPhrase(_ReadByRouting):
    """A word or phrase that tells the desk a ticket is about billing, kept by admins."""

    text = pw.CharField(max_length=120)
    language = pw.CharField(max_length=8, default="en")
    kind = pw.CharField(max_length=16, default=PhraseKind.STRONG)
    # What the customer probably wants when they use it ("" when it does not say).
    request_kind = pw.CharField(max_length=16, default="")
    active = pw.BooleanField(default=True)

    class Meta:
        table_name = "billing_phrase"
        indexes = ((("language", "text"), True),)

    def __str__(self) -> str:
        return f"{self.text} ({self.language}, {self.kind})"


class DisputeThreshold(_ReadByRouting):
    """A dispute above this amount in this currency goes straight to a senior person."""

    currency = pw.CharField(max_length=3, unique=True)
    amount = pw.DecimalField(max_digits=18, decimal_places=2, auto_round=False)

    class Meta:
        table_name = "billing_dispute_threshold"

    def __str__(self) -> str:
        return f"{self.currency} {self.amount}"


class BillingCase(BaseModel):
    """The billing details of one ticket: which center, what charge, what the customer wants."""

    ticket = pw.ForeignKeyField(Ticket, unique=True, backref="billing_cases",
                                on_delete="CASCADE")
    center = pw.ForeignKeyField(BillingCenter, null=True, backref="cases", on_delete="SET NULL")
    request_kind = pw.CharField(max_length=16, default="")
    transaction_id = pw.CharField(max_length=120, default="")
    amount = pw.DecimalField(max_digits=18, decimal_places=2, auto_round=False, null=True)
    currency = pw.CharField(max_length=3, default="")
    charged_on = pw.DateField(null=True)
    matched = pw.CharField(max_length=255, default="")  # what in the text made it billing
    escalation_reason = pw.CharField(max_length=255, default="")
    created_at = pw.DateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "billing_case"


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64] or "center"


MODELS = [BillingCenter, BillingPhrase, DisputeThreshold, BillingCase]
