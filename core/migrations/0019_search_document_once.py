"""SQLite: a new ticket's search document is written once, with its first message.

A ticket opened with its first message (every submission, mail, messenger message) wrote its
document twice: the ticket's insert trigger wrote the number, subject and contact, then the
message's trigger appended the text. FTS5 updates a row by deleting it and inserting it
again, and a delete of the row it has just been given makes it write out what it holds
first: two segments a submission, two documents' words tokenized, more pages under the
write lock and more for its merges and the checkpoint to copy.

Now the service marks the write of a ticket and its first message with a row in
``ticket_search_pending`` (inserted and deleted inside that transaction: no other
connection ever sees it). While it is there the ticket's trigger writes no document, and a
message whose ticket has no document writes it whole from the rows. Every other write is
kept as before (0017's triggers): a ticket inserted by any other path (a bulk load, SQL by
hand, a test) gets its document at once, and a message added to such a ticket appends.
A message of a ticket without a document, however it came to be, writes the document.

PostgreSQL is left as it is (its ticket's trigger inserts the row, the first message's
updates it): the mark would be a round trip of its own there, or a table of dead rows under
concurrent submissions; not measured. (0024 does it there another way: at the commit.)
Definitions: ``Document`` in 0011 (``waits=True``). ``down`` puts 0017's triggers back.
"""

from importlib import import_module

from peewee import SqliteDatabase

SEARCH = import_module("core.migrations.0011_ticket_search")
BEFORE = import_module("core.migrations.0017_search_without_notifications").DOCUMENT
# The documents as they are kept from here on (bench/seed.py fills with it too).
DOCUMENT = SEARCH.Document(notifications=False, waits=True)
PENDING = "ticket_search_pending"


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        db.execute_sql(f"CREATE TABLE IF NOT EXISTS {PENDING} (id INTEGER NOT NULL PRIMARY KEY)")
        BEFORE.drop_triggers(db)
        DOCUMENT.create_triggers(db)


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        DOCUMENT.drop_triggers(db)
        BEFORE.create_triggers(db)
        db.execute_sql(f"DROP TABLE IF EXISTS {PENDING}")
