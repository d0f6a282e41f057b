"""An Outlook ``.msg`` (a message saved or forwarded from Outlook) opened with extract-msg.

A customer who forwards a mail from Outlook "as an attachment" sends a .msg: an
OLE compound file that no browser or mail program on the agent's side opens. Its
text becomes a readable ``.txt`` (who wrote it, when, to whom, the subject, the
body) and the files it carries are stored like any other attachment. The .msg
itself is kept as it came (stored when the desk's allowed types take it, and
always in the raw original). extract-msg is used because the format (MS-OXMSG
inside MS-CFB) takes a few hundred lines to read right; a file it cannot read
stays the .msg alone.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
CONTENT_TYPES = ("application/vnd.ms-outlook", "application/x-ole-storage")
# Nested messages are opened this deep, no deeper (a .msg in a .msg in a .msg ...).
MAX_DEPTH = 3


def is_outlook_msg(filename: str, content_type: str, data: bytes) -> bool:
    return data.startswith(OLE2) and (filename.lower().endswith(".msg")
                                      or content_type in CONTENT_TYPES)


def _stem(filename: str) -> str:
    stem = filename[:-4] if filename.lower().endswith(".msg") else filename
    return stem or "message"


def unpack(data: bytes, filename: str = "message.msg",
           depth: int = 0) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the message's text and each file inside; [] if unreadable."""
    try:
        import extract_msg

        msg = extract_msg.openMsg(data, delayAttachments=False)
    except Exception as exc:  # not a message, damaged, or encrypted: the .msg stays a file
        log.info("%s could not be opened as an Outlook message: %s", filename, exc)
        return []
    try:
        return _read(msg, filename, depth)
    except Exception as exc:
        log.info("%s could not be read as an Outlook message: %s", filename, exc)
        return []
    finally:
        try:
            msg.close()
        except Exception:
            pass


def _read(msg: object, filename: str, depth: int) -> list[tuple[str, bytes]]:
    def field(name: str) -> str:
        try:
            value = getattr(msg, name, None)
        except Exception:  # a property the file lacks or mislabels
            return ""
        return "" if value is None else str(value).strip()

    lines = [f"{label}: {field(attr)}" for label, attr in (
        ("From", "sender"), ("Sent", "date"), ("To", "to"), ("Cc", "cc"),
        ("Subject", "subject")) if field(attr)]
    body = field("body")
    if not body:
        html = getattr(msg, "htmlBody", None)
        if html:
            from .parse import html_to_text

            body = html_to_text(html.decode("utf-8", "replace") if isinstance(html, bytes)
                                else str(html))
    text = "\n".join(lines) + "\n\n" + re.sub(r"\r\n?", "\n", body).strip() + "\n"
    found = [(_stem(filename) + ".txt", text.encode("utf-8"))]
    for index, attachment in enumerate(getattr(msg, "attachments", None) or []):
        name = (getattr(attachment, "longFilename", None)
                or getattr(attachment, "shortFilename", None) or f"attachment-{index}")
        name = str(name).strip("\x00").strip() or f"attachment-{index}"
        data = getattr(attachment, "data", None)
        if isinstance(data, bytes) and data:
            found.append((name, data))
        elif data is not None and depth < MAX_DEPTH and hasattr(data, "body"):
            # An attached Outlook message: its own text and files, one level down.
            found.extend(_read(data, name if name.lower().endswith(".msg") else name + ".msg",
                               depth + 1))
    return found
