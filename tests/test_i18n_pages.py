"""The help center in Indonesian and Filipino: the language chosen, the pages' own text, the
admins' labels per language, dates in the desk's time zone."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from core import db as core_db
from core.models import Category, CategoryField, FieldKind, Ticket, Translation, UserType, clock_at
from core.services import tickets as svc

LOGIN_FORM = "/help/member/registration-and-login/new"


def text_of(page: Any) -> str:
    return re.sub(r"\s+", " ", page.get_data(as_text=True))


def built_app(make_app: Any, **kwargs: Any) -> Any:
    """An app holding the small desk of tests/factories.py (``app.desk``), no CSRF on forms."""
    from .factories import build_desk

    app = make_app(**kwargs)
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), core_db.connection():
        app.desk = build_desk()
    return app


@pytest.fixture
def desk_app(make_app: Any) -> Any:
    return built_app(make_app, plugins=["livechat", "billing_desk"])


def _in(app: Any, work: Any) -> Any:
    with app.app_context(), core_db.connection():
        return work()


# -- Which language ---------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    ("id-ID,id;q=0.9,en;q=0.5", "id"),
    ("fil-PH,fil;q=0.9", "fil"),
    ("tl", "fil"),  # browsers say "tl" for Tagalog
    ("de-DE,de;q=0.9", "en"),  # not offered: the desk's default
    ("", "en"),
])
def test_accept_language_picks_the_page_language(desk_app: Any, header: str,
                                                 expected: str) -> None:
    page = desk_app.test_client().get("/", headers={"Accept-Language": header})
    assert f'<html lang="{expected}">' in page.get_data(as_text=True)


def test_the_visitors_choice_is_kept_over_accept_language(desk_app: Any) -> None:
    client = desk_app.test_client()
    assert "Tungkol saan" in text_of(client.get("/help/member/?lang=fil",
                                                headers={"Accept-Language": "id"}))
    later = text_of(client.get("/", headers={"Accept-Language": "id"}))
    assert '<html lang="fil">' in later and "Paano ka namin matutulungan?" in later


def test_the_default_language_is_the_deployments(make_app: Any) -> None:
    app = make_app(default_language="id")
    page = text_of(app.test_client().get("/", headers={"Accept-Language": "de"}))
    assert '<html lang="id">' in page and "Pusat Bantuan" in page


def test_the_switcher_is_plain_links_to_the_same_page(desk_app: Any) -> None:
    page = desk_app.test_client().get("/help/member/?x=1&lang=id").get_data(as_text=True)
    links = re.findall(r'<a href="([^"]+)" lang="(\w+)"', page)
    assert links == [("?x=1&amp;lang=en", "en"), ("?x=1&amp;lang=id", "id"),
                     ("?x=1&amp;lang=fil", "fil")]
    assert "<script" not in page


def test_the_switcher_kept_for_one_page_is_not_another_pages(desk_app: Any) -> None:
    """helpcenter keeps the switcher's links by query string, form and language: each
    address, language and form gets its own, however often it is asked for."""
    client = desk_app.test_client()

    def links(url: str) -> list[tuple[str, ...]]:
        page = client.get(url).get_data(as_text=True)
        return re.findall(r'<a href="([^"]+)" lang="(\w+)" hreflang="\w+"( aria-current)?', page)

    for _round in range(2):
        assert links("/help/member/?x=1&lang=id") == [
            ("?x=1&amp;lang=en", "en", ""), ("?x=1&amp;lang=id", "id", " aria-current"),
            ("?x=1&amp;lang=fil", "fil", "")]
        assert links("/help/member/?x=2&lang=fil")[0] == ("?x=2&amp;lang=en", "en", "")
        assert links("/help/member/?x=2&lang=fil")[2] == ("?x=2&amp;lang=fil", "fil",
                                                          " aria-current")
        form = client.get(f"{LOGIN_FORM}?x=1&lang=id").get_data(as_text=True)
        assert 'form="ticket-form" formaction="?x=1&amp;lang=en"' in form


def test_the_switcher_on_a_reply_with_an_error_posts_back_to_the_reply(
        desk_app: Any) -> None:
    # The tracking page's switcher is bound to the reply form (test_i18n_forms.py): from a
    # reply with an error it posts to the reply's address, which shows the tracking page.
    ticket = _open(desk_app, "id")
    client = desk_app.test_client()
    reply = f"/t/{ticket.id}/{ticket.access_key}/reply"
    page = client.post(f"{reply}?lang=id", data={"text": ""})
    html = page.get_data(as_text=True)
    assert "Kolom ini wajib diisi." in html
    assert f'form="reply-form" formaction="{reply}?lang=fil"' in html
    switched = client.post(f"{reply}?lang=fil", data={"text": "", "switch_language": "fil"})
    assert "Ticket" in text_of(switched) and "Kailangang sagutan" not in text_of(switched)


# -- The pages' own text ------------------------------------------------------------------------

PAGES = {
    "id": {"home": ["Apa yang dapat kami bantu?", "Pertama, beri tahu kami siapa Anda"],
           "categories": ["Pertanyaan Anda tentang apa?", "Pusat Bantuan"],
           "form": ["Kirimkan pertanyaan Anda", "Nama Anda", "Alamat email Anda",
                    "Silakan perbaiki kolom yang ditandai di bawah ini.",
                    "Kolom ini wajib diisi.",
                    "Masukkan alamat email yang valid, misalnya nama@example.com.",
                    "Opsional. Paling banyak 5 file, masing-masing 10 MB"],
           "tracking": ["Terima kasih! Permintaan Anda telah kami terima.", "Tiket", "Diterima",
                        "Balas", "Kirim balasan", "Apakah masalah Anda sudah teratasi?"]},
    "fil": {"home": ["Paano ka namin matutulungan?", "sabihin mo muna kung sino ka"],
            "categories": ["Tungkol saan ang tanong mo?", "Help Center"],
            "form": ["Ipadala sa amin ang iyong tanong", "Pangalan mo", "Email address mo",
                     "Pakiayos ang mga field na may marka sa ibaba.",
                     "Kailangang sagutan ang field na ito.",
                     "Maglagay ng tamang email address",
                     "Optional. Hanggang 5 file, tig-10 MB"],
            "tracking": ["Salamat! Natanggap namin ang iyong request.", "Natanggap",
                         "Mag-reply", "Ipadala ang reply", "Naayos na ba ang problema mo?"]},
}


def _open(app: Any, language: str) -> Ticket:
    client = app.test_client()
    page = client.post(f"{LOGIN_FORM}?lang={language}", data={
        "name": "Rina", "email": "rina@example.com", "subject": "Tidak bisa masuk",
        "description": "Kata sandi saya ditolak.", "extra_registered_email": "rina@example.com"})
    assert page.status_code == 302, page.get_data(as_text=True)
    return _in(app, lambda: Ticket.select().order_by(Ticket.id.desc()).get())


@pytest.mark.parametrize("language", ["id", "fil"])
def test_each_page_reads_in_the_chosen_language(desk_app: Any, language: str) -> None:
    client = desk_app.test_client()
    expected = PAGES[language]
    pages = {
        "home": client.get(f"/?lang={language}"),
        "categories": client.get("/help/member/"),
        "form": client.post(LOGIN_FORM, data={"email": "not-an-address",
                                              "extra_registered_email": "x@example.com"}),
    }
    page = client.post(LOGIN_FORM, data={
        "name": "Rina", "email": "rina@example.com", "subject": "Tidak bisa masuk",
        "description": "Kata sandi saya ditolak.", "extra_registered_email": "rina@example.com"})
    pages["tracking"] = client.get(page.headers["Location"])
    for name, page in pages.items():
        html = text_of(page)
        assert f'<html lang="{language}">' in html, name
        missing = [phrase for phrase in expected[name] if phrase not in html]
        assert not missing, f"{name}: {missing}"
        for english in ("How can we help?", "What is your question about?",
                        "This field is required.", "Send reply", "Help Center home"):
            assert english not in html, (name, english)
    ticket = _in(desk_app, lambda: Ticket.select().order_by(Ticket.id.desc()).get())
    assert ticket.language == language


@pytest.mark.parametrize(("language", "title", "text"), [
    ("id", "Halaman tidak ditemukan", "Kami tidak dapat menemukan halaman ini."),
    ("fil", "Hindi nahanap ang page", "Hindi namin mahanap ang page na ito."),
])
def test_error_pages_are_translated(desk_app: Any, language: str, title: str,
                                    text: str) -> None:
    html = text_of(desk_app.test_client().get(f"/help/nobody/?lang={language}"))
    assert title in html and text in html
    assert "Not Found" not in html and "requested URL" not in html


def test_a_plugins_catalogue_joins_cores(make_app: Any) -> None:
    """Flask-Babel merges the catalogues of one domain from several folders."""
    app = make_app(plugins=["livechat"])
    client = app.test_client()
    home = text_of(client.get("/?lang=fil"))
    assert "Mag-chat sa amin" in home  # livechat's catalogue
    assert "Paano ka namin matutulungan?" in home  # core's, on the same page


# -- What admins typed, per language ------------------------------------------------------------


def _translate(app: Any, rows: list[tuple[Any, str, str, str]]) -> None:
    def work() -> None:
        for row, field, language, text in rows:
            Translation.create(model=type(row).__name__, row_id=row.id, field=field,
                               language=language, text=text)
    _in(app, work)


def test_admins_labels_show_in_the_visitors_language_and_fall_back_to_the_default(
        desk_app: Any) -> None:
    desk = desk_app.desk
    field = _in(desk_app, lambda: CategoryField.get(CategoryField.name == "registered_email"))
    _translate(desk_app, [
        (desk.member, "name", "id", "Anggota"),
        (desk.member, "description", "id", "Anda menggunakan situs sebagai anggota."),
        (desk.login, "name", "id", "Pendaftaran dan masuk"),
        (desk.login, "name", "fil", "Registration at login"),
        (field, "label", "id", "Email terdaftar"),
        (field, "help_text", "id", "Alamat yang Anda gunakan saat mendaftar."),
    ])
    _in(desk_app, lambda: UserType.update(description="You use the site as a member.")
        .where(UserType.id == desk.member.id).execute())
    client = desk_app.test_client()
    home = text_of(client.get("/?lang=id"))
    assert "Anggota" in home and "Anda menggunakan situs sebagai anggota." in home
    assert "Studio" in home  # no translation: the admin's own text
    assert "Pendaftaran dan masuk" in text_of(client.get("/help/member/"))
    form = text_of(client.get(LOGIN_FORM))
    assert "Email terdaftar" in form and "Alamat yang Anda gunakan saat mendaftar." in form
    assert "Registered email" not in form

    fil = text_of(client.get("/?lang=fil"))
    assert "Member" in fil and "You use the site as a member." in fil  # none in fil
    fil_form = text_of(client.get(LOGIN_FORM))
    assert "Registration at login" in fil_form and "Registered email" in fil_form

    en = text_of(client.get("/help/member/?lang=en"))
    assert "Registration and login" in en and "Pendaftaran" not in en


def test_translated_choices_show_the_visitors_words_and_store_the_admins_value(
        desk_app: Any) -> None:
    desk = desk_app.desk

    def add_field() -> CategoryField:
        return CategoryField.create(category=desk.login, name="device", label="Device",
                                    kind=FieldKind.CHOICE, choices="Phone\nComputer",
                                    position=2)
    field = _in(desk_app, add_field)
    _translate(desk_app, [(field, "label", "id", "Perangkat"),
                          (field, "choices", "id", "Ponsel\nKomputer")])
    client = desk_app.test_client()
    form = client.get(f"{LOGIN_FORM}?lang=id").get_data(as_text=True)
    assert '<option value="Phone">Ponsel</option>' in form
    assert '<option value="Computer">Komputer</option>' in form
    assert "Pilih…" in form
    page = client.post(LOGIN_FORM, data={
        "name": "Rina", "email": "rina@example.com", "subject": "Masuk",
        "description": "Tidak bisa.", "extra_registered_email": "rina@example.com",
        "extra_device": "Computer"})
    assert page.status_code == 302
    ticket = _in(desk_app, lambda: Ticket.select().order_by(Ticket.id.desc()).get())
    assert ticket.form_data["device"] == "Computer"


def test_a_choice_translation_with_other_lines_falls_back_to_the_admins_words(
        desk_app: Any) -> None:
    desk = desk_app.desk
    field = _in(desk_app, lambda: CategoryField.create(
        category=desk.login, name="device", label="Device", kind=FieldKind.CHOICE,
        choices="Phone\nComputer", position=2))
    _translate(desk_app, [(field, "choices", "id", "Ponsel")])  # one line for two choices
    form = desk_app.test_client().get(f"{LOGIN_FORM}?lang=id").get_data(as_text=True)
    assert '<option value="Phone">Phone</option>' in form


def test_labels_cost_one_query_per_page_however_many_there_are(desk_app: Any) -> None:
    desk = desk_app.desk

    def many() -> None:
        for position in range(30):
            category = Category.create(user_type=desk.member, slug=f"topic-{position}",
                                       name=f"Topic {position}", position=10 + position)
            Translation.create(model="Category", row_id=category.id, field="name",
                               language="id", text=f"Topik {position}")
    _in(desk_app, many)
    client = desk_app.test_client()
    client.get("/?lang=id")
    database = desk_app.extensions["loket"].database
    statements: list[str] = []
    original = database.execute_sql

    def counting(sql: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(sql)
        return original(sql, *args, **kwargs)

    database.execute_sql = counting
    try:
        page = text_of(client.get("/help/member/"))
    finally:
        database.execute_sql = original
    assert "Topik 29" in page and "Topik 0" in page
    assert sum('FROM "translation"' in sql for sql in statements) == 1


# -- Dates and times ---------------------------------------------------------------------------


def test_the_tracking_page_shows_times_in_the_desks_time_zone_and_the_locales_format(
        make_app: Any) -> None:
    from .factories import build_desk

    app = make_app(timezone="Asia/Jakarta")
    app.config["WTF_CSRF_ENABLED"] = False

    def opened() -> Ticket:
        build_desk()
        with clock_at(dt.datetime(2026, 3, 5, 18, 30)):  # 01:30 on the 6th in Jakarta
            return svc.open_ticket(identity=svc.Identity("email", "rina@example.com"),
                                   subject="Masuk", text="Tidak bisa.", language="id")
    ticket = _in(app, opened)
    client = app.test_client()
    url = f"/t/{ticket.id}/{ticket.access_key}"
    html = text_of(client.get(f"{url}?lang=id"))
    assert "6 Mar 2026 01.30.00 WIB" in html
    assert 'datetime="2026-03-05T18:30:00Z"' in html  # the machine-readable time stays UTC
    html = text_of(client.get(f"{url}?lang=en"))
    assert "Mar 6, 2026, 1:30:00 AM" in html  # text_of turns the narrow space into one


def test_an_unknown_time_zone_is_refused_with_one_line(make_app: Any) -> None:
    from core.config import ConfigError

    with pytest.raises(ConfigError, match="Asia/Jakarta"):
        make_app(timezone="Mars/Olympus")


def test_the_apis_help_center_data_follows_accept_language(desk_app: Any) -> None:
    desk = desk_app.desk
    field = _in(desk_app, lambda: CategoryField.get(CategoryField.name == "registered_email"))
    _translate(desk_app, [(desk.member, "name", "id", "Anggota"),
                          (desk.login, "name", "id", "Pendaftaran dan masuk"),
                          (field, "label", "id", "Email terdaftar")])
    client = desk_app.test_client()
    types = client.get("/api/v1/user-types", headers={"Accept-Language": "id"}).get_json()
    assert {t["slug"]: t["name"] for t in types["user_types"]}["member"] == "Anggota"
    tree = client.get("/api/v1/categories?user_type=member",
                      headers={"Accept-Language": "id"}).get_json()["categories"]
    login = next(c for c in tree if c["slug"] == "registration-and-login")
    assert login["name"] == "Pendaftaran dan masuk"
    assert login["fields"][0]["label"] == "Email terdaftar"
    english = client.get("/api/v1/categories?user_type=member").get_json()["categories"]
    assert next(c for c in english if c["slug"] == login["slug"])["name"] == (
        "Registration and login")


def test_sizes_are_written_the_locales_way(make_app: Any) -> None:
    from .factories import build_desk

    app = make_app(upload_max_bytes=int(2.5 * 1024 * 1024))
    _in(app, build_desk)
    client = app.test_client()
    assert "masing-masing 2,5 MB" in text_of(client.get(f"{LOGIN_FORM}?lang=id"))
    assert "2.5 MB each" in text_of(client.get(f"{LOGIN_FORM}?lang=en"))


def test_a_refused_form_token_is_explained_in_the_visitors_language(make_app: Any) -> None:
    app = make_app()  # CSRF on
    client = app.test_client()
    page = text_of(client.post(f"{LOGIN_FORM}?lang=fil", data={"name": "x"}))
    assert "Nag-expire na ang iyong form o ipinadala ito mula sa ibang site." in page
    assert "CSRF" not in page


def test_templates_follow_the_locale_within_one_request(desk_app: Any) -> None:
    # A page in Indonesian that renders a notification in Filipino, then goes on in
    # Indonesian: templates' _() reads the catalogue of the locale in force each time.
    import flask_babel
    from flask import render_template_string

    page = "{{ _('Unknown field.') }}|{{ _('Please attach a file.') }}"
    with desk_app.test_request_context("/", headers={"Accept-Language": "id"}):
        first = render_template_string(page)
        with flask_babel.force_locale("fil"):
            forced = render_template_string(page)
        again = render_template_string(page)
        flask_babel.refresh()
        with flask_babel.force_locale("en"):
            english = render_template_string(page)
    assert first == again
    assert english == "Unknown field.|Please attach a file."
    assert len({first, forced, english}) == 3, (first, forced, english)


def test_each_desk_in_a_process_shows_its_own_limits(make_app: Any) -> None:
    """helpcenter.upload_limits keeps its words per language and settings: two desks with
    other limits in one process never show each other's text."""
    from .factories import build_desk

    small, large = make_app(upload_max_bytes=int(2.5 * 1024 * 1024)), make_app()
    _in(small, build_desk)
    for _round in range(2):
        assert "2.5 MB each" in text_of(small.test_client().get(LOGIN_FORM))
        assert "10 MB each" in text_of(large.test_client().get(LOGIN_FORM))
        assert "masing-masing 2,5 MB" in text_of(small.test_client().get(f"{LOGIN_FORM}?lang=id"))


def test_a_time_formatted_before_is_written_for_each_zone_and_language(make_app: Any) -> None:
    """core.i18n keeps formatted times by zone and locale: one desk's text never shows in
    another zone or language."""
    from core.i18n import local_datetime

    when = dt.datetime(2026, 3, 5, 18, 30)
    jakarta, makassar = make_app(timezone="Asia/Jakarta"), make_app(timezone="Asia/Makassar")
    for _round in range(2):
        with jakarta.test_request_context("/?lang=id"):
            assert local_datetime(when) == "6 Mar 2026 01.30.00 WIB"
        with jakarta.test_request_context("/?lang=en"):
            assert local_datetime(when).replace("\u202f", " ") == (
                "Mar 6, 2026, 1:30:00 AM Indonesia (Jakarta) Time")
        with makassar.test_request_context("/?lang=id"):
            assert local_datetime(when) == "6 Mar 2026 02.30.00 WITA"


def test_the_requests_language_is_looked_up_once_per_locale(desk_app: Any,
                                                            monkeypatch: Any) -> None:
    import flask_babel

    from core.i18n import current_language, force_locale

    asked: list[int] = []
    real = flask_babel.get_locale
    monkeypatch.setattr(flask_babel, "get_locale", lambda: (asked.append(1), real())[1])
    with desk_app.test_request_context("/?lang=id"):
        assert [current_language() for _ in range(5)] == ["id"] * 5
        assert len(asked) == 1
        with force_locale("fil"):  # a notification in the customer's language
            assert current_language() == "fil"
        assert current_language() == "id"
        flask_babel.refresh()
        assert current_language() == "id" and len(asked) == 4
    with desk_app.app_context():  # no request: the desk's default
        assert current_language() == "en"
