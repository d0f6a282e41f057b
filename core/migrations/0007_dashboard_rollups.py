"""The dashboard's roll-ups, kept by the database itself, and one index for agents' scope.

At a million tickets the dashboard's plain aggregates count hundreds of thousands of rows
per request (the 30-day charts read a twelfth of the desk; the open counts read 40% of it;
the first response ranked 83,000 answers). Three small tables hold the same figures,
counted as tickets change:

* ``ticket_day_count``: tickets opened and resolved per UTC day, channel, department and
  category (the two per-day charts and the top categories);
* ``ticket_open_count``: active tickets per status and department (the two open charts);
* ``ticket_response_count``: answered tickets per opening day, department and whole minutes
  to the first answer (median and 90th percentile, exact to the minute).

Triggers keep them in step with every insert, update and delete of a ticket, whichever path
made it (the services, merges, a bulk load, SQL by hand), as the search tables' triggers do.
A missing department or category is counted under 0. ``rebuild`` counts them again from the
tickets (this migration and ``bench/seed.py`` after a bulk load use it).

The index ``(coalesce(assignee_id, 0), coalesce(department_id, 0))`` finds an agent's tickets outside their own
departments (an agent sees those too) without reading each assigned ticket.
"""


def _sqlite(db):
    # A proxy (a model's database, as the app binds it) is asked about what it stands for.
    db = getattr(db, "obj", None) or db
    return any(cls.__name__ == "SqliteDatabase" for cls in type(db).__mro__)


ACTIVE = "('new', 'open', 'pending', 'on_hold')"

TABLES = (
    "CREATE TABLE IF NOT EXISTS ticket_day_count (day DATE NOT NULL, "
    "channel VARCHAR(32) NOT NULL, department_id INTEGER NOT NULL, "
    "category_id INTEGER NOT NULL, opened INTEGER NOT NULL DEFAULT 0, "
    "resolved INTEGER NOT NULL DEFAULT 0, "
    "PRIMARY KEY (day, channel, department_id, category_id))",
    "CREATE TABLE IF NOT EXISTS ticket_open_count (status VARCHAR(16) NOT NULL, "
    "department_id INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 0, "
    "PRIMARY KEY (status, department_id))",
    "CREATE TABLE IF NOT EXISTS ticket_response_count (day DATE NOT NULL, "
    "department_id INTEGER NOT NULL, minutes INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 0, "
    "PRIMARY KEY (day, department_id, minutes))",
    # On expressions that only the dashboard writes: the inbox's own ``assignee_id = ?``
    # cannot pick it (SQLite did, before ANALYZE had seen it, and sorted an agent's tickets).
    "CREATE INDEX IF NOT EXISTS ticket_assignee_department ON ticket "
    "(coalesce(assignee_id, 0), coalesce(department_id, 0))",
)

SQLITE_TRIGGERS = ("ticket_rollup_insert", "ticket_rollup_delete", "ticket_rollup_days",
                   "ticket_rollup_open", "ticket_rollup_response")


def day(db, column):
    return f"date({column})" if _sqlite(db) else f"({column})::date"


def minutes(db, opened, answered):
    """Whole minutes from opening to the first answer (seconds' fractions dropped first)."""
    if not _sqlite(db):
        return (f"((extract(epoch from date_trunc('second', {answered}))::bigint - "
                f"extract(epoch from date_trunc('second', {opened}))::bigint) / 60)")
    return (f"((CAST(strftime('%s', {answered}) AS INTEGER) - "
            f"CAST(strftime('%s', {opened}) AS INTEGER)) / 60)")


def _counts(db, row, sign):
    """The statements adding ``sign`` (1 or -1) for one ticket row (``new`` or ``old``)."""
    op = "+" if sign > 0 else "-"
    dept, cat = f"coalesce({row}.department_id, 0)", f"coalesce({row}.category_id, 0)"
    if sign > 0:
        return {
            "opened": (
                "INSERT INTO ticket_day_count (day, channel, department_id, category_id, opened) "
                f"SELECT {day(db, row + '.created_at')}, {row}.channel, {dept}, {cat}, 1 "
                f"WHERE {row}.created_at IS NOT NULL "
                "ON CONFLICT (day, channel, department_id, category_id) "
                "DO UPDATE SET opened = ticket_day_count.opened + 1;"),
            "resolved": (
                "INSERT INTO ticket_day_count (day, channel, department_id, category_id, "
                f"resolved) SELECT {day(db, row + '.resolved_at')}, {row}.channel, {dept}, "
                f"{cat}, 1 WHERE {row}.resolved_at IS NOT NULL "
                "ON CONFLICT (day, channel, department_id, category_id) "
                "DO UPDATE SET resolved = ticket_day_count.resolved + 1;"),
            "open": (
                "INSERT INTO ticket_open_count (status, department_id, n) "
                f"SELECT {row}.status, {dept}, 1 WHERE {row}.status IN {ACTIVE} "
                "ON CONFLICT (status, department_id) DO UPDATE SET n = ticket_open_count.n + 1;"),
            "response": (
                "INSERT INTO ticket_response_count (day, department_id, minutes, n) "
                f"SELECT {day(db, row + '.created_at')}, {dept}, "
                f"{minutes(db, row + '.created_at', row + '.first_response_at')}, 1 "
                f"WHERE {row}.first_response_at IS NOT NULL AND {row}.created_at IS NOT NULL "
                "ON CONFLICT (day, department_id, minutes) "
                "DO UPDATE SET n = ticket_response_count.n + 1;"),
        }
    return {
        "opened": (
            f"UPDATE ticket_day_count SET opened = opened {op} 1 "
            f"WHERE day = {day(db, row + '.created_at')} AND channel = {row}.channel "
            f"AND department_id = {dept} AND category_id = {cat};"),
        "resolved": (
            f"UPDATE ticket_day_count SET resolved = resolved {op} 1 "
            f"WHERE {row}.resolved_at IS NOT NULL AND day = {day(db, row + '.resolved_at')} "
            f"AND channel = {row}.channel AND department_id = {dept} AND category_id = {cat};"),
        "open": (
            f"UPDATE ticket_open_count SET n = n {op} 1 WHERE {row}.status IN {ACTIVE} "
            f"AND status = {row}.status AND department_id = {dept};"),
        "response": (
            f"UPDATE ticket_response_count SET n = n {op} 1 "
            f"WHERE {row}.first_response_at IS NOT NULL "
            f"AND day = {day(db, row + '.created_at')} AND department_id = {dept} "
            f"AND minutes = {minutes(db, row + '.created_at', row + '.first_response_at')};"),
    }


# What each roll-up reads of a ticket: an update touching none of these changes no count.
COLUMNS = {
    "days": ("created_at", "resolved_at", "channel", "department_id", "category_id"),
    "open": ("status", "department_id"),
    "response": ("created_at", "first_response_at", "department_id"),
}


def _changed(columns):
    return " OR ".join(f"old.{c} IS DISTINCT FROM new.{c}" for c in columns)


def _sqlite_changed(columns):
    return " OR ".join(f"old.{c} IS NOT new.{c}" for c in columns)


def create_triggers(db):
    add, remove = _counts(db, "new", 1), _counts(db, "old", -1)
    if not _sqlite(db):
        changed = {name: _changed(cols) for name, cols in COLUMNS.items()}
        body = f"""
        IF TG_OP = 'DELETE' THEN
          {' '.join(remove.values())}
        ELSIF TG_OP = 'INSERT' THEN
          {' '.join(add.values())}
        ELSE
          IF {changed['days']} THEN
            {remove['opened']} {remove['resolved']} {add['opened']} {add['resolved']}
          END IF;
          IF {changed['open']} THEN {remove['open']} {add['open']} END IF;
          IF {changed['response']} THEN {remove['response']} {add['response']} END IF;
        END IF;
        RETURN NULL;"""
        db.execute_sql("CREATE OR REPLACE FUNCTION ticket_rollup() RETURNS trigger "
                       f"LANGUAGE plpgsql AS $$ BEGIN {body} END $$")
        db.execute_sql("DROP TRIGGER IF EXISTS ticket_rollup ON ticket")
        db.execute_sql("CREATE TRIGGER ticket_rollup AFTER INSERT OR UPDATE OR DELETE ON ticket "
                       "FOR EACH ROW EXECUTE FUNCTION ticket_rollup()")
        return
    everything = " ".join(add.values())
    db.execute_sql(f"CREATE TRIGGER ticket_rollup_insert AFTER INSERT ON ticket BEGIN "
                   f"{everything} END")
    db.execute_sql(f"CREATE TRIGGER ticket_rollup_delete AFTER DELETE ON ticket BEGIN "
                   f"{' '.join(remove.values())} END")
    for name, parts in (("days", ("opened", "resolved")), ("open", ("open",)),
                        ("response", ("response",))):
        cols = COLUMNS[name]
        db.execute_sql(
            f"CREATE TRIGGER ticket_rollup_{name} AFTER UPDATE OF {', '.join(cols)} ON ticket "
            f"WHEN {_sqlite_changed(cols)} BEGIN "
            + " ".join(remove[p] for p in parts) + " " + " ".join(add[p] for p in parts)
            + " END")


def drop_triggers(db):
    if not _sqlite(db):
        db.execute_sql("DROP TRIGGER IF EXISTS ticket_rollup ON ticket")
        db.execute_sql("DROP FUNCTION IF EXISTS ticket_rollup()")
        return
    for name in SQLITE_TRIGGERS:
        db.execute_sql(f"DROP TRIGGER IF EXISTS {name}")


def rebuild(db):
    """Count every roll-up again from the tickets (after a bulk load without the triggers)."""
    for table in ("ticket_day_count", "ticket_open_count", "ticket_response_count"):
        db.execute_sql(f"DELETE FROM {table}")
    dept, cat = "coalesce(department_id, 0)", "coalesce(category_id, 0)"
    db.execute_sql(
        "INSERT INTO ticket_day_count (day, channel, department_id, category_id, opened, "
        "resolved) SELECT d, channel, dept, cat, SUM(o), SUM(r) FROM ("
        f"SELECT {day(db, 'created_at')} AS d, channel, {dept} AS dept, {cat} AS cat, "
        "1 AS o, 0 AS r FROM ticket WHERE created_at IS NOT NULL UNION ALL "
        f"SELECT {day(db, 'resolved_at')}, channel, {dept}, {cat}, 0, 1 FROM ticket "
        "WHERE resolved_at IS NOT NULL) AS x GROUP BY d, channel, dept, cat")
    db.execute_sql(
        f"INSERT INTO ticket_open_count (status, department_id, n) SELECT status, {dept}, "
        f"COUNT(*) FROM ticket WHERE status IN {ACTIVE} GROUP BY status, {dept}")
    db.execute_sql(
        "INSERT INTO ticket_response_count (day, department_id, minutes, n) "
        f"SELECT {day(db, 'created_at')}, {dept}, "
        f"{minutes(db, 'created_at', 'first_response_at')}, COUNT(*) FROM ticket "
        "WHERE first_response_at IS NOT NULL AND created_at IS NOT NULL "
        f"GROUP BY {day(db, 'created_at')}, {dept}, "
        f"{minutes(db, 'created_at', 'first_response_at')}")


# PostgreSQL (14 on) is told which (assignee, department) pairs occur: an agent's tickets
# are nearly all in their own departments, and without this it multiplies the two columns'
# shares as if independent, expects thousands of tickets outside, and reads the active
# tickets' index instead of seeking the few.
PG_STATISTICS = ("CREATE STATISTICS IF NOT EXISTS ticket_assignee_department_pairs (mcv) ON "
                 "(coalesce(assignee_id, 0)), (coalesce(department_id, 0)) FROM ticket")


def up(migrator, db):
    for statement in TABLES:
        db.execute_sql(statement)
    if not _sqlite(db):
        (version,) = db.execute_sql("SHOW server_version_num").fetchone()
        if int(version) >= 140000:
            db.execute_sql(PG_STATISTICS)
    rebuild(db)
    create_triggers(db)


def down(migrator, db):
    drop_triggers(db)
    if not _sqlite(db):
        db.execute_sql("DROP STATISTICS IF EXISTS ticket_assignee_department_pairs")
    db.execute_sql("DROP INDEX IF EXISTS ticket_assignee_department")
    for table in ("ticket_day_count", "ticket_open_count", "ticket_response_count"):
        db.execute_sql(f"DROP TABLE IF EXISTS {table}")
