"""``loket email ingest PATH...``: mails in files (a folder, a maildir, an mbox) in batches."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import peewee
import pytest

from core import db
from core.models import AuthorKind, Message, Ticket
from core.services import tickets
from plugins.email_intake import ingest as ingest_module
from plugins.email_intake import spool
from plugins.email_intake.cli import email_group
from plugins.email_intake.failed import FailedMail
from tests.processes import desk_env
from tests.test_email_ingest import break_the_write, count_write_batches, desk, mail, mail_app  # noqa: F401, F811 (fixtures)
from tests.test_email_out import smtp  # noqa: F401 (the fixture)


def customer_messages() -> list[Message]:
    return list(Message.select().where(Message.author_kind == AuthorKind.CONTACT)
                .order_by(Message.id))


def ingest(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(email_group, ["ingest", *args])


def maildir(root: Path, mails: dict[str, bytes], folder: str = "new") -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, raw in mails.items():
        (root / folder / name).write_bytes(raw)
    return root


def mbox(path: Path, mails: list[bytes]) -> Path:
    path.write_bytes(b"".join(b"From customer@example.test Mon Mar  2 10:00:00 2026\n"
                              + raw.replace(b"\r\n", b"\n") + b"\n" for raw in mails))
    return path


def test_a_folder_a_maildir_and_an_mbox_are_stored_once_each_mail_a_line(
        mail_app: Any, desk: Any, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "1.eml").write_bytes(mail(sender="ayu@example.test", subject="Folder one",
                                        message_id="<f1@example.test>"))
    (folder / ".half-written").write_bytes(b"From: x\n")  # a dot-file: not a mail yet
    box = maildir(tmp_path / "Maildir", {
        "100.a": mail(sender="budi@example.test", subject="Maildir new",
                      message_id="<m1@example.test>")})
    (box / "tmp" / "200.b").write_bytes(mail(subject="Still being delivered"))
    (box / "cur" / "150.c:2,S").write_bytes(mail(
        subject="Re: Folder one", text="More detail.", sender="ayu@example.test",
        message_id="<m2@example.test>", headers={"In-Reply-To": "<f1@example.test>"}))
    archive = mbox(tmp_path / "export.mbox", [
        mail(sender="sari@example.test", subject="Mbox one", message_id="<x1@example.test>"),
        mail(sender="tono@example.test", subject="Mbox two", message_id=None)])

    result = ingest(mail_app, str(folder), str(box), str(archive))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines()]
    assert [line.rsplit(":", 1)[-1].split()[0] for line in lines] == [
        "new_ticket", "new_ticket", "reply", "new_ticket", "new_ticket"]
    assert lines[0].startswith(f"{folder / '1.eml'}: new_ticket ")
    assert lines[3].startswith(f"{archive}#1: new_ticket ")
    assert sorted(t.subject for t in Ticket.select()) == [
        "Folder one", "Maildir new", "Mbox one", "Mbox two"]
    (reply,) = [m for m in customer_messages() if m.external_id == "<m2@example.test>"]
    assert Ticket.get_by_id(reply.ticket_id).subject == "Folder one"

    again = ingest(mail_app, str(folder), str(box), str(archive))
    assert again.exit_code == 0, again.output
    assert [line.split()[-2] for line in again.stdout.splitlines()] == ["duplicate"] * 5
    assert len(customer_messages()) == 5


def test_remove_deletes_a_file_only_once_all_its_mails_are_stored(
        mail_app: Any, desk: Any, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    box = maildir(tmp_path / "Maildir", {
        "1": mail(sender="ayu@example.test", subject="Before"),
        "2": mail(sender="eko@example.test", subject="The database refuses this one"),
        "3": mail(sender="dian@example.test", subject="After"),
        "4": b"\n\n"})
    real = tickets._create_ticket

    def refusing(opening: Any, **kwargs: Any) -> Any:
        if opening.subject == "The database refuses this one":
            raise peewee.OperationalError("database is locked")
        return real(opening, **kwargs)

    monkeypatch.setattr(tickets, "_create_ticket", refusing)
    result = ingest(mail_app, "--remove", str(box))
    # Not stored: the exit code asks for another run, and the file stays for it.
    assert result.exit_code == 75, result.output
    assert f"{box / 'new' / '2'}: not stored: database unavailable" in result.stderr
    assert f"{box / 'new' / '4'}: empty, no message" in result.stderr
    assert sorted(p.name for p in (box / "new").iterdir()) == ["2", "4"]
    assert sorted(t.subject for t in Ticket.select()) == ["After", "Before"]
    assert not FailedMail.select().exists()

    monkeypatch.setattr(tickets, "_create_ticket", real)
    (box / "new" / "4").unlink()
    result = ingest(mail_app, "--remove", str(box))
    assert result.exit_code == 0, result.output
    assert not list((box / "new").iterdir())
    assert sorted(t.subject for t in Ticket.select()) == [
        "After", "Before", "The database refuses this one"]


def test_a_mail_that_fails_in_a_batch_of_files_is_kept_aside_and_the_rest_stored(
        mail_app: Any, desk: Any, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    break_the_write(monkeypatch)
    archive = mbox(tmp_path / "in.mbox", [
        mail(sender="ayu@example.test", subject="Before"),
        mail(sender="eko@example.test", subject="Breaks the write"),
        mail(sender="dian@example.test", subject="After")])
    result = ingest(mail_app, "--remove", str(archive))
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.stdout.splitlines()] == [
        "new_ticket", "failed_mail", "new_ticket"]
    assert sorted(t.subject for t in Ticket.select()) == ["After", "Before"]
    (kept,) = FailedMail.select()
    assert kept.subject == "Breaks the write" and kept.via == "pipe"
    assert not archive.exists()  # every mail in it is kept: as a message or a failed mail


def test_mails_are_read_in_chunks_and_written_in_batches(
        mail_app: Any, desk: Any, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "CHUNK_MAILS", 3)
    monkeypatch.setattr(ingest_module, "WRITE_BATCH", 2)
    sizes = count_write_batches(monkeypatch)
    folder = tmp_path / "drop"
    folder.mkdir()
    for n in range(7):
        (folder / f"{n:02}.eml").write_bytes(
            mail(sender=f"c{n}@example.test", subject=f"Question {n}"))
    result = ingest(mail_app, str(folder))
    assert result.exit_code == 0, result.output
    assert sizes == [2, 1, 2, 1, 1]  # chunks of 3, 3 and 1; transactions of at most 2
    assert Ticket.select().count() == 7


def test_chunks_keep_order_and_hold_a_large_mail_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "CHUNK_BYTES", 10)
    items = [spool.SpooledMail(str(n), b"x" * size, Path(str(n)))
             for n, size in enumerate([4, 4, 30, 1, 1])]
    assert [[i.label for i in chunk] for chunk in spool.chunks(iter(items))] == [
        ["0", "1"], ["2"], ["3", "4"]]


def test_a_maildir_with_new_alone_is_read_as_a_maildir(tmp_path: Path) -> None:
    (tmp_path / "box" / "new").mkdir(parents=True)
    (tmp_path / "box" / "new" / "1").write_bytes(b"Subject: hi\n\nhello\n")
    (tmp_path / "box" / "stray").write_bytes(b"not in the maildir's folders")
    assert spool.mail_files(tmp_path / "box") == [tmp_path / "box" / "new" / "1"]


def test_a_path_that_cannot_be_read_is_named_and_asks_for_another_run(
        mail_app: Any, desk: Any, tmp_path: Path) -> None:  # noqa: F811
    good = tmp_path / "good.eml"
    good.write_bytes(mail(subject="Readable"))
    result = ingest(mail_app, str(tmp_path / "missing"), str(good))
    assert result.exit_code == 75
    assert f"{tmp_path / 'missing'}: not read: FileNotFoundError" in result.stderr
    assert [t.subject for t in Ticket.select()] == ["Readable"]


def test_a_killed_loket_email_ingest_loses_and_doubles_nothing(
        make_app: Any, db_url: str, tmp_path: Path) -> None:
    """SIGKILL while a maildir is read as a queue: every file deleted has its mail
    committed; the next run stores the rest, each mail once."""
    app = make_app(plugins=["email_intake"])
    env = desk_env(app.extensions["loket"], db_url, LOKET_PLUGINS="email_intake")
    count = 700  # chunks of 200, 200, 200, 100
    box = maildir(tmp_path / "Maildir", {
        f"{n:04}": mail(sender=f"c{n % 40}@example.test", subject=f"Question {n}",
                        message_id=f"<kill-{n}@example.test>") for n in range(count)})
    command = [str(Path(sys.executable).parent / "loket"), "email", "ingest", "--remove",
               str(box)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        # Past the first chunk: its files are deleted (the last one aside) before the
        # second chunk's lines; the kill lands somewhere in the second chunk or later.
        for _line in range(spool.CHUNK_MAILS + 1):
            assert process.stdout.readline(), "the command ended early"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    left = {p.name for p in (box / "new").iterdir()}
    with app.app_context(), db.connection():
        stored = {m.external_id for m in customer_messages()}
    removed = {f"{n:04}" for n in range(count)} - left
    assert removed and all(f"<kill-{int(name)}@example.test>" in stored for name in removed)

    done = subprocess.run(command, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not list((box / "new").iterdir())
    with app.app_context(), db.connection():
        ids = [m.external_id for m in customer_messages()]
    assert sorted(ids) == sorted(f"<kill-{n}@example.test>" for n in range(count))
