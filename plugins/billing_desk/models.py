"""The billing desk's tables: billing centers, the words that route, thresholds, cases."""

from __future__ import annotations

import re

import peewee as pw

from core.models import BaseModel, Department, Ticket, utcnow


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


class BillingCenter(BaseModel):
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


class BillingPhrase(BaseModel):
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


class DisputeThreshold(BaseModel):
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
