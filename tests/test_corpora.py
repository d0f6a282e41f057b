"""Real mail collected by other projects goes through core's inbound path intact.

The email plugin does not exist yet; these tests parse each file with the standard
library, store its attachments and call ``receive_message`` the way a mail channel
would, to prove that core itself copes with what real mail carries: odd encodings,
broken MIME, spam HTML, malware attachments, missing headers. The corpora live in
``../shared/corpora`` (see its README); without that folder the tests skip.

Decoded attachments are only ever bytes handed to ``Storage``: nothing here opens,
unpacks or runs them.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html as html_lib
import json
import mimetypes
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from core.attachments import AttachmentRejected, Storage, StoredFile
from core.models import Attachment, Channel, Contact, Message, Ticket
from core.sanitize import clean_html
from core.services.tickets import SUBJECT_MAX, Identity, InboundResult, receive_message
from core.state import loket

from .conftest import shared_corpus

REFUSAL_REASONS = {"type_not_allowed", "too_large", "empty"}


# -- Reading a mail as a mail channel would ---------------------------------------------------


@dataclass
class ParsedMail:
    name: str
    raw: bytes
    sender: str
    display_name: str
    subject: str
    text: str
    html: str
    external_id: str
    attachments: list[tuple[str, bytes]]  # (filename, decoded bytes): never opened
    defects: set[str] = field(default_factory=set)


@dataclass
class Delivery:
    mail: ParsedMail
    result: InboundResult
    stored: list[StoredFile]
    refused: list[tuple[str, str]]  # (filename, AttachmentRejected.reason)


def parse_mail(path: Path) -> ParsedMail:
    """Everything ``receive_message`` needs, from any bytes at all; never raises."""
    raw = path.read_bytes()
    external_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # the parser promises not to raise; keep the mail if it does
        return ParsedMail(path.name, raw, _placeholder(path.name), "", "",
                          raw.decode("utf-8", "replace"), "", external_id, [],
                          {type(exc).__name__})
    assert isinstance(msg, EmailMessage)
    defects = {type(d).__name__ for part in msg.walk() for d in part.defects}
    sender, display_name = _sender(msg, path.name)
    message_id = _header(msg, "message-id").strip()
    plain = _body_part(msg, "plain")
    rich = _body_part(msg, "html")
    text = _text_of(plain) if plain is not None else ""
    html = _text_of(rich) if rich is not None else ""
    if not text.strip() and html:  # no plain part, or an empty one beside the HTML
        text = html_to_text(clean_html(html))
    extra_text: list[str] = []
    attachments: list[tuple[str, bytes]] = []
    for index, part in enumerate(_leaves(msg)):
        if part is plain or part is rich:
            continue
        filename = _filename(part)
        if part.get_content_maintype() == "multipart":
            # A multipart whose boundary is missing or broken: its body is the mail's text.
            extra_text.append(_text_of(part))
            continue
        if filename is None and part.get_content_maintype() == "text":
            # A second inline text part (a digest entry, a footer): part of what was said.
            content = _text_of(part)
            if part.get_content_subtype() == "html":
                content = html_to_text(clean_html(content))
            if content.strip():
                extra_text.append(content)
            continue
        attachments.append((filename or _fallback_name(part, index), _payload(part)))
    if extra_text:
        text = "\n\n".join([text, *extra_text]) if text else "\n\n".join(extra_text)
    return ParsedMail(path.name, raw, sender, display_name, _header(msg, "subject"), text, html,
                      message_id or external_id, attachments, defects)


def _placeholder(filename: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", filename.lower()).strip("-") or "mail"
    return f"unknown-sender+{slug}@invalid"


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
        return "" if value is None else str(value)
    except Exception:  # an unparseable header: fall back to its raw text
        legacy = email.message_from_bytes(msg.as_bytes(), policy=email.policy.compat32)
        return str(legacy.get(name) or "")


def _sender(msg: EmailMessage, filename: str) -> tuple[str, str]:
    """(address, display name) of From, or a per-file placeholder identity."""
    header_text = ""
    try:
        header = msg["from"]
        header_text = "" if header is None else str(header)
        addresses = getattr(header, "addresses", ()) if header is not None else ()
    except Exception:
        addresses = ()
    for address in addresses:
        if address.username and address.domain:
            return address.addr_spec, address.display_name
    return _placeholder(filename), header_text


def _body_part(msg: EmailMessage, subtype: str) -> EmailMessage | None:
    try:
        part = msg.get_body(preferencelist=(subtype,))
    except Exception:
        return None
    return part if isinstance(part, EmailMessage) else None


def _text_of(part: EmailMessage) -> str:
    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except Exception:  # an unknown charset, a broken transfer encoding
        pass
    data = part.get_payload(decode=True)
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else ""


def _leaves(part: EmailMessage, root: bool = True) -> list[EmailMessage]:
    """The parts that carry content; an attached message counts as one part."""
    if not root and part.get_content_maintype() == "message":
        return [part]
    payload = part.get_payload()
    if part.is_multipart() and isinstance(payload, list):
        return [leaf for child in payload for leaf in _leaves(child, root=False)]
    return [part]


def _filename(part: EmailMessage) -> str | None:
    try:
        return part.get_filename()
    except Exception:
        return None


def _fallback_name(part: EmailMessage, index: int) -> str:
    content_type = part.get_content_type()
    ext = ".eml" if content_type == "message/rfc822" else (
        mimetypes.guess_extension(content_type) or ".bin")
    return f"part-{index}{ext}"


def _payload(part: EmailMessage) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/rfc822, message/delivery-status
        try:
            return b"".join(inner.as_bytes() for inner in payload)
        except Exception:
            return str(part).encode("utf-8", "surrogateescape")
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


class _TextOf(HTMLParser):
    BLOCKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "pre", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def html_to_text(html: str) -> str:
    """A crude plain-text version of (already sanitised) HTML."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).splitlines())
    return "\n".join(line for line in lines if line)


def normalised(text: str) -> str:
    return " ".join((text or "").split())


# -- Feeding a corpus --------------------------------------------------------------------------


def deliver(mail: ParsedMail, storage: Storage, config: Any) -> Delivery:
    stored: list[StoredFile] = []
    refused: list[tuple[str, str]] = []
    for filename, data in mail.attachments:
        try:
            stored.append(storage.save_bytes(
                data, filename, max_bytes=config["upload_max_bytes"],
                allowed_types=config["upload_allowed_types"]))
        except AttachmentRejected as exc:  # the file is refused, the message is not
            refused.append((filename, exc.reason))
    result = receive_message(
        channel=Channel.EMAIL, identity=Identity("email", mail.sender, name=mail.display_name),
        subject=mail.subject, text=mail.text, html=mail.html, external_id=mail.external_id,
        attachments=stored)
    return Delivery(mail, result, stored, refused)


def feed(mails: list[ParsedMail]) -> tuple[list[Delivery], dict[str, str]]:
    """Deliver every mail; a crash is recorded against its file, and the rest go on."""
    config = loket().config
    storage = Storage(config["attachments_path"])
    deliveries: list[Delivery] = []
    crashes: dict[str, str] = {}
    for mail in mails:
        try:
            deliveries.append(deliver(mail, storage, config))
        except Exception as exc:
            crashes[mail.name] = f"{type(exc).__name__}: {exc}"
    return deliveries, crashes


# -- Checking what the desk kept ---------------------------------------------------------------


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def unsafe_markup(body_html: str) -> list[str]:
    """What of scripts, handlers, javascript: links and remote images survived; [] if none."""
    found = [needle for needle in ("<script", "<img") if needle in body_html.lower()]
    parser = _Markup()
    parser.feed(body_html)
    parser.close()
    for tag, attrs in parser.tags:
        if tag in ("script", "img", "iframe", "object", "embed", "style"):
            found.append(f"<{tag}>")
        for name, value in attrs:
            if name.lower().startswith("on"):
                found.append(f"<{tag} {name}=>")
            squashed = re.sub(r"[\x00-\x20]+", "", html_lib.unescape(value or "")).lower()
            if squashed.startswith(("javascript:", "vbscript:", "data:")):
                found.append(f"<{tag} {name}={value!r}>")
    if re.search(r"<[^>]*\son[a-z]+\s*=", body_html, re.IGNORECASE):
        found.append("on*= inside a tag")
    return found


def check_django_helpdesk(deliveries: list[Delivery], expected: dict[str, Any]) -> None:
    """Title and body as django-helpdesk's own tests expect them (their semantics noted)."""
    by_name = {d.mail.name: d for d in deliveries}
    assert set(expected) <= set(by_name), "expected.json names a file that is not in emails/"
    for name, exp in expected.items():
        delivery = by_name[name]
        ticket = Ticket.get_by_id(delivery.result.ticket.id)
        message = Message.get_by_id(delivery.result.message.id)
        # django-helpdesk cuts titles at 200 characters plus "..."; core keeps SUBJECT_MAX.
        full_subject = exp.get("subject_full", exp["title"])
        assert ticket.subject == full_subject[:SUBJECT_MAX].strip(), name
        assert ticket.subject.startswith(exp["title"].removesuffix("...")), name
        body = normalised(message.body_text)
        shown = normalised(f"{message.body_text}\n{html_to_text(message.body_html)}")
        if "description" in exp:
            if exp["description"]:
                assert normalised(exp["description"]) in body, name
            else:
                assert body == "", name
        for snippet in exp.get("description_contains", []) + exp.get(
                "forwarded_part_contains", []):
            # utf-nondecodable.eml says it only in its HTML alternative: body_html counts.
            assert normalised(snippet) in shown, (name, snippet)
        if "html_attachment_contains" in exp:
            # django-helpdesk keeps the HTML alternative as a file; core keeps it as body_html.
            wanted = normalised(html_to_text(clean_html(exp["html_attachment_contains"])))
            assert wanted in normalised(html_to_text(message.body_html)), name
        if "attachment_starts_with" in exp:
            rows = list(Attachment.select().where(Attachment.message == message.id))
            storage = Storage(loket().config["attachments_path"])
            starts = []
            for row in rows:
                with storage.open(row.sha256) as fh:
                    starts.append(fh.read(len(exp["attachment_starts_with"])))
            assert exp["attachment_starts_with"].encode() in starts, name
            for wanted_name in exp.get("attachment_filenames", []):
                # django-helpdesk prefixes "part-N_"; the mail itself says "signature.asc".
                suffix = wanted_name.split("_", 1)[-1]
                assert any(row.filename.endswith(suffix) for row in rows), (name, wanted_name)


def check_mailparser(deliveries: list[Delivery], expected: dict[str, Any]) -> None:
    """mail-parser's counts include inline parts, as ours do: each one stored or refused."""
    by_name = {d.mail.name: d for d in deliveries}
    assert set(expected) <= set(by_name), "expected.json names a file that is not in mails/"
    for name, exp in expected.items():
        delivery = by_name[name]
        mail = delivery.mail
        if "attachments_count" in exp:
            accounted = len(delivery.stored) + len(delivery.refused)
            assert accounted == exp["attachments_count"], (name, delivery.stored,
                                                          delivery.refused)
        if "from_email" in exp:
            assert mail.sender == exp["from_email"], name
            contact = Contact.get_by_id(delivery.result.ticket.contact_id)
            assert contact.email == exp["from_email"], name
        if "subject" in exp:
            assert Ticket.get_by_id(delivery.result.ticket.id).subject == exp["subject"], name
        if "message_id" in exp:
            assert delivery.result.message.external_id == exp["message_id"], name
        for defect in exp.get("defects", []) + exp.get("defects_include", []):
            assert defect in mail.defects, (name, defect, mail.defects)


CORPORA = [
    pytest.param(("email", "cpython_email", "data"), None, None, id="cpython_email"),
    pytest.param(("email", "django_helpdesk_mail", "emails"), "expected.json",
                 check_django_helpdesk, id="django_helpdesk_mail"),
    pytest.param(("email", "mailparser_spamscope", "mails"), "expected.json",
                 check_mailparser, id="mailparser_spamscope"),
]


@pytest.mark.parametrize("parts, expected_file, check", CORPORA)
def test_real_mail_is_received_once_and_safely(ctx, parts, expected_file, check):
    folder = shared_corpus(*parts)
    paths = sorted(p for p in folder.iterdir() if p.is_file())
    assert paths, f"{folder} holds no mail"
    mails = [parse_mail(path) for path in paths]

    deliveries, crashes = feed(mails)
    assert not crashes, "receive_message crashed on:\n" + "\n".join(
        f"  {name}: {error}" for name, error in crashes.items())

    # Every file is one message: a new ticket, or a duplicate of an earlier file's Message-ID.
    seen: set[str] = set()
    for delivery in deliveries:
        mail, result = delivery.mail, delivery.result
        assert result.duplicate == (mail.external_id in seen), mail.name
        assert result.message.external_id == mail.external_id, mail.name
        if not result.duplicate:
            assert result.created, mail.name
        seen.add(mail.external_id)
    assert Message.select().count() == len(seen)
    assert Ticket.select().count() == len(seen)
    kept = {m.external_id for m in Message.select(Message.external_id)}
    assert kept == seen

    # Nothing lost: every attachment is on its message, or refused for its type or size.
    for delivery in deliveries:
        assert len(delivery.stored) + len(delivery.refused) == len(delivery.mail.attachments)
        assert {reason for _, reason in delivery.refused} <= REFUSAL_REASONS
        if not delivery.result.duplicate:
            rows = Attachment.select().where(Attachment.message == delivery.result.message.id)
            assert sorted(r.sha256 for r in rows) == sorted(f.sha256 for f in delivery.stored)
    storage = Storage(loket().config["attachments_path"])
    for delivery in deliveries:
        sent = {hashlib.sha256(data).hexdigest(): len(data)
                for _, data in delivery.mail.attachments}
        for stored in delivery.stored:
            assert sent.get(stored.sha256) == stored.size, delivery.mail.name
            assert storage.path_for(stored.sha256).stat().st_size == stored.size

    # What an agent's browser will render carries no script, handler or tracking image.
    for message in Message.select():
        assert unsafe_markup(message.body_html) == [], message.external_id

    if check is not None:
        check(deliveries, json.loads((folder.parent / expected_file).read_text("utf-8")))

    # The same deliveries again (a re-fetched mailbox) write nothing.
    counts = [Model.select().count() for Model in (Message, Ticket, Attachment, Contact)]
    again, crashes = feed(mails)
    assert not crashes, crashes
    assert all(d.result.duplicate for d in again), [d.mail.name for d in again
                                                    if not d.result.duplicate]
    assert [Model.select().count() for Model in (Message, Ticket, Attachment, Contact)] == counts
