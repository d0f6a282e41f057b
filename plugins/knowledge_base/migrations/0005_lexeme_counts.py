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

# What a union search keeps of its word groups, and whether the intersection can find
# anything at all, from the counts (see search._search_postgresql, which runs it in the
# intersection's statement). A function, not SQL in the statement: PL/pgSQL keeps its
# statement's plan for the session, where the same SQL in every search's statement was
# planned each time (~0.2 ms at 100,000 articles), needed or not. The generic plan, always
# (index look-ups whatever the words): left to choose, PostgreSQL planned it anew for
# each call (0.37 ms a call instead of 0.17). The search passes the
# thresholds, so they stay in Python (search.py). Each term (a group's words, a prefix
# ending in ":*") counts the articles of its lexemes as PostgreSQL indexes them
# (to_tsvector with the language's configuration, as to_tsquery makes them); a prefix
# counts its whole range of lexemes, an upper bound. Rarest first, a group is kept while
# the running sum is within the budget and it is in no more than the common share of the
# articles (both fail only further down, so "kept" is one condition); the rarest is
# always kept, and below prune_from articles every group is. The size is the highest id.
# The intersection is possible unless a group's words are in no published article,
# counting only terms PostgreSQL indexes (a word of its stop list, to_tsquery drops).
GROUPS_FUNCTION = """
    CREATE FUNCTION kb_union_groups(group_numbers integer[], group_terms text[],
                                    ts_config regconfig, for_language text,
                                    prune_from integer, budget integer,
                                    common_share double precision,
                                    OUT kept integer[], OUT possible boolean) AS $$
    BEGIN
      WITH counts AS (
        SELECT u.g, coalesce(sum(c.n), 0) AS n, bool_and(s.lexeme IS NOT NULL) AS indexed
        FROM unnest(group_numbers, group_terms) AS u(g, t)
        LEFT JOIN LATERAL unnest(tsvector_to_array(to_tsvector(ts_config,
          rtrim(u.t, ':*')))) AS s(lexeme) ON true
        LEFT JOIN LATERAL (SELECT sum(k.articles) AS n FROM kb_lexeme k
          WHERE k.language = for_language AND k.lexeme >= s.lexeme AND k.lexeme < s.lexeme
            || CASE WHEN right(u.t, 2) = ':*' THEN chr(1114111) ELSE chr(1) END) AS c ON true
        GROUP BY u.g),
      ranked AS (SELECT g, n, sum(n) OVER (ORDER BY n, g) AS reached,
                        row_number() OVER (ORDER BY n, g) AS place FROM counts),
      size AS (SELECT coalesce(max(id), 0) AS total FROM kb_article)
      SELECT (SELECT array_agg(r.g ORDER BY r.g) FROM ranked r, size
              WHERE r.place = 1 OR size.total < prune_from
                 OR (r.reached <= budget AND r.n <= common_share * size.total)),
             NOT coalesce((SELECT bool_or(n = 0 AND indexed) FROM counts), false)
      INTO kept, possible;
    END
    $$ LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan"""


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
    db.execute_sql(GROUPS_FUNCTION)
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
    db.execute_sql("DROP FUNCTION IF EXISTS kb_union_groups(integer[], text[], regconfig, text, "
                   "integer, integer, double precision)")
    db.execute_sql("DROP TABLE IF EXISTS kb_lexeme")
