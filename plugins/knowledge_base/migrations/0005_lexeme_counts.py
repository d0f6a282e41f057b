"""PostgreSQL: how many published articles hold each lexeme, per language, kept by triggers.

A union search leaves out words that are in many articles (``search._rarest``); it counted
each word's articles in the full-text index on every request, 3 to 5 ms of a suggestion at
100,000 articles. ``kb_lexeme`` holds the count (document frequency) of every lexeme of
the published articles, as PostgreSQL indexes it (``tsvector_to_array(search_vector)``:
stemmed by the language's own configuration, so the counted unit is what a tsquery
matches), read with one index look-up a word.

Statement-level triggers with transition tables keep it in step with every write to
kb_article, from the console, a script or a bulk load alike (one aggregated write a
statement, not one a row): publishing, editing and inserting add the new lexemes,
unpublishing, editing and deleting take the old ones away; an edit writes only the
lexemes whose count changed. Every write is an upsert in key order, so two saves at once
wait for each other (a common word's row) but cannot deadlock. The lexeme compares
bytewise ("C"), so a prefix is an index range. Rows are kept at zero (the vocabulary
only grows, as kb_term's). A TRUNCATE of kb_article is not counted (nothing here does
one). SQLite counts in its FTS5 index, which stops at the budget and is fast enough
(``search._without_common``).
"""
from peewee import *

FUNCTION = """
    CREATE FUNCTION kb_lexeme_count() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        INSERT INTO kb_lexeme AS k (language, lexeme, articles)
        SELECT n.language, l.lexeme, count(*)
        FROM kb_lexeme_new n, unnest(tsvector_to_array(n.search_vector)) AS l(lexeme)
        WHERE n.status = 'published' GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (language, lexeme) DO UPDATE SET articles = k.articles + excluded.articles;
      ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO kb_lexeme AS k (language, lexeme, articles)
        SELECT o.language, l.lexeme, -count(*)
        FROM kb_lexeme_old o, unnest(tsvector_to_array(o.search_vector)) AS l(lexeme)
        WHERE o.status = 'published' GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (language, lexeme) DO UPDATE SET articles = k.articles + excluded.articles;
      ELSE
        -- The net change only: an edit that keeps the words (a new position, a review
        -- date) writes nothing.
        INSERT INTO kb_lexeme AS k (language, lexeme, articles)
        SELECT language, lexeme, sum(change) FROM (
          SELECT n.language, l.lexeme, 1 AS change
          FROM kb_lexeme_new n, unnest(tsvector_to_array(n.search_vector)) AS l(lexeme)
          WHERE n.status = 'published'
          UNION ALL
          SELECT o.language, l.lexeme, -1
          FROM kb_lexeme_old o, unnest(tsvector_to_array(o.search_vector)) AS l(lexeme)
          WHERE o.status = 'published') AS changes
        GROUP BY 1, 2 HAVING sum(change) <> 0 ORDER BY 1, 2
        ON CONFLICT (language, lexeme) DO UPDATE SET articles = k.articles + excluded.articles;
      END IF;
      RETURN NULL;
    END
    $$ LANGUAGE plpgsql"""


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    # No article is written between the count and the triggers (the migration is one
    # transaction; readers go on).
    db.execute_sql("LOCK TABLE kb_article IN SHARE ROW EXCLUSIVE MODE")
    db.execute_sql(
        "CREATE TABLE kb_lexeme (language varchar(8) NOT NULL, "
        'lexeme text COLLATE "C" NOT NULL, articles integer NOT NULL, '
        "PRIMARY KEY (language, lexeme))")
    db.execute_sql(
        "INSERT INTO kb_lexeme (language, lexeme, articles) "
        "SELECT a.language, l.lexeme, count(*) "
        "FROM kb_article a, unnest(tsvector_to_array(a.search_vector)) AS l(lexeme) "
        "WHERE a.status = 'published' GROUP BY 1, 2")
    db.execute_sql(FUNCTION)
    db.execute_sql(
        "CREATE TRIGGER kb_lexeme_insert AFTER INSERT ON kb_article "
        "REFERENCING NEW TABLE AS kb_lexeme_new "
        "FOR EACH STATEMENT EXECUTE FUNCTION kb_lexeme_count()")
    db.execute_sql(
        "CREATE TRIGGER kb_lexeme_update AFTER UPDATE ON kb_article "
        "REFERENCING OLD TABLE AS kb_lexeme_old NEW TABLE AS kb_lexeme_new "
        "FOR EACH STATEMENT EXECUTE FUNCTION kb_lexeme_count()")
    db.execute_sql(
        "CREATE TRIGGER kb_lexeme_delete AFTER DELETE ON kb_article "
        "REFERENCING OLD TABLE AS kb_lexeme_old "
        "FOR EACH STATEMENT EXECUTE FUNCTION kb_lexeme_count()")


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql("DROP FUNCTION IF EXISTS kb_lexeme_count() CASCADE")
    db.execute_sql("DROP TABLE IF EXISTS kb_lexeme")
