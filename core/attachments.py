"""Attachment storage: content-addressed files, types sniffed from content, safe names."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import filetype
from flask import abort, send_file
from peewee import JOIN
from werkzeug.wrappers import Response

from .i18n import _, _l
from .models import Attachment, Message
from .sanitize import storable

CHUNK = 64 * 1024

# How a customer names an accepted type; a type missing here is shown as its MIME type.
TYPE_NAMES = {"application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPEG",
              "image/gif": "GIF", "image/webp": "WebP", "text/plain": _l("plain text")}


def type_names(allowed_types: list[str]) -> str:
    """The accepted types in a customer's words, in the setting's order: "PNG, JPEG, PDF"."""
    return ", ".join(str(TYPE_NAMES.get(t, t)) for t in allowed_types)


class AttachmentRejected(ValueError):
    """A file cannot be accepted; ``reason`` is a short machine code, str() a sentence."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    filename: str
    content_type: str
    size: int


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """A name that is safe in a path and a Content-Disposition header."""
    name = unicodedata.normalize("NFC", storable(name))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"<>|:*?;]", "", name).strip(" .")
    if len(name) > 150:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 140] + dot + ext[-9:]) if dot and len(ext) < 10 else name[:150]
    return name or fallback


def sniff_type(head: bytes) -> str:
    """The file's type judged by its bytes, never by its name."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    if _looks_like_text(head):
        return _markup_type(head) or "text/plain"
    return "application/octet-stream"


_MARKUP = (
    (b"<svg", "image/svg+xml"),
    (b"<!doctype html", "text/html"), (b"<html", "text/html"), (b"<script", "text/html"),
    (b"<head", "text/html"), (b"<body", "text/html"), (b"<iframe", "text/html"),
    (b"<?xml", "application/xml"),
)


def _markup_type(head: bytes) -> str | None:
    """HTML, SVG and XML are text that a browser would run: name them for what they are,
    so that the allow-list (plain text, not markup) refuses them."""
    sample = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for prefix, content_type in _MARKUP:
        if sample.startswith(prefix) or (prefix != b"<?xml" and prefix in head[:4096].lower()
                                         and prefix in (b"<script", b"<svg", b"<iframe")):
            return content_type
    return None


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 4:
            return False
    return True


class Storage:
    """Files under ``root/ab/cd/<sha256>``: one copy per content, shared by web hosts."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("not a sha256 digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def save(self, stream: BinaryIO, filename: str, *, max_bytes: int,
             allowed_types: list[str]) -> StoredFile:
        """Copy a stream into storage, hashing as it goes; refuse it whole or keep it whole."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        head = b""
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise _too_large(filename, max_bytes)
                    if len(head) < 8192:
                        head += chunk[: 8192 - len(head)]
                    digest.update(chunk)
                    tmp.write(chunk)
            content_type = _checked_type(head, size, filename, allowed_types)
            sha = digest.hexdigest()
            target = self.path_for(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                os.unlink(tmp_name)
                os.utime(target)  # in use again: the orphan sweep leaves it for another day
            else:
                os.replace(tmp_name, target)
            return StoredFile(sha, safe_filename(filename), content_type, size)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def save_bytes(self, data: bytes, filename: str, *, max_bytes: int,
                   allowed_types: list[str]) -> StoredFile:
        """``save`` for bytes already in memory (a mail's files): the same checks, the
        same file, without copying it through a stream."""
        if len(data) > max_bytes:
            raise _too_large(filename, max_bytes)
        content_type = _checked_type(data[:8192], len(data), filename, allowed_types)
        sha = hashlib.sha256(data).hexdigest()
        self._write(sha, data, ".upload-")
        return StoredFile(sha, safe_filename(filename), content_type, len(data))

    def open(self, sha256: str) -> BinaryIO:
        return open(self.path_for(sha256), "rb")

    def put(self, data: bytes) -> str:
        """Keep bytes as they are, unchecked (raw originals); returns their SHA-256.

        Every inbound mail comes here, so it is plain ``os`` calls (``_write``).
        """
        sha = hashlib.sha256(data).hexdigest()
        self._write(sha, data, ".raw-")
        return sha

    def _write(self, sha: str, data: bytes, prefix: str) -> None:
        """Keep ``data`` under its digest. No stat of a folder that exists, which is
        nearly always (it is made when the write finds it missing); the bytes go to a
        temporary name first, so a crash never leaves a cut file under the digest's name.
        """
        folder = os.path.join(self.root, sha[:2], sha[2:4])
        target = os.path.join(folder, sha)
        try:
            os.utime(target)  # kept already, in use again: the orphan sweep leaves it be
            return
        except FileNotFoundError:
            pass
        tmp_name = os.path.join(folder, f"{prefix}{secrets.token_hex(8)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(tmp_name, flags, 0o600)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp_name, flags, 0o600)
        try:
            with open(fd, "wb") as tmp:
                tmp.write(data)
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise


def _too_large(filename: str, max_bytes: int) -> AttachmentRejected:
    return AttachmentRejected(
        "too_large", f"{safe_filename(filename)} is larger than "
                     f"{max_bytes // (1024 * 1024) or max_bytes} "
                     f"{'MB' if max_bytes >= 1024 * 1024 else 'bytes'}")


def _checked_type(head: bytes, size: int, filename: str, allowed_types: list[str]) -> str:
    """The file's sniffed type; refused when it is empty or of a type not accepted."""
    if size == 0:
        raise AttachmentRejected("empty", f"{safe_filename(filename)} is empty")
    content_type = sniff_type(head)
    if content_type not in allowed_types:
        raise AttachmentRejected(
            "type_not_allowed",
            f"{safe_filename(filename)}: files of type {content_type} are not accepted "
            f"(accepted: {', '.join(allowed_types)})")
    return content_type

def rejection_message(exc: AttachmentRejected, filename: str, max_bytes: int,
                      allowed_types: list[str] | None = None) -> str:
    """Why a file was refused, in the customer's language (the web form, the API, the console)."""
    name = safe_filename(filename)
    if exc.reason == "too_large":
        return _("%(name)s is larger than %(size)s MB.", name=name, size=megabytes(max_bytes))
    if exc.reason == "empty":
        return _("%(name)s is empty.", name=name)
    if exc.reason == "type_not_allowed":
        if allowed_types:
            return _("%(name)s: this type of file is not accepted. Accepted types: %(types)s.",
                     name=name, types=type_names(allowed_types))
        return _("%(name)s: this type of file is not accepted.", name=name)
    return str(exc)


def megabytes(size: int) -> str:
    """A size in MB as the customer's locale writes it: "10", "2.5" in English, "2,5" in
    Indonesian."""
    from flask_babel import format_decimal

    mb = size / (1024 * 1024)
    return format_decimal(round(mb) if mb >= 1 and mb == int(mb) else round(mb, 1),
                          format="#,##0.#")


# -- Downloads -----------------------------------------------------------------------------


def find_attachment(ticket_id: int, attachment_id: int, *, public: bool) -> Attachment | None:
    """A file of this ticket; with ``public``, only one the customer's thread shows (no notes')."""
    query = Attachment.select(Attachment).where((Attachment.id == attachment_id)
                                                & (Attachment.ticket == ticket_id))
    if public:
        query = (query.join(Message, JOIN.LEFT_OUTER, on=(Attachment.message == Message.id))
                 .where(Message.id.is_null() | ~Message.is_internal))
    return query.first()


def download(attachment: Attachment | None, root: str | os.PathLike[str]) -> Response:
    """The file as a download for customers and agents alike; 404 when it is gone.

    Never rendered by the browser, whatever it holds: a generic type, an
    ``attachment`` disposition, no sniffing, a sandbox with nothing allowed,
    and no copy kept by any cache (it may be private, and the link may carry a key).
    """
    if attachment is None:
        abort(404)
    try:
        stream = Storage(root).open(attachment.sha256)
    except (FileNotFoundError, ValueError):
        abort(404)
    response = send_file(stream, mimetype="application/octet-stream", as_attachment=True,
                         download_name=attachment.filename, conditional=False, etag=False,
                         max_age=0)
    response.headers["Content-Disposition"] = content_disposition(attachment.filename)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one (RFC 6266, RFC 5987)."""
    fallback = (unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
                .replace("\\", "").replace('"', "").strip()) or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
