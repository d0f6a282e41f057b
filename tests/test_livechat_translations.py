"""Every text of the widget, bot and offline fallback has Indonesian and Filipino translations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "livechat"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


def _msgids() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(PLUGIN), METHODS, keywords={"_": None, "_l": None, "gettext": None}):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("language", ["id", "fil"])
def test_every_livechat_text_is_translated_with_its_placeholders(language: str) -> None:
    path = PLUGIN / "translations" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        catalogue = read_po(f, locale=language)
    assert not catalogue.fuzzy
    translated = {m.id: m.string for m in catalogue if m.id}
    wanted = _msgids()
    assert len(wanted) > 40
    missing = sorted(m for m in wanted if not translated.get(m))
    assert missing == []
    for msgid in wanted:
        assert (sorted(re.findall(r"%\(\w+\)s", msgid))
                == sorted(re.findall(r"%\(\w+\)s", translated[msgid]))), msgid
    if language == "id":  # formal: "Anda", never "kamu"
        assert not any(re.search(r"\bkamu\b", s, re.I) for s in translated.values())
