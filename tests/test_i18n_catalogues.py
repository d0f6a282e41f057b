"""Every customer-facing string of core and of every plugin has an Indonesian and a Filipino
translation, placeholders intact; catalogues are compiled when the desk starts."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from core.i18n import (
    CATALOGUE_LANGUAGES,
    CORE_TRANSLATIONS,
    CatalogueError,
    compile_catalogues,
    extract,
)

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
PLUGINS = ROOT / "plugins"


def units() -> list[Path]:
    """Core and every plugin folder in the checkout (the console, ``admin/``, stays English)."""
    return [CORE] + sorted(p for p in PLUGINS.iterdir()
                           if p.is_dir() and (p / "__init__.py").exists())


def catalogue(unit: Path, language: str) -> Any:
    path = unit / "translations" / language / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,) if value else ()


def untranslated(unit: Path) -> list[str]:
    """What of a unit's customer-facing text lacks a translation in id or fil."""
    wanted = [message for message in extract(unit) if message.id]
    problems = []
    for language in CATALOGUE_LANGUAGES:
        found = catalogue(unit, language)
        if found is None:
            if wanted:
                problems.append(f"{unit.name}: no {language} catalogue for {len(wanted)} "
                                f"strings (run `loket i18n extract`)")
            continue
        for message in wanted:
            entry = found.get(message.id, context=message.context)
            strings = _strings(entry.string) if entry is not None else ()
            if entry is None or entry.fuzzy or not strings or not all(s.strip()
                                                                      for s in strings):
                text = message.id if isinstance(message.id, str) else message.id[0]
                problems.append(f"{unit.name} [{language}]: {text[:70]!r}")
    return problems


@pytest.mark.parametrize("unit", units(), ids=lambda p: p.name)
def test_every_customer_facing_string_is_translated_into_indonesian_and_filipino(
        unit: Path) -> None:
    problems = untranslated(unit)
    assert not problems, "untranslated:\n" + "\n".join(problems)


def test_the_check_catches_a_new_string_without_translation(tmp_path: Path) -> None:
    unit = tmp_path / "newplugin"
    (unit / "templates" / "newplugin").mkdir(parents=True)
    (unit / "__init__.py").write_text('from core.i18n import _l\nLABEL = _l("Pay now")\n')
    (unit / "templates" / "newplugin" / "page.html").write_text('{{ _("Your invoice") }}')
    assert len(untranslated(unit)) == 2  # no catalogues at all
    from core.i18n import update_catalogues

    assert update_catalogues(unit) == {"id": 2, "fil": 2}
    problems = untranslated(unit)
    assert "newplugin [id]: 'Your invoice'" in problems
    assert "newplugin [fil]: 'Pay now'" in problems
    assert len(problems) == 4


def test_the_walk_finds_templates_python_and_plugins() -> None:
    """The check above looks where customer text lives (a walk that finds nothing passes)."""
    core_ids = {m.id for m in extract(CORE)}
    assert "Help Center" in core_ids  # a template
    assert "Your email address" in core_ids  # a form label (_l)
    assert "[#{number}] We received your request: {subject}" in core_ids  # a notification
    assert "Not a valid choice." in core_ids  # WTForms' own message, which it lacks in id/fil
    assert not any("admin" in str(loc) for m in extract(CORE) for loc, _ in m.locations)
    livechat = {m.id for m in extract(PLUGINS / "livechat")}
    assert "Leave a message" in livechat  # a plugin template


_PERCENT = re.compile(r"%(?:\((\w+)\))?[#0 +-]*\d*(?:\.\d+)?[sdifr%]")
_BRACE = re.compile(r"\{(\w*)\}")


def placeholders(text: str) -> tuple[list[str], list[str]]:
    percent = sorted(m.group(0).replace(" ", "") for m in _PERCENT.finditer(text)
                     if m.group(0) != "%%")
    return percent, sorted(_BRACE.findall(text))


def all_catalogues() -> list[Path]:
    return sorted(CORE_TRANSLATIONS.glob("*/LC_MESSAGES/*.po")) + sorted(
        PLUGINS.glob("*/translations/*/LC_MESSAGES/*.po"))


def test_translations_keep_every_placeholder() -> None:
    problems = []
    checked = 0
    for path in all_catalogues():
        with path.open("rb") as handle:
            found = read_po(handle)
        for message in found:
            if not message.id or not message.string:
                continue
            ids, strings = _strings(message.id), _strings(message.string)
            for translated in strings:
                checked += 1
                # A plural's forms may drop the number ("one file"); never add or rename one.
                source = placeholders(ids[-1])
                got = placeholders(translated)
                if got != source and not (len(ids) > 1 and set(got[0]) <= set(source[0])):
                    problems.append(f"{path.relative_to(ROOT)}: {ids[0][:50]!r} has {got}, "
                                    f"expected {source}")
    assert checked > 200
    assert not problems, "\n".join(problems)


def test_indonesian_is_formal_everywhere() -> None:
    # "Anda", never "kamu": the desk speaks to customers as a help center does.
    informal = re.compile(r"\bkamu\b", re.IGNORECASE)
    found = []
    for path in all_catalogues():
        if path.parts[-3] != "id":
            continue
        with path.open("rb") as handle:
            for message in read_po(handle):
                found += [f"{path.relative_to(ROOT)}: {text[:60]!r}"
                          for text in _strings(message.string) if informal.search(text)]
    assert found == []


def test_no_catalogue_is_marked_fuzzy() -> None:
    # A fuzzy catalogue header makes the compiler skip the whole file.
    fuzzy = []
    for path in all_catalogues():
        with path.open("rb") as handle:
            if read_po(handle).fuzzy:
                fuzzy.append(str(path.relative_to(ROOT)))
    assert fuzzy == []


def test_placeholder_check_sees_a_dropped_or_renamed_placeholder() -> None:
    assert placeholders("Up to %(count)s files, %(size)s MB") != placeholders(
        "Hanggang %(count)s file")
    assert placeholders("Hello {name}") != placeholders("Halo {nama}")
    assert placeholders("%(max)d characters") == placeholders("%(max)d karakter")


# -- Compiling -------------------------------------------------------------------------------

PO = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\\n"
"Language: id\\n"

msgid "Leave a message"
msgstr "{text}"
"""


def _unit(tmp_path: Path, text: str) -> Path:
    source = tmp_path / "plugin" / "translations"
    po = source / "id" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True, exist_ok=True)
    po.write_text(PO.format(text=text), encoding="utf-8")
    return source


def _read_mo(folder: Path, text: str) -> str:
    from babel.support import Translations

    return Translations.load(str(folder), ["id"]).gettext(text)


def test_a_catalogue_is_compiled_when_missing_and_again_when_its_po_changes(
        tmp_path: Path) -> None:
    source = _unit(tmp_path, "Tinggalkan pesan")
    cache = tmp_path / "cache"
    [folder] = compile_catalogues([("plugin", source)], cache)
    assert _read_mo(folder, "Leave a message") == "Tinggalkan pesan"

    po = source / "id" / "LC_MESSAGES" / "messages.po"
    po.write_text(PO.format(text="Tinggalkan pesan untuk kami"), encoding="utf-8")
    later = time.time() + 5
    os.utime(po, (later, later))
    [again] = compile_catalogues([("plugin", source)], cache)
    assert again == folder
    assert _read_mo(folder, "Leave a message") == "Tinggalkan pesan untuk kami"


def test_a_broken_catalogue_stops_the_start_with_its_file_name(tmp_path: Path) -> None:
    source = _unit(tmp_path, 'Tinggalkan pesan"\nnot a po line')
    with pytest.raises(CatalogueError, match="messages.po"):
        compile_catalogues([("plugin", source)], tmp_path / "cache")


def test_a_translation_with_other_placeholders_stops_the_start(tmp_path: Path) -> None:
    source = _unit(tmp_path, "x")
    po = source / "id" / "LC_MESSAGES" / "messages.po"
    po.write_text(po.read_text() + '\n#, python-format\nmsgid "At most %(max)d characters."\n'
                  'msgstr "Paling banyak %(maks)d karakter."\n', encoding="utf-8")
    with pytest.raises(CatalogueError, match="messages.po:"):
        compile_catalogues([("plugin", source)], tmp_path / "cache")


def test_the_app_compiles_core_and_enabled_plugins_catalogues_into_the_instance(
        make_app: Any) -> None:
    app = make_app(plugins=["livechat", "billing_desk"])
    folders = app.config["BABEL_TRANSLATION_DIRECTORIES"].split(";")
    names = [Path(f).name.split("-")[0] for f in folders]
    assert names == ["livechat", "billing_desk", "core"]  # core last: its wording wins
    instance = Path(app.extensions["loket"].config["instance_path"])
    for folder in folders:
        assert Path(folder).is_relative_to(instance)
        for language in CATALOGUE_LANGUAGES:
            assert (Path(folder) / language / "LC_MESSAGES" / "messages.mo").exists()


def test_a_plugin_that_is_not_enabled_adds_no_catalogue(make_app: Any) -> None:
    app = make_app(plugins=[])
    folders = app.config["BABEL_TRANSLATION_DIRECTORIES"].split(";")
    assert [Path(f).name.split("-")[0] for f in folders] == ["core"]
