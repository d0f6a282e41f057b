"""Knowledge base: articles per category, user type and language; search; "was this helpful?".

It answers ``suggest_answers`` for the ticket form and the chat bot, shows the
headlines of a category on the help center (``category_content``) and loads demo
articles in English, Indonesian and Filipino (``load_demo_data``).
"""

from __future__ import annotations

from typing import Any

from core import hookimpl
from core.hookspecs import CategoryContent, Suggestion
from core.i18n import _, localized
from core.settings import Setting, as_int, as_rate

PLUGIN = "knowledge_base"


def _as_minutes(value: Any) -> int:
    minutes = as_int(value)
    if not 1 <= minutes <= 7 * 24 * 60:
        raise ValueError(f"expected 1 to 10080 minutes, got {value!r}")
    return minutes


def _as_days(value: Any) -> int:
    days = as_int(value)
    if not 0 <= days <= 36500:
        raise ValueError(f"expected 0 (keep for ever) to 36500 days, got {value!r}")
    return days


def _as_count(value: Any) -> int:
    count = as_int(value)
    if not 1 <= count <= 20:
        raise ValueError(f"expected 1 to 20, got {value!r}")
    return count


@hookimpl
def plugin_settings() -> list[Setting]:
    return [
        Setting("rate_limit_suggest", "60/minute;600/hour", as_rate,
                "Suggestion requests from one address (the ticket form asks as the customer "
                "types, debounced); empty for no limit."),
        Setting("suggestions", 5, _as_count, "How many articles the ticket form suggests."),
        Setting("headlines", 5, _as_count,
                "How many headlines a category shows before 'all articles'."),
        Setting("deflection_minutes", 30, _as_minutes,
                "A followed suggestion counts as deflecting when no ticket comes from the "
                "same visitor within this many minutes."),
        Setting("history_days", 365, _as_days,
                "Days of searches, article views and suggestion records kept for the "
                "reports; older ones are deleted each night (0: kept for ever)."),
    ]


@hookimpl
def register_models() -> list[type]:
    from .models import MODELS

    return MODELS


@hookimpl
def register_blueprints(app: Any) -> list[Any]:
    from .views import bp

    return [bp]


@hookimpl
def register_admin_views(admin: Any) -> list[Any]:
    from .admin import views

    return views()


@hookimpl
def register_commands() -> list[Any]:
    from .cli import kb

    return [kb]


@hookimpl
def register_jobs(jobs: Any) -> None:
    from core.jobs import crontab

    @jobs.periodic(crontab(minute="17", hour="3"), name="knowledge_base.prune_history")
    def prune_history() -> dict[str, int]:
        """Forget searches and views older than ``history_days`` (idempotent)."""
        from . import library
        from .retention import prune

        return prune(library.settings()["history_days"])


@hookimpl
def suggest_answers(query: str, user_type: Any, category: Any, language: str,
                    limit: int) -> list[Suggestion]:
    from flask import g, has_app_context

    from core.state import loket

    from . import library
    from .search import search

    user_type_id = user_type.id if user_type is not None else None
    hits = search(query, language, user_type_id=user_type_id, limit=limit, partial=True)
    if not hits and language != loket().config["default_language"]:
        language = loket().config["default_language"]
        hits = search(query, language, user_type_id=user_type_id, limit=limit, partial=True)
    remembered = g.get("kb_suggested") if has_app_context() else None
    found = []
    for hit, result in zip(hits, library.results(hits, "suggest"), strict=True):
        if remembered is not None:
            remembered[result.url] = hit.article_id  # the suggestion endpoint records these
        found.append(Suggestion(title=result.title, url=result.url, excerpt=result.excerpt,
                                score=hit.score))
    return found


@hookimpl
def category_content(user_type: Any, category: Any, language: str,
                     page: str) -> list[CategoryContent]:
    from flask import url_for

    from core.services import access

    from . import library

    limit = library.settings()["headlines"]
    if page == "categories":
        categories = []
        stack = list(access.category_tree([user_type.id]))
        while stack:
            node = stack.pop(0)
            categories.append(node.category)
            stack[:0] = node.children
        by_category = library.published([c.id for c in categories], language)
        return [CategoryContent(
            heading=localized(c, "name", language),
            links=[Suggestion(s.article.title,
                              library.url_of(user_type.slug, c.slug, s.article.slug, "list"))
                   for s in by_category[c.id][:3]],
            more_label=_("All articles about %(topic)s", topic=localized(c, "name", language)),
            more_url=url_for("knowledge_base.category_index", user_type=user_type.slug,
                             category=c.slug),
            order=10) for c in categories if c.id in by_category]
    if page == "form" and category is not None:
        shown = library.published([category.id], language).get(category.id, [])
        return [CategoryContent(
            heading=_("Before you write: answers to common questions"),
            links=[Suggestion(s.article.title, library.url_of(user_type.slug, category.slug,
                                                              s.article.slug, "form"))
                   for s in shown[:limit]],
            more_label=_("Search all help articles"),
            more_url=url_for("knowledge_base.search_page", user_type=user_type.slug),
            live_url=url_for("knowledge_base.suggest", user_type=user_type.slug,
                             category=category.slug),
            live_heading=_("These articles may answer your question"),
            script_url=url_for("knowledge_base.static", filename="suggest.js"),
            order=10)]
    return []


@hookimpl
def ticket_created(ticket: Any, message: Any) -> None:
    """Remember that this browser's visitor opened a ticket (for the deflection report)."""
    from flask import has_request_context, session

    from . import library

    if has_request_context() and session.get(library.VISITOR):
        library.record_ticket(ticket.id, session[library.VISITOR])


@hookimpl
def load_demo_data() -> None:
    from .demo import load

    load()
