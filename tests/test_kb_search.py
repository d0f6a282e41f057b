"""Knowledge-base search: one interface, ranked alike on SQLite (FTS5) and PostgreSQL.

The fixed set is the demo knowledge base (English, Indonesian, Filipino) on the test
desk; each query names the article that must come first. The suite runs on both
backends (LOKET_TEST_DATABASE_URL), so every case here is pinned on each.
"""

from __future__ import annotations

from typing import Any

import pytest

from core import db as core_db
from plugins.knowledge_base import demo
from plugins.knowledge_base.models import Article, Status
from plugins.knowledge_base.search import articles, search

from .factories import build_desk


@pytest.fixture
def kb(make_app: Any) -> Any:
    app = make_app(plugins=["knowledge_base"])
    with app.test_request_context("/"), core_db.connection():
        desk = build_desk()
        assert demo.load() > 0
        yield desk


def _first_slugs(query: str, language: str, limit: int = 3, **kwargs: Any) -> list[str]:
    return [a.slug for a in articles(search(query, language, limit=limit, **kwargs))]


@pytest.mark.parametrize("language, query, expected", [
    # English, stemmed: "verifying" finds "verification".
    ("en", "verification email did not arrive", "verification-email-never-arrived"),
    ("en", "I forgot my password", "reset-your-password"),
    ("en", "verifying link expired", "verification-link-expired"),
    ("en", "cancel subscription renewal", "cancel-your-subscription"),
    ("en", "strange charge on my card statement", "charge-you-do-not-recognise"),
    # Indonesian affixed forms meet their roots: "berlangganan" -> langganan,
    # "pembatalan" -> batal, "terverifikasi"/"memverifikasi" -> verifikasi.
    ("id", "bagaimana pembatalan berlangganan", "cancel-your-subscription"),
    ("id", "tautan verifikasi kedaluwarsa", "verification-link-expired"),
    ("id", "lupa kata sandi, mengatur ulang", "reset-your-password"),
    ("id", "email verifikasinya tidak masuk", "verification-email-never-arrived"),
    ("id", "tagihan kartu tidak dikenali", "charge-you-do-not-recognise"),
    # Filipino by words and affixes: "na-reset"/"i-reset", "kinansela"/"i-cancel".
    ("fil", "paano ko na-reset ang password", "reset-your-password"),
    ("fil", "hindi dumating ang verification email", "verification-email-never-arrived"),
    ("fil", "gusto kong i-cancel ang subscription", "cancel-your-subscription"),
    ("fil", "expired na link", "verification-link-expired"),
    # A typo: "pasword" and "subscripton" are one edit from the vocabulary's words.
    ("en", "reset pasword", "reset-your-password"),
    ("en", "cancel subscripton", "cancel-your-subscription"),
    ("id", "kata sandy lupa", "reset-your-password"),
])
def test_the_best_article_comes_first(kb, language, query, expected):
    found = _first_slugs(query, language, user_type_id=kb.member.id)
    assert found and found[0] == expected, found


def test_a_title_match_outranks_the_same_word_in_a_body(kb):
    # "spam" is in the body of the verification-email article; put it in another's title.
    other = Article.get((Article.slug == "typo-in-email-address") & (Article.language == "en")
                        & (Article.category == kb.login))
    other.title = "Spam"
    other.save()
    assert _first_slugs("spam", "en", user_type_id=kb.member.id)[0] == "typo-in-email-address"


def test_search_sees_only_published_articles_in_the_language_asked(kb):
    article = Article.get((Article.slug == "reset-your-password") & (Article.language == "id")
                          & (Article.category == kb.login))
    article.status = Status.DRAFT
    article.save()
    found = articles(search("kata sandi", "id", limit=10))
    assert found and all(a.language == "id" and a.status == Status.PUBLISHED for a in found)
    assert article.id not in [a.id for a in found]


def test_an_edited_article_is_found_by_its_new_words_only(kb):
    article = Article.get((Article.slug == "cancel-your-subscription") & (Article.language == "en"))
    article.title = "Stopping a membership"
    article.body = "Open your membership page and press stop."
    article.save()
    assert article.id in [h.article_id for h in search("membership", "en")]
    assert article.id not in [h.article_id for h in search("renewal", "en")]
    article.delete_instance()
    assert search("membership", "en") == []


def test_the_unfinished_last_word_matches_as_a_prefix(kb):
    assert "reset-your-password" in _first_slugs("forgot my passw", "en", partial=True)


def test_search_is_scoped_to_a_user_type(kb):
    # The test desk has "account" for studios only, so members never see its articles.
    assert _first_slugs("change my email address", "en", user_type_id=kb.studio.id)[0] == (
        "change-your-email-address")
    assert "change-your-email-address" not in _first_slugs(
        "change my email address", "en", user_type_id=kb.member.id, limit=10)


def test_a_query_of_stop_words_or_symbols_finds_nothing_and_does_not_fail(kb):
    assert search("how do I", "en") == []
    assert search('"*) OR NEAR(', "en") == []
    assert search("the AND -- '; DROP", "en") == []


@pytest.mark.parametrize("word, root", [
    ("i-reset", "reset"), ("nag-login", "login"), ("na-verify", "verify"),
    ("nagbayad", "bayad"), ("magbabayad", "bayad"), ("binayaran", "bayad"),
    ("bumili", "bili"), ("ipadala", "dala"), ("pinadala", "dala"),
    ("password", "password"), ("subscription", "subscription"), ("email", "email"),
    ("ako", "ako"),
])
def test_the_filipino_affix_stripper_finds_the_root(word, root):
    from plugins.knowledge_base.text import strip_filipino

    assert strip_filipino(word) == root


def test_indonesian_affixed_forms_share_a_stem():
    from plugins.knowledge_base.text import analyse

    assert analyse("pembayaran membayar dibayarkan", "id") == ["bayar", "bayar", "bayar"]
    assert analyse("pengaturan mengatur", "id") == ["atur", "atur"]


def test_the_search_page_falls_back_to_the_default_language(make_app):
    app = make_app(plugins=["knowledge_base"])
    with app.test_request_context("/"), core_db.connection():
        build_desk()
        demo.load()
        Article.delete().where(Article.language == "fil").execute()
    page = app.test_client().get("/kb/search?q=reset+password&lang=fil").get_data(as_text=True)
    assert "How to reset your password" in page and "kb-fallback" in page


def _bulk_fillers(kb: Any, count: int) -> None:
    """``count`` published English articles with "email" in the title and the body."""
    from plugins.knowledge_base.text import analyse

    rows = [{"group": f"g{n}", "language": "en", "category": kb.login.id,
             "user_type": kb.member.id, "slug": f"filler-{n}", "title": f"Email note {n}",
             "body": "email email", "status": Status.PUBLISHED,
             "index_title": " ".join(analyse(f"Email note {n}", "en")),
             "index_body": "email email"} for n in range(count)]
    for start in range(0, len(rows), 200):
        Article.insert_many(rows[start:start + 200]).execute()


def _union_queries(monkeypatch: Any) -> list[str]:
    """The full-text queries the searches below send (MATCH or to_tsquery text)."""
    database = Article._meta.database.obj
    sent: list[str] = []
    original = database.execute_sql

    def spying(sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        if "bm25(" in sql or "ts_rank_cd(" in sql:  # the ranked searches
            sent.append(next(p for p in params if isinstance(p, str) and "(" in p))
        return original(sql, params, *args, **kwargs)

    monkeypatch.setattr(database, "execute_sql", spying)
    return sent


def test_a_union_leaves_out_words_that_are_in_almost_every_article(kb, monkeypatch):
    # 1,200 articles with "email" in the title, and one that says "zebra" in its body only.
    # Scored with "email", the title matches would outrank the body match (ts_rank_cd has
    # no notion of a word's rarity); left out, "zebra" decides, on both backends. No
    # ANALYZE: the counts come from the index itself, not from the planner's statistics.
    _bulk_fillers(kb, 1200)
    Article.create(language="en", category=kb.login, slug="crossing-the-road",
                   title="Crossing the road", body="Look for the zebra before you cross.",
                   status=Status.PUBLISHED)
    sent = _union_queries(monkeypatch)
    found = _first_slugs("email zebra", "en", limit=2)
    assert found[0] == "crossing-the-road", found
    union = sent[-1]
    assert "zebra" in union and "email" not in union, sent
    # A rarer word beside it: the union keeps both rare ones, the verification articles lead.
    found = _first_slugs("email zebra verification", "en", limit=3)
    assert {"verification-email-never-arrived", "verification-link-expired"} <= set(found)


def test_below_a_thousand_articles_a_union_keeps_every_word(kb, monkeypatch):
    sent = _union_queries(monkeypatch)
    _first_slugs("email zebra", "en")
    assert "email" in sent[-1] and "zebra" in sent[-1], sent


def test_a_union_keeps_the_rarest_words_up_to_its_budget():
    from plugins.knowledge_base.search import UNION_BUDGET, _rarest

    groups = [["common"], ["rare"], ["middle", "middling"], ["absent"]]
    docs = {"common": 1900, "rare": 3, "middle": UNION_BUDGET - 100, "middling": 50}
    # "common" is under 2% of 100,000 articles, but the budget is spent before it.
    assert _rarest(groups, docs, 100_000) == [["rare"], ["middle", "middling"], ["absent"]]
    # More than 2% of the articles: left out whatever the budget.
    assert _rarest([["rare"], ["common"]], docs, 50_000) == [["rare"]]
    # Only common words: the rarest of them stays, so the union is never empty.
    assert _rarest([["common"], ["middle"]], {"common": 5000, "middle": 4000},
                   100_000) == [["middle"]]
    assert _rarest(groups, docs, 999) == groups  # a small desk keeps every word


def _body_fillers(kb: Any, count: int, word: str) -> None:
    """``count`` published English articles with ``word`` in the body only."""
    rows = [{"group": f"b{n}", "language": "en", "category": kb.login.id,
             "user_type": kb.member.id, "slug": f"body-{n}", "title": f"Note {n}",
             "body": f"{word} {word} {word}", "status": Status.PUBLISHED,
             "index_title": f"note {n}", "index_body": f"{word} {word} {word}"}
            for n in range(count)]
    for start in range(0, len(rows), 200):
        Article.insert_many(rows[start:start + 200]).execute()


def test_an_old_title_match_outranks_many_newer_body_matches(kb):
    # PostgreSQL ranks a bounded set of candidates: the title matches and the newest other
    # matches. The title match here is older than all of the 400 body matches, so it is a
    # candidate only through the title's own index.
    Article.create(language="en", category=kb.login, slug="zebra-crossings",
                   title="Zebra crossings", body="Where to cross.", status=Status.PUBLISHED)
    _body_fillers(kb, 400, "zebra")
    assert _first_slugs("zebra", "en")[0] == "zebra-crossings"
    assert _first_slugs("zebr", "en", partial=True)[0] == "zebra-crossings"


def test_postgresql_ranks_at_most_the_bounded_candidates(kb, monkeypatch):
    from plugins.knowledge_base import search as module

    if module._is_sqlite():
        pytest.skip("FTS5's bm25 ranks every match (a tenth of ts_rank_cd's cost)")
    _body_fillers(kb, 60, "zebra")
    assert len(search("zebra", "en", limit=100)) == 60
    monkeypatch.setattr(module, "RANKED_TITLES", 5)
    monkeypatch.setattr(module, "RANKED_NEWEST", 7)
    found = search("zebra", "en", limit=100)
    assert len(found) == 7  # no title has "zebra": the seven newest body matches
    newest = [a.id for a in Article.select(Article.id).where(Article.slug.startswith("body-"))
              .order_by(Article.id.desc()).limit(7)]
    assert sorted(h.article_id for h in found) == sorted(newest)


def test_a_half_typed_word_is_not_taken_for_a_typo(kb, monkeypatch):
    from plugins.knowledge_base import search as module

    looked_up: list[list[str]] = []
    original = module._known_words

    def spying(words: list[str], language: str, prefix: str | None = None) -> set[str]:
        looked_up.append(words)
        return original(words, language, prefix)

    monkeypatch.setattr(module, "_known_words", spying)
    # "verif" starts "verification": no look-up of its one-edit variants, and it still
    # finds the verification articles as a prefix.
    assert module.corrections(["verif"], "en", prefix="verif") == {}
    assert looked_up == [["verif"]]
    assert "verification-link-expired" in _first_slugs("verif", "en", partial=True)
    # A finished word that is no word's start is still corrected, typed or not.
    assert "password" in module.corrections(["pasword"], "en", prefix="pasword")["pasword"]
    assert _first_slugs("reset pasword", "en", partial=True)[0] == "reset-your-password"
    # Without the typing flag, "verif" gets its variants looked up as before.
    looked_up.clear()
    module.corrections(["verif"], "en")
    assert len(looked_up) == 2


def test_the_vocabulary_look_up_finds_exactly_the_known_words(kb):
    """One statement on PostgreSQL (the words as one literal), chunks on SQLite: same set."""
    from plugins.knowledge_base import search as module
    from plugins.knowledge_base.text import one_edit_away

    variants = sorted(one_edit_away("pasword") | one_edit_away("verifcation"))
    assert len(variants) > 900  # past SQLite's chunk of 900 words
    words = [*variants, "password", "zzzzqx"]
    found = module._known_words(words, "en")
    assert "password" in found and "verification" in found
    assert "zzzzqx" not in found and "pasword" not in found
    assert found <= set(words)
    # Another language's vocabulary is not consulted; nothing asked, nothing found.
    assert module._known_words(["password"], "xx") == set()
    assert module._known_words([], "en") == set()
    # With the word being typed: also the first word from it on, if one starts with it.
    assert any(w.startswith("verif") for w in module._known_words(["verif"], "en", "verif"))
    assert module._known_words(["zzzzqx"], "en", "zzzzqx") == set()
    first = module._known_words([], "en", "pass")
    assert len(first) == 1 and first.pop().startswith("pass")


def test_sqlite_keeps_a_full_text_table_per_language_in_step(kb):
    from plugins.knowledge_base import search as module

    if not module._is_sqlite():
        pytest.skip("PostgreSQL has a partial index per language instead")
    database = Article._meta.database.obj

    def indexed(language: str, word: str) -> list[int]:
        table = f"kb_article_fts_{language}"
        return [row[0] for row in database.execute_sql(
            f"SELECT rowid FROM {table} WHERE {table} MATCH ?", [f'"{word}"']).fetchall()]

    article = Article.create(language="en", category=kb.login, slug="zebra-crossings",
                             title="Zebra crossings", body="Where to cross.",
                             status=Status.PUBLISHED)
    assert indexed("en", "zebra") == [article.id] and indexed("id", "zebra") == []
    assert [h.article_id for h in search("zebra", "en")] == [article.id]
    article.title = "Penyeberangan zebra"
    article.language = "id"
    article.save()  # another language: out of the English table, into the Indonesian one
    assert indexed("en", "zebra") == [] and indexed("id", "zebra") == [article.id]
    assert search("zebra", "en") == [] and [h.article_id for h in search("zebra", "id")] == [
        article.id]
    article.title = "Penyeberangan jalan"
    article.save()  # same language, new words: the old ones are gone
    assert indexed("id", "zebra") == [] and indexed("id", "jalan") == [article.id]
    article.delete_instance()
    assert indexed("id", "jalan") == []
    assert search("jalan", "id") == []


def _lexeme_counts() -> tuple[dict, dict]:
    """(kb_lexeme's counts above zero, the same counted from the published articles now)."""
    database = Article._meta.database.obj
    kept = {(language, lexeme): n for language, lexeme, n in database.execute_sql(
        "SELECT language, lexeme, articles FROM kb_lexeme WHERE articles <> 0").fetchall()}
    actual = {(language, lexeme): n for language, lexeme, n in database.execute_sql(
        "SELECT a.language, l.lexeme, count(*) "
        "FROM kb_article a, unnest(tsvector_to_array(a.search_vector)) AS l(lexeme) "
        "WHERE a.status = %s GROUP BY 1, 2", [Status.PUBLISHED]).fetchall()}
    return kept, actual


def test_postgresql_keeps_each_lexemes_article_count_in_step(kb):
    from plugins.knowledge_base import search as module

    if module._is_sqlite():
        pytest.skip("SQLite counts a union's words in its FTS5 index")

    def count(language: str, lexeme: str) -> int:
        kept, actual = _lexeme_counts()
        assert kept == actual
        return kept.get((language, lexeme), 0)

    assert count("en", "password") > 0  # the demo articles, counted as they were saved
    article = Article.create(language="en", category=kb.login, slug="zebra-crossings",
                             title="Zebra crossings", body="Where zebras cross.")
    assert count("en", "zebra") == 0  # a draft is not counted
    article.status = Status.PUBLISHED
    article.save()
    assert count("en", "zebra") == 1  # stemmed as PostgreSQL indexes it: "zebras" is "zebra"
    article.title = "Giraffe crossings"
    article.body = "Where giraffes cross."
    article.save()
    assert count("en", "zebra") == 0 and count("en", "giraff") == 1
    article.language = "id"
    article.save()
    assert count("en", "giraff") == 0 and count("id", "giraffes") == 1
    article.status = Status.DRAFT
    article.save()
    assert count("id", "giraffes") == 0
    _body_fillers(kb, 30, "zebra")  # a bulk insert: one statement, counted as one
    assert count("en", "zebra") == 30
    Article.update(position=7).where(Article.slug.startswith("body-")).execute()
    assert count("en", "zebra") == 30  # no word changed
    Article.delete().where(Article.slug.in_(["body-1", "body-2"])).execute()
    assert count("en", "zebra") == 28
    article.delete_instance()
    assert count("id", "giraffes") == 0


def test_postgresql_counts_the_articles_already_there_when_migrated(kb):
    """Migration 0005 backfills the counts of the articles it finds (and its down undoes it)."""
    import importlib.util
    from pathlib import Path

    from plugins.knowledge_base import search as module

    if module._is_sqlite():
        pytest.skip("SQLite has no lexeme counts")
    path = Path(module.__file__).parent / "migrations" / "0005_lexeme_counts.py"
    spec = importlib.util.spec_from_file_location("kb_migration_0005", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    database = Article._meta.database.obj
    migration.down(None, database)
    _body_fillers(kb, 5, "zebra")  # saved while nothing counts
    with database.atomic():  # as the migration runner runs it
        migration.up(None, database)
    kept, actual = _lexeme_counts()
    assert kept == actual and kept[("en", "zebra")] == 5


def _union_groups(groups: list[list[str]], language: str = "en") -> tuple[list[int], bool]:
    """What the intersection's statement decides about a union: (kept groups, possible)."""
    from plugins.knowledge_base import search as module

    terms = [(n, term) for n, group in enumerate(groups, 1) for term in group]
    config = module.POSTGRES_CONFIGS[language]
    row = Article._meta.database.obj.execute_sql(
        "SELECT kept, possible FROM kb_union_groups(%s::int[], %s::text[], %s::regconfig, "
        "%s, %s, %s, %s)",
        [[n for n, _ in terms], [t for _, t in terms], config, language, module.PRUNE_FROM,
         module.POSTGRES_UNION_BUDGET, module.COMMON_SHARE]).fetchone()
    return row[0], row[1]


def test_postgresql_keeps_a_unions_words_as_rarest_does(kb):
    from peewee import fn

    from plugins.knowledge_base import search as module

    if module._is_sqlite():
        pytest.skip("SQLite keeps them with _rarest itself")
    _body_fillers(kb, 300, "zebra")
    _bulk_fillers(kb, 2100)  # "email" in more than 2% of the articles
    groups = [["email"], ["zebra"], ["password"], ["renew"], ["nosuchword"]]
    kept, actual = _lexeme_counts()
    docs = {word: kept.get(("en", word), 0) for group in groups for word in group}
    assert docs["zebra"] == 300 and docs["email"] > 2100 and docs["nosuchword"] == 0
    total = Article.select(fn.max(Article.id)).scalar()  # the size, as the search takes it
    expected = module._rarest(groups, docs, total, module.POSTGRES_UNION_BUDGET)
    found, possible = _union_groups(groups)
    assert [groups[n - 1] for n in found] == expected
    assert ["email"] not in expected and ["zebra"] not in expected  # past the budget
    assert not possible  # no article has "nosuchword": the intersection is not run
    # Only common words: the rarest stays. A prefix counts its whole range of lexemes.
    assert _union_groups([["email"], ["zebra"]]) == ([2], True)
    assert _union_groups([["email"], ["zebr:*"]]) == ([2], True)
    # A word of PostgreSQL's stop list is in no index and no query: it rules nothing out.
    assert _union_groups([["again"], ["zebra"]])[1]
