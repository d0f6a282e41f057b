"""Mailboxes the desk reads over IMAP: where they are, what they do with mail, their state.

One row per mailbox. Its IMAP and SMTP passwords are stored encrypted (``crypto``);
the fetch state (UIDVALIDITY, last UID, last success, last error, failures) is
written by the fetcher, and the lease columns make sure only one worker process
reads a mailbox at a time. ``MailboxArrival`` remembers which mailbox each mail came
through, so that replies go out under that mailbox's name and address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import peewee as pw

from core.models import AuthorKind, BaseModel, Category, Department, Message, utcnow
from core.raw import digest as raw_digest
from core.state import loket

from . import crypto

SECURITY = ("ssl", "starttls")
AFTER_INGEST = ("seen", "move")


class Mailbox(BaseModel):
    name = pw.CharField(max_length=100, unique=True)
    address = pw.CharField(max_length=254)
    enabled = pw.BooleanField(default=True)
    imap_host = pw.CharField(max_length=253)
    imap_port = pw.IntegerField(default=0)  # 0: 993 with ssl, 143 with starttls
    imap_security = pw.CharField(max_length=16, default="ssl")
    imap_user = pw.CharField(max_length=254)
    imap_password = pw.TextField(default="")  # Fernet token, see crypto.py
    folder = pw.CharField(max_length=200, default="INBOX")
    after_ingest = pw.CharField(max_length=16, default="seen")  # flag \Seen, or move
    move_to = pw.CharField(max_length=200, default="")
    default_category = pw.ForeignKeyField(Category, null=True, on_delete="SET NULL")
    department = pw.ForeignKeyField(Department, null=True, on_delete="SET NULL")
    # Sending identity: replies on this mailbox's tickets go out as this.
    from_name = pw.CharField(max_length=120, default="")
    from_address = pw.CharField(max_length=254, default="")  # empty: ``address``
    # Optional SMTP account of its own (hosted mail often only sends as the signed-in user).
    smtp_host = pw.CharField(max_length=253, default="")  # empty: the desk's SMTP server
    smtp_port = pw.IntegerField(default=0)
    smtp_security = pw.CharField(max_length=16, default="starttls")
    smtp_user = pw.CharField(max_length=254, default="")
    smtp_password = pw.TextField(default="")  # Fernet token
    # Fetch state, written by the fetcher.
    uidvalidity = pw.BigIntegerField(null=True)
    last_uid = pw.BigIntegerField(default=0)
    last_success_at = pw.DateTimeField(null=True)
    last_error = pw.TextField(default="")
    last_error_at = pw.DateTimeField(null=True)
    failures = pw.IntegerField(default=0)  # consecutive
    fetched = pw.BigIntegerField(default=0)  # messages stored, all time
    lease_owner = pw.CharField(max_length=200, null=True)
    lease_until = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "email_mailbox"

    def __str__(self) -> str:
        return self.name

    @property
    def port(self) -> int:
        return self.imap_port or (993 if self.imap_security == "ssl" else 143)

    def password(self) -> str:
        return crypto.decrypt(credentials_key(), self.imap_password)

    def set_password(self, plaintext: str) -> None:
        self.imap_password = crypto.encrypt(credentials_key(), plaintext)

    def set_smtp_password(self, plaintext: str) -> None:
        self.smtp_password = crypto.encrypt(credentials_key(), plaintext)


class MailboxArrival(BaseModel):
    """A raw mail read from a mailbox, by the SHA-256 its original is kept under.

    Written before the mail is ingested (one statement per batch), so the mailbox is
    known the moment the ticket exists: an acknowledgement sent right after the commit
    already goes out as that mailbox. A message finds it through its ``raw_path``
    (see ``core.raw.digest``).
    """

    raw_sha256 = pw.CharField(max_length=64)
    mailbox = pw.ForeignKeyField(Mailbox, on_delete="CASCADE")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "email_mailbox_arrival"
        indexes = ((("raw_sha256", "mailbox"), True),)


def credentials_key() -> str:
    config = loket().config
    return config.plugin("email_intake")["credentials_key"] or config["secret_key"]


def note_arrivals(mailbox_id: int, raws: list[bytes]) -> None:
    """Remember that these originals came through this mailbox (before they are ingested)."""
    rows = [{"raw_sha256": sha, "mailbox": mailbox_id}
            for sha in sorted({raw_digest(raw) for raw in raws})]
    if rows:
        MailboxArrival.insert_many(rows).on_conflict_ignore().execute()


def mailbox_addressed(recipients: list[str]) -> Mailbox | None:
    """The enabled mailbox one of ``recipients`` names (a +tag after the local part aside)."""
    wanted = set()
    for address in recipients:
        local, at, domain = address.strip().lower().rpartition("@")
        if at and local:
            wanted.add(f"{local.split('+', 1)[0]}@{domain}")
    if not wanted:
        return None
    # Every piped or posted mail asks this: two columns in plain SQL (building the ORM's
    # query cost more than running it), the whole row only on a hit.
    enabled = Mailbox._meta.database.execute_sql(
        "SELECT id, address FROM email_mailbox WHERE enabled ORDER BY id").fetchall()
    for box_id, address in enabled:
        if address.strip().lower() in wanted:
            return Mailbox.get_or_none(Mailbox.id == box_id)
    return None


def mailbox_of_ticket(ticket_id: int) -> Mailbox | None:
    """The mailbox the ticket's first mail from the customer came through, if any."""
    first = (Message.select(Message.raw_path)
             .where((Message.ticket == ticket_id) & (Message.channel == "email")
                    & (Message.author_kind == AuthorKind.CONTACT) & (Message.raw_path != ""))
             .order_by(Message.id).first())
    if first is None:
        return None
    arrival = (MailboxArrival.select(MailboxArrival, Mailbox).join(Mailbox)
               .where(MailboxArrival.raw_sha256 == first.raw_path)
               .order_by(MailboxArrival.id).first())
    return arrival.mailbox if arrival is not None else None


@dataclass(frozen=True)
class SendingIdentity:
    """Who a reply is from, and the SMTP settings it goes out with."""

    from_name: str
    address: str
    smtp: dict[str, Any]


def sending_identity(ticket_id: int, settings: dict[str, Any]) -> SendingIdentity:
    """The desk's identity, or that of the mailbox the ticket came in through."""
    default = SendingIdentity(settings["from_name"], settings["address"], {})
    box = mailbox_of_ticket(ticket_id)
    if box is None:
        return default
    smtp: dict[str, Any] = {}
    if box.smtp_host:
        smtp = {"smtp_host": box.smtp_host, "smtp_port": box.smtp_port,
                "smtp_security": box.smtp_security, "smtp_user": box.smtp_user,
                "smtp_password": crypto.decrypt(credentials_key(), box.smtp_password)}
    return SendingIdentity(box.from_name or settings["from_name"],
                           box.from_address or box.address, smtp)


# -- The lease: one worker process reads a mailbox at a time ------------------------------


def take_lease(mailbox_id: int, owner: str, seconds: float,
               now: dt.datetime | None = None) -> bool:
    """Take or renew the lease with one conditional UPDATE; False when another holds it."""
    now = now or utcnow()
    taken = (Mailbox.update(lease_owner=owner, lease_until=now + dt.timedelta(seconds=seconds))
             .where((Mailbox.id == mailbox_id) & (Mailbox.enabled == True)  # noqa: E712
                    & (Mailbox.lease_owner.is_null() | (Mailbox.lease_owner == owner)
                       | Mailbox.lease_until.is_null() | (Mailbox.lease_until < now)))
             .execute())
    return taken == 1


def release_lease(mailbox_id: int, owner: str) -> None:
    (Mailbox.update(lease_owner=None, lease_until=None)
     .where((Mailbox.id == mailbox_id) & (Mailbox.lease_owner == owner)).execute())


def record_success(mailbox_id: int, owner: str, **state: Any) -> None:
    (Mailbox.update(last_success_at=utcnow(), failures=0, last_error="", **state)
     .where((Mailbox.id == mailbox_id) & (Mailbox.lease_owner == owner)).execute())


def record_progress(mailbox_id: int, owner: str, last_uid: int, stored: int) -> None:
    """After a batch: its last UID is done (ingested, then flagged or moved)."""
    (Mailbox.update(last_uid=last_uid, fetched=Mailbox.fetched + stored)
     .where((Mailbox.id == mailbox_id) & (Mailbox.lease_owner == owner)).execute())


def record_error(mailbox_id: int, error: str) -> None:
    (Mailbox.update(last_error=error[:2000], last_error_at=utcnow(),
                    failures=Mailbox.failures + 1)
     .where(Mailbox.id == mailbox_id).execute())
