"""winmail.dat (Outlook's TNEF wrapper) opened into the files it carries.

tnefparse reads the format (a binary attribute stream with MAPI properties)
that would otherwise take a few hundred lines to get right; when it cannot
read a file, the caller keeps winmail.dat itself as the attachment.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def unpack(data: bytes) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each file inside, plus the body as text or HTML; [] if unreadable."""
    try:
        from tnefparse import TNEF

        tnef = TNEF(data)
        files = []
        for index, attachment in enumerate(tnef.attachments):
            name = attachment.long_filename() or attachment.name or f"attachment-{index}"
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            if attachment.data:
                files.append((str(name).strip("\x00"), bytes(attachment.data)))
        body = getattr(tnef, "htmlbody", None) or getattr(tnef, "body", None)
        if body:
            raw = body if isinstance(body, bytes) else str(body).encode("utf-8")
            files.append(("message.html" if getattr(tnef, "htmlbody", None) else "message.txt",
                          raw))
        return files
    except Exception as exc:  # a broken or unusual winmail.dat stays a file
        log.info("winmail.dat could not be opened: %s", exc)
        return []
