"""Mail kept in files, for ``loket email ingest PATH...``: one mail a file, a maildir, an mbox.

An MTA that delivers to a maildir, or a mail program's export, holds many mails at
once; one ``loket`` process reads them all and writes them in batches
(``ingest.ingest_batch``), instead of starting once per mail.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The most mails, and bytes, read before they are handed to ``ingest_batch``: what the
# IMAP fetcher takes at once (``IMAP_BATCH``, ``IMAP_BATCH_BYTES``). A single larger
# mail still comes alone.
CHUNK_MAILS = 200
CHUNK_BYTES = 20 * 1024 * 1024


@dataclass
class SpooledMail:
    """One mail found under a path: where it is (``label``), its bytes, or why not."""

    label: str
    raw: bytes
    file: Path  # the file that holds it (an mbox holds several)
    error: str = ""  # it could not be read; ``raw`` is empty


def _is_mbox(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(5) == b"From "


def _is_maildir(path: Path) -> bool:
    # Either is enough: a maildir nothing has read yet may lack ``cur`` (and its mails
    # would otherwise be skipped as a subfolder's).
    return (path / "new").is_dir() or (path / "cur").is_dir()


def _files_of(folder: Path) -> list[Path]:
    """The mail files in a folder, by name; no dot-files (a maildir's or an editor's
    temporary ones), no subfolders."""
    return sorted(entry for entry in folder.iterdir()
                  if not entry.name.startswith(".") and entry.is_file())


def mail_files(path: Path) -> list[Path]:
    """The files that hold mail under ``path``: itself, a folder's files, or a maildir's
    ``new`` then ``cur`` (never ``tmp``, where a delivery is still being written)."""
    if path.is_dir():
        if _is_maildir(path):
            return [file for sub in ("new", "cur") if (path / sub).is_dir()
                    for file in _files_of(path / sub)]
        return _files_of(path)
    return [path]


def spooled(paths: list[Path]) -> Iterator[SpooledMail]:
    """Every mail under ``paths``, in order, read one at a time."""
    for path in paths:
        try:
            files = mail_files(path)
        except OSError as exc:
            yield SpooledMail(str(path), b"", path, error=_why(exc))
            continue
        for file in files:
            try:
                if _is_mbox(file):
                    yield from _mbox(file)
                else:
                    yield SpooledMail(str(file), file.read_bytes(), file)
            except (OSError, mailbox.Error) as exc:
                yield SpooledMail(str(file), b"", file, error=_why(exc))


def _mbox(file: Path) -> Iterator[SpooledMail]:
    box = mailbox.mbox(file, create=False)
    try:
        for n, key in enumerate(box.iterkeys(), start=1):
            yield SpooledMail(f"{file}#{n}", box.get_bytes(key), file)
    finally:
        box.close()


def chunks(mails: Iterator[SpooledMail]) -> Iterator[list[SpooledMail]]:
    """``mails`` in lists of at most ``CHUNK_MAILS`` mails and about ``CHUNK_BYTES``."""
    chunk: list[SpooledMail] = []
    size = 0
    for item in mails:
        if chunk and (len(chunk) >= CHUNK_MAILS or size + len(item.raw) > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item.raw)
    if chunk:
        yield chunk


def remove(file: Path) -> str:
    """Delete a file whose mails are all stored; the reason it could not be, or ""."""
    try:
        os.unlink(file)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return _why(exc)
    return ""


def _why(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


__all__ = ["CHUNK_BYTES", "CHUNK_MAILS", "SpooledMail", "chunks", "mail_files", "remove",
           "spooled"]
