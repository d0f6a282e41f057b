"""People a reply is copied to (an email's Cc), chosen by the agent among the ticket's participants.

Plain ``ALTER TABLE … ADD COLUMN`` with its default, on SQLite and PostgreSQL alike: the
migrator's ``add_column`` of a NOT NULL column rebuilds a SQLite table, which would drop
the full-text triggers 0005 put on ``message``.
"""


def up(migrator, db):
    db.execute_sql("ALTER TABLE message ADD COLUMN copy_to TEXT NOT NULL DEFAULT ''")


def down(migrator, db):
    db.execute_sql("ALTER TABLE message DROP COLUMN copy_to")
