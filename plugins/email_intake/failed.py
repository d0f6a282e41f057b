"""The failed-mail list: what came in and became no ticket message, kept whole for an admin.

A mail lands here when it could not be read or stored as a message (a database
refusal, a bug), and when it is a machine's mail that belongs to no ticket (a
bounce for a mail we cannot find, an auto-reply to nothing of ours, a loop
from our own address). Nothing is dropped: the raw bytes are in the row, in the
same transaction as the reason, and an admin can retry or download them.
"""

from __future__ import annotations

import peewee as pw

from core.models import BaseModel, utcnow


class FailedMail(BaseModel):
    received_at = pw.DateTimeField(default=utcnow, index=True)
    via = pw.CharField(max_length=16)  # imap, pipe, http
    mailbox = pw.CharField(max_length=254, default="")
    outcome = pw.CharField(max_length=32)  # failed_mail, bounce, auto_reply, ignored_loop...
    reason = pw.TextField(default="")
    sender = pw.CharField(max_length=254, default="")
    subject = pw.CharField(max_length=250, default="")
    message_id = pw.CharField(max_length=255, default="", index=True)
    raw = pw.BlobField()
    raw_size = pw.IntegerField(default=0)
    retried_at = pw.DateTimeField(null=True)
    retry_outcome = pw.CharField(max_length=32, default="")
    ticket_number = pw.IntegerField(null=True)

    class Meta:
        table_name = "email_failed_mail"


def keep(raw: bytes, *, via: str, outcome: str, reason: str, mailbox: str = "",
         sender: str = "", subject: str = "", message_id: str = "") -> FailedMail:
    """Store the mail in the list (once per Message-ID or content, however often it comes)."""
    from .parse import content_id

    key = (message_id or content_id(raw))[:255]
    db = FailedMail._meta.database
    with db.atomic():
        seen = FailedMail.get_or_none((FailedMail.message_id == key)
                                      & (FailedMail.retried_at.is_null()))
        if seen is not None:
            return seen
        return FailedMail.create(
            via=via[:16], mailbox=mailbox[:254], outcome=outcome[:32],
            reason=storable(reason)[:5000], sender=storable(sender)[:254],
            subject=storable(subject)[:250], message_id=key, raw=raw, raw_size=len(raw))


def storable(text: str) -> str:
    """Text every database takes (no NUL, no lone surrogates), as the services store it."""
    return (text or "").encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def retry(row: FailedMail) -> str:
    """Ingest the kept mail again; the row records what happened. Returns the outcome."""
    from .ingest import ingest_raw

    result = ingest_raw(bytes(row.raw), via=row.via)
    # Done when the mail reached a ticket; a bounce that still matches nothing stays listed.
    if result.stored and result.ticket_number is not None:
        row.retried_at = utcnow()
        row.retry_outcome = result.outcome[:32]
        row.ticket_number = result.ticket_number
        row.reason = (f"{row.reason}\nretried: {result.outcome} {result.reason}")[:5000]
        row.save()
    return result.outcome


__all__ = ["FailedMail", "keep", "retry"]
