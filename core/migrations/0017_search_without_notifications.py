"""The search documents hold what people wrote, not the desk's own notifications.

A notification is a message the desk writes to the customer from a template (the
acknowledgement of a new ticket, the mail that carries an agent's reply, a chat transcript;
``message.notification`` names it). 0011's documents held their text too, which cost twice:

* every ticket's document held the acknowledgement's words, the same in every ticket
  ("received", "request", the desk's name), so those words matched nearly every ticket;
  a reply's notification repeated the reply's text, a transcript the whole chat;
* each one rewrote the ticket's document. FTS5 updates a row by removing every word of the
  old row and adding every word of the new, so a mail that opens a ticket (the ticket, its
  message, then its acknowledgement) tokenized the message's text three times, not once.

The triggers now leave a notification out (added, edited, deleted: its ticket's document
does not change; one that becomes, or stops being, a notification rebuilds it), the
document function and the bulk fill read only the other messages, and the documents of the
tickets that have a notification are made again, in batches with progress on stderr.
Definitions: ``Document`` in 0011, with ``notifications=False``. ``down`` puts 0011's back.
"""

from __future__ import annotations

import sys
import time
from importlib import import_module

SEARCH = import_module("core.migrations.0011_ticket_search")
# The documents as they are kept from here on (bench/seed.py fills with it too).
DOCUMENT = SEARCH.Document(notifications=False)


def _switch(db, old, new, progress=sys.stderr):
    old.drop_triggers(db)
    new.create_triggers(db)
    (low, high) = db.execute_sql("SELECT MIN(id), MAX(id) FROM ticket").fetchone()
    if low is None:
        return
    started, batch = time.monotonic(), SEARCH.FILL_BATCH
    for first in range(low, high + 1, batch):
        new.rebuild(db, first, min(first + batch - 1, high))
        if high - low >= batch:
            print(f"\rticket_search without notifications: "
                  f"{min(first + batch - 1, high) - low + 1:,} / {high - low + 1:,} "
                  f"({time.monotonic() - started:.0f} s)", end="", file=progress, flush=True)
    if high - low >= batch:
        print(file=progress)


def up(migrator, db):
    _switch(db, SEARCH.DOCUMENT, DOCUMENT)


def down(migrator, db):
    _switch(db, DOCUMENT, SEARCH.DOCUMENT)
