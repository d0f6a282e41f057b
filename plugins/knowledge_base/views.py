"""The knowledge base's public pages: articles per user type and category, search, votes, suggestions."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from markupsafe import Markup

from core.i18n import LANGUAGE_NAMES, _
from core.models import Category, UserType
from core.services import access
from core.services.suggestions import suggest as merged_suggestions
from core.state import loket

from . import library
from .limits import suggestion_limit_reached
from .models import Article, Search, SuggestionShown
from .search import search

bp = Blueprint("knowledge_base", __name__, url_prefix="/kb", template_folder="templates",
               static_folder="static", static_url_path="/static")

SOURCES = ("search", "suggest", "list", "form")
SHOWN = "kb_shown"


@bp.context_processor
def _names() -> dict[str, Any]:
    return {"language_name": lambda code: LANGUAGE_NAMES.get(code, code)}


def language() -> str:
    locale = get_locale()
    return str(locale) if locale is not None else loket().config["default_language"]


def _user_type_or_404(slug: str) -> UserType:
    user_type = access.user_type_by_slug(slug)
    if user_type is None:
        abort(404)
    return user_type


def _category_or_404(user_type: str, category: str) -> Category:
    found = access.visible_category(user_type, category)
    if found is None:
        abort(404)
    return found


def _flatten(nodes: list[Any]) -> list[Category]:
    found = []
    for node in nodes:
        found.append(node.category)
        found.extend(_flatten(node.children))
    return found


def still_need_help(user_type: UserType, category: Category) -> list[dict[str, str]]:
    """'Still need help?': the ticket form with this category chosen, and chat where offered."""
    options = [{"label": _("Send us your question"),
                "url": url_for("helpcenter.new_ticket", user_type=user_type.slug,
                               category=category.slug)}]
    for found in loket().hook.contact_channels(user_type=user_type, category=category,
                                               language=language()):
        for option in found or ():
            if option.kind == "chat":
                options.append({"label": option.label, "url": option.url})
    return options


@bp.get("/<user_type>/")
def user_type_index(user_type: str) -> str:
    chosen = _user_type_or_404(user_type)
    categories = _flatten(access.category_tree([chosen.id]))
    by_category = library.published([c.id for c in categories], language())
    sections = [(c, by_category[c.id]) for c in categories if c.id in by_category]
    return render_template("knowledge_base/user_type.html", user_type=chosen,
                           sections=sections)


@bp.get("/<user_type>/<category>/")
def category_index(user_type: str, category: str) -> str:
    chosen = _category_or_404(user_type, category)
    shown = library.published([chosen.id], language()).get(chosen.id, [])
    return render_template("knowledge_base/category.html", user_type=chosen.user_type,
                           category=chosen, articles=shown,
                           help_options=still_need_help(chosen.user_type, chosen))


@bp.get("/<user_type>/<category>/<slug>")
def article(user_type: str, category: str, slug: str) -> str:
    chosen = _category_or_404(user_type, category)
    shown = library.find_shown(chosen, slug, language())
    if shown is None:
        abort(404)
    visitor = library.visitor_id()
    source = request.args.get("from", "")
    library.record_view(shown.article, visitor, source if source in SOURCES else "")
    return render_template(
        "knowledge_base/article.html", user_type=chosen.user_type, category=chosen,
        shown=shown, body=Markup(shown.article.body_html),  # sanitised when it was saved
        vote=library.vote_of(shown.article, visitor),
        help_options=still_need_help(chosen.user_type, chosen))


@bp.post("/vote/<int:article_id>")
def vote(article_id: int) -> Any:
    found = Article.get_or_none(Article.id == article_id)
    if found is None or not found.is_public:
        abort(404)
    answer = request.form.get("helpful")
    if answer not in ("yes", "no"):
        abort(400)
    if library.record_vote(found, library.visitor_id(), answer == "yes"):
        flash(_("Thank you for your feedback."), "success")
    else:
        flash(_("You have already told us about this article. Thank you."), "info")
    return redirect(library.article_url(found) + "#feedback")


@bp.get("/search")
def search_page() -> str:
    query = (request.args.get("q") or "").strip()[:200]
    user_type = access.user_type_by_slug(request.args.get("user_type") or "")
    results: list[library.Result] = []
    if query:
        user_type_id = user_type.id if user_type else None
        results = library.results(search(query, language(), user_type_id=user_type_id,
                                         limit=20), "search")
        default = loket().config["default_language"]
        if not results and language() != default:
            results = library.results(search(query, default, user_type_id=user_type_id,
                                             limit=20), "search", fallback=True)
        Search.create(query=query, language=language(), results=len(results))
    return render_template("knowledge_base/search.html", query=query, results=results,
                           user_type=user_type)


@bp.get("/suggest")
def suggest() -> Any:
    """JSON suggestions for the ticket form while the customer types (rate limited)."""
    if suggestion_limit_reached():
        return jsonify({"results": [], "error": "rate_limited"}), 429
    query = (request.args.get("q") or "").strip()[:500]
    category = access.visible_category(request.args.get("user_type") or "",
                                       request.args.get("category") or "")
    user_type = category.user_type if category is not None else None
    g.kb_suggested = {}
    found = merged_suggestions(query, user_type=user_type, category=category,
                               language=language(), limit=settings_limit())
    # Recorded once per visitor and article; the session remembers the last ones recorded,
    # so a customer typing on does not cost a database write per request.
    recorded = session.get(SHOWN, [])
    shown = [g.kb_suggested[s.url] for s in found
             if s.url in g.kb_suggested and g.kb_suggested[s.url] not in recorded]
    if shown:
        visitor = library.visitor_id()
        SuggestionShown.insert_many([{"article": article_id, "visitor": visitor}
                                     for article_id in shown]).on_conflict_ignore().execute()
        session[SHOWN] = (recorded + shown)[-40:]
    response = jsonify({"results": [{"title": s.title, "url": s.url, "excerpt": s.excerpt}
                                    for s in found]})
    response.headers["Cache-Control"] = "no-store"
    return response


def settings_limit() -> int:
    return library.settings()["suggestions"]
