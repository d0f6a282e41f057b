"""``loket email ingest``: one raw message on stdin for an MTA's pipe, or the mails in files
(one a file, a maildir, an mbox) written in batches; sysexits codes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

EX_OK = 0
EX_DATAERR = 65  # permanently refused: an empty input is no mail
EX_TEMPFAIL = 75  # not stored: the MTA keeps the mail and tries again


@click.group("email")
def email_group() -> None:
    """Mail in: the MTA pipe (ingest) and IMAP mailboxes (mailboxes, fetch)."""


@email_group.command("ingest")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--remove", is_flag=True,
              help="Delete each file once every mail in it is stored (a maildir read as a "
                   "queue); a file with a mail not stored stays.")
def ingest_command(paths: tuple[Path, ...], remove: bool) -> None:
    """Keep one raw message from stdin, or every mail in PATHS; exit 75 when one was not
    stored.

    A PATH is a file holding one mail or an mbox, a maildir (its new/ and cur/), or a
    folder of mail files. Their mails are written in batches, each mail failing alone,
    one line each on standard output. Running it again on the same files stores
    nothing twice (they come back as duplicates).
    """
    if paths:
        sys.exit(_ingest_paths(list(paths), remove))
    from .ingest import ingest_raw

    raw = sys.stdin.buffer.read()
    if not raw.strip():
        click.echo("loket email ingest: empty input, no message", err=True)
        sys.exit(EX_DATAERR)
    try:
        result = ingest_raw(raw, via="pipe")
    except Exception as exc:  # an app that cannot start: still a temporary failure for the MTA
        click.echo(f"loket email ingest: not stored: {' '.join(str(exc).split())[:200]}",
                   err=True)
        sys.exit(EX_TEMPFAIL)
    if not result.stored:
        click.echo(f"loket email ingest: not stored: {result.reason}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(f"{result.outcome} {result.ticket_number or ''}".strip())


def _ingest_paths(paths: list[Path], remove: bool) -> int:
    """The mails under ``paths`` through ``ingest_batch``; the exit code (75 over 65 over 0).

    A file is deleted (``remove``) only after every mail it holds is committed: a
    process killed before that leaves it, and the next run finds its mails stored.
    """
    from . import spool
    from .ingest import ingest_batch

    codes = {EX_OK}
    outcomes: dict[str, int] = {}
    # Per file: whether each of its mails so far is stored; settled once read whole.
    files: dict[Path, bool] = {}

    def settle(reading: Path | None) -> None:
        for file in [f for f in files if f != reading]:
            if files.pop(file) and remove:
                why = spool.remove(file)
                if why:
                    click.echo(f"{file}: stored, not deleted: {why}", err=True)

    last: Path | None = None
    for chunk in spool.chunks(spool.spooled(paths)):
        ready = []
        for item in chunk:
            files[item.file] = files.get(item.file, True)
            if item.error:
                click.echo(f"{item.label}: not read: {item.error}", err=True)
                files[item.file] = False
                codes.add(EX_TEMPFAIL)
            elif not item.raw.strip():
                click.echo(f"{item.label}: empty, no message", err=True)
                files[item.file] = False
                codes.add(EX_DATAERR)
            else:
                ready.append(item)
        try:
            results = ingest_batch([item.raw for item in ready], via="pipe")
        except Exception as exc:  # the desk itself failed (it cannot start, say): stop here
            click.echo(f"loket email ingest: not stored, stopped at {chunk[0].label}: "
                       f"{' '.join(str(exc).split())[:200]}", err=True)
            return EX_TEMPFAIL
        for item, result in zip(ready, results, strict=True):
            if result.stored:
                outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
                click.echo(f"{item.label}: {result.outcome} {result.ticket_number or ''}".rstrip())
            else:
                click.echo(f"{item.label}: not stored: {result.reason}", err=True)
                files[item.file] = False
                codes.add(EX_TEMPFAIL)
        last = chunk[-1].file
        settle(last)  # the chunk's last file may hold more mails in the next chunk
    settle(None)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    click.echo(f"loket email ingest: {sum(outcomes.values())} stored"
               + (f" ({summary})" if summary else ""), err=True)
    return max(codes)
