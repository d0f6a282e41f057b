"""Customer-facing text in English, Indonesian and Filipino: the locale of each request."""

from __future__ import annotations

from flask import has_request_context, request, session
from flask_babel import gettext, lazy_gettext, ngettext

from .state import loket

__all__ = ["_", "_l", "ngettext", "select_locale", "LANGUAGE_NAMES"]

_ = gettext
_l = lazy_gettext

LANGUAGE_NAMES = {"en": "English", "id": "Bahasa Indonesia", "fil": "Filipino"}


def select_locale() -> str:
    """?lang= (remembered in the session), then the session, then Accept-Language.

    Outside a request (a job, a command) it is the desk's default language.
    """
    if not has_request_context():
        return loket().config["default_language"]
    languages = loket().config["languages"]
    asked = request.args.get("lang")
    if asked in languages:
        session["lang"] = asked
        return asked
    remembered = session.get("lang")
    if remembered in languages:
        return remembered
    # Browsers send "fil" or "tl" for Filipino.
    best = request.accept_languages.best_match(list(languages) + ["tl"])
    if best == "tl":
        best = "fil" if "fil" in languages else None
    return best or loket().config["default_language"]
