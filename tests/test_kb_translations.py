"""Every customer-facing string of the knowledge base has an Indonesian and a Filipino translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "knowledge_base"
METHODS = [("**/templates/knowledge_base_admin/**.html", "ignore"),  # the console stays English
           ("**/templates/**.html", "jinja2"), ("**.py", "python")]


def _customer_strings() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(PLUGIN), METHODS, keywords={"_": None, "_l": None, "gettext": None}):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_the_extraction_sees_templates_and_code():
    strings = _customer_strings()
    assert "Was this helpful?" in strings  # a template
    assert "Before you write: answers to common questions" in strings  # Python


@pytest.mark.parametrize("language", ["id", "fil"])
def test_every_customer_string_is_translated(language):
    path = PLUGIN / "translations" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    translated = {m.id for m in catalog if m.id and m.string}
    missing = sorted(_customer_strings() - translated)
    assert missing == []
    # Placeholders survive translation.
    for message in catalog:
        if message.id and "%(" in message.id:
            assert PLACEHOLDER.findall(message.id) == PLACEHOLDER.findall(message.string)
