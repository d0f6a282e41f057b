"""Real mail collected by other projects goes through the email channel's own way in intact.

Each file is handed to ``plugins.email_intake.ingest.ingest_raw`` as the MTA pipe
would hand it, so the product's parser, threading, loop and bounce checks and
``receive_message`` all run on mail nobody here wrote: odd encodings, broken MIME,
spam HTML, malware attachments, missing headers. The corpora live in
``../shared/corpora`` (see its README); without that folder the tests skip.

Decoded attachments are only ever bytes handed to ``Storage``: nothing here opens,
unpacks or runs them.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from core.attachments import Storage
from core.models import Attachment, Contact, Message, Ticket
from core.sanitize import clean_html
from core.services.tickets import SUBJECT_MAX
from core.state import loket
from plugins.email_intake import ingest
from plugins.email_intake.failed import FailedMail
from plugins.email_intake.ingest import Ingested, ingest_raw
from plugins.email_intake.parse import ParsedMail, html_to_text, parse

from .conftest import shared_corpus

# What became of a mail that is no ticket message: kept in the failed-mail list.
MACHINE_OUTCOMES = {"bounce", "auto_reply"}


@dataclass
class Delivery:
    name: str
    mail: ParsedMail
    result: Ingested
    files: list[tuple[str, bytes]]  # the files the mail carries, winmail.dat opened


def normalised(text: str) -> str:
    return " ".join((text or "").split())


def feed(paths: list[Path]) -> tuple[list[Delivery], dict[str, str]]:
    """Ingest every file by the pipe's path; a crash or a mail not kept is recorded."""
    deliveries: list[Delivery] = []
    problems: dict[str, str] = {}
    for path in paths:
        raw = path.read_bytes()
        mail = parse(raw)
        result = ingest_raw(raw, via="pipe")
        if not result.stored or result.outcome in ("failed_mail", "tempfail"):
            problems[path.name] = f"{result.outcome}: {result.reason}"
            continue
        files = [f for item in mail.files for f in ingest._unpacked(item)]
        deliveries.append(Delivery(path.name, mail, result, files))
    return deliveries, problems


def message_of(delivery: Delivery) -> Message:
    return (Message.select().where((Message.channel == "email")
                                   & (Message.external_id == delivery.mail.external_id)).get())


# -- Checking what the desk kept ---------------------------------------------------------------


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def unsafe_markup(body_html: str) -> list[str]:
    """What of scripts, handlers, javascript: links and remote images survived; [] if none."""
    found = [needle for needle in ("<script", "<img") if needle in body_html.lower()]
    parser = _Markup()
    parser.feed(body_html)
    parser.close()
    for tag, attrs in parser.tags:
        if tag in ("script", "img", "iframe", "object", "embed", "style"):
            found.append(f"<{tag}>")
        for name, value in attrs:
            if name.lower().startswith("on"):
                found.append(f"<{tag} {name}=>")
            squashed = re.sub(r"[\x00-\x20]+", "", html_lib.unescape(value or "")).lower()
            if squashed.startswith(("javascript:", "vbscript:", "data:")):
                found.append(f"<{tag} {name}={value!r}>")
    if re.search(r"<[^>]*\son[a-z]+\s*=", body_html, re.IGNORECASE):
        found.append("on*= inside a tag")
    return found


def check_django_helpdesk(deliveries: list[Delivery], expected: dict[str, Any]) -> None:
    """Title and body as django-helpdesk's own tests expect them (their semantics noted)."""
    by_name = {d.name: d for d in deliveries}
    assert set(expected) <= set(by_name), "expected.json names a file that is not in emails/"
    for name, exp in expected.items():
        delivery = by_name[name]
        ticket = Ticket.get_by_id(delivery.result.ticket_number)
        message = message_of(delivery)
        # django-helpdesk cuts titles at 200 characters plus "..."; core keeps SUBJECT_MAX.
        full_subject = exp.get("subject_full", exp["title"])
        assert ticket.subject == full_subject[:SUBJECT_MAX].strip(), name
        assert ticket.subject.startswith(exp["title"].removesuffix("...")), name
        body = normalised(message.body_text)
        shown = normalised(f"{message.body_text}\n{html_to_text(message.body_html)}")
        if "description" in exp:
            if exp["description"]:
                assert normalised(exp["description"]) in body, name
            else:
                assert body == "", name
        for snippet in exp.get("description_contains", []) + exp.get(
                "forwarded_part_contains", []):
            # utf-nondecodable.eml says it only in its HTML alternative: body_html counts.
            assert normalised(snippet) in shown, (name, snippet)
        if "html_attachment_contains" in exp:
            # django-helpdesk keeps the HTML alternative as a file; core keeps it as body_html.
            wanted = normalised(html_to_text(clean_html(exp["html_attachment_contains"])))
            assert wanted in normalised(html_to_text(message.body_html)), name
        if "attachment_starts_with" in exp:
            rows = list(Attachment.select().where(Attachment.message == message.id))
            storage = Storage(loket().config["attachments_path"])
            starts = []
            for row in rows:
                with storage.open(row.sha256) as fh:
                    starts.append(fh.read(len(exp["attachment_starts_with"])))
            assert exp["attachment_starts_with"].encode() in starts, name
            for wanted_name in exp.get("attachment_filenames", []):
                # django-helpdesk prefixes "part-N_"; the mail itself says "signature.asc".
                suffix = wanted_name.split("_", 1)[-1]
                assert any(row.filename.endswith(suffix) for row in rows), (name, wanted_name)


def check_mailparser(deliveries: list[Delivery], expected: dict[str, Any]) -> None:
    """mail-parser's counts include inline parts, as ours do: each one stored or refused."""
    by_name = {d.name: d for d in deliveries}
    assert set(expected) <= set(by_name), "expected.json names a file that is not in mails/"
    for name, exp in expected.items():
        delivery = by_name[name]
        mail = delivery.mail
        if "attachments_count" in exp:
            assert len(mail.files) == exp["attachments_count"], (name, mail.files)
        for defect in exp.get("defects", []) + exp.get("defects_include", []):
            assert defect in mail.defects, (name, defect, mail.defects)
        if delivery.result.outcome in MACHINE_OUTCOMES:  # a bounce: checked in the failed list
            row = FailedMail.get(FailedMail.message_id == mail.external_id)
            assert row.sender == mail.sender and bytes(row.raw) == mail.raw, name
            continue
        ticket = Ticket.get_by_id(delivery.result.ticket_number)
        if "from_email" in exp:
            assert mail.sender == exp["from_email"], name
            assert Contact.get_by_id(ticket.contact_id).email == exp["from_email"], name
        if "subject" in exp:
            assert ticket.subject == exp["subject"], name
        if "message_id" in exp:
            assert message_of(delivery).external_id == exp["message_id"], name


@pytest.fixture
def mail_ctx(make_app: Any) -> Any:
    """A desk with the email channel on, inside an app context with a connection."""
    from core import db

    app = make_app(plugins=["email_intake"])
    with app.app_context(), db.connection():
        yield app


CORPORA = [
    pytest.param(("email", "cpython_email", "data"), None, None, id="cpython_email"),
    pytest.param(("email", "django_helpdesk_mail", "emails"), "expected.json",
                 check_django_helpdesk, id="django_helpdesk_mail"),
    pytest.param(("email", "mailparser_spamscope", "mails"), "expected.json",
                 check_mailparser, id="mailparser_spamscope"),
]


@pytest.mark.parametrize("parts, expected_file, check", CORPORA)
def test_real_mail_is_received_once_and_safely(mail_ctx, parts, expected_file, check):
    folder = shared_corpus(*parts)
    paths = sorted(p for p in folder.iterdir() if p.is_file())
    assert paths, f"{folder} holds no mail"

    deliveries, problems = feed(paths)
    assert not problems, "mail not kept as a message:\n" + "\n".join(
        f"  {name}: {error}" for name, error in problems.items())

    # Every file is one message (a new ticket, or a duplicate of an earlier file's
    # Message-ID), or a machine's mail kept in the failed-mail list (a bounce in a corpus).
    seen: set[str] = set()
    for delivery in deliveries:
        outcome = delivery.result.outcome
        if outcome in MACHINE_OUTCOMES:
            assert delivery.result.ticket_number is None, delivery.name
            continue
        key = delivery.mail.external_id
        assert outcome == ("duplicate" if key in seen else "new_ticket"), delivery.name
        assert message_of(delivery).ticket_id == delivery.result.ticket_number
        seen.add(key)
    customer = Message.select().where(Message.author_kind == "contact")
    assert customer.count() == len(seen) == Ticket.select().count()
    assert {m.external_id for m in customer} == seen
    machine = [d for d in deliveries if d.result.outcome in MACHINE_OUTCOMES]
    assert FailedMail.select().count() == len({d.mail.external_id for d in machine})

    # Nothing lost: every file is on its message, or named in the system's note on it.
    storage = Storage(loket().config["attachments_path"])
    for delivery in deliveries:
        if delivery.result.outcome != "new_ticket":
            continue
        message = message_of(delivery)
        rows = list(Attachment.select().where(Attachment.message == message.id))
        notes = " ".join(m.body_text for m in Message.select().where(
            (Message.ticket == message.ticket_id) & Message.is_internal))
        refused = [name for name, data in delivery.files
                   if f"{name} ({len(data)} bytes): " in notes]
        assert len(rows) + len(refused) == len(delivery.files), delivery.name
        sent = {hashlib.sha256(data).hexdigest(): len(data) for _, data in delivery.files}
        for row in rows:
            assert sent.get(row.sha256) == row.size, delivery.name
            assert storage.path_for(row.sha256).stat().st_size == row.size

    # What an agent's browser will render carries no script, handler or tracking image.
    for message in Message.select():
        assert unsafe_markup(message.body_html) == [], message.external_id

    if check is not None:
        check(deliveries, json.loads((folder.parent / expected_file).read_text("utf-8")))

    # The same deliveries again (a re-fetched mailbox) write nothing.
    models = (Message, Ticket, Attachment, Contact, FailedMail)
    counts = [Model.select().count() for Model in models]
    again, problems = feed(paths)
    assert not problems, problems
    assert all(d.result.outcome in {"duplicate"} | MACHINE_OUTCOMES for d in again), [
        d.name for d in again if d.result.outcome not in {"duplicate"} | MACHINE_OUTCOMES]
    assert [Model.select().count() for Model in models] == counts
