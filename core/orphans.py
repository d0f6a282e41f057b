"""Files no message refers to: uploads of a submission that was refused or a duplicate.

Files reach storage before the ticket's transaction (writing megabytes under
the write lock would stall every other writer), so a submission that is then
refused, or found to be a duplicate, leaves its files behind. This daily sweep
removes stored files older than a day that no attachment or raw original
names. Storage is content-addressed: a file that a later message shares is
referenced again and stays.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from .models import Attachment, Message
from .state import loket

GRACE_SECONDS = 24 * 3600
BATCH = 500
_DIGEST = re.compile(r"[0-9a-f]{64}")


def _stored(root: Path, older_than: float) -> Iterator[Path]:
    if not root.is_dir():
        return
    for first in os.scandir(root):
        if not (first.is_dir() and len(first.name) == 2):
            continue
        for second in os.scandir(first.path):
            if not second.is_dir():
                continue
            for entry in os.scandir(second.path):
                if (entry.is_file() and _DIGEST.fullmatch(entry.name)
                        and entry.stat().st_mtime < older_than):
                    yield Path(entry.path)


def _sweep(root: Path, referenced: callable, older_than: float) -> int:
    removed = 0
    batch: list[Path] = []

    def flush() -> int:
        known = referenced([path.name for path in batch])
        gone = 0
        for path in batch:
            if path.name not in known:
                try:
                    path.unlink()
                    gone += 1
                except FileNotFoundError:
                    pass
        batch.clear()
        return gone

    for path in _stored(root, older_than):
        batch.append(path)
        if len(batch) >= BATCH:
            removed += flush()
    if batch:
        removed += flush()
    return removed


def _attachments(digests: list[str]) -> set[str]:
    return {row.sha256 for row in Attachment.select(Attachment.sha256)
            .where(Attachment.sha256.in_(digests))}


def _raw(digests: list[str]) -> set[str]:
    return {row.raw_path for row in Message.select(Message.raw_path)
            .where(Message.raw_path.in_(digests))}


def sweep_orphans(now: float | None = None) -> dict[str, int]:
    """Remove unreferenced stored files older than a day; returns how many, by kind."""
    older_than = (now if now is not None else time.time()) - GRACE_SECONDS
    root = Path(loket().config["attachments_path"])
    return {"attachments": _sweep(root, _attachments, older_than),
            "raw": _sweep(root / "raw", _raw, older_than)}
