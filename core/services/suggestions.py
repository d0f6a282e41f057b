"""Answers that may solve a customer's question, gathered from every plugin that offers them."""

from __future__ import annotations

from ..hookspecs import Suggestion
from ..models import Category, UserType
from ..state import loket


def suggest(query: str, *, user_type: UserType | None = None, category: Category | None = None,
            language: str = "en", limit: int = 5) -> list[Suggestion]:
    """Merge ``suggest_answers`` from all plugins: best score first, one per URL, at most ``limit``."""
    query = (query or "").strip()
    if len(query) < 3 or limit <= 0:
        return []
    found: dict[str, Suggestion] = {}
    for batch in loket().hook.suggest_answers(query=query, user_type=user_type,
                                              category=category, language=language,
                                              limit=limit):
        for suggestion in batch or ():
            best = found.get(suggestion.url)
            if best is None or suggestion.score > best.score:
                found[suggestion.url] = suggestion
    return sorted(found.values(), key=lambda s: -s.score)[:limit]
