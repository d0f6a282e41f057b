"""``loket kb``: the knowledge base's maintenance commands."""

from __future__ import annotations

import click

from .library import settings


@click.group("kb")
def kb() -> None:
    """Knowledge base maintenance."""


@kb.command("prune")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Keep this many days (default: LOKET_KNOWLEDGE_BASE_HISTORY_DAYS).")
@click.option("--batch", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Rows deleted per transaction.")
def prune_command(days: int | None, batch: int) -> None:
    """Delete searches, article views and suggestion records older than the days kept."""
    from .retention import prune

    days = days if days is not None else settings()["history_days"]
    if not days:
        click.echo("History is kept for ever (LOKET_KNOWLEDGE_BASE_HISTORY_DAYS=0); "
                   "nothing deleted.")
        return

    def progress(name: str, deleted: int) -> None:
        click.echo(f"  {name}: {deleted:,} deleted…", err=True)

    deleted = prune(days, batch=batch, progress=progress)
    summary = ", ".join(f"{name} {count:,}" for name, count in deleted.items())
    click.echo(f"Kept the last {days} days; deleted {summary}.")
