"""Mail written by machines: bounces, auto-replies, lists and our own echoes, told apart.

A help desk that answers an auto-responder starts a loop that fills both
mailboxes; one that opens a ticket for each bounce buries its agents. Each
inbound mail gets one ``kind`` here before it goes near a ticket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .parse import ParsedMail

HUMAN = "human"
BOUNCE = "bounce"  # a delivery status notification: our mail did not arrive (or is delayed)
DELIVERED = "delivery_success"  # a DSN that reports success (delivered, relayed)
FEEDBACK = "feedback"  # an abuse/spam complaint (ARF, RFC 5965)
AUTO_REPLY = "auto_reply"  # out of office, vacation, "we received your mail"
BULK = "bulk"  # lists, newsletters, automatic notices: a ticket, but never answered automatically
OWN = "own"  # mail from one of our own addresses: a loop

_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "maildaemon", "mailerdaemon",
            "mail.daemon", "bounce", "bounces", "mdaemon", "mail-delivery-subsystem"}
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|not delivered|non.?deliver|delivery (?:status|failure|failed|"
    r"has failed|notification|problem|report)|failure notice|returned mail|return(?:ed)? to "
    r"sender|mail delivery|delivery fail|could not be delivered|couldn't be delivered|"
    r"mail system error|unzustellbar|nicht zugestellt|unable to deliver|rejected|"
    r"permanent error|warning: could not send|message you sent|mail error|bounce|"
    r"nondeliverable|undelivered mail|unknown user|user unknown|mailbox (?:unavailable|full)|"
    r"delivery (?:delayed|warning)|delayed mail|message delayed|message not sent|"
    r"notificación de estado|fehlgeschlagen|non recapitabile|envoi impossible|"
    r"échec|pesan tidak terkirim|gagal terkirim|hindi naihatid|not (?:a )?member|loop alert|"
    r"error notice|エラー|不達|届きません",
    re.IGNORECASE)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|out of (?:the )?office|"
    r"abwesenheit|absence|vacation|on leave|away from|autoreply|auto:|"
    r"balasan otomatis|di luar kantor|sedang cuti|awtomatikong sagot|wala sa opisina)",
    re.IGNORECASE)
_LIST_PRECEDENCE = {"bulk", "junk", "list"}
_FORWARD = re.compile(r"^\s*(?:fwd?|tr|wg|rv|i|fw)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    kind: str
    why: str  # which header or sign decided, for the audit trail and logs

    @property
    def automatic(self) -> bool:
        """Whether no automatic mail may answer it (everything but a person writing)."""
        return self.kind != HUMAN


def is_own(address: str, own: frozenset[str]) -> bool:
    """Whether ``address`` is one of ours, a plus-form (support+t12-...@) included."""
    local, _, domain = address.lower().rpartition("@")
    return address.lower() in own or f"{local.split('+', 1)[0]}@{domain}" in own


def _local(address: str) -> str:
    """The local part, with the separators people put in "post_master" or "mailer.daemon"."""
    local = address.rpartition("@")[0].lower()
    return local if local in _DAEMONS else re.sub(r"[._]", "", local)


_SNS = re.compile(r'\\?"notificationType\\?"\s*:\s*\\?"(Bounce|Complaint|Delivery)')
_COMPLAINT_SUBJECT = re.compile(r"complaint|abuse report|spam report", re.IGNORECASE)


def classify(mail: ParsedMail, own_addresses: frozenset[str] = frozenset()) -> Verdict:
    """What kind of mail this is: a person writing, or one of the machines above."""
    header = mail.header
    report = mail.report_type
    if report == "delivery-status":
        actions = _dsn_actions(mail)
        if actions and actions <= {"delivered", "relayed", "expanded", "deliverable"}:
            return Verdict(DELIVERED, "multipart/report; delivery-status: " + ",".join(actions))
        return Verdict(BOUNCE, "multipart/report; report-type=delivery-status")
    if report == "feedback-report" or any(f.content_type == "message/feedback-report"
                                          for f in mail.files):
        return Verdict(FEEDBACK, "multipart/report; report-type=feedback-report")
    sns = _SNS.search(mail.text or "")
    if sns:  # Amazon SES reports through SNS: a JSON body
        kind = {"Bounce": BOUNCE, "Complaint": FEEDBACK, "Delivery": DELIVERED}[sns.group(1)]
        return Verdict(kind, f"Amazon SES notificationType {sns.group(1)}")
    sender = mail.sender.lower()
    if sender and is_own(sender, own_addresses):
        return Verdict(OWN, f"From is our own address {sender}")
    local = _local(sender) if sender else ""
    subject = mail.subject or ""
    daemon = local in _DAEMONS or local.startswith(("mailer-daemon", "mailerdaemon", "postmaster"))
    list_admin = local.endswith(("-admin", "-owner", "-bounces"))
    if not daemon and not sender:
        daemon = "mailer-daemon" in (mail.sender_name or "").lower()
    name = (mail.sender_name or "").lower()
    if "mail delivery" in name or "mailer-daemon" in name or "postmaster" in name:
        daemon = True
    returned = _carries_original(mail)
    null_sender = "return-path" in mail.headers and not header("return-path").strip("<> ")
    if header("x-failed-recipients"):
        return Verdict(BOUNCE, "X-Failed-Recipients")
    if daemon and (returned or _BOUNCE_SUBJECT.search(subject) or not _AUTO_REPLY_SUBJECT.match(
            subject)):
        return Verdict(BOUNCE, f"from {sender or name}")
    if (list_admin or null_sender) and _BOUNCE_SUBJECT.search(subject):
        return Verdict(BOUNCE, f"a bounce's subject from {sender or 'the null sender'}")
    if null_sender and returned and not _AUTO_REPLY_SUBJECT.match(subject):
        return Verdict(BOUNCE, "the null sender returning a mail")
    if returned and _COMPLAINT_SUBJECT.search(subject):
        return Verdict(FEEDBACK, "a complaint returning a mail")
    if re.search(r"(?im)^feedback-type:", mail.text or ""):
        return Verdict(FEEDBACK, "Feedback-Type in the text")
    auto_submitted = header("auto-submitted").strip().lower()
    if auto_submitted.startswith("auto-replied") or header("x-autoreply") or header(
            "x-autorespond") or header("precedence").strip().lower() == "auto_reply":
        return Verdict(AUTO_REPLY, f"Auto-Submitted: {auto_submitted or 'x-autoreply'}")
    if _AUTO_REPLY_SUBJECT.match(subject) and (auto_submitted or header(
            "x-auto-response-suppress") or mail.in_reply_to):
        return Verdict(AUTO_REPLY, "an auto-reply's subject")
    if _BOUNCE_SUBJECT.search(subject) and returned and not _FORWARD.match(subject):
        # (A customer forwarding us their bounce writes "Fwd:": that is a person writing.)
        return Verdict(BOUNCE, "a bounce's subject with the returned mail")
    if auto_submitted and auto_submitted != "no":
        return Verdict(BULK, f"Auto-Submitted: {auto_submitted}")
    precedence = header("precedence").strip().lower()
    if precedence in _LIST_PRECEDENCE:
        return Verdict(BULK, f"Precedence: {precedence}")
    if header("list-id") or header("list-unsubscribe"):
        return Verdict(BULK, "List-Id")
    if header("x-auto-response-suppress"):
        # Outlook asks not to be answered automatically (it marks its own automatic mail so).
        return Verdict(BULK, "X-Auto-Response-Suppress")
    if _AUTO_REPLY_SUBJECT.match(subject):
        return Verdict(AUTO_REPLY, "an auto-reply's subject")
    return Verdict(HUMAN, "")


def _dsn_actions(mail: ParsedMail) -> set[str]:
    actions = set()
    for part in mail.files:
        if part.content_type in ("message/delivery-status", "message/global-delivery-status"):
            for match in re.finditer(rb"(?im)^action:\s*([a-z]+)", part.data):
                actions.add(match.group(1).decode().lower())
    return actions


def _carries_original(mail: ParsedMail) -> bool:
    """Whether the mail returns another mail (attached, or its headers quoted in the text)."""
    if any(f.content_type in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")
           for f in mail.files):
        return True
    text = mail.text or ""
    return bool(re.search(r"(?im)^\s*(?:>\s*)?(?:message-id|received|return-path):", text))


__all__ = ["AUTO_REPLY", "BOUNCE", "BULK", "DELIVERED", "FEEDBACK", "HUMAN", "OWN", "Verdict",
           "classify", "is_own", "may_auto_mail"]


def may_auto_mail(recipient: str, settings: dict, contact_id: int | None = None) -> bool:
    """Whether the desk may send one more automatic mail to ``recipient`` now.

    Not to our own addresses or a mail daemon (a loop), and at most
    ``auto_mail_cap`` in ``auto_mail_window`` seconds to one address: should
    anything slip past the checks above, a loop ends there.
    """
    import datetime as dt

    from core.models import Message, utcnow

    from .ingest import own_addresses

    address = (recipient or "").strip().lower()
    if not address or address in own_addresses() or _local(address) in _DAEMONS:
        return False
    cap = settings["auto_mail_cap"]
    if cap <= 0:
        return True
    since = utcnow() - dt.timedelta(seconds=settings["auto_mail_window"])
    # Asked for every notification of every new ticket: written as SQL once rather than
    # built by the ORM each time (that building cost more than the query; same SQL on
    # SQLite and PostgreSQL, the driver's own parameter marker).
    database = Message._meta.database
    p = database.param
    sql = ("SELECT m.id FROM message AS m{join} WHERE m.recipient = {p} "
           "AND m.notification <> '' AND m.created_at >= {p}{contact} LIMIT {p}")
    if contact_id is not None:
        # Notifications go to the ticket's contact: through their tickets the look-up uses
        # indexes (ticket.contact, then message (ticket, created_at)), not a scan.
        sql = sql.format(join=" JOIN ticket AS t ON t.id = m.ticket_id", p=p,
                         contact=f" AND t.contact_id = {p}")
        params: tuple = (address, Message.created_at.db_value(since), contact_id, cap)
    else:
        sql = sql.format(join="", p=p, contact="")
        params = (address, Message.created_at.db_value(since), cap)
    return len(database.execute_sql(sql, params).fetchall()) < cap
