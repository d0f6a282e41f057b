"""A kept "late" mark on each ticket: the overdue and not overdue inbox pages stay flat as
the desk grows.

Most active tickets of a grown desk are overdue (at a million seeded tickets 394,000 of
400,000), and nothing told them from the few on time but their due time, which no order but
the due time's holds. "Not overdue" oldest first or by number gathered the on-time tickets and
sorted them (``access.few_on_time``: a cost of 6,000 tickets at a million, 600 at 100,000);
overdue newest first walked the newest-first index past every on-time ticket updated more
recently. ``late`` says it in the orders' own indexes:

* ``late`` is true only if the ticket's due time has passed. A trigger clears it whenever the
  due time changes (the console's form, the API, a service, SQL by hand), and only the
  migration (every ticket overdue when it runs, ``mark_overdue``) and the periodic job
  ``core.services.late.mark`` set it, on active tickets whose due time has
  passed, found through ``ticket_active_fresh_due`` (the active tickets not marked, by due
  time: those on time and those fallen due since the job last ran).
* ``ticket_active_late_*`` and ``ticket_active_fresh_*``: the active tickets' two walked
  orders (newest first, by number), marked and not, with what the existing inbox indexes
  carry (the scope, the tags, the due time; 0009/0012/0018). "Not overdue" walks the unmarked
  ones in the page's order and passes only the tickets fallen due since the last run; overdue
  reads the marked ones in the page's order and the few unmarked overdue tickets from their
  due-time index (``access._overdue_numbers``). A desk whose job never ran lists the same
  tickets, with the work it did before.

The job writes ``late`` alone: no trigger of the ticket's (roll-ups 0007, tags 0010/0016/0023,
search 0011/0024) names that column, but PostgreSQL's roll-up trigger (0007) ran its function
for an update of any column; it now fires for the columns it counts only (``UPDATE OF``),
which is every column its function compares.

Measured (``bench/page_work.py --sweep``, 100,000 against a million seeded tickets, the job
run): "not overdue" oldest first and by number 7.2-8.5x the work before, 1.00-1.07x now on
SQLite (VM steps) and on PostgreSQL (rows read); overdue newest first 2.8-4.0x before,
1.00-1.01x (SQLite) and 0.97x (PostgreSQL) now.
"""
from datetime import datetime, timezone
from importlib import import_module

from peewee import SqliteDatabase

ACTIVE = "status IN ('new', 'open', 'pending', 'on_hold')"
# ``TRUE`` and ``FALSE`` as keywords, the same text on both databases: SQLite matches a
# partial index only to the very term its WHERE says, and a bound value is not that term.
LATE = f"{ACTIVE} AND late = TRUE"
FRESH = f"{ACTIVE} AND late = FALSE"

# What the inbox's walks test in an index (the scope, the tags, the due time: 0009/0012/0018).
SQLITE_COVERED = "department_id, assignee_id, tags, due_at"
PG_COVERED = "INCLUDE (department_id, assignee_id, contact_id, tags, due_at)"
# PostgreSQL, the unmarked tickets' orders: without the due time. A page of overdue tickets
# gathers the unmarked ones past due from their due-time index; the planner reckons them a
# third of the unmarked tickets (they are only those fallen due since the job ran) and, with
# the due time in these indexes, read a whole one of them instead (6,000 entries at a
# million). A "not overdue" page walking one reads the rows it passes for their due time:
# its own, and those fallen due since the job ran.
PG_FRESH_COVERED = "INCLUDE (department_id, assignee_id, contact_id, tags)"

# (name, SQLite columns, PostgreSQL keys and INCLUDE, partial WHERE). Two partial indexes
# per order, not one led by ``late``: PostgreSQL weighs a multicolumn index by how its first
# column follows the table's order, and with ``late`` first it took reading the marked
# tickets' rows for random reads and walked every active ticket's number instead (11,000
# rows for a page at a million).
INDEXES = (
    ("ticket_active_late_updated", f"updated_at, id, {SQLITE_COVERED}",
     f"(updated_at, id) {PG_COVERED}", LATE),
    ("ticket_active_late_number", f"id, {SQLITE_COVERED}", f"(id) {PG_COVERED}", LATE),
    ("ticket_active_fresh_updated", f"updated_at, id, {SQLITE_COVERED}",
     f"(updated_at, id) {PG_FRESH_COVERED}", FRESH),
    ("ticket_active_fresh_number", f"id, {SQLITE_COVERED}", f"(id) {PG_FRESH_COVERED}", FRESH),
    ("ticket_active_fresh_due", "due_at, id, updated_at, department_id, assignee_id, tags",
     "(due_at, id) INCLUDE (updated_at, department_id, assignee_id, contact_id, tags)", FRESH),
)

# PostgreSQL: how many active tickets are marked, from the statuses and the mark together
# (every resolved ticket is unmarked: counted apart, the unmarked active tickets were
# reckoned at 60% of the desk's 40%, not 1.5%).
PG_STATISTICS = "ticket_status_late"

# The columns PostgreSQL's roll-up function (0007's ``ticket_rollup``) compares.
ROLLUP_COLUMNS = tuple(dict.fromkeys(
    column for columns in import_module("core.migrations.0007_dashboard_rollups").COLUMNS.values()
    for column in columns))

PG_CLEAR = "ticket_late_cleared"
SQLITE_CLEAR = "ticket_late_cleared"


def rollup_trigger(db, columns=ROLLUP_COLUMNS):
    """PostgreSQL: 0007's roll-up trigger, for an update of these columns only (None: any)."""
    if isinstance(db, SqliteDatabase):
        return
    update = "UPDATE" if columns is None else f"UPDATE OF {', '.join(columns)}"
    db.execute_sql("DROP TRIGGER IF EXISTS ticket_rollup ON ticket")
    db.execute_sql(f"CREATE TRIGGER ticket_rollup AFTER INSERT OR {update} OR DELETE ON ticket "
                   "FOR EACH ROW EXECUTE FUNCTION ticket_rollup()")


def _create_indexes(db):
    sqlite = isinstance(db, SqliteDatabase)
    for name, sqlite_columns, pg_columns, where in INDEXES:
        columns = f"({sqlite_columns})" if sqlite else pg_columns
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON ticket {columns} WHERE {where}")
        if sqlite and db.execute_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() is not None:
            db.execute_sql(f"ANALYZE {name}")


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        db.execute_sql("ALTER TABLE ticket ADD COLUMN late INTEGER NOT NULL DEFAULT 0")
        # A second write of the row, and only when a marked ticket's due time changes.
        db.execute_sql(f"CREATE TRIGGER {SQLITE_CLEAR} AFTER UPDATE OF due_at ON ticket "
                       "WHEN new.late AND old.due_at IS NOT new.due_at BEGIN "
                       "UPDATE ticket SET late = FALSE WHERE id = new.id; END")
    else:
        db.execute_sql("ALTER TABLE ticket ADD COLUMN late BOOLEAN NOT NULL DEFAULT FALSE")
        db.execute_sql(f"CREATE FUNCTION {PG_CLEAR}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                       "BEGIN NEW.late := FALSE; RETURN NEW; END $$")
        db.execute_sql(f"CREATE TRIGGER {PG_CLEAR} BEFORE UPDATE OF due_at ON ticket "
                       "FOR EACH ROW WHEN (NEW.late AND OLD.due_at IS DISTINCT FROM NEW.due_at) "
                       f"EXECUTE FUNCTION {PG_CLEAR}()")
        rollup_trigger(db)
        db.execute_sql(f"CREATE STATISTICS IF NOT EXISTS {PG_STATISTICS} (mcv) "
                       "ON status, late FROM ticket")
    mark_overdue(db)
    _create_indexes(db)
    if not isinstance(db, SqliteDatabase):
        db.execute_sql("ANALYZE ticket")


def mark_overdue(db, now=None):
    """Mark every active ticket already past its due time, once, before the indexes are built
    and analysed. SQLite plans from what ANALYZE found in each index, and ANALYZEd before the
    job's first run, the marked tickets' indexes had no statistics: at a million an overdue
    page newest first then walked every active ticket's index testing the mark (18,847 VM
    steps against 6,064 at 100k) until the next ANALYZE, which nothing runs. No new index holds
    the column yet, so this writes the rows alone. The whole migration on the seeded 1M desk
    (392,876 tickets marked): SQLite 14 s, PostgreSQL 135 s (a new version of each row)."""
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    db.execute_sql(f"UPDATE ticket SET late = TRUE WHERE {ACTIVE} AND due_at < {db.param}",
                   (now.strftime("%Y-%m-%d %H:%M:%S.%f"),))


def down(migrator, db):
    for name, *_rest in INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
    if isinstance(db, SqliteDatabase):
        db.execute_sql(f"DROP TRIGGER IF EXISTS {SQLITE_CLEAR}")
    else:
        rollup_trigger(db, None)
        db.execute_sql(f"DROP STATISTICS IF EXISTS {PG_STATISTICS}")
        db.execute_sql(f"DROP TRIGGER IF EXISTS {PG_CLEAR} ON ticket")
        db.execute_sql(f"DROP FUNCTION IF EXISTS {PG_CLEAR}()")
    db.execute_sql("ALTER TABLE ticket DROP COLUMN late")
