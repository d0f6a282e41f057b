"""The console's knowledge base: articles with a rendered preview and translations, and reports."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, url_for
from flask_admin import expose
from markupsafe import Markup, escape
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Regexp

from admin.base import SecuredBaseView, SecuredModelView
from core.models import Category
from core.state import loket

from . import library
from .models import Article, Search, Status

KB = "Knowledge base"
PREVIEW_LIMIT = 200_000  # characters of Markdown; an article is a few thousand


def _language_choices() -> list[tuple[str, str]]:
    from core.i18n import LANGUAGE_NAMES

    return [(code, LANGUAGE_NAMES.get(code, code)) for code in loket().config["languages"]]


class ArticleView(SecuredModelView):
    """Articles: one row per language; translations share a group."""

    column_list = ("title", "language", "category", "status", "position", "last_reviewed",
                   "updated_at", "translations")
    column_filters = ("language", "status")
    column_searchable_list = ("title",)
    column_default_sort = ("position", False)
    form_columns = ("title", "slug", "language", "category", "status", "position",
                    "last_reviewed", "body", "group")
    form_overrides = {"body": TextAreaField, "language": SelectField, "status": SelectField}
    form_args = {
        "slug": {"validators": [DataRequired(), Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
                                                       message="Lower-case words and hyphens.")],
                 "description": "The article's address; translations may share it."},
        "status": {"choices": Status.CHOICES},
        "body": {"description": "Markdown. Raw HTML is shown as text; links, lists, tables, "
                                "headings and code are kept.",
                 "render_kw": {"rows": 18}},
        "group": {"description": "Translations of one article share this key. Leave it to "
                                 "'Add translation' (or empty for a new article)."},
        "category": {"validators": [DataRequired()]},
    }
    can_view_details = True
    column_details_list = ("title", "language", "category", "user_type", "status",
                           "last_reviewed", "updated_at", "body_html", "translations")
    details_template = "knowledge_base_admin/details.html"
    create_template = "knowledge_base_admin/create.html"
    edit_template = "knowledge_base_admin/edit.html"

    @expose("/preview", methods=("POST",))
    def preview(self) -> Any:
        """The unsaved Markdown body as visitors would see it (JSON), for the form's Preview.

        The same rendering and sanitising as a save; CSRF-checked like every console POST.
        """
        from .render import markdown_to_html

        body = request.form.get("body", "")
        if len(body) > PREVIEW_LIMIT:
            return jsonify({"error": "too_long"}), 413
        response = jsonify({"html": markdown_to_html(body)})
        response.headers["Cache-Control"] = "no-store"
        return response

    def _translations(self, context: Any, model: Article, name: str) -> Markup:
        siblings = {a.language: a for a in Article.select(Article.id, Article.language)
                    .where(Article.group == model.group)}
        parts = []
        for code, label in _language_choices():
            if code == model.language:
                continue
            if code in siblings:
                href = url_for(".edit_view", id=siblings[code].id)
                parts.append(f'<a href="{escape(href)}">{escape(label)}</a>')
            else:
                href = url_for(".create_view", translation_of=model.id, language=code)
                parts.append(f'<a href="{escape(href)}">+ {escape(label)}</a>')
        return Markup(" · ".join(parts))

    def _preview(self, context: Any, model: Article, name: str) -> Markup:
        # Rendered from Markdown and sanitised with nh3 when the article was saved.
        return Markup(f'<div class="kb-preview">{model.body_html}</div>')

    column_formatters = {"translations": _translations}
    column_formatters_detail = {"translations": _translations, "body_html": _preview}
    column_labels = {"body_html": "Preview"}

    def create_form(self, obj: Any = None) -> Any:
        form = super().create_form(obj)
        form.language.choices = _language_choices()
        source = Article.get_or_none(Article.id == request.args.get("translation_of", type=int))
        if source is not None and request.method == "GET":
            # A translation starts from the original: same group, category, slug and order.
            form.group.data = source.group
            form.category.data = Category.get_by_id(source.category_id)
            form.slug.data = source.slug
            form.position.data = source.position
            form.title.data = source.title
            form.body.data = source.body
            form.language.data = request.args.get("language", "")
        return form

    def edit_form(self, obj: Any = None) -> Any:
        form = super().edit_form(obj)
        form.language.choices = _language_choices()
        return form

    def on_model_change(self, form: Any, model: Article, is_created: bool) -> None:
        if not model.group:
            from .models import new_group

            model.group = new_group()


class ReportView(SecuredBaseView):
    """Views, votes, suggestions and deflection per article; searches that found nothing."""

    @expose("/")
    def index(self) -> Any:
        from peewee import fn

        rows = library.report()
        misses = (Search.select(Search.query, Search.language, fn.COUNT(Search.id).alias("times"),
                                fn.MAX(Search.created_at).alias("last"))
                  .where(Search.results == 0)
                  .group_by(Search.query, Search.language)
                  .order_by(fn.COUNT(Search.id).desc(), Search.query).limit(100).dicts())
        return self.render("knowledge_base_admin/report.html", rows=rows, misses=list(misses),
                           minutes=library.settings()["deflection_minutes"])


def views() -> list[Any]:
    return [ArticleView(Article, name="Articles", category=KB, endpoint="kb_articles"),
            ReportView(name="Reports", category=KB, endpoint="kb_reports")]
