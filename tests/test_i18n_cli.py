"""`loket i18n extract|compile`, and the demo desk's labels in Indonesian and Filipino."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import core
from core import db
from core.models import Translation

from .test_cli import cli_env, desk_db, loket, ok  # noqa: F401 (fixtures)


@pytest.mark.usefixtures("cli_env")
def test_extract_writes_a_template_and_catalogues_and_says_what_is_missing(
        tmp_path: Path) -> None:
    unit = tmp_path / "invoices"
    (unit / "templates" / "invoices").mkdir(parents=True)
    (unit / "__init__.py").write_text('from core.i18n import _\n\ndef label():\n'
                                      '    return _("Pay %(amount)s now", amount=1)\n')
    (unit / "templates" / "invoices" / "page.html").write_text("<p>{{ _('Your invoice') }}</p>")
    result = loket("i18n", "extract", str(unit))
    assert result.exit_code == 1
    assert "invoices: id lacks 2, fil lacks 2" in result.output
    pot = (unit / "translations" / "messages.pot").read_text()
    assert 'msgid "Pay %(amount)s now"' in pot and 'msgid "Your invoice"' in pot
    po = unit / "translations" / "id" / "LC_MESSAGES" / "messages.po"
    assert "Language: id" in po.read_text()

    # A translator fills them in; extract again keeps the work and is satisfied.
    text = po.read_text().replace('msgid "Your invoice"\nmsgstr ""',
                                  'msgid "Your invoice"\nmsgstr "Tagihan Anda"')
    text = text.replace('msgid "Pay %(amount)s now"\nmsgstr ""',
                        'msgid "Pay %(amount)s now"\nmsgstr "Bayar %(amount)s sekarang"')
    po.write_text(text)
    fil = unit / "translations" / "fil" / "LC_MESSAGES" / "messages.po"
    fil.write_text(fil.read_text().replace(
        'msgid "Your invoice"\nmsgstr ""', 'msgid "Your invoice"\nmsgstr "Ang iyong invoice"')
        .replace('msgid "Pay %(amount)s now"\nmsgstr ""',
                 'msgid "Pay %(amount)s now"\nmsgstr "Magbayad ng %(amount)s ngayon"'))
    again = ok("i18n", "extract", str(unit)).output
    assert "invoices: id lacks 0, fil lacks 0" in again
    assert 'msgstr "Tagihan Anda"' in po.read_text()


@pytest.mark.usefixtures("cli_env")
def test_compile_names_each_catalogue_folder() -> None:
    output = ok("i18n", "compile").output
    lines = output.strip().splitlines()
    assert any(re.search(r"/translations/core-\w+: fil, id$", line) for line in lines)
    assert any(re.search(r"/translations/livechat-\w+: fil, id$", line) for line in lines)


@pytest.mark.usefixtures("desk_db")
def test_the_demo_desk_reads_in_indonesian_and_filipino() -> None:
    first = ok("demo", "--admin-password", "demo password 123").output
    added = int(re.search(r"(\d+) new translation", first).group(1))
    assert added > 50
    assert "0 new translation(s)" in ok("demo").output  # safe to run again

    app = core.create_app()
    try:
        with app.app_context(), db.connection():
            models = {t.model for t in Translation.select()}
            assert models == {"UserType", "Category", "CategoryField"}
        client = app.test_client()
        home = client.get("/?lang=id").get_data(as_text=True)
        assert "Anggota" in home and "Model independen" in home
        member = client.get("/help/member/").get_data(as_text=True)
        assert "Pendaftaran dan masuk" in member and "Pengembalian dana" in member
        form = client.get("/help/member/registration-and-login/new?lang=fil").get_data(
            as_text=True)
        assert "Registration at pag-login" in form
        assert "Ang email address na ginamit mo sa pag-sign up." in form
    finally:
        app.extensions["loket"].database.close()


@pytest.mark.usefixtures("desk_db")
def test_a_desk_whose_default_is_indonesian_gets_no_indonesian_copies(monkeypatch: Any) -> None:
    monkeypatch.setenv("LOKET_DEFAULT_LANGUAGE", "id")
    ok("demo", "--admin-password", "demo password 123")
    app = core.create_app()
    try:
        with app.app_context(), db.connection():
            assert {t.language for t in Translation.select()} == {"fil"}
    finally:
        app.extensions["loket"].database.close()
