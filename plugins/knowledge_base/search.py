"""Article search: one interface, two backends (SQLite FTS5 with bm25, PostgreSQL with ts_rank_cd).

Both backends take the same analysed words (``text.analyse``), OR them together (a
customer types a sentence, not keywords: an article matching most of its words ranks
first, one matching a few still shows) and weigh a title match above a body match.
The last word may be unfinished while the customer types, so it also matches as a
prefix. A word the published articles never use is probably a typo: words one edit
away from it that they do use (the ``kb_term`` vocabulary) join the query, one
indexed look-up, so "pasword" still finds "password".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import peewee

from core.state import loket

from .models import Article, Status
from .text import STOP_WORDS, analyse, one_edit_away, search_words, stem, strip_filipino

# bm25 weights per FTS column (index_title, index_body); ts_rank_cd weights for {D, C, B, A}.
SQLITE_WEIGHTS = (10.0, 1.0)
POSTGRES_WEIGHTS = "{0.05, 0.1, 0.2, 1.0}"
POSTGRES_CONFIGS = {"en": "english", "id": "indonesian"}
# Languages with a full-text table of their own on SQLite (migration 0004).
FTS_LANGUAGES = ("en", "id", "fil")


@dataclass(frozen=True)
class Hit:
    """A found article, with what a result list shows (no second query per result)."""

    article_id: int
    score: float  # higher is better, comparable only within one search
    title: str = ""
    slug: str = ""
    language: str = ""
    category_slug: str = ""
    user_type_slug: str = ""
    body_start: str = ""  # the first characters of the Markdown body, for an excerpt


# What every backend selects for a Hit after (id, score).
HIT_COLUMNS = ("a.title, a.slug, a.language, c.slug, u.slug, substr(a.body, 1, 400) "
               "FROM kb_article a JOIN category c ON c.id = a.category_id "
               "JOIN user_type u ON u.id = a.user_type_id")


def _is_sqlite() -> bool:
    return isinstance(loket().database, peewee.SqliteDatabase)


def _known_words(words: list[str], language: str, prefix: str | None = None) -> set[str]:
    """The ones of ``words`` in the vocabulary (raw SQL: peewee takes ms to build a long IN).

    PostgreSQL gets the words as one text literal split on the server
    (``string_to_array``): a typo's ~300 variants as an IN list of that many parameters
    cost ~1.7 ms at 100,000 articles, mostly in quoting, parsing and planning them one
    by one. The words are ASCII letters (``corrections``), so a space separates them
    unambiguously; anything else is left out of the look-up. Each word is then one probe
    of the primary key (a lateral look-up): as ``word = ANY(...)`` the array was folded
    to a constant and the planner estimated each of its elements, 0.85 ms of planning for
    one typo's 389 variants and 1.7 ms for three typos' 751 (then 0.07 ms; the whole
    look-up 2.0 -> 0.6 ms and 3.8 -> 1.1 ms, same words).

    ``prefix``: also the first vocabulary word from it on, so the caller can tell whether
    a word starts with it, on PostgreSQL in the same statement (a half-typed last word
    is in most suggestions: a round trip each). The range is exact for the binary
    collation of SQLite and PostgreSQL's "C"; under another collation a miss only means
    the word gets its corrections, as before.
    """
    first = ("SELECT word FROM kb_term WHERE language = {0} AND word >= {0} AND word < {0} "
             "ORDER BY word LIMIT 1")
    after = [language, prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)] if prefix else []
    if not _is_sqlite():
        plain = [w for w in words if w.isascii() and w.isalpha()]
        parts, args = [], []
        if plain:
            parts.append("SELECT v.word FROM unnest(string_to_array(%s, ' ')) AS v(word) "
                         "CROSS JOIN LATERAL (SELECT 1 FROM kb_term t WHERE t.language = %s "
                         "AND t.word = v.word LIMIT 1) AS known")
            args += [" ".join(plain), language]
        if prefix:
            parts.append(f"({first.format('%s')})")
            args += after
        if not parts:
            return set()
        rows = loket().database.execute_sql(" UNION ALL ".join(parts), args)
        return {row[0] for row in rows}
    found: set[str] = set()
    for start in range(0, len(words), 900):  # below every SQLite's variable limit
        chunk = words[start:start + 900]
        sql = ("SELECT word FROM kb_term WHERE language = ? "
               f"AND word IN ({', '.join(['?'] * len(chunk))})")
        found |= {row[0] for row in loket().database.execute_sql(sql, [language, *chunk])}
    if prefix and prefix not in found:  # else the first word from it on is itself
        found |= {row[0] for row in loket().database.execute_sql(first.format("?"), after)}
    return found


def corrections(query_words: list[str], language: str,
                prefix: str | None = None) -> dict[str, list[str]]:
    """For each word of 4+ letters the articles never use, the words one edit away they do.

    ``prefix``: the last word, still being typed; if some word starts with it, it is not a
    typo (a half-typed "verif" costs no look-up of its ~300 one-edit variants).
    """
    candidates = [w for w in query_words if len(w) >= 4 and w.isascii() and w.isalpha()]
    if not candidates:
        return {}
    typing = prefix if prefix in candidates else None
    known = _known_words(candidates, language, typing)
    unknown = [w for w in candidates if w not in known]
    if typing in unknown and any(word.startswith(typing) for word in known):
        unknown.remove(typing)
    if not unknown:
        return {}
    edits = {w: one_edit_away(w) for w in unknown}
    # A stop word is in the vocabulary (it holds every word written) but not in the index.
    found = _known_words(sorted(set().union(*edits.values())), language) - STOP_WORDS.get(
        language, set())
    return {w: sorted(edits[w] & found)[:5] for w in unknown if edits[w] & found}


def search(query: str, language: str, *, user_type_id: int | None = None,
           category_ids: Iterable[int] | None = None, limit: int = 10,
           partial: bool = False) -> list[Hit]:
    """Published articles in ``language`` matching ``query``, best first.

    ``partial``: the query is being typed, so its last word also matches as a prefix.
    """
    query_words = search_words(query[:300], language)
    if not query_words or limit <= 0:
        return []
    groups = [[word] for word in query_words]
    prefix = query_words[-1] if partial and len(query_words[-1]) >= 3 else None
    fixes = corrections(query_words, language, prefix)
    for group in groups:
        group.extend(fixes.get(group[0], ()))
    category_ids = list(category_ids) if category_ids is not None else None
    # Articles with every word first: an intersection, fast however large the knowledge
    # base. Only when none has them all, any word will do (a union, ranked by relevance).
    # PostgreSQL picks the union's words in the intersection's statement.
    if not _is_sqlite():
        return _search_postgresql(groups, prefix, language, user_type_id, category_ids, limit)
    hits = _search_sqlite(groups, prefix, language, user_type_id, category_ids, limit, every=True)
    if not hits and len(groups) > 1:
        hits = _search_sqlite(groups, prefix, language, user_type_id, category_ids, limit,
                              every=False)
    return hits


def _filters(language: str, user_type_id: int | None,
             category_ids: list[int] | None, mark: str) -> tuple[str, list]:
    sql = f" AND a.language = {mark} AND a.status = {mark}"
    params: list = [language, Status.PUBLISHED]
    if user_type_id is not None:
        sql += f" AND a.user_type_id = {mark}"
        params.append(user_type_id)
    if category_ids is not None:
        if not category_ids:
            return " AND 1 = 0", []
        sql += f" AND a.category_id IN ({', '.join([mark] * len(category_ids))})"
        params.extend(category_ids)
    return sql, params


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', "") + '"'


# In a union, a word in more than this share of all articles adds little to the ranking but
# makes the database score most of the index; it is left out when rarer words remain.
COMMON_SHARE = 0.02
# A union scores every article that has any of its words (bm25 or ts_rank_cd for each):
# the rarest words are kept until they reach this many articles, the commoner ones are
# left out. Rare words are what ranks an article first anyway; an article with only the
# common ones would rank below. From 1,000 articles on, as the share above. Measured at
# 100,000 articles: bm25 costs about 2 µs an article, ts_rank_cd about 20 µs (it reads
# each article's whole tsvector), so PostgreSQL gets the smaller budget.
UNION_BUDGET = 1000
POSTGRES_UNION_BUDGET = 250
PRUNE_FROM = 1000
# A union is ranked inside the full-text index first, then the best of it are filtered.
UNION_CANDIDATES = 300
# PostgreSQL ranks at most this many title matches and this many newest other matches of
# a search (ts_rank_cd costs ~20 µs an article at 100,000 articles; see _search_postgresql).
RANKED_TITLES = 150
RANKED_NEWEST = 100


def _rarest(groups: list[list[str]], docs: dict[str, int], total: int,
            budget: int = UNION_BUDGET) -> list[list[str]]:
    """The word groups a union keeps: rarest first, up to ``budget`` articles, none common.

    ``docs``: articles per term (a prefix term ends in ``*`` or ``:*``; counted as its
    words' sum, an upper bound). The rarest group is always kept.
    """
    if total < PRUNE_FROM:
        return groups
    counted = sorted(((sum(docs.get(term, 0) for term in group), n)
                      for n, group in enumerate(groups)))
    kept: list[int] = []
    reached = 0
    for count, n in counted:
        if kept and (reached + count > budget or count > COMMON_SHARE * total):
            break
        kept.append(n)
        reached += count
    return [groups[n] for n in sorted(kept)]


def _search_sqlite(groups: list[list[str]], prefix: str | None, language: str,
                   user_type_id: int | None, category_ids: list[int] | None,
                   limit: int, every: bool) -> list[Hit]:
    stems = [sorted({stem(w, language) for w in group} - {""}) for group in groups]
    if prefix:
        stems[-1].append(prefix.replace("-", "") + "*")
    stems = [group for group in stems if group]
    if not stems:
        return []
    if not every:
        stems = _without_common(stems, language)

    def alternatives(group: list[str]) -> str:
        return "(" + " OR ".join(_fts_term(term) for term in group) + ")"

    match = (" AND " if every else " OR ").join(alternatives(group) for group in stems)
    fts = _fts_table(language)
    where, params = _filters(language, user_type_id, category_ids, "?")
    if every:
        sql = (f"SELECT a.id, -bm25({fts}, ?, ?) AS score, {HIT_COLUMNS} "
               f"JOIN {fts} ON a.id = {fts}.rowid "
               f"WHERE {fts} MATCH ?{where} "
               "ORDER BY score DESC, a.position, a.id LIMIT ?")
        args = [*SQLITE_WEIGHTS, match, *params, limit]
    else:
        sql = (f"SELECT a.id, f.score, {HIT_COLUMNS} JOIN ("
               f"SELECT rowid, -bm25({fts}, ?, ?) AS score FROM {fts} "
               f"WHERE {fts} MATCH ? ORDER BY score DESC LIMIT ?"
               f") f ON a.id = f.rowid WHERE 1 = 1{where} "
               "ORDER BY f.score DESC, a.position, a.id LIMIT ?")
        args = [*SQLITE_WEIGHTS, match, UNION_CANDIDATES, *params, limit]
    return [Hit(*row) for row in loket().database.execute_sql(sql, args).fetchall()]


def _fts_table(language: str) -> str:
    """The language's own FTS5 table (migration 0004), else the one of every language."""
    return f"kb_article_fts_{language}" if language in FTS_LANGUAGES else "kb_article_fts"


def _without_common(groups: list[list[str]], language: str) -> list[list[str]]:
    """The word groups a union keeps (``_rarest``), counted in the FTS index itself.

    Each term's count stops at the budget (a term past it is left out unless it is the
    rarest), so a word in 11,000 articles costs a walk of 1,001 entries, not of its whole
    list: FTS5's vocabulary table (fts5vocab) counted every entry, and at 100,000
    articles that was 3 ms of a 7 ms suggestion. One statement, with the size.
    """
    terms = sorted({term for group in groups for term in group})
    fts = _fts_table(language)
    count = (f"SELECT ?, (SELECT count(*) FROM (SELECT 1 FROM {fts} "
             f"WHERE {fts} MATCH ? LIMIT ?)), (SELECT max(id) FROM kb_article)")
    args: list = []
    for term in terms:
        args += [term, _fts_term(term), UNION_BUDGET + 1]
    rows = loket().database.execute_sql(" UNION ALL ".join([count] * len(terms)),
                                        args).fetchall()
    total = (rows[0][2] or 0) if rows else 0
    return _rarest(groups, {term: docs for term, docs, _ in rows}, total)


def _fts_term(term: str) -> str:
    if term.endswith("*"):
        return _fts_phrase(term[:-1]) + "*"
    return _fts_phrase(term)


def _tsquery_operand(word: str) -> str:
    return "".join(ch for ch in word if ch.isalnum())


def _search_postgresql(groups: list[list[str]], prefix: str | None, language: str,
                       user_type_id: int | None, category_ids: list[int] | None,
                       limit: int) -> list[Hit]:
    """The intersection, then the union only when it finds nothing: at most two statements.

    The intersection's statement also asks ``kb_union_groups`` (migration 0005) which of
    the word groups a union keeps (as ``_rarest`` does, from the per-lexeme counts in
    ``kb_lexeme``) and whether the intersection can find anything at all: no statement
    of its own to count them (3 to 5 ms at 100,000 articles when the index counted
    them), and no scan for an intersection a word rules out. When it finds nothing, the
    union follows with its words written out, as every full-text query here is (see
    ``_candidates``). One statement for both (the union's query built inside it) was
    slower: the planner, not seeing the union's words, took the index of every language
    (6 ms instead of 1.5 for "strange charge on my card"), and the union's part was
    planned even when the intersection found articles.
    """
    config = POSTGRES_CONFIGS.get(language, "simple")
    operands: list[list[str]] = []
    for group in groups:
        found: set[str] = set()
        for word in group:
            # Filipino goes in affix-stripped, as it was indexed; PostgreSQL stems the others.
            pieces = [strip_filipino(word)] if language == "fil" else word.split("-")
            found |= {_tsquery_operand(piece) for piece in pieces}
        operands.append(sorted(op for op in found if op))
    if prefix:
        cleaned = _tsquery_operand(strip_filipino(prefix) if language == "fil" else prefix)
        if cleaned:
            operands[-1].append(cleaned + ":*")
    operands = [group for group in operands if group]
    if not operands:
        return []
    where, params = _filters(language, user_type_id, category_ids, "%s")
    every = " & ".join("(" + " | ".join(group) + ")" for group in operands)
    if len(operands) == 1:  # the union would be the same query
        ctes, args = _candidates(config, every, where, params)
        return _hits(f"WITH {ctes} {_ranked()}", [*args, *_ranked_args(config, every, limit)])
    # The counts (kb_union_groups, migration 0005) come first: the intersection's scans
    # run only when they leave it a chance (a one-time filter), since a typed sentence
    # often has a word no article uses.
    ctes, args = _candidates(config, every, where, params,
                             "(SELECT possible FROM union_groups) AND ")
    terms = [(n, term) for n, group in enumerate(operands, 1) for term in group]
    # The hits in their order (part 1) or, when there are none, one row (part 0) with the
    # numbers of the groups the union keeps.
    sql = ("WITH union_groups AS MATERIALIZED (SELECT * FROM kb_union_groups("
           "%s::int[], %s::text[], %s::regconfig, %s, %s, %s, %s)), "
           f"{ctes}, hits(id, score, title, slug, language, "
           f"category_slug, user_type_slug, body_start, pos) AS ("
           f"{_ranked(', a.position')}) "
           "SELECT 1 AS part, NULL::int[] AS kept, id, score, title, slug, language, "
           "category_slug, user_type_slug, body_start, pos FROM hits UNION ALL "
           "SELECT 0, (SELECT kept FROM union_groups), NULL, NULL, NULL, NULL, "
           "NULL, NULL, NULL, NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM newest) "
           "ORDER BY part, score DESC, pos, id")
    rows = loket().database.execute_sql(sql, [
        [n for n, _term in terms], [term for _n, term in terms], config, language, PRUNE_FROM,
        POSTGRES_UNION_BUDGET, COMMON_SHARE, *args, *_ranked_args(config, every, limit)
    ]).fetchall()
    if not rows or rows[0][0] != 0:
        return [Hit(article_id, float(score), *rest[:-1])
                for _part, _kept, article_id, score, *rest in rows]
    kept = set(rows[0][1] or ())
    union = " | ".join("(" + " | ".join(group) + ")"
                       for n, group in enumerate(operands, 1) if n in kept)
    ctes, args = _candidates(config, union, where, params)
    return _hits(f"WITH {ctes} {_ranked()}", [*args, *_ranked_args(config, union, limit)])


def _hits(sql: str, args: list) -> list[Hit]:
    rows = loket().database.execute_sql(sql, args).fetchall()
    return [Hit(article_id, float(score), *rest) for article_id, score, *rest in rows]


def _candidates(config: str, query: str, where: str, params: list,
                gate: str = "") -> tuple[str, list]:
    """The CTEs ``newest`` and ``cand``: the articles a search ranks, and their parameters.

    ts_rank_cd reads each article's whole tsvector, so it ranks a bounded set of
    candidates, not every match: the title matches (from the title's own, small index; a
    title match outranks a body match anyway) and the newest of all matches. A common
    word or a half-typed "verif" costs at most RANKED_TITLES + RANKED_NEWEST. The query is
    written out in each part (not a shared CTE): the planner then sees its words and takes
    the language's own index (migration 0002). "a.id + 0": ordered by the plain id, the
    planner may walk the primary key backwards and test every article until it has
    enough (60 ms for a common prefix), instead of using the GIN index. The title index
    is read only when the newest matches fill their share (a one-time filter): when every
    match is among them, it adds nothing.
    """
    tsquery = "to_tsquery(%s::regconfig, %s)"
    sql = ("newest AS ("
           f"SELECT a.id FROM kb_article a WHERE {gate}a.search_vector @@ {tsquery}{where} "
           "ORDER BY a.id + 0 DESC LIMIT %s), cand AS (SELECT id FROM newest UNION "
           f"(SELECT a.id FROM kb_article a WHERE a.title_vector @@ {tsquery}{where} "
           "AND (SELECT count(*) FROM newest) >= %s ORDER BY a.id + 0 DESC LIMIT %s))")
    return sql, [config, query, *params, RANKED_NEWEST, config, query, *params,
                 RANKED_NEWEST, RANKED_TITLES]


def _ranked(more: str = "") -> str:
    """The candidates (``cand``), best first, as Hits (``more``: columns after those).

    Parameters: _ranked_args.
    """
    return ("SELECT a.id, ts_rank_cd(%s::float4[], a.search_vector, "
            f"to_tsquery(%s::regconfig, %s)) AS score, "
            f"{HIT_COLUMNS.replace(' FROM ', more + ' FROM ', 1)} "
            "JOIN cand ON cand.id = a.id ORDER BY score DESC, a.position, a.id LIMIT %s")


def _ranked_args(config: str, query: str, limit: int) -> list:
    return [POSTGRES_WEIGHTS, config, query, limit]


def articles(hits: list[Hit]) -> list[Article]:
    """The articles of ``hits``, in their order."""
    if not hits:
        return []
    by_id = {a.id: a for a in Article.select().where(Article.id.in_([h.article_id for h in hits]))}
    return [by_id[h.article_id] for h in hits if h.article_id in by_id]


__all__ = ["Hit", "search", "articles", "corrections", "analyse"]
