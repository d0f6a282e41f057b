"""``loket email ingest``: one raw message on stdin, for an MTA's pipe (sysexits codes)."""

from __future__ import annotations

import sys

import click

EX_OK = 0
EX_DATAERR = 65  # permanently refused: an empty input is no mail
EX_TEMPFAIL = 75  # not stored: the MTA keeps the mail and tries again


@click.group("email")
def email_group() -> None:
    """Mail in: the MTA pipe (ingest) and IMAP mailboxes (mailboxes, fetch)."""


@email_group.command("ingest")
def ingest_command() -> None:
    """Read one raw message on stdin and keep it; exit 75 when it could not be stored."""
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
