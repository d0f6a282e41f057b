"""The email channel's one parser: headers real mail breaks, bodies, quotes, files."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from plugins.email_intake.parse import html_to_text, parse, trim_quotes, trim_signature
from plugins.email_intake.tnef import unpack

from .conftest import shared_corpus


def raw(headers: str, body: str = "Hello", charset_bytes: bytes | None = None) -> bytes:
    head = headers.strip("\n").replace("\n", "\r\n").encode("utf-8")
    return head + b"\r\n\r\n" + (charset_bytes if charset_bytes is not None else body.encode())


# -- Headers -----------------------------------------------------------------------------------


def test_a_display_name_that_is_only_a_comment_still_gives_the_address() -> None:
    mail = parse(raw("From: rina@example.test (Rina Wijaya)\nSubject: hi"))
    assert (mail.sender, mail.sender_name) == ("rina@example.test", "Rina Wijaya")
    mail = parse(raw("From: (just a comment)\nSubject: hi"))
    assert mail.sender == "" and mail.text == "Hello"


def test_outlook_style_message_ids_are_kept_as_ids() -> None:
    assert parse(raw("Message-ID: 1234ABCD.5678@EXCH01.corp.local")).message_id == \
        "<1234ABCD.5678@EXCH01.corp.local>"
    assert parse(raw("Message-ID: <[192.0.2.1]@x>")).message_id == "<[192.0.2.1]@x>"
    mail = parse(raw("In-Reply-To: <a@x> (sent by Outlook)\nReferences: <b@x>\n <c@x>"))
    assert mail.in_reply_to == ["<a@x>"] and mail.references == ["<b@x>", "<c@x>"]


def test_folded_encoded_words_decode_into_one_subject() -> None:
    mail = parse(raw("Subject: =?UTF-8?B?VGlrZXQgc2F5YQ==?=\n =?UTF-8?Q?_tidak_bisa_masuk?=\n"
                     "From: =?iso-8859-1?q?Jos=E9?= <jose@example.test>"))
    assert mail.subject == "Tiket saya tidak bisa masuk"
    assert mail.sender_name == "José"


def test_a_trailing_comma_and_empty_entries_in_cc_are_tolerated() -> None:
    mail = parse(raw("From: a@example.test\nCc: Budi <budi@example.test>, , dewi@example.test,"))
    assert [a for _, a in mail.cc] == ["budi@example.test", "dewi@example.test"]


def test_raw_eight_bit_headers_and_missing_or_wrong_charsets_are_read() -> None:
    headers = "From: a@example.test\nSubject: Caf\xe9 latte".encode("latin-1")
    mail = parse(headers + b"\r\n\r\nplain")
    assert mail.subject == "Café latte"
    # A part labelled us-ascii that is really UTF-8; a charset Python does not know.
    utf8 = parse(raw("Content-Type: text/plain; charset=us-ascii",
                     charset_bytes="Terima kasih — salam".encode()))
    assert utf8.text == "Terima kasih — salam"
    unknown = parse(raw("Content-Type: text/plain; charset=x-no-such-charset",
                        charset_bytes="Salamat pô".encode("cp1252")))
    assert unknown.text == "Salamat pô"


# -- Bodies ------------------------------------------------------------------------------------


def test_text_is_preferred_and_html_only_mail_becomes_readable_text() -> None:
    html_only = parse(raw("Content-Type: text/html; charset=utf-8",
                          "<html><head><style>p{}</style></head><body><p>Halo,</p>"
                          "<p>Akun saya <b>terkunci</b>.</p><script>x()</script></body></html>"))
    assert html_only.text == "Halo,\nAkun saya terkunci."
    assert "<b>terkunci</b>" in html_only.html  # kept for the services to sanitise
    both = parse(raw('Content-Type: multipart/alternative; boundary="b"',
                     "--b\r\nContent-Type: text/plain\r\n\r\nThe text\r\n--b\r\n"
                     "Content-Type: text/html\r\n\r\n<p>The HTML</p>\r\n--b--\r\n"))
    assert both.text.strip() == "The text" and "The HTML" in both.html


def test_file_names_in_rfc_2231_and_rfc_2047_decode_and_inline_images_keep_their_cid() -> None:
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nSee files\r\n"
            "--b\r\nContent-Type: application/pdf\r\n"
            "Content-Disposition: attachment; filename*=UTF-8''Fakt%C3%BAra%20%232.pdf\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
            "--b\r\nContent-Type: image/png; name=\"=?UTF-8?B?Z2FtYmFyLnBuZw==?=\"\r\n"
            "Content-ID: <img1@x>\r\nContent-Disposition: inline\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n")
    mail = parse(raw('Content-Type: multipart/mixed; boundary="b"', body))
    assert [f.filename for f in mail.files] == ["Faktúra #2.pdf", "gambar.png"]
    assert mail.files[0].data == b"%PDF-1.4\n"
    assert mail.files[1].content_id == "img1@x" and mail.files[1].inline


def _tnef(files: list[tuple[str, bytes]]) -> bytes:
    """A minimal winmail.dat: the signature, then per file its start, title and data."""

    def attr(level: int, ident: int, data: bytes) -> bytes:
        return struct.pack("<BII", level, ident, len(data)) + data + struct.pack(
            "<H", sum(data) & 0xFFFF)

    out = struct.pack("<IH", 0x223E9F78, 1) + attr(1, 0x00089006, struct.pack("<I", 0x10000))
    for name, data in files:
        out += attr(2, 0x00069002, b"\x00" * 14) + attr(2, 0x00018010, name.encode() + b"\0")
        out += attr(2, 0x0006800F, data)
    return out


def test_winmail_dat_is_opened_into_its_files_or_kept_when_it_cannot_be() -> None:
    assert unpack(_tnef([("invoice.pdf", b"%PDF-1.4 x"), ("note.txt", b"hi")])) == [
        ("invoice.pdf", b"%PDF-1.4 x"), ("note.txt", b"hi")]
    assert unpack(b"not tnef at all") == []


def test_an_outlook_msg_given_as_a_mail_is_kept_as_its_file() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100
    mail = parse(ole)
    assert [f.filename for f in mail.files] == ["message.msg"] and mail.files[0].data == ole


def test_bytes_that_are_no_mail_at_all_still_parse() -> None:
    for junk in (b"", b"\x00\xff\xfe garbage", b"From nowhere\n\n\n", b"Subject: =?x?q?=ZZ?="):
        mail = parse(junk)
        assert mail.raw == junk and isinstance(mail.text, str)
        assert mail.external_id.startswith("sha256:")


# -- Quotes and signatures ---------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("Thanks!\n\nOn Mon, 1 Jan 2026 at 10:00, Support <help@desk.test> wrote:\n> earlier\n",
     "Thanks!"),
    ("Sudah bisa, terima kasih.\n\nPada tanggal Sen, 1 Jan 2026 pukul 10.00 Support\n"
     "<help@desk.test> menulis:\n\n> Silakan coba lagi.\n", "Sudah bisa, terima kasih."),
    ("Ayos na po.\n\nNoong Lun, Ene 1, 2026 nang 10:00 AM, Support <help@desk.test> ay "
     "sumulat:\n> Subukan ulit\n", "Ayos na po."),
    ("Masih gagal.\n\n-----Pesan Asli-----\nDari: Support\nKepada: saya\n", "Masih gagal."),
    ("Still broken.\n\nFrom: Support <help@desk.test>\nSent: Monday\nTo: me\nSubject: Re\n\nold",
     "Still broken."),
    ("> quoted question\n> more\n\nMy answer below the quote.", "My answer below the quote."),
    ("A line > with a bracket stays.", "A line > with a bracket stays."),
], ids=["english", "indonesian", "filipino", "pesan-asli", "outlook", "bottom-posted",
        "no-quote"])
def test_quoted_previous_messages_are_trimmed_in_the_desks_languages(text: str,
                                                                     expected: str) -> None:
    assert trim_quotes(text) == expected


def test_signatures_are_trimmed_from_the_visible_text() -> None:
    assert trim_signature("Thanks\n\n-- \nRina\nACME") == "Thanks"
    assert trim_signature("Thanks\n\nDikirim dari iPhone saya") == "Thanks"
    assert trim_signature("A -- B stays") == "A -- B stays"
    mail = parse(raw("From: a@example.test",
                     "Done.\n\n-- \nRina\n\nOn Mon, Support wrote:\n> old\n"))
    assert mail.reply_text == "Done." and "old" in mail.text  # the whole text stays too


# -- talon's expectations (../shared/corpora/email/talon_quotes_signatures) ------------------


def _talon() -> tuple[Path, dict]:
    folder = shared_corpus("email", "talon_quotes_signatures")
    return folder, json.loads((folder / "expected.json").read_text("utf-8"))


def test_talon_standard_replies_keep_only_the_reply() -> None:
    folder, expected = _talon()
    cases = expected["standard_replies"]
    assert len(cases) >= 10
    for name, case in cases.items():
        mail = parse((folder / name).read_bytes())
        assert trim_quotes(mail.text) == case["expected_reply_text"], name


def test_talon_html_replies_keep_only_the_reply() -> None:
    folder, expected = _talon()
    for name, case in expected["html_replies"].items():
        text = html_to_text((folder / name).read_text("utf-8", errors="replace"))
        assert re.sub(r"\s", "", trim_quotes(text)) == case["expected_reply_text_nows"], name


def test_talon_reply_sharing_a_block_with_its_quote_keeps_no_from_line() -> None:
    folder, _ = _talon()
    whole = (folder / "fixtures/reply-quotations-share-block.eml").read_text("utf-8")
    reply = trim_quotes(parse(whole.encode()).text)
    assert reply.strip() and "From" not in reply
