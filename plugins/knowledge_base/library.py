"""What the public pages and the hooks share: which article a visitor sees, URLs, visitor ids."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import session, url_for

from core.models import Category, UserType
from core.state import loket

from .models import Article, Status, View, VisitorTicket, Vote
from .render import excerpt
from .search import Hit

VISITOR = "kb_visitor"
PLUGIN = "knowledge_base"


def settings() -> dict:
    return loket().config.plugin(PLUGIN)


def visitor_id(create: bool = True) -> str | None:
    """This browser's visitor id, kept in the signed session cookie (so it cannot be forged)."""
    value = session.get(VISITOR)
    if value is None and create:
        value = session[VISITOR] = secrets.token_urlsafe(16)
    return value


@dataclass
class Shown:
    """An article as a visitor sees it: ``fallback`` when it is not in their language."""

    article: Article
    fallback: bool

    @property
    def excerpt(self) -> str:
        return excerpt(self.article.body)


def pick(candidates: Iterable[Article], language: str) -> Shown | None:
    """Of one translation group: the visitor's language, else the default, else the first."""
    found = {article.language: article for article in candidates}
    if language in found:
        return Shown(found[language], False)
    default = loket().config["default_language"]
    if default in found:
        return Shown(found[default], True)
    if found:
        return Shown(found[sorted(found)[0]], True)
    return None


def published(category_ids: list[int], language: str) -> dict[int, list[Shown]]:
    """Each category's public articles, one per translation group, in the admin's order."""
    if not category_ids:
        return {}
    groups: dict[str, list[Article]] = {}
    query = (Article.select().where(Article.category_id.in_(category_ids)
                                    & (Article.status == Status.PUBLISHED))
             .order_by(Article.position, Article.id))
    for article in query:
        groups.setdefault(article.group, []).append(article)
    by_category: dict[int, list[Shown]] = {}
    for members in groups.values():
        shown = pick(members, language)
        if shown is not None:
            by_category.setdefault(shown.article.category_id, []).append(shown)
    for shown_list in by_category.values():
        shown_list.sort(key=lambda s: (s.article.position, s.article.id))
    return by_category


def article_url(article: Article, source: str = "") -> str:
    category = Category.get_by_id(article.category_id)
    user_type = UserType.get_by_id(article.user_type_id)
    return url_of(user_type.slug, category.slug, article.slug, source)


def url_of(user_type: str, category: str, slug: str, source: str = "") -> str:
    """An article's address; ``source`` says where the link was shown (for the reports)."""
    args = {"from": source} if source else {}
    return url_for("knowledge_base.article", user_type=user_type, category=category, slug=slug,
                   **args)


@dataclass
class Result:
    """A search result as a page or a suggestion shows it."""

    title: str
    url: str
    excerpt: str
    language: str
    fallback: bool


def results(hits: list[Hit], source: str, fallback: bool = False) -> list[Result]:
    return [Result(h.title, address(h.user_type_slug, h.category_slug, h.slug),
                   excerpt(h.body_start), h.language, fallback)
            for address in [_addresses(source)] for h in hits]


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")


def _addresses(source: str) -> Callable[[str, str, str], str]:
    """``url_of`` for a list of results: one ``url_for`` (~0.2 ms each), the rest filled in.

    Slugs of plain characters go into the one address built; any other takes ``url_of``,
    so the quoting is always werkzeug's own.
    """
    built = url_of("x", "x", "x", source)
    start, _, end = built.rpartition("/x/x/x")

    def address(user_type: str, category: str, slug: str) -> str:
        if _PLAIN.issuperset(user_type + category + slug) and user_type and category and slug:
            return f"{start}/{user_type}/{category}/{slug}{end}"
        return url_of(user_type, category, slug, source)

    return address


def find_shown(category: Category, slug: str, language: str) -> Shown | None:
    """The public article at a URL, in the visitor's language when it has that translation."""
    first = (Article.select().where((Article.category_id == category.id) & (Article.slug == slug)
                                    & (Article.status == Status.PUBLISHED))
             .order_by(Article.id).first())
    if first is None:
        return None
    members = Article.select().where((Article.group == first.group)
                                     & (Article.status == Status.PUBLISHED))
    return pick(members, language)


def record_vote(article: Article, visitor: str, helpful: bool) -> bool:
    """Count a vote; False when this visitor had voted on this article already (unique row)."""
    return bool(Vote.insert(article=article, visitor=visitor, helpful=helpful)
                .on_conflict_ignore().execute())


def vote_of(article: Article, visitor: str | None) -> Vote | None:
    if visitor is None:
        return None
    return Vote.get_or_none((Vote.article == article) & (Vote.visitor == visitor))


def record_view(article: Article, visitor: str, source: str) -> None:
    View.create(article=article, visitor=visitor, source=source[:16])


# -- Reports -----------------------------------------------------------------------------


@dataclass
class ArticleReport:
    article_id: int
    title: str
    language: str
    views: int = 0
    helpful: int = 0
    not_helpful: int = 0
    suggested: int = 0
    followed: int = 0
    deflected: int = 0
    pending: int = 0

    @property
    def deflection_rate(self) -> str:
        settled = self.followed - self.pending
        return f"{100 * self.deflected / settled:.0f}%" if settled > 0 else "–"


# Live suggestions and the headlines above the ticket form: both are offered instead of a ticket.
FOLLOWED_SOURCES = ("suggest", "form")


def report(now: dt.datetime | None = None) -> list[ArticleReport]:
    """Per article: views, votes, suggestions shown and followed, deflections.

    Deflection, precisely: a visitor *followed* a suggestion when they opened the
    article from a suggestion (the ticket form's live suggestions or headlines, or the
    chat bot's: the link carries ``from=suggest`` or ``from=form``); only their first such view of that article counts. The follow
    is *deflected* when no ticket was opened from the same browser (the same visitor
    id in the signed session) within ``deflection_minutes`` after it; it is *pending*
    while those minutes have not passed, and counts neither way.
    """
    from peewee import fn

    from .models import SuggestionShown

    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    window = dt.timedelta(minutes=settings()["deflection_minutes"])
    rows = {a.id: ArticleReport(a.id, a.title, a.language)
            for a in Article.select(Article.id, Article.title, Article.language)
            .order_by(Article.language, Article.position, Article.id)}
    for article_id, count in (View.select(View.article, fn.COUNT(View.id))
                              .group_by(View.article).tuples()):
        rows[article_id].views = count
    for article_id, helpful, count in (Vote.select(Vote.article, Vote.helpful, fn.COUNT(Vote.id))
                                       .group_by(Vote.article, Vote.helpful).tuples()):
        if helpful:
            rows[article_id].helpful = count
        else:
            rows[article_id].not_helpful = count
    for article_id, count in (SuggestionShown.select(SuggestionShown.article,
                                                     fn.COUNT(SuggestionShown.id))
                              .group_by(SuggestionShown.article).tuples()):
        rows[article_id].suggested = count
    follows = (View.select(View.article, View.visitor, fn.MIN(View.created_at))
               .where(View.source.in_(FOLLOWED_SOURCES))
               .group_by(View.article, View.visitor).tuples())
    follows = list(follows)
    tickets: dict[str, list[dt.datetime]] = {}
    visitors = sorted({visitor for _, visitor, _ in follows})
    for start in range(0, len(visitors), 500):
        for visitor, at in (VisitorTicket.select(VisitorTicket.visitor, VisitorTicket.created_at)
                            .where(VisitorTicket.visitor.in_(visitors[start:start + 500]))
                            .tuples()):
            tickets.setdefault(visitor, []).append(at)
    for article_id, visitor, at in follows:
        row = rows[article_id]
        row.followed += 1
        if any(at <= opened <= at + window for opened in tickets.get(visitor, ())):
            continue
        if now < at + window:
            row.pending += 1
        else:
            row.deflected += 1
    return list(rows.values())


def record_ticket(ticket_id: int, visitor: str) -> None:
    VisitorTicket.insert(visitor=visitor, ticket=ticket_id).on_conflict_ignore().execute()
