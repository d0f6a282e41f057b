"""One full-text document per ticket: its number, subject, contact's name and address and its
messages' text, so that every word of a search is judged against the ticket as a whole by one
index look-up (``core.services.search``).

Before, each word gathered the ids of its tickets from three indexes (subjects, messages,
contacts) and the sets were intersected: two common names that never meet ("santoso halim")
gathered 50,000 tickets each at a million (0.9 s on SQLite, 4 s on PostgreSQL). Now the
index answers the whole search at once, and can count it (9 ms and 30 ms for that search).
At a million tickets the fill takes about 65 s on SQLite and 100 s on PostgreSQL, and the
documents take 1.3 GB (SQLite: FTS5's copy of the texts and the prefix indexes, less 0005's
tables) and 1 GB (PostgreSQL) more.

* SQLite: the FTS5 table ``ticket_search`` (rowid = ticket id) with the columns ``number``,
  ``subject``, ``name``, ``email``, ``body`` (the messages' text in id order), tokenized as
  before (``unicode61 remove_diacritics 2``). FTS5 keeps the text itself (no external
  content), so a row is updated like a table's and FTS5 removes the old words from its own
  copy. Prefix indexes of 2 and 3 characters answer a short prefix ("inv-12") from one list
  instead of merging the lists of every word it starts. A phrase never spans two columns;
  it may span the end of one message and the start of the next (the columns hold no marker
  a search could not type).
  The three FTS5 tables of 0005 (``ticket_fts``, ``message_fts``, ``contact_fts``) are
  dropped: the search reads ``ticket_search``, the page that walks tickets tests their raw
  texts.
* PostgreSQL: ``ticket_search (ticket_id, doc tsvector)`` with a GIN index. ``doc`` holds
  the lexeme ``#<number>`` (no search word can be it: a word's runs are letters and
  digits) and each field and message cut into runs of letters and digits as before
  (``loket_words``), each after a ``|`` lexeme so that no phrase spans two of them. 0005's
  three expression indexes are dropped: nothing reads them any more.

Triggers keep the documents in step with every write, whichever path makes it (services,
merges, bulk loads, SQL by hand), as 0005 and 0007 do: a new ticket gets its document; a
message added appends its text (or rebuilds, if an older id arrives late); a message edited,
moved or deleted, a ticket's subject, contact or number changed, rebuild the ticket's
document from its rows; a contact renamed rewrites its tickets' name and address.
``fill`` builds the documents of a range of tickets at once (the migration, ``bench/seed.py``).
"""

from __future__ import annotations

import sys
import time
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

FILL_BATCH = 50_000


def _sqlite(db):
    db = getattr(db, "obj", None) or db
    return any(cls.__name__ == "SqliteDatabase" for cls in type(db).__mro__)


# -- SQLite ---------------------------------------------------------------------------------

SQLITE_TABLE = ("CREATE VIRTUAL TABLE IF NOT EXISTS ticket_search USING fts5(number, subject, "
                "name, email, body, tokenize='unicode61 remove_diacritics 2', prefix='2 3')")


def _migration(name):
    spec = spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# 0005's FTS5 tables (FTS table, content table, columns) and PostgreSQL expression indexes
# (name, table, expression), dropped here and made again by ``down``.
_INBOX_INDEXES = _migration("0005_inbox_indexes")
OLD_FTS = _INBOX_INDEXES.SEARCHED
OLD_PG_INDEXES = _INBOX_INDEXES.PG_SEARCH

# -- PostgreSQL -----------------------------------------------------------------------------

# A text's runs of letters and digits ('simple': no stemming, no stop words), after a "|"
# that no search word can be, so a phrase never runs from one text into the next.
PG_FUNCTIONS = (
    "CREATE OR REPLACE FUNCTION loket_words(value text) RETURNS tsvector "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '''|'':1'::tsvector || "
    "to_tsvector('simple', regexp_replace(coalesce(value, ''), '[^[:alnum:]]+', ' ', 'g')) $$",
    "CREATE OR REPLACE AGGREGATE loket_words_agg(tsvector) "
    "(SFUNC = tsvector_concat, STYPE = tsvector, INITCOND = '')",
)

PG_DOC = ("array_to_tsvector(ARRAY['#' || t.id]) || loket_words(t.subject) || "
          "loket_words(k.name) || loket_words(k.email) || coalesce(m.doc, '')")

_PG_REBUILD = "UPDATE ticket_search SET doc = loket_ticket_doc({0}) WHERE ticket_id = {0};"
_PG_INSERT = ("INSERT INTO ticket_search (ticket_id, doc) VALUES ({0}, loket_ticket_doc({0})) "
              "ON CONFLICT (ticket_id) DO UPDATE SET doc = EXCLUDED.doc;")

# ``Document(at_commit=True)`` (0024): a new ticket's document, written as its transaction
# commits (a deferred constraint trigger) unless something wrote it first (its first message,
# a change of its subject or contact); none for a ticket deleted or renumbered by then (NEW is
# the row as it was inserted). ``SET CONSTRAINTS ... IMMEDIATE`` writes it at once instead.
PG_NEW_TICKET = "ticket_search_ticket_new"
_PG_NEW_TICKET_BODY = """
  IF NOT EXISTS (SELECT 1 FROM ticket_search WHERE ticket_id = NEW.id) THEN
    INSERT INTO ticket_search (ticket_id, doc) SELECT id, loket_ticket_doc(id) FROM ticket
    WHERE id = NEW.id ON CONFLICT (ticket_id) DO NOTHING;
  END IF;"""


def _pg_function(db, name, body):
    """The trigger function ``name`` running ``body`` (PL/pgSQL statements)."""
    db.execute_sql(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger "
                   f"LANGUAGE plpgsql AS $$ BEGIN {body}\n  RETURN NULL;\nEND $$")


# ``Document(queued=True)`` (0032, SQLite): the tickets whose documents wait to be written,
# a row for each write that queued one.
QUEUE = "ticket_search_queue"
QUEUE_TABLE = (f"CREATE TABLE IF NOT EXISTS {QUEUE} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
               "ticket_id INTEGER NOT NULL)",
               f"CREATE INDEX IF NOT EXISTS {QUEUE}_ticket ON {QUEUE} (ticket_id)")


# -- Both -----------------------------------------------------------------------------------

class Document:
    """How the documents are kept: SQLite's triggers, PostgreSQL's document function and
    trigger functions, and the bulk fill, for one choice of the messages a document holds.

    This migration's documents hold every message; 0017's leave out the desk's own
    notifications (``notifications=False``: a message whose ``notification`` is not empty).
    A message a document leaves out changes nothing when it is added, edited or deleted.

    ``waits`` (0019, SQLite): while ``ticket_search_pending`` holds a row (a ticket and its
    first message being written in one transaction), a new ticket gets no document of its
    own; a message whose ticket has none writes it whole. FTS5 then writes the document
    once, not twice (an insert, then the first message's update, which flushes the first).

    ``at_commit`` (0024, PostgreSQL): a new ticket's document is written at its
    transaction's commit (``PG_NEW_TICKET``, a deferred constraint trigger) if nothing
    wrote it by then; a message whose ticket has none writes it whole. A ticket opened with
    its first message then gets one row version, not two (an insert, then the message's
    update: a dead row and its GIN entries written twice).

    ``queued`` (0032, SQLite): a write that changes what a ticket's document holds puts the
    ticket's number in ``QUEUE`` instead of writing the document; ``write_queued`` then
    writes the documents of many queued tickets in one transaction (one flush of FTS5 for
    all of them) and takes them off the queue. Until then a search tests a queued ticket's
    own rows (``core.services.search``), and its old document, if any, is not read.
    """

    def __init__(self, notifications: bool = True, waits: bool = False,
                 at_commit: bool = False, queued: bool = False):
        self.notifications = notifications
        self.waits = waits
        self.at_commit = at_commit
        self.queued = queued
        # The condition on a message row (its table's columns, or a trigger's new/old row).
        self._kept = "" if notifications else " AND notification = ''"
        self.pg_doc_from = (
            "FROM ticket AS t LEFT JOIN contact AS k ON k.id = t.contact_id LEFT JOIN LATERAL "
            "(SELECT loket_words_agg(loket_words(body_text) ORDER BY id) AS doc FROM message "
            f"WHERE ticket_id = t.id{self._kept}) AS m ON true")
        self.pg_doc_function = (
            "CREATE OR REPLACE FUNCTION loket_ticket_doc(number integer) RETURNS tsvector "
            f"LANGUAGE sql STABLE AS $$ SELECT {PG_DOC} {self.pg_doc_from} WHERE t.id = number $$")
        self.sqlite_triggers = self._sqlite_triggers()
        self.pg_trigger_functions = self._pg_trigger_functions()
        message_columns = "body_text, ticket_id" + ("" if notifications else ", notification")
        self.pg_events = {
            "ticket": ("" if at_commit else "INSERT OR ") + "UPDATE OF id, subject, contact_id "
                      "OR DELETE",
            "message": f"INSERT OR UPDATE OF {message_columns} OR DELETE",
            "contact": "UPDATE OF name, email",
        }

    def _when_kept(self, row):
        """A trigger's WHEN: trigger row ``row`` (new, old) is a message the document holds
        ("" when it holds every message)."""
        return "" if self.notifications else f"WHEN {row}.notification = '' "

    # -- SQLite -----------------------------------------------------------------------------

    def _sqlite_body(self, ticket):
        # group_concat keeps the order of the rows it reads (SQLite 3.40 has no ORDER BY in it).
        return ("(SELECT coalesce(group_concat(body_text, ' '), '') FROM (SELECT body_text "
                f"FROM message WHERE ticket_id = {ticket}{self._kept} ORDER BY id))")

    def _sqlite_insert(self, ticket):
        """The document of ticket ``ticket`` (an expression), read from its rows."""
        return ("INSERT INTO ticket_search (rowid, number, subject, name, email, body) "
                f"SELECT t.id, t.id, t.subject, c.name, c.email, {self._sqlite_body('t.id')} "
                f"FROM ticket AS t LEFT JOIN contact AS c ON c.id = t.contact_id "
                f"WHERE t.id = {ticket};")

    def sqlite_rebuild(self, ticket):
        """The document of an indexed ticket made again from its rows (none is made for a
        ticket that has none: a message deleted with its ticket)."""
        return ("UPDATE ticket_search SET "
                f"subject = (SELECT subject FROM ticket WHERE id = {ticket}), "
                "name = (SELECT c.name FROM ticket AS t JOIN contact AS c ON c.id = t.contact_id "
                f"WHERE t.id = {ticket}), "
                "email = (SELECT c.email FROM ticket AS t JOIN contact AS c ON c.id = t.contact_id "
                f"WHERE t.id = {ticket}), "
                f"body = {self._sqlite_body(ticket)} WHERE rowid = {ticket};")

    def _later_message(self, message):
        return (f"(SELECT 1 FROM message WHERE ticket_id = {message}.ticket_id "
                f"AND id > {message}.id{self._kept})")

    def _sqlite_missing(self, ticket):
        """The document of ticket ``ticket`` written whole if it has none (``waits``)."""
        if not self.waits:
            return ""
        return (f"{self._sqlite_insert(ticket)[:-1]} AND NOT EXISTS "
                f"(SELECT 1 FROM ticket_search WHERE rowid = {ticket}); ")

    def _sqlite_triggers(self):
        when_new, when_old = self._when_kept("new"), self._when_kept("old")
        changed = "" if self.notifications else " OR old.notification IS NOT new.notification"
        if self.queued:
            return self._sqlite_queue_triggers(when_new, when_old, changed)
        # A ticket written with its first message waits for it (``waits``).
        waiting = "WHEN NOT EXISTS (SELECT 1 FROM ticket_search_pending) " if self.waits else ""
        triggers = {
            "ticket_search_ticket_insert": f"AFTER INSERT ON ticket {waiting}BEGIN "
                                           f"{self._sqlite_insert('new.id')} END",
            "ticket_search_ticket_update": (
                "AFTER UPDATE OF id, subject, contact_id ON ticket WHEN old.id IS NOT new.id "
                "OR old.subject IS NOT new.subject OR old.contact_id IS NOT new.contact_id BEGIN "
                f"DELETE FROM ticket_search WHERE rowid = old.id; {self._sqlite_insert('new.id')} END"),
            "ticket_search_ticket_delete": "AFTER DELETE ON ticket BEGIN "
                                           "DELETE FROM ticket_search WHERE rowid = old.id; END",
            # The newest message (every message, but one imported late with an older id)
            # appends.
            "ticket_search_message_insert": (
                f"AFTER INSERT ON message {when_new}BEGIN "
                "UPDATE ticket_search SET body = body || iif(EXISTS (SELECT 1 FROM message "
                f"WHERE ticket_id = new.ticket_id AND id < new.id{self._kept}), ' ', '') "
                "|| new.body_text "
                f"WHERE rowid = new.ticket_id AND NOT EXISTS {self._later_message('new')}; "
                f"{self.sqlite_rebuild('new.ticket_id')[:-1]} AND EXISTS "
                f"{self._later_message('new')}; {self._sqlite_missing('new.ticket_id')}END"),
            "ticket_search_message_update": (
                "AFTER UPDATE OF body_text, ticket_id"
                f"{'' if self.notifications else ', notification'} ON message WHEN "
                "old.body_text IS NOT new.body_text OR old.ticket_id IS NOT new.ticket_id"
                f"{changed} BEGIN "
                f"{self.sqlite_rebuild('old.ticket_id')} {self.sqlite_rebuild('new.ticket_id')[:-1]} "
                "AND new.ticket_id IS NOT old.ticket_id; END"),
            "ticket_search_message_delete": f"AFTER DELETE ON message {when_old}BEGIN "
                                            f"{self.sqlite_rebuild('old.ticket_id')} END",
            "ticket_search_contact_update": (
                "AFTER UPDATE OF name, email ON contact WHEN old.name IS NOT new.name "
                "OR old.email IS NOT new.email BEGIN "
                "UPDATE ticket_search SET name = new.name, email = new.email "
                "WHERE rowid IN (SELECT id FROM ticket WHERE contact_id = new.id); END"),
        }
        if self.waits and not self.notifications:
            # A notification that comes first still gives its ticket a document (one
            # trigger: the kept messages' one above appends to the document it writes).
            triggers["ticket_search_message_missing"] = (
                "AFTER INSERT ON message WHEN new.notification <> '' BEGIN "
                f"{self._sqlite_missing('new.ticket_id')}END")
        return triggers

    def _sqlite_queue_triggers(self, when_new, when_old, changed):
        """``queued``: the same writes as ``_sqlite_triggers`` watches, each queueing the
        tickets whose documents it changes. Every write adds its rows, a ticket queued already
        too: the queue's last id then tells a search that something changed (its kept
        judgements, ``core.services.search``)."""

        def queue(ticket):
            return f"INSERT INTO {QUEUE} (ticket_id) VALUES ({ticket});"

        return {
            "ticket_search_ticket_insert": f"AFTER INSERT ON ticket BEGIN {queue('new.id')} END",
            "ticket_search_ticket_update": (
                "AFTER UPDATE OF id, subject, contact_id ON ticket WHEN old.id IS NOT new.id "
                "OR old.subject IS NOT new.subject OR old.contact_id IS NOT new.contact_id BEGIN "
                f"{queue('old.id')} {queue('new.id')} END"),
            "ticket_search_ticket_delete": f"AFTER DELETE ON ticket BEGIN {queue('old.id')} END",
            "ticket_search_message_insert": (
                f"AFTER INSERT ON message {when_new}BEGIN {queue('new.ticket_id')} END"),
            "ticket_search_message_update": (
                "AFTER UPDATE OF body_text, ticket_id"
                f"{'' if self.notifications else ', notification'} ON message WHEN "
                "old.body_text IS NOT new.body_text OR old.ticket_id IS NOT new.ticket_id"
                f"{changed} BEGIN {queue('old.ticket_id')} {queue('new.ticket_id')} END"),
            "ticket_search_message_delete": (
                f"AFTER DELETE ON message {when_old}BEGIN {queue('old.ticket_id')} END"),
            "ticket_search_contact_update": (
                "AFTER UPDATE OF name, email ON contact WHEN old.name IS NOT new.name "
                f"OR old.email IS NOT new.email BEGIN INSERT INTO {QUEUE} (ticket_id) "
                "SELECT id FROM ticket WHERE contact_id = new.id; END"),
        }

    def write_queued(self, db, first, last):
        """``queued`` (SQLite): write the documents of the queued tickets numbered ``first``
        to ``last`` from their rows (none for a ticket that is gone), in one statement, and
        take them off the queue. Returns how many tickets were queued. Run it in a write
        transaction:
        nothing may queue or unqueue in between."""
        queued = f"SELECT ticket_id FROM {QUEUE} WHERE ticket_id BETWEEN ? AND ?"
        numbers = [row[0] for row in db.execute_sql(
            f"SELECT DISTINCT ticket_id FROM {QUEUE} WHERE ticket_id BETWEEN ? AND ?",
            (first, last)).fetchall()]
        # One at a time by rowid: FTS5 would read a whole range for "rowid IN (...)".
        for number in numbers:
            db.execute_sql("DELETE FROM ticket_search WHERE rowid = ?", (number,))
        db.execute_sql(
            "INSERT INTO ticket_search (rowid, number, subject, name, email, body) "
            f"SELECT t.id, t.id, t.subject, c.name, c.email, {self._sqlite_body('t.id')} "
            "FROM ticket AS t LEFT JOIN contact AS c ON c.id = t.contact_id "
            f"WHERE t.id IN ({queued})", (first, last))
        db.execute_sql(f"DELETE FROM {QUEUE} WHERE ticket_id BETWEEN ? AND ?", (first, last))
        return len(numbers)

    # -- PostgreSQL -------------------------------------------------------------------------

    def _pg_trigger_functions(self):
        later = ("EXISTS (SELECT 1 FROM message WHERE ticket_id = NEW.ticket_id "
                 f"AND id > NEW.id{self._kept})")
        # A message appends its words, or rebuilds when a later one is there already; a
        # notification, when the documents leave them out, changes nothing.
        first = (f"IF {later} THEN" if self.notifications else
                 f"IF NEW.notification <> '' THEN\n      NULL;\n    ELSIF {later} THEN")
        # ``at_commit``: a ticket with no document yet (one being opened) gets it whole.
        missing = (f"\n      IF NOT FOUND THEN\n        {_PG_INSERT.format('NEW.ticket_id')}"
                   "\n      END IF;" if self.at_commit else "")
        insert = f"""
    {first}
      {_PG_REBUILD.format('NEW.ticket_id')}{missing}
    ELSE
      UPDATE ticket_search SET doc = doc || loket_words(NEW.body_text)
      WHERE ticket_id = NEW.ticket_id;{missing}
    END IF;"""
        if self.notifications:
            delete = _PG_REBUILD.format('OLD.ticket_id')
            changed = ""
        else:
            delete = f"""IF OLD.notification = '' THEN
      {_PG_REBUILD.format('OLD.ticket_id')}
    END IF;"""
            changed = "\n      OR OLD.notification IS DISTINCT FROM NEW.notification"
        # ``at_commit``: a new ticket's document is ``PG_NEW_TICKET``'s.
        deleted = ("IF TG_OP = 'DELETE' THEN" if self.at_commit else
                   f"IF TG_OP = 'INSERT' THEN\n    {_PG_INSERT.format('NEW.id')}\n"
                   "  ELSIF TG_OP = 'DELETE' THEN")
        return {
            "ticket": f"""
  {deleted}
    DELETE FROM ticket_search WHERE ticket_id = OLD.id;
  ELSIF OLD.id IS DISTINCT FROM NEW.id OR OLD.subject IS DISTINCT FROM NEW.subject
      OR OLD.contact_id IS DISTINCT FROM NEW.contact_id THEN
    DELETE FROM ticket_search WHERE ticket_id = OLD.id;
    {_PG_INSERT.format('NEW.id')}
  END IF;""",
            "message": f"""
  IF TG_OP = 'INSERT' THEN{insert}
  ELSIF TG_OP = 'DELETE' THEN
    {delete}
  ELSIF OLD.body_text IS DISTINCT FROM NEW.body_text
      OR OLD.ticket_id IS DISTINCT FROM NEW.ticket_id{changed} THEN
    {_PG_REBUILD.format('OLD.ticket_id')}
    IF OLD.ticket_id IS DISTINCT FROM NEW.ticket_id THEN
      {_PG_REBUILD.format('NEW.ticket_id')}
    END IF;
  END IF;""",
            "contact": """
  IF OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email THEN
    UPDATE ticket_search SET doc = loket_ticket_doc(ticket_id)
    WHERE ticket_id IN (SELECT id FROM ticket WHERE contact_id = NEW.id);
  END IF;""",
        }

    # -- Both -------------------------------------------------------------------------------

    def create_triggers(self, db):
        if _sqlite(db):
            for name, body in self.sqlite_triggers.items():
                db.execute_sql(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
            return
        db.execute_sql(self.pg_doc_function)
        for table, body in self.pg_trigger_functions.items():
            _pg_function(db, f"ticket_search_{table}", body)
            db.execute_sql(f"DROP TRIGGER IF EXISTS ticket_search_{table} ON {table}")
            db.execute_sql(f"CREATE TRIGGER ticket_search_{table} AFTER "
                           f"{self.pg_events[table]} ON {table} "
                           f"FOR EACH ROW EXECUTE FUNCTION ticket_search_{table}()")
        if self.at_commit:
            _pg_function(db, PG_NEW_TICKET, _PG_NEW_TICKET_BODY)
            db.execute_sql(f"DROP TRIGGER IF EXISTS {PG_NEW_TICKET} ON ticket")
            db.execute_sql(f"CREATE CONSTRAINT TRIGGER {PG_NEW_TICKET} AFTER INSERT ON ticket "
                           "DEFERRABLE INITIALLY DEFERRED "
                           f"FOR EACH ROW EXECUTE FUNCTION {PG_NEW_TICKET}()")

    def drop_triggers(self, db):
        if _sqlite(db):
            for name in self.sqlite_triggers:
                db.execute_sql(f"DROP TRIGGER IF EXISTS {name}")
            return
        for table in self.pg_trigger_functions:
            db.execute_sql(f"DROP TRIGGER IF EXISTS ticket_search_{table} ON {table}")
            db.execute_sql(f"DROP FUNCTION IF EXISTS ticket_search_{table}()")
        if self.at_commit:
            db.execute_sql(f"DROP TRIGGER IF EXISTS {PG_NEW_TICKET} ON ticket")
            db.execute_sql(f"DROP FUNCTION IF EXISTS {PG_NEW_TICKET}()")

    def documents(self, db):
        """A SELECT of the documents of the tickets whose ids lie between its two parameters,
        made from their rows, in ``ticket_search``'s columns (rowid, number, subject, name,
        email, body on SQLite; ticket_id, doc on PostgreSQL)."""
        if _sqlite(db):
            return (f"SELECT t.id, t.id, t.subject, c.name, c.email, {self._sqlite_body('t.id')} "
                    "FROM ticket AS t LEFT JOIN contact AS c ON c.id = t.contact_id "
                    "WHERE t.id BETWEEN ? AND ?")
        return f"SELECT t.id, {PG_DOC} {self.pg_doc_from} WHERE t.id BETWEEN %s AND %s"

    def fill(self, db, first, last):
        """Write the documents of tickets ``first`` to ``last`` (none of them indexed yet)."""
        columns = "rowid, number, subject, name, email, body" if _sqlite(db) else "ticket_id, doc"
        db.execute_sql(f"INSERT INTO ticket_search ({columns}) {self.documents(db)}",
                       (first, last))

    def rebuild(self, db, first, last):
        """Make again the documents of tickets ``first`` to ``last`` that hold a message the
        other choice of messages would not (a notification), from their rows."""
        if _sqlite(db):
            db.execute_sql(
                f"UPDATE ticket_search SET body = {self._sqlite_body('ticket_search.rowid')} "
                "WHERE rowid IN (SELECT ticket_id FROM message WHERE ticket_id BETWEEN ? AND ? "
                "AND notification <> '')", (first, last))
        else:
            db.execute_sql(
                "UPDATE ticket_search SET doc = loket_ticket_doc(ticket_id) WHERE ticket_id IN "
                "(SELECT ticket_id FROM message WHERE ticket_id BETWEEN %s AND %s "
                "AND notification <> '')", (first, last))


# This migration's documents (every message); the names its code has always had.
DOCUMENT = Document()
SQLITE_TRIGGERS = DOCUMENT.sqlite_triggers
PG_DOC_FROM = DOCUMENT.pg_doc_from
PG_DOC_FUNCTION = DOCUMENT.pg_doc_function
PG_TRIGGER_FUNCTIONS = DOCUMENT.pg_trigger_functions
PG_EVENTS = DOCUMENT.pg_events
create_triggers = DOCUMENT.create_triggers
drop_triggers = DOCUMENT.drop_triggers
fill = DOCUMENT.fill


def fill_all(db, progress=sys.stderr):
    """Every ticket's document, in batches with progress on stderr."""
    (low, high) = db.execute_sql("SELECT MIN(id), MAX(id) FROM ticket").fetchone()
    if low is None:
        return
    started = time.monotonic()
    for first in range(low, high + 1, FILL_BATCH):
        fill(db, first, min(first + FILL_BATCH - 1, high))
        if high - low >= FILL_BATCH:
            print(f"\rticket_search: {min(first + FILL_BATCH - 1, high) - low + 1:,} / "
                  f"{high - low + 1:,} ({time.monotonic() - started:.0f} s)", end="",
                  file=progress, flush=True)
    if high - low >= FILL_BATCH:
        print(file=progress)


def up(migrator, db):
    if _sqlite(db):
        db.execute_sql(SQLITE_TABLE)
    else:
        for statement in PG_FUNCTIONS:
            db.execute_sql(statement)
        db.execute_sql("CREATE TABLE IF NOT EXISTS ticket_search (ticket_id INTEGER PRIMARY KEY, "
                       "doc tsvector NOT NULL)")
        db.execute_sql(PG_DOC_FUNCTION)
    fill_all(db)
    if _sqlite(db):
        for fts, _table, _columns in OLD_FTS:
            for event in ("insert", "delete", "update"):
                db.execute_sql(f"DROP TRIGGER IF EXISTS {fts}_{event}")
            db.execute_sql(f"DROP TABLE IF EXISTS {fts}")
    else:
        db.execute_sql("CREATE INDEX IF NOT EXISTS ticket_search_doc ON ticket_search "
                       "USING gin (doc)")
        for name, _table, _expression in OLD_PG_INDEXES:
            db.execute_sql(f"DROP INDEX IF EXISTS {name}")
        db.execute_sql("ANALYZE ticket_search")
    create_triggers(db)


def down(migrator, db):
    drop_triggers(db)
    db.execute_sql("DROP TABLE IF EXISTS ticket_search")
    if not _sqlite(db):
        db.execute_sql("DROP FUNCTION IF EXISTS loket_ticket_doc(integer)")
        db.execute_sql("DROP AGGREGATE IF EXISTS loket_words_agg(tsvector)")
        db.execute_sql("DROP FUNCTION IF EXISTS loket_words(text)")
        for name, table, expression in OLD_PG_INDEXES:
            db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})")
        return
    for fts, table, columns in OLD_FTS:
        names = ", ".join(columns)
        new = ", ".join(f"new.{c}" for c in columns)
        old = ", ".join(f"old.{c}" for c in columns)
        db.execute_sql(f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{table}', "
                       "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
        db.execute_sql(f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')")
        db.execute_sql(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
                       f"INSERT INTO {fts} (rowid, {names}) VALUES (new.id, {new}); END")
        db.execute_sql(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
                       f"INSERT INTO {fts} ({fts}, rowid, {names}) VALUES ('delete', old.id, {old}); END")
        db.execute_sql(f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {names} ON {table} BEGIN "
                       f"INSERT INTO {fts} ({fts}, rowid, {names}) VALUES ('delete', old.id, {old}); "
                       f"INSERT INTO {fts} (rowid, {names}) VALUES (new.id, {new}); END")
