"""A table of the tickets' tags, the admin's first-response roll-up without departments, and
(SQLite) the due-time and number indexes that hold what the agent's scope and tags test.

* ``ticket_tag (tag, ticket_id)``: one row per tag of each ticket, kept by triggers on every
  insert, update of ``tags`` and delete of a ticket, whichever path made it. The inbox's tag
  filter reads it when a tag is rare (``core.services.access.tagged``): the few tickets
  carrying it are found by the index and ordered, instead of walking the active tickets
  newest first until a page is found (all of them, for a tag no ticket carries). A common
  tag is still walked: 50 ÷ (its share) tickets, fewer than its rows.
* ``ticket_response_minutes (day, minutes, n)``: answered tickets per opening day and whole
  minutes to the first answer, all departments together. The admin's median and 90th
  percentile summed 36,000 rows of ``ticket_response_count`` for 30 days at a million tickets
  (a row per day, department and minute); this holds a third of them. Filled from
  ``ticket_response_count`` (no ticket is read), then kept by its own triggers, next to
  0007's.
* ``ticket_done_due``: resolved and closed tickets by due time (see ``DONE_DUE``).
* SQLite: ``ticket_active_due`` and ``ticket_active_number`` become ``…_scope`` indexes that
  also hold ``department_id, assignee_id, tags`` (as 0009 did for the newest-first order),
  so an agent's inbox sorted by due time or by number, with a common tag, tests them in the
  index rather than reading each ticket passed over from the table. PostgreSQL tests such
  conditions on the table's rows whatever its index holds, so it keeps its indexes.
* ``ticket_response_count_department``: an agent's first responses by their departments
  (see ``RESPONSE_BY_DEPARTMENT``).

Tags are JSON lists in text; a value that is not a JSON list of strings adds no rows (a
trigger must never make a ticket's write fail).
"""

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"


def _sqlite(db):
    # A proxy (a model's database, as the app binds it) is asked about what it stands for.
    db = getattr(db, "obj", None) or db
    return any(cls.__name__ == "SqliteDatabase" for cls in type(db).__mro__)


def day(db, column):
    return f"date({column})" if _sqlite(db) else f"({column})::date"


def minutes(db, opened, answered):
    """Whole minutes from opening to the first answer, as 0007's triggers count them."""
    if not _sqlite(db):
        return (f"((extract(epoch from date_trunc('second', {answered}))::bigint - "
                f"extract(epoch from date_trunc('second', {opened}))::bigint) / 60)")
    return (f"((CAST(strftime('%s', {answered}) AS INTEGER) - "
            f"CAST(strftime('%s', {opened}) AS INTEGER)) / 60)")


# (new index, columns, the index it replaces, its columns): SQLite only, over active tickets.
WIDENED = (
    ("ticket_active_due_scope", "due_at, id, department_id, assignee_id, tags",
     "ticket_active_due", "due_at, id"),
    ("ticket_active_number_scope", "id, department_id, assignee_id, tags",
     "ticket_active_number", "id"),
)

SQLITE_TRIGGERS = ("ticket_tag_insert", "ticket_tag_update", "ticket_tag_delete",
                   "ticket_minutes_insert", "ticket_minutes_update", "ticket_minutes_delete")


def _tables(db):
    rowless = " WITHOUT ROWID" if _sqlite(db) else ""
    return (
        "CREATE TABLE IF NOT EXISTS ticket_tag (tag VARCHAR(100) NOT NULL, "
        f"ticket_id INTEGER NOT NULL, PRIMARY KEY (tag, ticket_id)){rowless}",
        "CREATE TABLE IF NOT EXISTS ticket_response_minutes (day DATE NOT NULL, "
        "minutes INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 0, "
        f"PRIMARY KEY (day, minutes)){rowless}",
    )


# -- SQLite ---------------------------------------------------------------------------------

def _sqlite_tags(row):
    """``json_each`` over a ticket row's tags (take its ``type = 'text'`` values): nothing
    when its ``tags`` is not a JSON list."""
    return (f"json_each(CASE WHEN json_valid({row}.tags) AND json_type({row}.tags) = 'array' "
            f"THEN {row}.tags ELSE '[]' END)")


def _sqlite_minutes(db, row, sign):
    if sign > 0:
        return ("INSERT INTO ticket_response_minutes (day, minutes, n) "
                f"SELECT {day(db, row + '.created_at')}, "
                f"{minutes(db, row + '.created_at', row + '.first_response_at')}, 1 "
                f"WHERE {row}.first_response_at IS NOT NULL AND {row}.created_at IS NOT NULL "
                "ON CONFLICT (day, minutes) DO UPDATE SET n = ticket_response_minutes.n + 1;")
    return ("UPDATE ticket_response_minutes SET n = n - 1 "
            f"WHERE {row}.first_response_at IS NOT NULL "
            f"AND day = {day(db, row + '.created_at')} "
            f"AND minutes = {minutes(db, row + '.created_at', row + '.first_response_at')};")


def _sqlite_triggers(db):
    add_tags = ("INSERT OR IGNORE INTO ticket_tag (tag, ticket_id) SELECT value, new.id "
                f"FROM {_sqlite_tags('new')} WHERE type = 'text';")
    remove_tags = ("DELETE FROM ticket_tag WHERE ticket_id = old.id AND tag IN "
                   f"(SELECT value FROM {_sqlite_tags('old')} WHERE type = 'text');")
    return (
        f"CREATE TRIGGER ticket_tag_insert AFTER INSERT ON ticket BEGIN {add_tags} END",
        "CREATE TRIGGER ticket_tag_update AFTER UPDATE OF tags, id ON ticket "
        f"WHEN old.tags IS NOT new.tags OR old.id IS NOT new.id BEGIN {remove_tags} {add_tags} END",
        f"CREATE TRIGGER ticket_tag_delete AFTER DELETE ON ticket BEGIN {remove_tags} END",
        "CREATE TRIGGER ticket_minutes_insert AFTER INSERT ON ticket BEGIN "
        f"{_sqlite_minutes(db, 'new', 1)} END",
        "CREATE TRIGGER ticket_minutes_update AFTER UPDATE OF created_at, first_response_at "
        "ON ticket WHEN old.created_at IS NOT new.created_at "
        "OR old.first_response_at IS NOT new.first_response_at BEGIN "
        f"{_sqlite_minutes(db, 'old', -1)} {_sqlite_minutes(db, 'new', 1)} END",
        "CREATE TRIGGER ticket_minutes_delete AFTER DELETE ON ticket BEGIN "
        f"{_sqlite_minutes(db, 'old', -1)} END",
    )


# -- PostgreSQL -----------------------------------------------------------------------------

# The tags of a text value: a JSON list's strings; nothing for anything else. A function, so
# the trigger and the fill share it, and one bad value adds no rows instead of failing. The
# shape every ticket's tags have (a list of plain strings, as the JSON column writes them)
# is recognised by a pattern first and read directly: only another value enters the block
# that catches a parse error, which costs a subtransaction each time (PostgreSQL 15 has no
# test of JSON text that does not raise).
PG_TAGS_FUNCTION = r"""
CREATE OR REPLACE FUNCTION loket_ticket_tags(value text) RETURNS SETOF text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE parsed json;
BEGIN
  IF value IS NULL THEN RETURN; END IF;
  IF value ~ '^\s*\[\s*("([^"\\\x01-\x1f]|\\(["\\/bfnrt]|u[0-9a-fA-F]{4}))*"\s*(,\s*"([^"\\\x01-\x1f]|\\(["\\/bfnrt]|u[0-9a-fA-F]{4}))*"\s*)*)?\]\s*$' THEN
    RETURN QUERY SELECT DISTINCT json_array_elements_text(value::json);
    RETURN;
  END IF;
  BEGIN
    parsed := value::json;
  EXCEPTION WHEN others THEN
    RETURN;
  END;
  IF json_typeof(parsed) <> 'array' THEN RETURN; END IF;
  RETURN QUERY SELECT DISTINCT e #>> '{}' FROM json_array_elements(parsed) AS e
    WHERE json_typeof(e) = 'string';
END $$"""


def _pg_trigger(db, followed=()):
    """The trigger function; ``followed``: the ticket's columns each tag row also holds (a
    later migration's, 0023), copied when a ticket's tags are added."""
    answered = (f"SELECT {day(db, 'NEW.created_at')}, "
                f"{minutes(db, 'NEW.created_at', 'NEW.first_response_at')}, 1 "
                "WHERE NEW.first_response_at IS NOT NULL AND NEW.created_at IS NOT NULL")
    add_minutes = ("INSERT INTO ticket_response_minutes (day, minutes, n) " + answered
                   + " ON CONFLICT (day, minutes) DO UPDATE SET n = ticket_response_minutes.n + 1;")
    remove_minutes = ("UPDATE ticket_response_minutes SET n = n - 1 "
                      "WHERE OLD.first_response_at IS NOT NULL "
                      f"AND day = {day(db, 'OLD.created_at')} "
                      f"AND minutes = {minutes(db, 'OLD.created_at', 'OLD.first_response_at')};")
    names = "".join(f", {c}" for c in followed)
    values = "".join(f", NEW.{c}" for c in followed)
    add_tags = (f"INSERT INTO ticket_tag (tag, ticket_id{names}) SELECT t, NEW.id{values} "
                "FROM loket_ticket_tags(NEW.tags) AS t ON CONFLICT DO NOTHING;")
    # The tags as an array the key's range takes (``tag IN (SELECT …)`` was planned as a
    # sequential scan of ticket_tag for the ticket's number, joined to the tags).
    remove_tags = ("DELETE FROM ticket_tag WHERE tag = ANY(ARRAY(SELECT "
                   "loket_ticket_tags(OLD.tags))) AND ticket_id = OLD.id;")
    minutes_changed = ("OLD.created_at IS DISTINCT FROM NEW.created_at OR "
                       "OLD.first_response_at IS DISTINCT FROM NEW.first_response_at")
    return f"""
CREATE OR REPLACE FUNCTION ticket_tags_and_minutes() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN
  IF TG_OP = 'DELETE' THEN
    {remove_tags} {remove_minutes}
  ELSIF TG_OP = 'INSERT' THEN
    {add_tags} {add_minutes}
  ELSE
    IF OLD.tags IS DISTINCT FROM NEW.tags OR OLD.id IS DISTINCT FROM NEW.id THEN
      {remove_tags} {add_tags}
    END IF;
    IF {minutes_changed} THEN {remove_minutes} {add_minutes} END IF;
  END IF;
  RETURN NULL;
END $$"""


# -- Both -----------------------------------------------------------------------------------

def create_triggers(db):
    if _sqlite(db):
        for statement in _sqlite_triggers(db):
            db.execute_sql(statement)
        return
    db.execute_sql(PG_TAGS_FUNCTION)
    db.execute_sql(_pg_trigger(db))
    db.execute_sql("DROP TRIGGER IF EXISTS ticket_tags_and_minutes ON ticket")
    db.execute_sql("CREATE TRIGGER ticket_tags_and_minutes AFTER INSERT OR UPDATE OF tags, id, "
                   "created_at, first_response_at OR DELETE ON ticket FOR EACH ROW EXECUTE FUNCTION ticket_tags_and_minutes()")


def drop_triggers(db):
    if _sqlite(db):
        for name in SQLITE_TRIGGERS:
            db.execute_sql(f"DROP TRIGGER IF EXISTS {name}")
        return
    db.execute_sql("DROP TRIGGER IF EXISTS ticket_tags_and_minutes ON ticket")
    db.execute_sql("DROP FUNCTION IF EXISTS ticket_tags_and_minutes()")


def rebuild(db):
    """Fill both tables again: the tags from the tickets, the minutes from 0007's roll-up."""
    db.execute_sql("DELETE FROM ticket_tag")
    if _sqlite(db):
        db.execute_sql("INSERT OR IGNORE INTO ticket_tag (tag, ticket_id) "
                       f"SELECT tags.value, ticket.id FROM ticket, {_sqlite_tags('ticket')} AS tags "
                       "WHERE tags.type = 'text' AND ticket.tags IS NOT NULL "
                       "AND ticket.tags <> '[]'")
    else:
        db.execute_sql("INSERT INTO ticket_tag (tag, ticket_id) SELECT t, ticket.id FROM ticket, "
                       "loket_ticket_tags(ticket.tags) AS t WHERE ticket.tags IS NOT NULL "
                       "AND ticket.tags <> '[]' ON CONFLICT DO NOTHING")
    db.execute_sql("DELETE FROM ticket_response_minutes")
    db.execute_sql("INSERT INTO ticket_response_minutes (day, minutes, n) SELECT day, minutes, "
                   "SUM(n) FROM ticket_response_count GROUP BY day, minutes HAVING SUM(n) <> 0")


# Resolved or closed tickets by due time (the console's "Resolved or closed" tab sorted by
# "Due"): through the plain ``due_at`` index this walked every active ticket with a due time
# and found none of them done (2 s at a million, on both databases). Partial on the same text
# ``core.services.access.DONE_SQL`` writes.
DONE_DUE = ("CREATE INDEX IF NOT EXISTS ticket_done_due ON ticket (due_at, id) "
            "WHERE status IN ('resolved', 'closed')")


# An agent's 30 days of first responses: their departments' rows of ``ticket_response_count``
# by department, then day, with the columns summed (PostgreSQL: ``INCLUDE``), instead of
# every department's rows of those days filtered (36,000 rows read for 9,000 at a million:
# PostgreSQL 20 -> 8.5 ms, SQLite 2.9 -> 2.2 ms).
RESPONSE_BY_DEPARTMENT = {
    True: "CREATE INDEX IF NOT EXISTS ticket_response_count_department ON "
          "ticket_response_count (department_id, day, minutes, n)",
    False: "CREATE INDEX IF NOT EXISTS ticket_response_count_department ON "
           "ticket_response_count (department_id, day) INCLUDE (minutes, n)",
}


def up(migrator, db):
    for statement in _tables(db):
        db.execute_sql(statement)
    db.execute_sql(DONE_DUE)
    if _sqlite(db):
        for name, columns, old, _old_columns in WIDENED:
            db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON ticket ({columns}) "
                           f"WHERE {ACTIVE}")
            db.execute_sql(f'DROP INDEX IF EXISTS "{old}"')
    else:
        db.execute_sql(PG_TAGS_FUNCTION)
    db.execute_sql(RESPONSE_BY_DEPARTMENT[_sqlite(db)])
    rebuild(db)
    create_triggers(db)
    if _sqlite(db) and db.execute_sql(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        # A desk that was analysed keeps its statistics for the indexes these replace: the
        # new ones are measured too, or SQLite would weigh them by its defaults.
        for name in [n for n, *_ in WIDENED] + ["ticket_response_count_department", "ticket_done_due",
                                                "ticket_tag", "ticket_response_minutes"]:
            db.execute_sql(f"ANALYZE {name}")
    if not _sqlite(db):
        db.execute_sql("ANALYZE ticket_tag, ticket_response_minutes")


def down(migrator, db):
    drop_triggers(db)
    db.execute_sql("DROP INDEX IF EXISTS ticket_response_count_department")
    db.execute_sql("DROP INDEX IF EXISTS ticket_done_due")
    if _sqlite(db):
        for name, _columns, old, old_columns in WIDENED:
            db.execute_sql(f"CREATE INDEX IF NOT EXISTS {old} ON ticket ({old_columns}) "
                           f"WHERE {ACTIVE}")
            db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
    else:
        db.execute_sql("DROP FUNCTION IF EXISTS loket_ticket_tags(text)")
    db.execute_sql("DROP TABLE IF EXISTS ticket_tag")
    db.execute_sql("DROP TABLE IF EXISTS ticket_response_minutes")
