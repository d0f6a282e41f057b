"""The "late" mark (migration 0027): which active tickets are past their due time, kept.

``Ticket.late`` is true only if the ticket's due time has passed: a trigger clears it when the
due time changes, and only ``mark`` sets it. The inbox lists the same tickets whether or not
the mark is current (``access.on_time_terms``); the mark only spares a page the walk past the
tickets that fell due since the job last ran.
"""

from __future__ import annotations

import datetime as dt

from .. import db
from ..models import Ticket, utcnow
from .access import active, marked_late

# Tickets marked a transaction, and the most transactions a run: a run marks up to 400,000
# tickets (0027 marks those already due when it runs, 392,876 at a million seeded tickets;
# a desk whose worker was down for long has many to mark); the next run marks any left.
BATCH = 1000
MOST_BATCHES = 400


def mark(now: dt.datetime | None = None, batch: int = BATCH, batches: int = MOST_BATCHES) -> int:
    """Mark late the active tickets whose due time has passed at ``now`` (naive UTC) and that
    are not marked yet; returns how many were marked.

    Each batch is one statement and one transaction, found by the due-time index of the
    unmarked active tickets (``ticket_active_fresh_due``), soonest due first. It writes
    ``late`` alone: ``updated_at`` stays, and no trigger of the ticket's fires. Safe to run
    twice at once or to kill: the update tests its conditions again on each row it writes
    (on PostgreSQL, on the row as another run or an edit of the due time left it), and a
    batch commits whole or not at all.
    """
    due = Ticket.due_at.db_value(now or utcnow())
    total = 0
    for _ in range(max(batches, 1)):
        with db.database.atomic():
            marked = _mark_batch(due, batch)
        total += marked
        if marked < batch:
            break
    return total


def _mark_batch(due: dt.datetime, batch: int) -> int:
    unmarked = active() & marked_late(False) & (Ticket.due_at < due)
    soonest = (Ticket.select(Ticket.id).where(unmarked)
               .order_by(Ticket.due_at, Ticket.id).limit(batch))
    return int(Ticket.update(late=True).where(Ticket.id.in_(soonest) & unmarked).execute())
