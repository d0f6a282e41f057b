"""One tolerant reading of an email, for every way mail comes in (IMAP, pipe, HTTP).

``parse(raw)`` never raises: each header read has a fallback, each body part is
decoded with the charset it names, else UTF-8, else Windows-1252, and what
cannot be read becomes a file rather than an error. The standard library's
``compat32`` parser is used on purpose: its ``default`` policy raises on
headers real mail carries (a display name that is only a comment, an
Outlook-style Message-ID, a trailing comma in Cc) and is several times slower.
"""

from __future__ import annotations

import email
import email.header
import email.message
import email.utils
import hashlib
import html as html_lib
import mimetypes
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

# Charsets tried, in order, after the one a part names (or when it names none).
_FALLBACK_CHARSETS = ("utf-8", "cp1252")
# Names mail programs write that Python does not know by that name.
_CHARSET_ALIASES = {"unknown-8bit": "cp1252", "x-unknown": "cp1252", "iso-8859-8-i": "iso-8859-8",
                    "ks_c_5601-1987": "cp949", "gb2312": "gb18030", "gbk": "gb18030",
                    "x-user-defined": "cp1252", "ansi_x3.4-1968": "ascii", "default": "cp1252"}


@dataclass
class MailFile:
    """An attachment or inline part as it came: decoded bytes, never opened or run here."""

    filename: str
    content_type: str
    data: bytes
    content_id: str = ""  # for inline images referred to as cid: in the HTML
    inline: bool = False


@dataclass
class ParsedMail:
    raw: bytes
    message_id: str  # "<...>" as sent, or "" when the mail has none
    sender: str  # the From address, lower-case domain; "" when none could be read
    sender_name: str
    subject: str
    text: str  # the whole text of the mail (HTML turned into text when it has no text part)
    reply_text: str  # what the sender wrote this time: quotes and signature trimmed
    html: str  # the HTML alternative as sent (the services sanitise it before storing)
    to: list[tuple[str, str]] = field(default_factory=list)  # (name, address)
    cc: list[tuple[str, str]] = field(default_factory=list)
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    files: list[MailFile] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)  # lower-case name -> values
    content_type: str = "text/plain"
    report_type: str = ""  # multipart/report's report-type (delivery-status, disposition...)
    defects: set[str] = field(default_factory=set)
    message: email.message.Message | None = None  # the parsed tree, for bounce reading

    @property
    def external_id(self) -> str:
        """The id the same mail has however it arrives: its Message-ID, else a content hash."""
        return self.message_id or content_id(self.raw)

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""


# A raw 8-bit byte in a header, as the parser hands it over (a surrogate escape).
_SURROGATE = re.compile("[\udc80-\udcff]")


def content_id(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# -- Headers -----------------------------------------------------------------------------------


def _charset(name: str | None) -> str | None:
    if not name:
        return None
    name = str(name).strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        import codecs

        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Text from bytes: the declared charset if it reads cleanly, else UTF-8, else cp1252.

    A part labelled us-ascii or latin-1 that is really UTF-8 is common; UTF-8 is tried
    before a single-byte charset, which would read anything (wrongly).
    """
    declared = _charset(declared)
    tried: list[str] = []
    single_byte = declared in ("ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15")
    order = (["utf-8", declared] if single_byte else [declared, "utf-8"]) + list(
        _FALLBACK_CHARSETS)
    for charset in order:
        if not charset or charset in tried:
            continue
        tried.append(charset)
        try:
            return data.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(declared or "utf-8", "replace")


def _decode_header(value: Any) -> str:
    """A header's text with RFC 2047 encoded words decoded; never raises."""
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        try:
            parts = email.header.decode_header(value)
        except Exception:
            return str(value)
    else:
        text = str(value)
        # A raw 8-bit header arrives as surrogate escapes: read its bytes as text.
        if _SURROGATE.search(text):
            text = decode_bytes(text.encode("utf-8", "surrogateescape"))
        if "=?" not in text:
            return _unfold(text)
        # Folded encoded words: the fold between two words is not text (RFC 2047, 6.2).
        text = re.sub(r"\?=\s+=\?", "?==?", _unfold(text))
        try:
            parts = email.header.decode_header(text)
        except Exception:
            return text
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    return _unfold("".join(out))


def _unfold(text: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", text).strip()


def _header_values(msg: email.message.Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    try:
        items = msg.items()
    except Exception:
        return headers
    for name, value in items:
        try:
            headers.setdefault(str(name).lower(), []).append(_decode_header(value))
        except Exception:
            continue
    return headers


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(name, address) pairs; odd lists (trailing commas, comments, bare names) are tolerated."""
    found: list[tuple[str, str]] = []
    for value in values:
        try:
            pairs = email.utils.getaddresses([value])
        except Exception:
            pairs = []
        if not any("@" in addr for _, addr in pairs):
            # The strict reading found nothing: take anything shaped like an address.
            pairs = [("", m) for m in re.findall(r"[\w.+'=-]+@[\w-]+(?:\.[\w-]+)+", value)]
        for name, addr in pairs:
            addr = addr.strip().strip("<>").strip()
            if "@" not in addr or " " in addr:
                continue
            local, _, domain = addr.rpartition("@")
            if not local or not domain:
                continue
            name = name.strip().strip('"').strip()
            found.append((name, f"{local}@{domain.lower()}"))
    return found


_MSGID = re.compile(r"<([^<>\s]+)>")


def message_ids(value: str) -> list[str]:
    """Message-IDs in a header, as "<...>"; Outlook-style ids without brackets are kept too."""
    found = [f"<{m}>" for m in _MSGID.findall(value or "")]
    if not found:
        bare = (value or "").strip().strip("<>").strip()
        if bare and " " not in bare and len(bare) < 250:
            found = [f"<{bare}>"]
    return found


# -- Body --------------------------------------------------------------------------------------


def _part_text(part: email.message.Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data, charset)


def _filename(part: email.message.Message) -> str:
    """The part's file name: RFC 2231 (``filename*=``) and RFC 2047 (``=?...?=``) decoded."""
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None:
        try:
            name = part.get_param("name")
            if isinstance(name, tuple):
                name = email.utils.collapse_rfc2231_value(name)
        except Exception:
            name = None
    if not name:
        return ""
    return _decode_header(str(name))


def _content_type(part: email.message.Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _disposition(part: email.message.Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _payload_bytes(part: email.message.Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/rfc822, message/delivery-status
        try:
            return b"".join(inner.as_bytes() for inner in payload)
        except Exception:
            return str(part).encode("utf-8", "surrogateescape")
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    return data if isinstance(data, bytes) else b""


def _leaves(part: email.message.Message, root: bool = True) -> list[email.message.Message]:
    """The parts that carry content; an attached message counts as one part."""
    if not root and _content_type(part).startswith("message/"):
        return [part]
    payload = part.get_payload()
    if part.is_multipart() and isinstance(payload, list):
        return [leaf for child in payload for leaf in _leaves(child, root=False)]
    return [part]


def _fallback_name(content_type: str, index: int) -> str:
    ext = ".eml" if content_type == "message/rfc822" else (
        mimetypes.guess_extension(content_type) or ".bin")
    return f"part-{index}{ext}"


class _TextOf(HTMLParser):
    BLOCKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
              "pre", "hr", "table", "ul", "ol"}
    SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML mail: blocks become lines, scripts and styles vanish."""
    parser = _TextOf()
    try:
        parser.feed(html or "")
        parser.close()
    except Exception:  # HTMLParser is lenient; keep what it read should it stop
        pass
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).splitlines())
    return html_lib.unescape("\n".join(line for line in lines if line))


# -- Quotes and signatures ---------------------------------------------------------------------

# The line a mail program writes above the message being answered, in the desk's languages
# and the common others. Matched on one line or two (clients wrap long ones).
_REPLY_HEADERS = [
    r"On\b.{0,200}\bwrote\s*:",  # English (Gmail, Apple Mail, Thunderbird)
    r"Pada\b.{0,200}\bmenulis\s*:",  # Indonesian (Gmail id)
    r"Pada\b.{0,200}\bbalas\b.{0,40}:",
    r"Noong\b.{0,200}\bay\s+sumulat\s*:",  # Filipino (Gmail fil)
    r"Noong\b.{0,200}\bsumulat\s*:",
    r"Am\b.{0,200}\bschrieb\b.{0,80}:",  # German
    r"Le\b.{0,200}\ba\s+écrit\s*:",  # French
    r"El\b.{0,200}\bescribió\s*:",  # Spanish
    r"Il\b.{0,200}\bha\s+scritto\s*:",  # Italian
    r"Em\b.{0,200}\bescreveu\s*:",  # Portuguese
    r"Op\b.{0,200}\bschreef\b.{0,80}:",  # Dutch
    r".{0,120}\d{2,4}.{0,80}(?:пользователь|написал).{0,120}:?",  # Russian (Android, Yandex)
    r".{0,120}\d{2,4}.{0,80}\bот\b.{0,200}:",  # Russian (Mail.ru)
    r".{0,100}\d.{0,100}<[^<>\s]+@[^<>\s]+>\s*:",  # "<date>, <name> <address>:" (Yandex)
    r"-{2,}\s*(?:Original Message|Pesan Asli|Orihinal na Mensahe|Ursprüngliche Nachricht"
    r"|Message d'origine)\s*-{2,}",
    r"_{20,}",  # Outlook's rule above the quoted mail
]
_REPLY_HEADER = re.compile(r"^\s*(?:" + "|".join(_REPLY_HEADERS) + r")\s*$",
                           re.IGNORECASE | re.DOTALL)
# Outlook's header block: From/Sent/To/Subject lines, in the desk's languages too.
_OUTLOOK_FIELD = re.compile(
    r"^\s*\*?(?:From|Sent|To|Subject|Date|Cc|Dari|Dikirim|Kepada|Perihal|Subjek|Tanggal|Mula kay"
    r"|Mula sa|Ipinadala|Para kay|Paksa|Von|Gesendet|An|Betreff|De|Envoyé|À|Objet|Enviado"
    r"|Para|Asunto|От|Отправлено|Кому|Тема)\s*\*?:", re.IGNORECASE)
_SENT_FROM = re.compile(r"^\s*(?:Sent from my|Dikirim dari|Ipinadala mula sa|Get Outlook for)\b",
                        re.IGNORECASE)


def trim_quotes(text: str) -> str:
    """What the sender wrote this time, above (or between) the quoted earlier messages.

    Cut at the first reply header ("On ... wrote:", "Pada ... menulis:", "Noong ... ay
    sumulat:", "-----Original Message-----", an Outlook From:/Sent: block) or quoted
    block; a bottom-posted reply keeps the lines written below the quote. The whole
    mail stays in the raw original.
    """
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = _quote_start(lines)
    if cut is None:
        return (text or "").strip("\n").rstrip()
    above = "\n".join(lines[:cut]).rstrip()
    if above.strip():
        return above.strip("\n")
    # Bottom-posting: nothing above; keep what follows the quoted lines.
    below = [line for line in lines[cut + 1:] if not line.lstrip().startswith(">")]
    return "\n".join(below).strip("\n").rstrip() or (text or "").strip()


def _quote_start(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">"):
            # A quoted block ends the reply, unless it is only a line or two amid the text.
            rest = lines[i:i + 3]
            if sum(1 for q in rest if q.strip().startswith(">")) >= min(2, len(rest)):
                return _with_header_above(lines, i)
            continue
        # Every header above ends in a colon or is a rule of dashes or underscores: a
        # cheap test first spares the regular expressions most lines of a long mail.
        if (":" in stripped or "--" in stripped or "__" in stripped) and _REPLY_HEADER.match(
                stripped):
            return i
        if i + 1 < len(lines) and ":" in lines[i + 1] and _REPLY_HEADER.match(
                f"{stripped} {lines[i + 1].strip()}") and not _REPLY_HEADER.match(
                lines[i + 1].strip()):
            return i
        if ":" in stripped and _OUTLOOK_FIELD.match(stripped):
            fields = sum(1 for q in lines[i:i + 5] if _OUTLOOK_FIELD.match(q.strip()))
            if fields >= 2:
                return i
    return None


def _with_header_above(lines: list[str], quote: int) -> int:
    """The quote starts at its header line ("On ... wrote:") when one sits just above it."""
    j = quote - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j >= 0 and (_REPLY_HEADER.match(lines[j].strip()) or (
            j >= 1 and _REPLY_HEADER.match(f"{lines[j - 1].strip()} {lines[j].strip()}"))):
        return j - 1 if j >= 1 and not _REPLY_HEADER.match(lines[j].strip()) else j
    return quote


def trim_signature(text: str) -> str:
    """The text without its signature block ("-- " line) or a phone's "Sent from my ..."."""
    lines = text.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if line.rstrip() == "--" or line == "-- ":
            if len(lines) - i <= 12 and "\n".join(lines[:i]).strip():
                return "\n".join(lines[:i]).rstrip()
    if lines and _SENT_FROM.match(lines[-1]) and len(lines) > 1:
        return "\n".join(lines[:-1]).rstrip()
    return text


def reply_text(text: str) -> str:
    """What an agent reads first: the new text, without quotes and signature."""
    return trim_signature(trim_quotes(text))


# -- The whole mail ----------------------------------------------------------------------------


_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def parse(raw: bytes) -> ParsedMail:
    """Read any bytes as a mail; never raises (the worst case is a mail of only text)."""
    if raw.startswith(_OLE2):
        # An Outlook .msg handed over as if it were a mail: kept whole as the file it is.
        return ParsedMail(raw, "", "", "", "", "(an Outlook .msg file, attached)", "", "",
                          files=[MailFile("message.msg", "application/vnd.ms-outlook", raw)])
    try:
        msg = email.message_from_bytes(raw)
    except Exception as exc:  # the parser promises not to raise; keep the bytes if it does
        text = decode_bytes(raw)
        return ParsedMail(raw, "", "", "", "", text, text, "", defects={type(exc).__name__})
    headers = _header_values(msg)

    def first(name: str) -> str:
        values = headers.get(name)
        return values[0] if values else ""

    senders = _addresses(headers.get("from", []) or headers.get("sender", [])
                         or headers.get("return-path", []))
    sender_name, sender = senders[0] if senders else ("", "")
    if not sender_name and not senders:
        sender_name = first("from")[:200]
    mail = ParsedMail(
        raw=raw, message_id=(message_ids(first("message-id")) or [""])[0][:250],
        sender=sender, sender_name=sender_name, subject=first("subject"), text="",
        reply_text="", html="", to=_addresses(headers.get("to", [])),
        cc=_addresses(headers.get("cc", [])), reply_to=_addresses(headers.get("reply-to", [])),
        in_reply_to=message_ids(first("in-reply-to")),
        references=[m for v in headers.get("references", []) for m in message_ids(v)],
        headers=headers, content_type=_content_type(msg), message=msg)
    if mail.content_type == "multipart/report":
        mail.report_type = str(msg.get_param("report-type") or "").lower()
    mail.defects = {type(d).__name__ for part in msg.walk() for d in (part.defects or [])}
    _read_body(msg, mail)
    return mail


def _read_body(msg: email.message.Message, mail: ParsedMail) -> None:
    plain: list[str] = []
    rich: list[str] = []
    for index, part in enumerate(_leaves(msg)):
        content_type = _content_type(part)
        disposition = _disposition(part)
        filename = _filename(part)
        if part.is_multipart() and not content_type.startswith("message/"):
            # A multipart whose boundary is missing or broken: its body is the mail's text.
            text = _part_text(part)
            if text.strip():
                plain.append(text)
            continue
        is_body = (not filename and disposition != "attachment"
                   and content_type in ("text/plain", "text/html"))
        if is_body and content_type == "text/plain":
            plain.append(_part_text(part))
            continue
        if is_body and content_type == "text/html" and not rich:
            rich.append(_part_text(part))
            continue
        if is_body:  # a second HTML part (a footer, a digest entry): part of what was said
            plain.append(html_to_text(_part_text(part)))
            continue
        data = _payload_bytes(part)
        content_id = str(part.get("content-id") or "").strip().strip("<>")
        mail.files.append(MailFile(
            filename or _fallback_name(content_type, index), content_type, data,
            content_id=content_id[:200], inline=disposition == "inline" or bool(content_id)))
    mail.html = rich[0] if rich else ""
    text = "\n\n".join(t for t in plain if t.strip())
    if not text.strip() and mail.html:
        text = html_to_text(mail.html)
    mail.text = text
    mail.reply_text = reply_text(text)


__all__ = ["MailFile", "ParsedMail", "content_id", "decode_bytes", "html_to_text",
           "message_ids", "parse", "reply_text", "trim_quotes", "trim_signature"]
