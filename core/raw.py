"""The raw original of an inbound message (a whole email, a webhook body), kept private for agents.

Stored content-addressed beside the attachments, under ``raw/``; only the
console serves it, as a download or as escaped text, never with its own type.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .attachments import Storage
from .state import loket


@dataclass(frozen=True)
class RawOriginal:
    """What a channel received, byte for byte, and what it is (``message/rfc822``, JSON...)."""

    data: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class KeptRaw:
    sha256: str
    size: int  # of the original; more than the kept bytes when it was cut
    content_type: str
    truncated: bool


def raw_storage() -> Storage:
    return Storage(Path(loket().config["attachments_path"]) / "raw")


def _kept_bytes(data: bytes) -> bytes:
    limit = loket().config["raw_max_bytes"]
    return data[:limit] if limit else data


def digest(data: bytes) -> str:
    """The SHA-256 that ``keep`` will store these bytes under (``Message.raw_path``).

    Lets a channel note where an original came from before the message is stored
    (the mailbox a mail was read from), and find that note from the message later.
    """
    return hashlib.sha256(_kept_bytes(data)).hexdigest()


def keep(raw: RawOriginal) -> KeptRaw:
    """Write the original to private storage, cut at ``raw_max_bytes`` (and marked so)."""
    data = _kept_bytes(raw.data)
    sha = raw_storage().put(data)
    content_type = (raw.content_type or "application/octet-stream")[:100]
    return KeptRaw(sha, len(raw.data), content_type, len(data) < len(raw.data))


def read(sha256: str) -> bytes:
    with raw_storage().open(sha256) as fh:
        return fh.read()
