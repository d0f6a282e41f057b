"""PostgreSQL: the title's own tsvector and index, so a search finds title matches cheaply.

``ts_rank_cd`` reads an article's whole ``search_vector`` (title and body); ranking every
article a common word matches was most of a search's time. A search now ranks a bounded
set of candidates: its title matches, found in this small index, and the newest of the
other matches (see ``search._search_postgresql``). SQLite is left alone (FTS5's bm25
costs a tenth as much an article).
"""
from peewee import *

LANGUAGES = ("en", "id", "fil")

FUNCTION = """
    CREATE OR REPLACE FUNCTION kb_article_search_vector() RETURNS trigger AS $$
    BEGIN
      IF NEW.language = 'id' THEN
        NEW.title_vector := to_tsvector('indonesian', NEW.title);
        NEW.search_vector := setweight(NEW.title_vector, 'A')
                          || setweight(to_tsvector('indonesian', NEW.body), 'B');
      ELSIF NEW.language = 'en' THEN
        NEW.title_vector := to_tsvector('english', NEW.title);
        NEW.search_vector := setweight(NEW.title_vector, 'A')
                          || setweight(to_tsvector('english', NEW.body), 'B');
      ELSE
        NEW.title_vector := to_tsvector('simple', NEW.index_title);
        NEW.search_vector := setweight(NEW.title_vector, 'A')
                          || setweight(to_tsvector('simple', NEW.index_body), 'B');
      END IF;
      RETURN NEW;
    END
    $$ LANGUAGE plpgsql"""

PREVIOUS_FUNCTION = """
    CREATE OR REPLACE FUNCTION kb_article_search_vector() RETURNS trigger AS $$
    BEGIN
      IF NEW.language = 'id' THEN
        NEW.search_vector := setweight(to_tsvector('indonesian', NEW.title), 'A')
                          || setweight(to_tsvector('indonesian', NEW.body), 'B');
      ELSIF NEW.language = 'en' THEN
        NEW.search_vector := setweight(to_tsvector('english', NEW.title), 'A')
                          || setweight(to_tsvector('english', NEW.body), 'B');
      ELSE
        NEW.search_vector := setweight(to_tsvector('simple', NEW.index_title), 'A')
                          || setweight(to_tsvector('simple', NEW.index_body), 'B');
      END IF;
      RETURN NEW;
    END
    $$ LANGUAGE plpgsql"""


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql("ALTER TABLE kb_article ADD COLUMN title_vector tsvector")
    db.execute_sql(FUNCTION)
    # Existing articles (the trigger fires for each row and sets both vectors alike).
    db.execute_sql(
        "UPDATE kb_article SET title_vector = CASE language "
        "WHEN 'id' THEN to_tsvector('indonesian', title) "
        "WHEN 'en' THEN to_tsvector('english', title) "
        "ELSE to_tsvector('simple', index_title) END")
    for language in LANGUAGES:
        db.execute_sql(
            f"CREATE INDEX kb_article_title_vector_{language} ON kb_article "
            f"USING GIN (title_vector) WHERE language = '{language}'")
    db.execute_sql("CREATE INDEX kb_article_title_vector ON kb_article USING GIN (title_vector)")


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql(PREVIOUS_FUNCTION)
    db.execute_sql("ALTER TABLE kb_article DROP COLUMN IF EXISTS title_vector")
