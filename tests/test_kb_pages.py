"""The knowledge base on the help center: pages, translations, votes, suggestions, the console."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from core import db as core_db
from core.hookspecs import ContactOption
from core.models import Ticket
from plugins.knowledge_base import demo
from plugins.knowledge_base.library import report
from plugins.knowledge_base.models import (
    Article,
    Search,
    Status,
    SuggestionShown,
    View,
    VisitorTicket,
    Vote,
)
from plugins.knowledge_base.render import markdown_to_html

from .factories import PASSWORD, build_desk, fresh_rate_window
from .test_admin_helpers import csrf_token, sign_in


@pytest.fixture
def kb(make_app: Any) -> Any:
    """The test desk with the demo articles, its forms without CSRF (the CSRF test turns it on)."""
    app = make_app(plugins=["knowledge_base"])
    app.config["WTF_CSRF_ENABLED"] = False
    with app.test_request_context("/"), core_db.connection():
        desk = build_desk()
        demo.load()
    app.desk = desk
    return app


def run(app: Any, fn: Any) -> Any:
    with app.test_request_context("/"), core_db.connection():
        return fn()


def _article(app: Any, slug: str, language: str) -> Article:
    return run(app, lambda: Article.get((Article.slug == slug) & (Article.language == language)
                                        & (Article.category == app.desk.login)))


LOGIN = "/kb/member/registration-and-login/"


# -- Pages and translations ---------------------------------------------------------------


def test_a_category_page_lists_its_headlines_in_the_visitors_language(kb):
    client = kb.test_client()
    page = client.get(LOGIN + "?lang=id").get_data(as_text=True)
    assert "Email verifikasi tidak pernah sampai" in page
    assert "The verification email never arrived" not in page
    titles = re.findall(r'class="content-links kb-headlines">(.*?)</ul>', page, re.S)[0]
    # The admin's order: position first.
    assert titles.index("Email verifikasi") < titles.index("Cara mengatur ulang kata sandi")
    help_links = page[page.index("still-need-help"):]
    assert "/help/member/registration-and-login/new" in help_links


def test_a_missing_translation_falls_back_to_the_default_language_with_a_note(kb):
    fil = _article(kb, "reset-your-password", "fil")
    run(kb, lambda: Article.delete().where(Article.id == fil.id).execute())
    client = kb.test_client()
    page = client.get(LOGIN + "reset-your-password?lang=fil").get_data(as_text=True)
    assert "How to reset your password" in page
    assert "kb-fallback" in page and 'lang="en"' in page
    # The others are still shown in Filipino, with no note.
    other = client.get(LOGIN + "verification-link-expired?lang=fil").get_data(as_text=True)
    assert "Expired na ang verification link ko" in other and "kb-fallback" not in other
    # The listing falls back too, one entry per article.
    listing = client.get(LOGIN + "?lang=fil").get_data(as_text=True)
    assert listing.count("How to reset your password") == 1
    assert "Paano i-reset ang password" not in listing


def test_a_translation_reached_by_another_languages_address_is_shown_in_mine(kb):
    # Translations share a group: an Indonesian visitor with an English link reads Indonesian.
    en = _article(kb, "reset-your-password", "en")
    run(kb, lambda: Article.update(slug="mengatur-ulang-kata-sandi").where(
        (Article.group == en.group) & (Article.language == "id")).execute())
    page = kb.test_client().get(LOGIN + "reset-your-password?lang=id").get_data(as_text=True)
    assert "Cara mengatur ulang kata sandi" in page


def test_draft_articles_are_never_public(kb):
    article = _article(kb, "typo-in-email-address", "en")

    def draft() -> None:
        article.status = Status.DRAFT
        article.save()

    run(kb, draft)
    client = kb.test_client()
    # Its address now shows a published translation, with the note, never the draft.
    page = client.get(LOGIN + "typo-in-email-address?lang=en").get_data(as_text=True)
    assert "I made a typo" not in page and "kb-fallback" in page
    assert "I made a typo" not in client.get(LOGIN + "?lang=en").get_data(as_text=True)
    assert "I made a typo" not in client.get("/kb/search?q=typo+email&lang=en").get_data(
        as_text=True)
    assert "I made a typo" not in client.get("/help/member/?lang=en").get_data(as_text=True)
    assert client.post(f"/kb/vote/{article.id}", data={"helpful": "yes"}).status_code == 404
    # Every other language of the group is still public.
    assert client.get(LOGIN + "typo-in-email-address?lang=id").status_code == 200


def test_an_unknown_category_or_article_is_404(kb):
    client = kb.test_client()
    assert client.get("/kb/member/no-such-topic/").status_code == 404
    assert client.get(LOGIN + "no-such-article").status_code == 404
    assert client.get("/kb/nobody/").status_code == 404


# -- Sanitised HTML --------------------------------------------------------------------------


def test_markdown_is_rendered_and_scripts_and_handlers_are_stripped():
    html = markdown_to_html(
        "# Title\n\n**bold** [link](https://example.org) [bad](javascript:alert(1))\n\n"
        '<script>alert(1)</script>\n\n<img src=x onerror="alert(1)">\n\n'
        "| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<strong>bold</strong>" in html and "<table>" in html
    assert 'href="https://example.org"' in html and 'rel="noopener noreferrer nofollow"' in html
    assert not re.search(r"<script|<img|<[^>]*\son\w+=|<a[^>]*javascript", html)
    assert "&lt;script&gt;" in html  # raw HTML in Markdown is shown as text


def test_an_article_page_shows_the_sanitised_body_never_raw_html(kb):
    article = _article(kb, "typo-in-email-address", "en")

    def poison() -> None:
        article.body = ('Hello <script>alert("x")</script> <img src=x onerror=alert(1)> '
                        '<a href="javascript:alert(1)">click</a>')
        article.save()

    run(kb, poison)
    page = kb.test_client().get(LOGIN + "typo-in-email-address?lang=en").get_data(as_text=True)
    body = page[page.index('class="kb-body"'):page.index("</article>")]
    assert not re.search(r"<script|<img|<[^>]*\son\w+=|<a[^>]*javascript", body)
    assert "&lt;script&gt;" in body  # shown as text


# -- Votes ------------------------------------------------------------------------------------


def test_a_visitor_is_counted_once_per_article(kb):
    article = _article(kb, "reset-your-password", "en")
    client = kb.test_client()
    first = client.post(f"/kb/vote/{article.id}", data={"helpful": "yes"})
    assert first.status_code == 302 and first.headers["Location"].endswith("#feedback")
    client.post(f"/kb/vote/{article.id}", data={"helpful": "yes"})
    client.post(f"/kb/vote/{article.id}", data={"helpful": "no"})
    other = kb.test_client()
    other.post(f"/kb/vote/{article.id}", data={"helpful": "no"})
    votes = run(kb, lambda: sorted(v.helpful for v in Vote.select().where(
        Vote.article == article.id)))
    assert votes == [False, True]
    page = client.get(LOGIN + "reset-your-password?lang=en").get_data(as_text=True)
    assert 'name="helpful"' not in page  # the form is gone once this visitor voted


def test_a_vote_needs_its_csrf_token_and_a_real_answer(make_app):
    app = make_app(plugins=["knowledge_base"])
    with app.test_request_context("/"), core_db.connection():
        build_desk()
        demo.load()
        article_id = Article.get(Article.language == "en").id
    client = app.test_client()
    assert client.post(f"/kb/vote/{article_id}", data={"helpful": "yes"}).status_code == 400
    page = client.get(LOGIN + "verification-email-never-arrived?lang=en").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post(f"/kb/vote/{article_id}",
                       data={"helpful": "maybe", "csrf_token": token}).status_code == 400
    assert client.post(f"/kb/vote/{article_id}",
                       data={"helpful": "yes", "csrf_token": token}).status_code == 302


# -- The help center's own pages, through category_content --------------------------------


def test_the_categories_page_shows_headlines_first(kb):
    page = kb.test_client().get("/help/member/?lang=en").get_data(as_text=True)
    assert page.index("The verification email never arrived") < page.index("category-tree")
    assert "/kb/member/registration-and-login/" in page


def test_the_ticket_form_offers_headlines_live_suggestions_and_a_search_link(kb):
    page = kb.test_client().get("/help/member/registration-and-login/new?lang=id").get_data(
        as_text=True)
    assert "Email verifikasi tidak pernah sampai" in page
    assert 'data-live-url="/kb/suggest?user_type=member&amp;category=registration-and-login"' in (
        page)
    assert re.search(r'<script src="/kb/static/suggest.js[^"]*" defer></script>', page)
    assert "<script>" not in page  # nothing inline
    assert 'href="/kb/search?user_type=member"' in page  # the link that works without JS


def test_the_script_is_served_and_the_page_policy_forbids_inline_scripts(kb):
    client = kb.test_client()
    response = client.get("/kb/static/suggest.js")
    assert response.status_code == 200 and "fetch(" in response.get_data(as_text=True)
    policy = client.get("/help/member/registration-and-login/new").headers.get(
        "Content-Security-Policy", "")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split(
        "script-src")[1].split(";")[0]


# -- Suggestions --------------------------------------------------------------------------------


def test_suggestions_answer_as_json_and_are_recorded_as_shown(kb):
    client = kb.test_client()
    response = client.get("/kb/suggest?user_type=member&category=registration-and-login"
                          "&q=lupa+kata+sandi&lang=id")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    results = response.get_json()["results"]
    assert results[0]["title"] == "Cara mengatur ulang kata sandi"
    assert results[0]["url"].endswith("reset-your-password?from=suggest")
    shown = run(kb, lambda: SuggestionShown.select().count())
    assert shown == len(results)
    client.get("/kb/suggest?user_type=member&category=registration-and-login"
               "&q=lupa+kata+sandi&lang=id")
    assert run(kb, lambda: SuggestionShown.select().count()) == shown  # once per visitor


def test_suggestions_for_too_short_or_unknown_queries_are_empty(kb):
    client = kb.test_client()
    assert client.get("/kb/suggest?q=ab").get_json() == {"results": []}
    assert client.get("/kb/suggest?q=zzzzqqq").get_json() == {"results": []}


def test_the_suggestion_endpoint_is_rate_limited_per_address(make_app):
    app = make_app(plugins=["knowledge_base"], rate_limits=True,
                   **{"knowledge_base.rate_limit_suggest": "3/minute"})
    with app.test_request_context("/"), core_db.connection():
        build_desk()
    client = app.test_client()
    fresh_rate_window()
    codes = [client.get("/kb/suggest?q=password").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_the_chat_bot_and_the_form_share_suggest_answers(kb):
    from core.services.suggestions import suggest

    found = run(kb, lambda: suggest("reset password", user_type=kb.desk.member, language="en"))
    assert found and found[0].title == "How to reset your password" and found[0].score > 0


def test_suggestions_fall_back_to_the_default_language(kb):
    from core.services.suggestions import suggest

    run(kb, lambda: Article.delete().where(Article.language == "fil").execute())
    found = run(kb, lambda: suggest("reset password", user_type=kb.desk.member, language="fil"))
    assert found and found[0].title == "How to reset your password"


# -- Reports ---------------------------------------------------------------------------------------


def test_deflection_counts_follows_without_a_ticket_within_the_window(kb):
    article = _article(kb, "reset-your-password", "en")
    now = dt.datetime(2026, 1, 1, 12, 0)

    def story() -> list[Any]:
        at = now - dt.timedelta(hours=2)
        # a: followed, no ticket -> deflected. b: followed, ticket 10 min later -> not.
        # c: followed, no ticket either -> deflected.
        # d: followed 5 minutes ago -> pending. e: only viewed from a search -> not a follow.
        ticket = Ticket.select().first()
        for visitor, when in (("a", at), ("b", at), ("c", at), ("d", now - dt.timedelta(minutes=5))):
            View.create(article=article, visitor=visitor, source="suggest", created_at=when)
        View.create(article=article, visitor="a", source="suggest",
                    created_at=at + dt.timedelta(minutes=1))  # a second view: one follow
        View.create(article=article, visitor="e", source="search", created_at=at)
        VisitorTicket.create(visitor="b", ticket=ticket, created_at=at + dt.timedelta(minutes=10))
        return [r for r in report(now=now) if r.article_id == article.id]

    desk_ticket(kb)
    (row,) = run(kb, story)
    assert (row.views, row.followed, row.deflected, row.pending) == (6, 4, 2, 1)
    assert row.deflection_rate == "67%"


def test_deflection_with_the_late_ticket_outside_the_window(kb):
    article = _article(kb, "reset-your-password", "en")
    now = dt.datetime(2026, 1, 1, 12, 0)

    def story() -> Any:
        View.create(article=article, visitor="c", source="suggest",
                    created_at=now - dt.timedelta(hours=3))
        VisitorTicket.create(visitor="c", ticket=Ticket.select().first(),
                             created_at=now - dt.timedelta(hours=1))
        return [r for r in report(now=now) if r.article_id == article.id][0]

    desk_ticket(kb)
    row = run(kb, story)
    assert (row.followed, row.deflected) == (1, 1)


def desk_ticket(app: Any) -> None:
    client = app.test_client()
    client.get("/help/member/registration-and-login/new")
    response = client.post("/help/member/registration-and-login/new", data={
        "name": "Rina", "email": "rina@example.com", "subject": "Cannot log in",
        "description": "The reset link does not come.", "extra_registered_email": "rina@example.com",
        "submission": "s1"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]


def test_a_ticket_from_a_visitor_who_read_articles_is_remembered(kb):
    client = kb.test_client()
    client.get(LOGIN + "reset-your-password?lang=en&from=suggest")
    client.get("/help/member/registration-and-login/new")
    client.post("/help/member/registration-and-login/new", data={
        "name": "Rina", "email": "rina@example.com", "subject": "Cannot log in",
        "description": "The reset link does not come.", "extra_registered_email": "rina@example.com",
        "submission": "s2"})
    rows = run(kb, lambda: [(r.visitor, r.ticket_id) for r in VisitorTicket.select()])
    views = run(kb, lambda: [v.visitor for v in View.select()])
    assert len(rows) == 1 and rows[0][0] == views[0]


def test_searches_are_logged_and_empty_ones_reported(kb):
    client = kb.test_client()
    assert "How to reset your password" in client.get(
        "/kb/search?q=reset+password&lang=en").get_data(as_text=True)
    page = client.get("/kb/search?q=wallet+crypto&lang=en").get_data(as_text=True)
    assert "No articles match your search" in page
    rows = run(kb, lambda: [(s.query, s.results > 0) for s in Search.select().order_by(Search.id)])
    assert rows == [("reset password", True), ("wallet crypto", False)]


# -- The console ------------------------------------------------------------------------------


def _admin_client(app: Any) -> Any:
    client = app.test_client()
    client.post("/admin/login", data={"email": "admin@desk.test", "password": PASSWORD})
    return client


def test_the_console_lists_previews_and_links_translations(kb):
    client = _admin_client(kb)
    listing = client.get("/admin/kb_articles/").get_data(as_text=True)
    assert "How to reset your password" in listing
    article = _article(kb, "reset-your-password", "en")
    details = client.get(f"/admin/kb_articles/details/?id={article.id}").get_data(as_text=True)
    assert "<strong>Forgot password?</strong>" in details  # rendered, not Markdown
    assert "Bahasa Indonesia" in details and "Filipino" in details
    report_page = client.get("/admin/kb_reports/").get_data(as_text=True)
    assert "Searches that found nothing" in report_page and "Deflection rate" in report_page


def test_a_new_translation_starts_from_the_original_in_the_same_group(kb):
    fil = _article(kb, "reset-your-password", "fil")
    run(kb, lambda: Article.delete().where(Article.id == fil.id).execute())
    en = _article(kb, "reset-your-password", "en")
    client = _admin_client(kb)
    form = client.get(f"/admin/kb_articles/new/?translation_of={en.id}&language=fil").get_data(
        as_text=True)
    assert en.group in form and "How to reset your password" in form
    response = client.post(f"/admin/kb_articles/new/?translation_of={en.id}&language=fil", data={
        "title": "Paano i-reset ang password", "slug": "reset-your-password", "language": "fil",
        "category": str(kb.desk.login.id), "status": "published", "position": "5",
        "body": "Piliin ang **Forgot password?**", "group": en.group, "last_reviewed": ""})
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    page = kb.test_client().get(LOGIN + "reset-your-password?lang=fil").get_data(as_text=True)
    assert "Paano i-reset ang password" in page and "kb-fallback" not in page


HOSTILE_MARKDOWN = ("**Bold** and [a link](https://example.com)\n\n"
                    "<script>alert(1)</script> <img src=x onerror=alert(2)>\n\n"
                    "[click](javascript:alert(3))")


def _preview(client: Any, body: str, **extra: str) -> Any:
    return client.post("/admin/kb_articles/preview", data={"body": body, **extra})


def test_the_preview_renders_unsaved_markdown_as_the_public_page_would(kb):
    client = _admin_client(kb)
    response = _preview(client, HOSTILE_MARKDOWN)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_json()["html"]
    assert html == markdown_to_html(HOSTILE_MARKDOWN)  # the very function a save uses
    assert "<strong>Bold</strong>" in html and 'href="https://example.com"' in html
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;" in html and "&lt;img" in html  # raw HTML is shown as text
    assert run(kb, lambda: Article.select().where(Article.body == HOSTILE_MARKDOWN).count()) == 0


def test_the_article_form_carries_the_preview_button_and_its_static_script(kb):
    client = _admin_client(kb)
    for path in ("/admin/kb_articles/new/",
                 f"/admin/kb_articles/edit/?id={_article(kb, 'reset-your-password', 'en').id}"):
        response = client.get(path)
        page = response.get_data(as_text=True)
        assert 'id="kb-preview-button"' in page
        assert 'data-preview-url="/admin/kb_articles/preview"' in page
        assert '<script src="/kb/static/preview.js"></script>' in page
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"].split(
            "script-src")[1].split(";")[0]
    script = client.get("/kb/static/preview.js")
    assert script.status_code == 200 and b"kb-preview-button" in script.data


def test_the_preview_needs_a_csrf_token_and_a_console_admin(make_app):
    app = make_app(plugins=["knowledge_base"])  # CSRF on, as in production
    with app.test_request_context("/"), core_db.connection():
        build_desk()
    client = app.test_client()
    sign_in(client, "admin@desk.test")
    token = csrf_token(client, "/admin/kb_articles/new/")  # the article form's own token
    assert _preview(client, "**x**").status_code == 400  # no token
    assert _preview(client, "**x**", csrf_token="forged").status_code == 400
    answer = _preview(client, "**x**", csrf_token=token)
    assert answer.status_code == 200 and answer.get_json()["html"] == "<p><strong>x</strong></p>\n"
    # Agents and strangers get nothing, token or not.
    assert _preview(app.test_client(), "**x**", csrf_token=token).status_code in (302, 400)
    agent = app.test_client()
    sign_in(agent, "agent@desk.test")
    agent_token = csrf_token(agent, "/admin/profile/")
    assert _preview(agent, "**x**", csrf_token=agent_token).status_code == 403


def test_a_huge_preview_is_refused(kb):
    from plugins.knowledge_base.admin import PREVIEW_LIMIT

    assert _preview(_admin_client(kb), "a" * (PREVIEW_LIMIT + 1)).status_code == 413


def test_agents_cannot_manage_articles(kb):
    client = kb.test_client()
    client.post("/admin/login", data={"email": "agent@desk.test", "password": PASSWORD})
    assert client.get("/admin/kb_articles/").status_code == 403
    assert client.get("/admin/kb_reports/").status_code == 403
    anonymous = kb.test_client().get("/admin/kb_articles/")
    assert anonymous.status_code == 302 and "/admin/login" in anonymous.headers["Location"]


def test_chat_offered_by_another_plugin_appears_under_still_need_help(make_app):
    from core import hookimpl

    class Chat:
        @hookimpl
        def contact_channels(self, user_type: Any, category: Any, language: str) -> list[Any]:
            return [ContactOption(kind="chat", label="Chat now", url="/chat/x")]

    app = make_app(plugins=["knowledge_base"], extra_plugins=(Chat(),))
    with app.test_request_context("/"), core_db.connection():
        build_desk()
        demo.load()
    page = app.test_client().get(LOGIN + "?lang=en").get_data(as_text=True)
    assert 'href="/chat/x"' in page[page.index("still-need-help"):]


def test_headline_blocks_carry_the_category_name_in_the_visitors_language(kb):
    from core.i18n import save_translations
    from core.models import Category

    def translate() -> None:
        category = Category.get(Category.slug == "registration-and-login")
        save_translations("Category", category.id, {("name", "id"): "Pendaftaran dan masuk"})

    run(kb, translate)
    page = kb.test_client().get("/help/member/?lang=id").get_data(as_text=True)
    # The block's own heading and its "more" link, not only the category list below them.
    assert re.search(r'id="category-content-\d+">Pendaftaran dan masuk<', page)
    assert "Semua artikel tentang Pendaftaran dan masuk" in page


@pytest.mark.parametrize("language, written", [
    ("en", "March 6, 2026"), ("id", "6 Maret 2026"), ("fil", "Marso 6, 2026")])
def test_last_reviewed_is_written_the_visitors_way(kb, language, written):
    article = _article(kb, "reset-your-password", language)
    run(kb, lambda: Article.update(last_reviewed=dt.date(2026, 3, 6))
        .where(Article.id == article.id).execute())
    page = kb.test_client().get(f"{LOGIN}reset-your-password?lang={language}")
    assert written in page.get_data(as_text=True)


@pytest.mark.parametrize("root", ["", "/help"])
def test_result_addresses_are_the_ones_url_for_builds(make_app, root):
    # library.results builds one address with url_for and fills in plain slugs; anything
    # else (a space, a slash, non-ASCII, quotes) goes through url_for itself.
    from plugins.knowledge_base.library import results, url_of
    from plugins.knowledge_base.search import Hit

    app = make_app(plugins=["knowledge_base"])
    slugs = [("member", "login", "reset-your-password"), ("member", "login", "a b"),
             ("mem/ber", "lo?gin", "x#y"), ("member", "login", "kata-sandi-\u00e9"),
             ("member", "login", "\"><script>"), ("m.e_m~1", "L-2", "s")]
    hits = [Hit(n, 1.0, "t", slug, "en", category, user_type)
            for n, (user_type, category, slug) in enumerate(slugs)]
    with app.test_request_context("/", base_url=f"http://desk.test{root}"):
        for source in ("suggest", ""):
            built = [r.url for r in results(hits, source)]
            assert built == [url_of(u, c, s, source) for u, c, s in slugs]
            assert all(url.startswith(f"{root}/kb/") for url in built)
    assert "<" not in built[4] and '"' not in built[4]
