"""Every customer-facing string of the billing desk has an Indonesian and a Filipino translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "billing_desk"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


def _extracted() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(PLUGIN), METHODS, keywords={"_": None, "_l": None, "gettext": None}):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("language", ["id", "fil"])
def test_the_billing_desks_catalogue_translates_every_string(language):
    path = PLUGIN / "translations" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    assert not catalog.fuzzy
    translated = {m.id: m.string for m in catalog if m.id and m.string}
    wanted = _extracted()
    assert len(wanted) > 40  # the page, the form and its errors
    assert sorted(wanted - set(translated)) == []
    for msgid, text in translated.items():
        # Placeholders survive translation: "%(code)s" in, "%(code)s" out.
        assert sorted(_placeholders(msgid)) == sorted(_placeholders(text)), msgid


def _placeholders(text: str) -> list[str]:
    return re.findall(r"%\(\w+\)s", text)


def test_indonesian_uses_the_formal_anda():
    path = PLUGIN / "translations" / "id" / "LC_MESSAGES" / "messages.po"
    text = path.read_text()
    assert "Anda" in text and " kamu" not in text.lower()
