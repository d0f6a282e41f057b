"""PostgreSQL: a new ticket's search document is written once, not twice.

A ticket opened with its first message (every submission, mail, messenger message) wrote its
document twice on PostgreSQL: the ticket's insert trigger inserted the number, subject and
contact, then the message's trigger updated the row with the text. The update is a second row
version of ``ticket_search``: a dead row for vacuum, every GIN entry of the document written
again, and 0020's words trigger run twice. SQLite fixed its own case in 0019 with a marker row
the service writes; here that mark would cost a round trip of its own, or leave a table of dead
rows behind concurrent submissions.

PostgreSQL can wait for the commit instead. The ticket's insert is now a deferred constraint
trigger (``AFTER INSERT ... DEFERRABLE INITIALLY DEFERRED``, ``PG_NEW_TICKET`` in 0011): as the
transaction commits it writes the ticket's document from its rows if nothing has written it by
then. A message whose ticket has no document writes the document whole from the rows, so the
service's ticket and first message write one row, and at commit the deferred trigger finds it
(one look-up of the primary key). Nothing in the service changes and no statement is added.

Whatever else writes tickets gets its document by the commit: a ticket inserted by hand or in
bulk without messages, several tickets in one transaction (each has its own deferred event); a
ticket whose subject or contact changes before the commit is written by the update's trigger as
before (the deferred one then finds it); one deleted or renumbered before the commit gets no
document under the old number (the trigger reads the ticket's row as it is at the commit).
``SET CONSTRAINTS ALL IMMEDIATE`` (or this trigger's name) makes the trigger write at the end of
each insert statement, as before this migration. A search inside the transaction that opened a
ticket without a message does not find it until the commit.

0020's words trigger runs on the document's one insert. ``bench/seed.py`` drops and makes these
triggers with ``DOCUMENT``. SQLite: nothing changes (0019's triggers). ``down`` puts 0019's
(for PostgreSQL, 0017's) triggers back.
"""

from importlib import import_module

SEARCH = import_module("core.migrations.0011_ticket_search")
BEFORE = import_module("core.migrations.0019_search_document_once").DOCUMENT
# The documents as they are kept from here on (bench/seed.py drops, makes and fills with it):
# SQLite's are 0019's, PostgreSQL's write a new ticket's document at its commit.
DOCUMENT = SEARCH.Document(notifications=False, waits=True, at_commit=True)


def up(migrator, db):
    if not SEARCH._sqlite(db):
        BEFORE.drop_triggers(db)
        DOCUMENT.create_triggers(db)


def down(migrator, db):
    if not SEARCH._sqlite(db):
        DOCUMENT.drop_triggers(db)
        BEFORE.create_triggers(db)
