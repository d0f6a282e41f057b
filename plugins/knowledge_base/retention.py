"""Forgetting old visitor history: searches, article views, suggestions shown, visitors' tickets.

Kept ``history_days`` (a setting; 0 keeps everything), deleted in batches so that no
single transaction holds SQLite's write lock for long. Votes stay: they are the
article's rating, and one per visitor only because the row is kept. The reports then
cover the days kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from core import db

from .models import Search, SuggestionShown, View, VisitorTicket, utcnow

# Oldest first; each table's created_at is the moment the visitor did it.
TABLES = (("searches", Search), ("article views", View), ("suggestions shown", SuggestionShown),
          ("visitors' tickets", VisitorTicket))
BATCH = 2000


def prune(days: int, *, now: dt.datetime | None = None, batch: int = BATCH,
          progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Delete the rows older than ``days`` from each history table; returns counts by name.

    ``progress(name, deleted so far)`` is called after every batch.
    """
    deleted = {name: 0 for name, _ in TABLES}
    if days <= 0:
        return deleted
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    for name, model in TABLES:
        while True:
            with db.write_transaction():
                # By id through a sub-select: peewee's DELETE has no LIMIT on PostgreSQL.
                oldest = (model.select(model.id).where(model.created_at < cutoff)
                          .order_by(model.id).limit(batch))
                count = model.delete().where(model.id.in_(oldest)).execute()
            deleted[name] += count
            if progress is not None and count:
                progress(name, deleted[name])
            if count < batch:
                break
    return deleted
