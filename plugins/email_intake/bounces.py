"""What a delivery status notification says: which of our mails, to whom, and why it failed.

Read from the machine-readable part where the MTA wrote one (RFC 3464
``message/delivery-status``), else from the text most MTAs write instead; the
mail it refers to is found by the Message-ID of the returned original (attached,
or its headers quoted in the text), which for our mail is the outbox's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .parse import ParsedMail, decode_bytes, message_ids

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY_CODE = re.compile(r"\b([45]\d\d)[ -]")
_ERROR_LINE = re.compile(r"(?i)(?:\b[45]\d\d\b|[45]\.\d{1,3}\.\d{1,3}|user unknown|"
                         r"no such user|does not exist|mailbox (?:full|unavailable)|"
                         r"quota|rejected|denied|not found|invalid)")


@dataclass
class BounceReport:
    original_ids: list[str] = field(default_factory=list)  # Message-IDs it refers to
    recipients: list[str] = field(default_factory=list)
    status: str = ""  # RFC 3463 status, like 5.1.1
    reason: str = ""  # one line an agent can read
    permanent: bool = True  # False: delayed, or a temporary (4.x.x) failure


def read(mail: ParsedMail) -> BounceReport:
    report = BounceReport()
    dsn = b"\n".join(f.data for f in mail.files
                     if f.content_type in ("message/delivery-status",
                                           "message/global-delivery-status"))
    if dsn:
        _from_dsn(decode_bytes(dsn), report)
    text = mail.text or ""
    if not report.status:
        match = _STATUS.search(text)
        if match:
            report.status = match.group(0)
    if not report.reason:
        report.reason = _error_line(text) or mail.subject or "the mail could not be delivered"
    if not report.recipients:
        report.recipients = [a for v in mail.headers.get("x-failed-recipients", [])
                             for a in re.findall(r"[\w.+'=-]+@[\w.-]+", v)]
    if report.status.startswith("4") or re.search(r"(?im)^action:\s*delayed", dsn.decode(
            "ascii", "replace")):
        report.permanent = False
    report.original_ids = _original_ids(mail)
    # One line an agent reads and a database stores: no NUL or control characters.
    report.reason = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", report.reason).split())[:500]
    return report


def _from_dsn(text: str, report: BounceReport) -> None:
    for match in re.finditer(r"(?im)^(final-recipient|original-recipient):\s*(?:[\w-]+;)?\s*(\S+)",
                             text):
        address = match.group(2).strip("<>")
        if "@" in address and address not in report.recipients:
            report.recipients.append(address)
    status = re.search(r"(?im)^status:\s*([245]\.\d{1,3}\.\d{1,3})", text)
    if status:
        report.status = status.group(1)
    diagnostic = re.search(r"(?im)^diagnostic-code:\s*(?:[\w-]+;)?\s*(.+(?:\n[ \t].+)*)", text)
    if diagnostic:
        report.reason = " ".join(diagnostic.group(1).split())[:500]


def _error_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip(">").strip()
        if 8 < len(line) < 500 and _ERROR_LINE.search(line) and not line.lower().startswith(
                ("received:", "date:", "message-id:")):
            return line
    return ""


def _original_ids(mail: ParsedMail) -> list[str]:
    """Message-IDs of the returned mail, most likely first; never the bounce's own."""
    found: list[str] = []
    returned = [f.data for f in mail.files if f.content_type in (
        "message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global",
        "message/global-headers")]
    for data in returned:
        for match in re.finditer(rb"(?im)^message-id:\s*(.+)$", data):
            found += message_ids(match.group(1).decode("utf-8", "replace"))
    for match in re.finditer(r"(?im)^\s*>?\s*message-id:\s*(.+)$", mail.text or ""):
        found += message_ids(match.group(1))
    found += list(reversed(mail.references)) + mail.in_reply_to
    own = mail.message_id
    seen: list[str] = []
    for mid in found:
        if mid != own and mid not in seen:
            seen.append(mid)
    return seen


__all__ = ["BounceReport", "read"]
