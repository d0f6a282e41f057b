"""Inbox indexes and full-text search: every inbox view reads one ordered index range.

The inbox lists active tickets (new, open, pending, on hold) newest first, narrowed by one
filter. ``status IN (four values)`` over a ``(status, updated_at)`` index is four ranges,
and neither SQLite nor PostgreSQL merges them in order: both sorted every active ticket for
each page. Partial indexes over the active tickets, one per filter, each ending in
``(updated_at, id)``, give every view one range already in the page's order; the WHERE of
each is the same text ``core.services.access.ACTIVE_SQL`` writes, so both planners match it.

Search (``core.services.search``): SQLite FTS5 tables over ticket subjects, message text and
contact names and addresses, external content kept in step by triggers; PostgreSQL GIN
indexes over the same columns' ``to_tsvector('simple', ...)``, which PostgreSQL keeps in
step itself.
"""
from peewee import PostgresqlDatabase

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"

INDEXES = (
    ("ticket_active_updated", "updated_at, id", ACTIVE),
    ("ticket_active_department", "department_id, updated_at, id", ACTIVE),
    ("ticket_active_assignee", "assignee_id, updated_at, id", ACTIVE),
    ("ticket_active_channel", "channel, updated_at, id", ACTIVE),
    ("ticket_active_category", "category_id, updated_at, id", ACTIVE),
    ("ticket_active_priority", "priority, updated_at, id", ACTIVE),
    ("ticket_active_number", "id", ACTIVE),
    ("ticket_active_due", "due_at, id", ACTIVE),
    # Every status (the API's default list, the "any status" and "resolved" tabs).
    ("ticket_updated", "updated_at, id", ""),
    ("ticket_status_updated_id", "status, updated_at, id", ""),
    ("ticket_department_updated", "department_id, updated_at, id", ""),
    ("ticket_assignee_updated", "assignee_id, updated_at, id", ""),
    # The dashboard's 30 days, covered: opened per day by channel, first responses, top
    # categories; resolved per day by channel.
    ("ticket_resolved", "resolved_at, channel", "resolved_at IS NOT NULL"),
    ("ticket_created_response", "created_at, first_response_at, channel, category_id", ""),
)

# Indexes the ones above make redundant (each a prefix of a new one, or the same columns
# without the id): fewer indexes to write with every new ticket. (name, table, columns)
SUPERSEDED = (
    ("ticket_status_updated_at", "status, updated_at"),
    ("ticket_department_id_status_updated_at", "department_id, status, updated_at"),
    ("ticket_assignee_id_status_updated_at", "assignee_id, status, updated_at"),
    ("ticket_department_id", "department_id"),
    ("ticket_assignee_id", "assignee_id"),
    ("ticket_created_at", "created_at"),
)

# (FTS table, content table, indexed columns)
SEARCHED = (
    ("ticket_fts", "ticket", ("subject",)),
    ("message_fts", "message", ("body_text",)),
    ("contact_fts", "contact", ("name", "email")),
)

# The same runs of letters and digits SQLite's unicode61 tokenizer makes; the text of each
# expression is the one core/services/search.py writes, or PostgreSQL cannot use the index.
PG_SEARCH = (
    ("ticket_subject_search", "ticket",
     "to_tsvector('simple', regexp_replace(subject, '[^[:alnum:]]+', ' ', 'g'))"),
    ("message_text_search", "message",
     "to_tsvector('simple', regexp_replace(body_text, '[^[:alnum:]]+', ' ', 'g'))"),
    ("contact_search", "contact",
     "to_tsvector('simple', regexp_replace(coalesce(name, '') || ' ' || "
     "coalesce(email, ''), '[^[:alnum:]]+', ' ', 'g'))"),
)


def _values(columns, prefix):
    return ", ".join(f"{prefix}.{c}" for c in columns)


def up(migrator, db):
    for name, _columns in SUPERSEDED:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
    for name, columns, where in INDEXES:
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON ticket ({columns})"
                       + (f" WHERE {where}" if where else ""))
    if isinstance(db, PostgresqlDatabase):
        for name, table, expression in PG_SEARCH:
            db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
                           f"USING gin ({expression})")
        return
    for fts, table, columns in SEARCHED:
        names = ", ".join(columns)
        db.execute_sql(f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{table}', "
                       "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
        db.execute_sql(f"INSERT INTO {fts} (rowid, {names}) SELECT id, {names} FROM {table}")
        new, old = _values(columns, "new"), _values(columns, "old")
        db.execute_sql(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
                       f"INSERT INTO {fts} (rowid, {names}) VALUES (new.id, {new}); END")
        db.execute_sql(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
                       f"INSERT INTO {fts} ({fts}, rowid, {names}) "
                       f"VALUES ('delete', old.id, {old}); END")
        db.execute_sql(f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {names} ON {table} BEGIN "
                       f"INSERT INTO {fts} ({fts}, rowid, {names}) "
                       f"VALUES ('delete', old.id, {old}); "
                       f"INSERT INTO {fts} (rowid, {names}) VALUES (new.id, {new}); END")


def down(migrator, db):
    for name, _columns, _where in INDEXES:
        db.execute_sql(f"DROP INDEX IF EXISTS {name}")
    for name, columns in SUPERSEDED:
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON ticket ({columns})')
    if isinstance(db, PostgresqlDatabase):
        for name, _table, _expression in PG_SEARCH:
            db.execute_sql(f"DROP INDEX IF EXISTS {name}")
        return
    for fts, _table, _columns in SEARCHED:
        for event in ("insert", "delete", "update"):
            db.execute_sql(f"DROP TRIGGER IF EXISTS {fts}_{event}")
        db.execute_sql(f"DROP TABLE IF EXISTS {fts}")
