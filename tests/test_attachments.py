"""Attachment storage: sniffed types, size limits, safe names, one copy per content."""

from __future__ import annotations

import io

import pytest

from core.attachments import AttachmentRejected, Storage, safe_filename, sniff_type
from core.sanitize import clean_html, text_to_html

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")
ALLOWED = ["image/png", "application/pdf", "text/plain"]


def test_type_is_judged_by_content_not_name(tmp_path):
    storage = Storage(tmp_path)
    stored = storage.save_bytes(PNG, "screenshot.txt", max_bytes=10_000, allowed_types=ALLOWED)
    assert stored.content_type == "image/png"
    with pytest.raises(AttachmentRejected) as info:
        storage.save_bytes(b"MZ\x90\x00\x03" + b"\x00" * 100, "invoice.pdf", max_bytes=10_000,
                           allowed_types=ALLOWED)
    assert info.value.reason == "type_not_allowed"
    assert sniff_type("Terima kasih 🙏".encode()) == "text/plain"


def test_oversize_and_empty_files_are_refused_and_leave_nothing(tmp_path):
    storage = Storage(tmp_path)
    with pytest.raises(AttachmentRejected) as info:
        storage.save(io.BytesIO(b"a" * 2048), "big.txt", max_bytes=1024, allowed_types=ALLOWED)
    assert info.value.reason == "too_large"
    with pytest.raises(AttachmentRejected, match="empty"):
        storage.save_bytes(b"", "none.txt", max_bytes=1024, allowed_types=ALLOWED)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_same_content_is_stored_once(tmp_path):
    storage = Storage(tmp_path)
    a = storage.save_bytes(PNG, "a.png", max_bytes=10_000, allowed_types=ALLOWED)
    b = storage.save_bytes(PNG, "b.png", max_bytes=10_000, allowed_types=ALLOWED)
    assert a.sha256 == b.sha256 and a.filename != b.filename
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1
    with storage.open(a.sha256) as fh:
        assert fh.read() == PNG
    with pytest.raises(ValueError):
        storage.path_for("../../etc/passwd")


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\siti\\bukti transfer.png", "bukti transfer.png"),
    ('evil"; filename=x.html', "evil filename=x.html"),
    ("\x00\x1b[31m.png", "[31m.png"),
    ("...", "attachment"),
    ("a" * 300 + ".pdf", "a" * 140 + ".pdf"),
])
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


def test_clean_html_removes_script_and_tracking():
    dirty = ('<p onclick="steal()">Hi<script>alert(1)</script></p>'
             '<img src="https://tracker.test/p.gif"><a href="javascript:alert(1)">x</a>'
             '<a href="https://ok.test">ok</a><style>p{}</style>')
    clean = clean_html(dirty)
    for bad in ("script", "onclick", "img", "javascript:", "style"):
        assert bad not in clean
    assert '<a href="https://ok.test" rel="noopener noreferrer nofollow">ok</a>' in clean


def test_text_to_html_escapes_and_links():
    html = str(text_to_html('<b>hi</b>\nsee https://help.test/a?b=1&c=2'))
    assert "&lt;b&gt;" in html and "<br>" in html
    assert '<a href="https://help.test/a?b=1&amp;c=2"' in html


@pytest.mark.parametrize("data, expected", [
    (b"<!DOCTYPE html><html><script>alert(1)</script>", "text/html"),
    (b"\xef\xbb\xbf  <html><body>hi</body></html>", "text/html"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "image/svg+xml"),
    (b"hello\n<script>alert(1)</script>", "text/html"),
    (b"Order 1234 < 5000 IDR, see attached", "text/plain"),
])
def test_markup_is_not_plain_text(tmp_path, data, expected):
    assert sniff_type(data) == expected
    if expected != "text/plain":
        with pytest.raises(AttachmentRejected):
            Storage(tmp_path).save_bytes(data, "photo.png", max_bytes=10_000,
                                         allowed_types=ALLOWED)
