"""Articles, their search index (FTS5 on SQLite, tsvector + GIN on PostgreSQL), votes and reports."""
from peewee import *


def up(migrator, db):
    class UserType(Model):
        class Meta:
            database = db
            table_name = "user_type"

    class Category(Model):
        class Meta:
            database = db
            table_name = "category"

    class Ticket(Model):
        class Meta:
            database = db
            table_name = "ticket"

    class Article(Model):
        group = CharField(max_length=32, index=True)
        language = CharField(max_length=8, default="en")
        category = ForeignKeyField(Category, on_delete="RESTRICT")
        user_type = ForeignKeyField(UserType, on_delete="RESTRICT")
        slug = CharField(max_length=120)
        title = CharField(max_length=200)
        body = TextField(default="")
        body_html = TextField(default="")
        status = CharField(max_length=16, default="draft")
        position = IntegerField(default=0)
        last_reviewed = DateField(null=True)
        updated_at = DateTimeField()
        index_title = TextField(default="")
        index_body = TextField(default="")

        class Meta:
            database = db
            table_name = "kb_article"
            indexes = ((("group", "language"), True), (("category", "language", "slug"), True),
                       (("category", "status", "position"), False))

    class Term(Model):
        language = CharField(max_length=8)
        word = CharField(max_length=64)

        class Meta:
            database = db
            table_name = "kb_term"
            primary_key = CompositeKey("language", "word")

    class Vote(Model):
        article = ForeignKeyField(Article, on_delete="CASCADE")
        visitor = CharField(max_length=64)
        helpful = BooleanField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "kb_vote"
            indexes = ((("article", "visitor"), True),)

    class View(Model):
        article = ForeignKeyField(Article, on_delete="CASCADE")
        visitor = CharField(max_length=64)
        source = CharField(max_length=16, default="")
        created_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "kb_view"
            indexes = ((("article", "created_at"), False),)

    class SuggestionShown(Model):
        article = ForeignKeyField(Article, on_delete="CASCADE")
        visitor = CharField(max_length=64)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "kb_suggestion_shown"
            indexes = ((("article", "visitor"), True),)

    class VisitorTicket(Model):
        visitor = CharField(max_length=64, index=True)
        ticket = ForeignKeyField(Ticket, on_delete="CASCADE", unique=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "kb_visitor_ticket"

    class Search(Model):
        query = CharField(max_length=200)
        language = CharField(max_length=8)
        results = IntegerField()
        created_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "kb_search"

    db.create_tables([Article, Term, Vote, View, SuggestionShown, VisitorTicket, Search])
    if isinstance(db, SqliteDatabase):
        _sqlite_index(db)
    else:
        _postgresql_index(db)


def _sqlite_index(db):
    # An external-content FTS5 table over the analysed columns; the triggers keep it in step
    # with every write to kb_article, from the console, a script or a bulk load alike.
    db.execute_sql(
        "CREATE VIRTUAL TABLE kb_article_fts USING fts5(index_title, index_body, "
        "content='kb_article', content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
    # How many articles hold each word: a union leaves out words that are everywhere.
    db.execute_sql("CREATE VIRTUAL TABLE kb_article_fts_vocab USING fts5vocab(kb_article_fts, row)")
    db.execute_sql(
        "CREATE TRIGGER kb_article_fts_insert AFTER INSERT ON kb_article BEGIN "
        "INSERT INTO kb_article_fts(rowid, index_title, index_body) "
        "VALUES (new.id, new.index_title, new.index_body); END")
    db.execute_sql(
        "CREATE TRIGGER kb_article_fts_delete AFTER DELETE ON kb_article BEGIN "
        "INSERT INTO kb_article_fts(kb_article_fts, rowid, index_title, index_body) "
        "VALUES ('delete', old.id, old.index_title, old.index_body); END")
    db.execute_sql(
        "CREATE TRIGGER kb_article_fts_update AFTER UPDATE ON kb_article BEGIN "
        "INSERT INTO kb_article_fts(kb_article_fts, rowid, index_title, index_body) "
        "VALUES ('delete', old.id, old.index_title, old.index_body); "
        "INSERT INTO kb_article_fts(rowid, index_title, index_body) "
        "VALUES (new.id, new.index_title, new.index_body); END")


def _postgresql_index(db):
    # Indonesian and English are stemmed by PostgreSQL's own Snowball dictionaries; Filipino
    # has none, so its words come affix-stripped from Python (index_*) into the 'simple' one.
    # The title weighs A, the body B, so ts_rank_cd puts title matches first.
    db.execute_sql("ALTER TABLE kb_article ADD COLUMN search_vector tsvector")
    db.execute_sql("CREATE INDEX kb_article_search_vector ON kb_article USING GIN (search_vector)")
    db.execute_sql("""
        CREATE FUNCTION kb_article_search_vector() RETURNS trigger AS $$
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
        $$ LANGUAGE plpgsql""")
    db.execute_sql(
        "CREATE TRIGGER kb_article_search_vector BEFORE INSERT OR UPDATE ON kb_article "
        "FOR EACH ROW EXECUTE FUNCTION kb_article_search_vector()")


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        db.execute_sql("DROP TABLE IF EXISTS kb_article_fts_vocab")
        db.execute_sql("DROP TABLE IF EXISTS kb_article_fts")
    else:
        db.execute_sql("DROP FUNCTION IF EXISTS kb_article_search_vector() CASCADE")
    for table in ("kb_search", "kb_visitor_ticket", "kb_suggestion_shown", "kb_view", "kb_vote",
                  "kb_term", "kb_article"):
        migrator.migrate(migrator.drop_table(table))
