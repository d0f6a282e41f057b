"""``loket email mailboxes`` and ``loket email fetch``: mailboxes from the command line."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from .mailboxes import Mailbox


def add_mailbox_commands(group: click.Group) -> None:
    """Put ``mailboxes`` and ``fetch`` in the plugin's ``loket email`` group."""
    for command in (mailboxes, fetch):
        if command.name not in group.commands:
            group.add_command(command)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


@click.command("mailboxes")
def mailboxes() -> None:
    """List the mailboxes with their fetch state and last error."""
    rows = list(Mailbox.select().order_by(Mailbox.name))
    if not rows:
        click.echo("No mailboxes. Add one in the console: Mailboxes.")
        return
    for box in rows:
        state = ("not read yet" if box.uidvalidity is None
                 else f"UIDVALIDITY {box.uidvalidity}, last UID {box.last_uid}")
        click.echo(f"{box.name} <{box.address}> {'enabled' if box.enabled else 'disabled'}: "
                   f"{box.imap_user}@{box.imap_host}:{box.port} ({box.imap_security}) "
                   f"{box.folder}, then {box.after_ingest}"
                   + (f" to {box.move_to}" if box.after_ingest == "move" else ""))
        click.echo(f"  {state}; {box.fetched} stored; last success {_when(box.last_success_at)}"
                   + (f"; read by {box.lease_owner}" if box.lease_owner else ""))
        if box.last_error:
            click.echo(f"  last error ({box.failures} in a row, {_when(box.last_error_at)}): "
                       f"{' '.join(box.last_error.split())[:300]}")


def _progress(name: str, done: int, found: int) -> None:
    if found:
        click.echo(f"{name}: {done}/{found} stored", err=True)


@click.command("fetch")
@click.option("--mailbox", "names", multiple=True, metavar="NAME",
              help="Only this mailbox (repeat for more); default: every enabled one.")
@click.option("--once", is_flag=True,
              help="One pass: fetch what is new, then exit (non-zero if a mailbox failed).")
def fetch(names: tuple[str, ...], once: bool) -> None:
    """Fetch new mail into tickets now, or keep reading (IDLE or polling) until stopped."""
    from flask import current_app

    from .imap import Fetcher, LeaseLost, describe_error

    query = Mailbox.select().order_by(Mailbox.name)
    if names:
        query = query.where(Mailbox.name.in_(list(names)))
        missing = sorted(set(names) - {box.name for box in query})
        if missing:
            raise click.ClickException(f"no mailbox named {', '.join(missing)}")
    else:
        query = query.where(Mailbox.enabled == True)  # noqa: E712
    boxes = list(query)
    if not boxes:
        raise click.ClickException("no enabled mailbox to fetch")
    if once:
        failed = 0
        for box in boxes:
            try:
                result = Fetcher(box.id, progress=_progress).fetch_once()
            except LeaseLost as exc:
                click.echo(f"{box.name}: skipped: {exc}", err=True)
                failed += 1
                continue
            except Exception as exc:
                click.echo(f"{box.name}: failed: {describe_error(exc)}", err=True)
                failed += 1
                continue
            summary = ", ".join(f"{n} {k}" for k, n in sorted((result.outcomes or {}).items()))
            click.echo(f"{box.name}: {result.stored} of {result.found} new message(s) stored"
                       + (f" ({summary})" if summary else ""))
        if failed:
            raise SystemExit(1)
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def read(mailbox_id: int) -> None:
        with app.app_context():
            Fetcher(mailbox_id, progress=_progress).run(stop)

    threads = [threading.Thread(target=read, args=(box.id,), name=f"mailbox-{box.id}")
               for box in boxes]
    for thread in threads:
        thread.start()
    click.echo(f"Reading {', '.join(box.name for box in boxes)}; Ctrl-C stops.", err=True)
    try:
        while any(thread.is_alive() for thread in threads):
            stop.wait(1.0)
            if stop.is_set():
                break
    except KeyboardInterrupt:
        pass
    stop.set()
    for thread in threads:
        thread.join(30)
