"""Three indexes that longer ones cover are dropped: fewer index writes for every new ticket.

peewee made an index for every foreign key (0001), and later migrations and models added a
longer one that starts with the same column:

* ``ticket_contact_id`` (contact_id), covered by ``ticket_contact_id_created_at``;
* ``message_ticket_id`` (ticket_id), covered by ``message_ticket_id_created_at``;
* ``ticketevent_ticket_id`` (ticket_id), covered by ``ticketevent_ticket_id_created_at``.

Every query that looked rows up by the shorter one finds them by the longer one's leading
column (``tests/test_inbox_plans.py`` asks both databases, on a seeded desk, for each
statement that reads a ticket's messages or events or a contact's tickets, and for the
search triggers' reads), and the foreign keys' checks and cascades use the longer one as
well. A submission writes a ticket, its first message and an audit row, so each of the
three was one more b-tree insert (a page read and written) in every new ticket's
transaction, under SQLite's single writer.

What it costs: on SQLite a ticket's messages in id order (the search document's rebuild,
a chat's thread) come from the longer index sorted, a handful of rows; the threads the
help center, the console and the API show are in (created_at, id) order, which the longer
index gives as it is.
"""

# (dropped index, table, column): each is covered by "<index>_created_at".
DROPPED = (("ticket_contact_id", "ticket", "contact_id"),
           ("message_ticket_id", "message", "ticket_id"),
           ("ticketevent_ticket_id", "ticket_event", "ticket_id"))


def up(migrator, db):
    for name, _table, _column in DROPPED:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


def down(migrator, db):
    for name, table, column in DROPPED:
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")')
