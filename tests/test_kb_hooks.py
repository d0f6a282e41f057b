"""The two hooks the knowledge base brought into core: category_content and load_demo_data."""

from __future__ import annotations

from typing import Any

from core import db as core_db
from core import hookimpl
from core.hookspecs import CategoryContent, Suggestion
from core.models import Category, UserType
from plugins.knowledge_base.models import Article

from .factories import build_desk


class Blocks:
    """A plugin that adds one block to every page it is asked about, and records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str, str]] = []

    @hookimpl
    def category_content(self, user_type: Any, category: Any, language: str,
                         page: str) -> list[CategoryContent]:
        self.calls.append((user_type.slug, category.slug if category else None, language, page))
        return [CategoryContent(heading=f"Read first <{page}>",
                                links=[Suggestion("An <answer>", "/answers/1", "Short & sweet")],
                                more_label="More answers", more_url="/answers/",
                                live_url="/answers/live" if page == "form" else "",
                                live_heading="Live answers",
                                script_url="/answers/live.js" if page == "form" else "")]


def test_category_content_is_shown_on_the_categories_page_and_the_ticket_form(make_app):
    blocks = Blocks()
    app = make_app(extra_plugins=(blocks,))
    with app.app_context(), core_db.connection():
        build_desk()
    client = app.test_client()
    page = client.get("/help/member/?lang=id").get_data(as_text=True)
    assert blocks.calls == [("member", None, "id", "categories")]
    assert "Read first &lt;categories&gt;" in page and "An &lt;answer&gt;" in page  # escaped
    assert page.index("Read first") < page.index("category-tree")  # headlines first
    assert 'href="/answers/"' in page and "data-live-url" not in page

    form = client.get("/help/member/registration-and-login/new").get_data(as_text=True)
    assert blocks.calls[-1] == ("member", "registration-and-login", "id", "form")
    assert 'data-live-url="/answers/live"' in form and "Live answers" in form
    assert '<script src="/answers/live.js" defer></script>' in form
    assert form.index("Read first") < form.index('name="subject"')


def test_category_content_without_a_plugin_leaves_the_pages_as_they_were(make_app):
    app = make_app()
    with app.app_context(), core_db.connection():
        build_desk()
    page = app.test_client().get("/help/member/").get_data(as_text=True)
    assert "category-content" not in page and "category-tree" in page


class DemoSpy:
    def __init__(self) -> None:
        self.saw: list[tuple[int, int]] = []

    @hookimpl
    def load_demo_data(self) -> None:
        # Called after core's demo data: its user types and categories are there.
        self.saw.append((UserType.select().count(), Category.select().count()))


def test_load_demo_data_runs_after_core_demo_data_and_fills_the_knowledge_base(make_app):
    from core import demo as core_demo

    spy = DemoSpy()
    app = make_app(plugins=["knowledge_base"], extra_plugins=(spy,))
    with app.test_request_context("/"), core_db.connection():
        core_demo.load_demo(admin_password="demo password 123")
        counts = {language: Article.select().where(Article.language == language).count()
                  for language in ("en", "id", "fil")}
        core_demo.load_demo()  # again: nothing new
        again = Article.select().count()
    assert spy.saw and spy.saw[0][0] == 3 and spy.saw[0][1] > 10
    assert counts["en"] == counts["id"] == counts["fil"] >= 20
    assert again == sum(counts.values())
    # Every demo article has all three languages in one translation group.
    with app.app_context(), core_db.connection():
        groups = {}
        for article in Article.select():
            groups.setdefault(article.group, set()).add(article.language)
    assert all(languages == {"en", "id", "fil"} for languages in groups.values())
