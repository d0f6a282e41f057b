"""Customer-facing text in English, Indonesian and Filipino: the locale of each request,
the catalogues of core and the enabled plugins, dates in the desk's time zone, and the
per-language wording of what admins typed (user types, categories, form fields).

Catalogues live beside the code as ``.po`` files (``core/translations`` and each plugin's
``translations/`` folder). The app compiles them into ``.mo`` files in the instance
folder when it starts, whenever a ``.mo`` is missing or older than its ``.po``: a desk
cannot run untranslated because someone skipped a build step, and a ``.po`` with an
error stops the start with one line naming the file.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from flask import g, has_request_context, request, session
from flask_babel import force_locale, format_datetime, lazy_gettext
from jinja2 import pass_eval_context
from markupsafe import Markup

from .state import loket

__all__ = ["_", "_l", "ngettext", "select_locale", "LANGUAGE_NAMES", "force_locale",
           "current_language",
           "local_datetime", "localized", "localized_lines", "localized_questions", "translated",
           "translated_lines", "language_of"]

_l = lazy_gettext


def _(string: str, **variables: Any) -> str:
    """Flask-Babel's ``gettext``, with the catalogue looked up once per request and locale
    (``_catalogue``) rather than once per string."""
    text = _catalogue().ugettext(string)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """Flask-Babel's ``ngettext`` (``%(num)s`` is the count), through ``_catalogue``."""
    variables.setdefault("num", num)
    return _catalogue().ungettext(singular, plural, num) % variables

LANGUAGE_NAMES = {"en": "English", "id": "Bahasa Indonesia", "fil": "Filipino"}

CORE_TRANSLATIONS = Path(__file__).parent / "translations"
DOMAIN = "messages"


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


def language_of(value: str | None) -> str:
    """A language this desk offers: ``value`` when it is one, else the default language."""
    config = loket().config
    return value if value in config["languages"] else config["default_language"]


# -- Catalogues ------------------------------------------------------------------------


class CatalogueError(ValueError):
    """A ``.po`` file that cannot be read; the message names the file and the line."""


def plugin_translation_dir(plugin: ModuleType | object | None) -> Path | None:
    """A plugin package's ``translations/`` folder, if it holds any ``.po`` file."""
    path = getattr(plugin, "__file__", None)
    if not path:
        return None
    folder = Path(path).parent / "translations"
    return folder if any(folder.glob(f"*/LC_MESSAGES/{DOMAIN}.po")) else None


def catalogue_sources(plugins: Iterable[tuple[str, Any]]) -> list[tuple[str, Path]]:
    """(unit, folder) of every catalogue: the plugins' in order, then core's.

    Flask-Babel merges the folders of one domain in this order, a later entry
    winning, so core's wording of its own strings is the one customers read
    even if a plugin's catalogue happens to carry the same text.
    """
    found = [(name, folder) for name, plugin in plugins
             if name != "core" and (folder := plugin_translation_dir(plugin)) is not None]
    return found + [("core", CORE_TRANSLATIONS)]


# Compiled bytes by (.po path, its mtime): an app built again in the same process (the
# tests build hundreds) writes the .mo without parsing the .po again.
_compiled: dict[tuple[str, int], bytes] = {}
_compiled_lock = threading.Lock()


def _mo_bytes(po_path: Path) -> bytes:
    from io import BytesIO

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import PoFileError, read_po

    key = (str(po_path), po_path.stat().st_mtime_ns)
    with _compiled_lock:
        cached = _compiled.get(key)
    if cached is not None:
        return cached
    try:
        with po_path.open("rb") as handle:
            catalog = read_po(handle, abort_invalid=True)
    except (PoFileError, ValueError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{po_path}: {exc}") from exc
    # A translation whose %(placeholders)s differ from the English would fail on the page.
    for message, errors in catalog.check():
        if errors and not message.fuzzy:
            raise CatalogueError(f"{po_path}:{message.lineno}: {errors[0]}")
    out = BytesIO()
    write_mo(out, catalog, use_fuzzy=False)  # a fuzzy entry is a guess: English is better
    data = out.getvalue()
    with _compiled_lock:
        _compiled[key] = data
    return data


def compile_catalogues(sources: Iterable[tuple[str, Path]], cache: Path) -> list[Path]:
    """Compile each source folder's ``.po`` files under ``cache``; the folders Babel reads.

    A ``.mo`` is written when it is missing or older than its ``.po``, through a
    temporary file and a rename, so web processes starting together never read
    half a file. Raises ``CatalogueError`` for a ``.po`` that does not parse.
    """
    folders = []
    for unit, source in sources:
        tag = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:10]
        target = cache / f"{unit}-{tag}"
        for po_path in sorted(source.glob("*/LC_MESSAGES/*.po")):
            mo_path = target / po_path.relative_to(source).with_suffix(".mo")
            if mo_path.exists() and mo_path.stat().st_mtime_ns >= po_path.stat().st_mtime_ns:
                continue
            data = _mo_bytes(po_path)
            mo_path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=mo_path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from a desk run as another user
            os.replace(tmp, mo_path)
        folders.append(target)
    return folders


# -- Dates and times ---------------------------------------------------------------------


def local_datetime(value: dt.datetime | None, format: str = "medium") -> str:
    """A stored (naive UTC) time in the desk's time zone, written the locale's way, with
    the zone's name: "29 Nov 2026 14.05.00 WIB" for Indonesian in Asia/Jakarta."""
    if value is None:
        return ""
    from flask_babel import get_locale, get_timezone

    return _local_datetime(value, format, get_timezone(), get_locale())


@functools.lru_cache(maxsize=4096)
def _local_datetime(value: dt.datetime, format: str, zone: Any, locale: Any) -> str:
    """``local_datetime`` of one time, zone and locale: the same text every time (Babel's
    formatting is most of a short page's date work), so a page shown again (a tracking
    page, its messages' times) formats nothing new. Called with the request's own zone
    and locale, which Flask-Babel's ``format_datetime`` reads again."""
    return f"{format_datetime(value, format)} {_zone_label(zone, locale)}".strip()


@functools.lru_cache(maxsize=64)
def _zone_label(zone: Any, locale: Any) -> str:
    """The time zone's short name in a locale ("WIB"): the same for every date shown."""
    from babel.dates import get_timezone_name

    return get_timezone_name(zone, width="short", locale=locale, zone_variant="standard")


def _catalogue() -> Any:
    """The catalogue templates' ``_()`` reads: Flask-Babel's for the current locale, looked
    up once per context and locale rather than for every string of a page.

    Kept on ``g`` beside the locale it was found for, so ``force_locale`` (a notification
    in the customer's language) and ``flask_babel.refresh`` are seen at once.
    """
    from flask_babel import get_translations

    try:
        store = g._get_current_object()
    except RuntimeError:  # no app context: Flask-Babel answers with no translations
        return get_translations()
    locale = getattr(store.__dict__.get("_flask_babel"), "babel_locale", None)
    seen = store.__dict__.get("_loket_catalogue")
    if seen is not None and locale is not None and seen[0] is locale:
        return seen[1]
    translations = get_translations()
    store._loket_catalogue = (getattr(store.__dict__.get("_flask_babel"), "babel_locale", None),
                              translations)
    return translations


def install_template_gettext(env: Any) -> None:
    """Templates' ``_``, ``gettext`` and ``ngettext`` through ``_catalogue`` (Flask-Babel's own
    look the locale and domain up again for every string: an eighth of a page's time)."""
    env.install_gettext_callables(
        gettext=lambda s: _catalogue().ugettext(s),
        ngettext=lambda s, p, n: _catalogue().ungettext(s, p, n),
        pgettext=lambda c, s: _catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: _catalogue().unpgettext(c, s, p, n),
        newstyle=True)
    # ``_()``, the call on every page, straight to the catalogue: Jinja's own ``_`` passes
    # through two more template calls (an alias, then its new-style wrapper) to get here.
    env.globals["_"] = _template_gettext


@pass_eval_context
def _template_gettext(eval_ctx: Any, string: str, **variables: Any) -> str:
    """What Jinja's new-style ``_()`` does: the translation, made safe markup on an
    autoescaped page (the variables are then escaped as they go in), always formatted."""
    text = _catalogue().ugettext(string)
    if eval_ctx.autoescape:
        text = Markup(text)
    return text % variables


# -- What admins typed, per language ---------------------------------------------------------

_TRANSLATIONS_KEY = "loket_translations"


def current_language() -> str:
    """The language code of this request's locale ("en", "id", "fil"); the desk's default
    outside a request.

    Worked out once per context and locale (a submission asked six times, each a
    Flask-Babel look-up through ``g`` and a ``Locale`` turned into text), kept on ``g``
    beside the locale it was found for, as ``_catalogue`` keeps the catalogue, so
    ``force_locale`` and ``flask_babel.refresh`` are seen at once.
    """
    from flask_babel import get_locale

    try:
        store = g._get_current_object()
    except RuntimeError:  # no app context: Flask-Babel has no locale either
        store = None
    if store is not None:
        locale = getattr(store.__dict__.get("_flask_babel"), "babel_locale", None)
        seen = store.__dict__.get("_loket_language")
        if seen is not None and locale is not None and seen[0] is locale:
            return seen[1]
    locale = get_locale()
    language = str(locale) if locale is not None else loket().config["default_language"]
    if store is not None and locale is not None:
        store._loket_language = (locale, language)
    return language


def _table(language: str) -> dict[tuple[str, int, str], str]:
    """Every admin translation into ``language``: one query per request and language."""
    from .models import Translation

    cache: dict[str, dict[tuple[str, int, str], str]]
    # Kept for one request only: a worker's app context lives for hours.
    cache = g.setdefault(_TRANSLATIONS_KEY, {}) if has_request_context() else {}
    if language not in cache:
        cache[language] = {(row.model, row.row_id, row.field): row.text
                           for row in Translation.select(
                               Translation.model, Translation.row_id, Translation.field,
                               Translation.text).where(Translation.language == language)}
    return cache[language]


def forget_translations() -> None:
    """Read translations afresh in this request (the console calls it after a change)."""
    if has_request_context():
        g.pop(_TRANSLATIONS_KEY, None)


def localized(row: Any, field: str, language: str | None = None) -> str:
    """``row.field`` in the customer's language: the admin's translation when there is
    one, else the row's own text (written in the desk's default language)."""
    return translated(type(row).__name__, row.id, field, getattr(row, field) or "", language)


def translated(model: str, row_id: int, field: str, own: str,
               language: str | None = None) -> str:
    """The admin's translation of one field of one row, or ``own`` when there is none."""
    language = language or current_language()
    if language == loket().config["default_language"]:
        return own
    return _table(language).get((model, row_id, field)) or own


def localized_lines(row: Any, field: str, language: str | None = None) -> list[str]:
    """A one-per-line field (a question's choices) in the customer's language, line by
    line; the whole translation is used only when it has as many lines as the original."""
    return translated_lines(type(row).__name__, row.id, field, getattr(row, field) or "",
                            language)


def translated_lines(model: str, row_id: int, field: str, own_text: str,
                     language: str | None = None) -> list[str]:
    """``translated`` for a one-per-line field; see ``localized_lines``."""
    own = [line.strip() for line in own_text.splitlines() if line.strip()]
    text = translated(model, row_id, field, own_text, language)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines if len(lines) == len(own) else own



def localized_questions(by_category: dict[int, list[Any]], language: str | None = None
                        ) -> tuple[dict[int, list[Any]], dict[int, dict[str, list[str]]]]:
    """Categories' questions (``services.answers.Question``) with labels and help texts in
    the customer's language, and the words shown for each choice by question name (the
    stored answer stays the admin's own choice). One query for any number of categories.
    """
    from .models import CategoryField

    language = language or current_language()
    if language == loket().config["default_language"] or not any(by_category.values()):
        return by_category, {}
    ids = {(row.category_id, row.name): row.id for row in CategoryField.select(
        CategoryField.id, CategoryField.category, CategoryField.name).where(
        CategoryField.category.in_(list(by_category)))}
    shown: dict[int, list[Any]] = {}
    words: dict[int, dict[str, list[str]]] = {}
    for category_id, questions in by_category.items():
        shown[category_id] = []
        for question in questions:
            row_id = ids.get((category_id, question.name))
            if row_id is None:
                shown[category_id].append(question)
                continue
            shown[category_id].append(question._replace(
                label=translated("CategoryField", row_id, "label", question.label, language),
                help_text=translated("CategoryField", row_id, "help_text",
                                     question.help_text, language)))
            if question.choices:
                words.setdefault(category_id, {})[question.name] = translated_lines(
                    "CategoryField", row_id, "choices", "\n".join(question.choices),
                    language)
    return shown, words


# -- Extraction (``loket i18n``, and the test that holds every catalogue complete) -----------

# Where Babel looks in a unit (core, or one plugin package): the same map as babel.cfg.
METHOD_MAP = [("**/migrations/**", "ignore"), ("**.py", "python"),
              ("**/templates/**.html", "jinja2")]
# Babel's own keywords (``_``, ``gettext``, ``ngettext``, ``N_``...) and the lazy ``_l``.
EXTRA_KEYWORDS = {"_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
CATALOGUE_LANGUAGES = ("id", "fil")
HEADER_COMMENTS = {
    "id": "# Indonesian translations of Loket's customer-facing text.\n"
          "# Address the customer formally (\"Anda\"), as a help center would.",
    "fil": "# Filipino translations of Loket's customer-facing text.\n"
           "# Natural Filipino; keep the English (Taglish) words a native speaker uses:\n"
           "# \"ticket\", \"email\", \"link\", \"i-reset\", \"i-attach\", \"page\".",
}


def extract(unit_dir: Path, project: str = "Loket") -> Any:
    """The customer-facing text of one unit as a Babel ``Catalog`` (a ``.pot``)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

    keywords = {**DEFAULT_KEYWORDS, **EXTRA_KEYWORDS}
    catalog = Catalog(project=project, charset="utf-8", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(unit_dir), METHOD_MAP, keywords=keywords, comment_tags=("TRANSLATORS:",),
            strip_comment_tags=True):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments,
                    context=context)
    return catalog


def update_catalogues(unit_dir: Path, languages: Iterable[str] = CATALOGUE_LANGUAGES
                      ) -> dict[str, int]:
    """Write ``translations/messages.pot`` of a unit and bring each language's ``.po`` up to
    date with it (new text added untranslated, text gone marked obsolete).

    Returns how many entries each language still lacks.
    """
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    template = extract(unit_dir)
    folder = unit_dir / "translations"
    missing: dict[str, int] = {}
    if not len(template):
        return missing
    folder.mkdir(exist_ok=True)
    with (folder / f"{DOMAIN}.pot").open("wb") as handle:
        write_po(handle, template, width=100, omit_header=False, sort_output=False)
    for language in languages:
        po_path = folder / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        if po_path.exists():
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
            catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
        else:
            po_path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=language, project="Loket", version="1", charset="utf-8",
                              copyright_holder="Loket contributors", fuzzy=False,
                              last_translator="Loket contributors",
                              header_comment=HEADER_COMMENTS.get(language, "# Loket."))
            catalog.update(template, no_fuzzy_matching=True)
        with po_path.open("wb") as handle:
            write_po(handle, catalog, width=100, ignore_obsolete=True, include_previous=False)
        missing[language] = sum(1 for message in catalog if message.id and (
            not message.string or message.fuzzy))
    return missing


# -- Saving admins' translations (the console's one way to write them) ------------------------


def translation_rows(model: str, row_id: int) -> dict[tuple[str, str], str]:
    """{(field, language): text} of one row's translations."""
    from .models import Translation

    return {(row.field, row.language): row.text for row in Translation.select().where(
        (Translation.model == model) & (Translation.row_id == row_id))}


def save_translations(model: str, row_id: int, texts: dict[tuple[str, str], str]) -> int:
    """Set one row's translations: {(field, language): text}; an empty text removes one.

    Only the fields ``Translation.FIELDS`` names for the model, and only the desk's
    languages other than the default (the row itself holds that one). Returns how
    many translations the row has afterwards.
    """
    from . import db
    from .models import Translation, utcnow

    allowed = Translation.FIELDS.get(model, ())
    languages = [code for code in loket().config["languages"]
                 if code != loket().config["default_language"]]
    with db.write_transaction():
        for (field, language), text in texts.items():
            if field not in allowed or language not in languages:
                raise ValueError(f"{model}.{field} in {language!r} cannot be translated")
            where = ((Translation.model == model) & (Translation.row_id == row_id)
                     & (Translation.field == field) & (Translation.language == language))
            text = (text or "").strip()
            if not text:
                Translation.delete().where(where).execute()
            elif not Translation.update(text=text, updated_at=utcnow()).where(where).execute():
                Translation.create(model=model, row_id=row_id, field=field, language=language,
                                   text=text)
    forget_translations()
    return Translation.select().where((Translation.model == model)
                                      & (Translation.row_id == row_id)).count()
