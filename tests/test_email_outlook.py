"""Outlook .msg attachments: opened with extract-msg, their text and files readable, the .msg kept.

The .msg files are built by ``tests/outlook_msg.py`` (an MS-CFB compound file with the
MS-OXMSG streams): the shared corpora hold none.
"""

from __future__ import annotations

from typing import Any

import pytest

from core import db
from core.attachments import Storage
from core.models import Attachment, Message
from core.raw import read as read_raw
from plugins.email_intake.ingest import ingest_raw
from plugins.email_intake.outlook import unpack
from tests.factories import build_desk
from tests.outlook_msg import outlook_msg
from tests.test_email_ingest import mail

pytest.importorskip("extract_msg", reason="extract-msg is a dependency of email_intake")

PDF = b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 400  # over 4 KB: outside the mini stream


def forwarded() -> bytes:
    return outlook_msg(subject="Bukti transfer Oktober", sender="rina@example.test",
                       sender_name="Rina Wijaya", to="Billing",
                       body="Terlampir bukti transfer saya.\r\nSalam, Rina",
                       files=[("bukti-transfer.pdf", PDF), ("catatan.txt", b"nomor 4411")])


def test_a_msg_is_read_into_its_text_and_files() -> None:
    found = dict(unpack(forwarded(), "Bukti transfer.msg"))
    assert set(found) == {"Bukti transfer.txt", "bukti-transfer.pdf", "catatan.txt"}
    text = found["Bukti transfer.txt"].decode()
    assert "From: Rina Wijaya" in text and "Subject: Bukti transfer Oktober" in text
    assert "Terlampir bukti transfer saya.\nSalam, Rina" in text
    assert found["bukti-transfer.pdf"] == PDF and found["catatan.txt"] == b"nomor 4411"


def test_bytes_that_only_look_like_a_msg_stay_a_file() -> None:
    assert unpack(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "broken.msg") == []
    assert unpack(b"plain text", "notes.msg") == []


@pytest.fixture
def outlook_app(make_app: Any) -> Any:
    # The desk takes Outlook files besides its usual types, so the .msg itself is stored.
    return make_app(plugins=["email_intake"], **{
        "email_intake.address": "help@desk.test",
        "upload_allowed_types": ["application/pdf", "text/plain", "application/octet-stream"]})


def test_a_mail_with_a_msg_attached_gets_its_text_files_and_the_msg_itself(
        outlook_app: Any) -> None:
    original = forwarded()
    raw = mail(subject="Forwarding the transfer proof",
               files=[("Bukti transfer.msg", original, "application/vnd.ms-outlook")])
    with outlook_app.app_context(), db.connection():
        build_desk()
        result = ingest_raw(raw, via="pipe")
        assert result.outcome == "new_ticket"
        rows = {r.filename: r for r in Attachment.select().where(
            Attachment.ticket == result.ticket_number)}
        assert set(rows) == {"Bukti transfer.msg", "Bukti transfer.txt", "bukti-transfer.pdf",
                             "catatan.txt"}
        storage = Storage(outlook_app.extensions["loket"].config["attachments_path"])
        with storage.open(rows["Bukti transfer.msg"].sha256) as fh:
            assert fh.read() == original  # kept as it came
        with storage.open(rows["Bukti transfer.txt"].sha256) as fh:
            assert "Terlampir bukti transfer saya." in fh.read().decode()
        assert rows["bukti-transfer.pdf"].content_type == "application/pdf"
        # The mail as it came, .msg and all, stays one click away for agents too.
        message = Message.select().where(Message.ticket == result.ticket_number).first()
        assert read_raw(message.raw_path) == raw


def test_with_the_default_types_the_msg_is_named_in_a_note_and_its_contents_kept(
        make_app: Any) -> None:
    app = make_app(plugins=["email_intake"], **{"email_intake.address": "help@desk.test"})
    raw = mail(files=[("Bukti transfer.msg", forwarded(), "application/vnd.ms-outlook")])
    with app.app_context(), db.connection():
        build_desk()
        result = ingest_raw(raw, via="pipe")
        names = sorted(r.filename for r in Attachment.select().where(
            Attachment.ticket == result.ticket_number))
        assert names == ["Bukti transfer.txt", "bukti-transfer.pdf", "catatan.txt"]
        note = next(m for m in Message.select().where(Message.ticket == result.ticket_number)
                    if m.is_internal)
        assert "Bukti transfer.msg" in note.body_text
