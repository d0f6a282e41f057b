"""One raw email into the desk: the single function every way in (IMAP, pipe, HTTP) calls.

A minimal implementation for the IMAP side's tests: stdlib parsing, the Message-ID
as the external id (or a hash of the bytes without one), the raw original kept.
The full parser and threading replace this module (branch ``mailparse``); its
interface is the contract both sides code against.
"""

from __future__ import annotations

import email
import hashlib
import logging
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.utils import parseaddr
from typing import Any

from core.models import IdentityKind
from core.raw import RawOriginal
from core.services import tickets
from core.services.tickets import Identity

log = logging.getLogger(__name__)


@dataclass
class Ingested:
    stored: bool  # True: committed (or was already: duplicate). False: nothing kept, retry
    outcome: str  # "new_ticket", "reply", "duplicate", "bounce", "auto_reply", "failed_mail"
    ticket_number: int | None = None
    reason: str = ""


def _header(mail: Any, name: str) -> str:
    value = mail.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value)))).strip()
    except Exception:  # an encoded word the decoder refuses: keep it as it came
        return str(value).strip()


def _text(mail: Any) -> str:
    for part in mail.walk():
        if part.get_content_type() in ("text/plain", "text/html") and not part.is_multipart():
            payload = part.get_payload(decode=True) or b""
            return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return ""


def ingest_raw(raw: bytes, *, via: str, mailbox: Any = None) -> Ingested:
    mail = email.message_from_bytes(raw)  # compat32: lenient, and quick
    name, address = parseaddr(_header(mail, "From"))
    message_id = _header(mail, "Message-ID") or f"<sha256-{hashlib.sha256(raw).hexdigest()}>"
    reply_to = _header(mail, "In-Reply-To")
    thread_to = tickets.find_ticket("email", reply_to) if reply_to else None
    try:
        result = tickets.receive_message(
            channel="email", identity=Identity(IdentityKind.EMAIL, address or "unknown@invalid",
                                               name=name, email=address or None),
            subject=_header(mail, "Subject"), text=_text(mail) or "(no text)",
            external_id=message_id, thread_to=thread_to,
            category=getattr(mailbox, "default_category", None),
            raw=RawOriginal(raw, "message/rfc822"))
    except Exception as exc:
        log.exception("mail via %s could not be stored", via)
        return Ingested(False, "failed", reason=f"{type(exc).__name__}: {exc}")
    outcome = "duplicate" if result.duplicate else "new_ticket" if result.created else "reply"
    return Ingested(True, outcome, result.ticket.id)
