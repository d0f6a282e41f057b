"""PostgreSQL: a full-text index per language, so a search reads only its language's matches."""
from peewee import *

# The general index finds every language's articles with a word ("email", "password" are
# words in all three) and the heap visit of each, to drop the other languages, was most of
# a search's time; the planner also ANDed it with a scan of the (category, language, slug)
# index, 30,000 entries for one language of 100,000 articles. A partial index per language
# gives the one language's matches directly. Other languages keep the general index.
LANGUAGES = ("en", "id", "fil")


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        return  # FTS5 has no partial index; the language is filtered after the match
    for language in LANGUAGES:
        db.execute_sql(
            f"CREATE INDEX kb_article_search_vector_{language} ON kb_article "
            f"USING GIN (search_vector) WHERE language = '{language}'")


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        return
    for language in LANGUAGES:
        db.execute_sql(f"DROP INDEX IF EXISTS kb_article_search_vector_{language}")
