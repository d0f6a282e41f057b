"""Admins give what customers read of the desk's set-up (user types, categories, form
questions) in the other languages; the desk's default language is the row itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee as pw
from flask import abort, flash, redirect, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, ValidationError

from core.i18n import LANGUAGE_NAMES, save_translations, translation_rows
from core.models import Category, CategoryField, Translation, UserType
from core.state import loket

from .base import SecuredBaseView

MODELS: dict[str, type[pw.Model]] = {"UserType": UserType, "Category": Category,
                                     "CategoryField": CategoryField}
TITLES = {"UserType": "User types", "Category": "Categories",
          "CategoryField": "Form questions"}
FIELD_NAMES = {"name": "Name", "description": "Description", "label": "Label",
               "help_text": "Help text", "choices": "Choices (one per line, in the same order)"}


@dataclass
class Item:
    model: str
    row: Any
    title: str
    context: str
    translated: dict[str, int]  # language -> fields translated


def _languages() -> list[str]:
    config = loket().config
    return [code for code in config["languages"] if code != config["default_language"]]


def _items() -> dict[str, list[Item]]:
    counts: dict[tuple[str, int, str], int] = {}
    for row in (Translation.select(Translation.model, Translation.row_id, Translation.language,
                                   pw.fn.COUNT(Translation.id).alias("n"))
                .group_by(Translation.model, Translation.row_id, Translation.language)):
        counts[row.model, row.row_id, row.language] = row.n
    languages = _languages()

    def item(model: str, row: Any, title: str, context: str) -> Item:
        return Item(model, row, title, context,
                    {code: counts.get((model, row.id, code), 0) for code in languages})

    user_types = {u.id: u for u in UserType.select().order_by(UserType.position, UserType.id)}
    categories = {c.id: c for c in Category.select().order_by(
        Category.user_type, Category.parent.is_null(False), Category.position, Category.id)}
    return {
        "UserType": [item("UserType", u, u.name, u.slug) for u in user_types.values()],
        "Category": [item("Category", c, c.name, user_types[c.user_type_id].name)
                     for c in categories.values()],
        "CategoryField": [
            item("CategoryField", f, f.label, categories[f.category_id].name)
            for f in CategoryField.select().order_by(CategoryField.category,
                                                     CategoryField.position)],
    }


def _limit(model: type[pw.Model], field: str) -> int:
    column = model._meta.fields[field]
    return getattr(column, "max_length", None) or 10_000


def _form_class(model_name: str, row: Any) -> type[FlaskForm]:
    model = MODELS[model_name]
    attrs: dict[str, Any] = {}
    for field in Translation.FIELDS[model_name]:
        original = getattr(row, field) or ""
        long = isinstance(model._meta.fields[field], pw.TextField)
        for code in _languages():
            kind = TextAreaField if long else StringField
            validators = [Length(max=_limit(model, field))]
            if field == "choices":
                validators.append(_same_lines(len(row.choice_list())))
            attrs[f"{field}__{code}"] = kind(
                f"{FIELD_NAMES.get(field, field)} — {LANGUAGE_NAMES.get(code, code)}",
                validators=validators, description=original,
                render_kw={"rows": 4} if long else {})
    return type("TranslationForm", (FlaskForm,), attrs)


def _same_lines(count: int) -> Any:
    def check(form: Any, field: Any) -> None:
        lines = [line for line in (field.data or "").splitlines() if line.strip()]
        if lines and len(lines) != count:
            raise ValidationError(f"Give {count} lines, one per choice, in the same order "
                                  "(customers would otherwise see the original choices).")
    return check


class TranslationsView(SecuredBaseView):
    """The list of what can be translated, and one page per row with every language."""

    @expose("/")
    def index(self) -> Any:
        return self.render("loket_admin/translations.html", groups=_items(), titles=TITLES,
                           languages=_languages(), names=LANGUAGE_NAMES)

    @expose("/<model>/<int:row_id>", methods=("GET", "POST"))
    def edit(self, model: str, row_id: int) -> Any:
        if model not in MODELS:
            abort(404)
        row = MODELS[model].get_or_none(MODELS[model].id == row_id)
        if row is None:
            abort(404)
        current = translation_rows(model, row_id)
        form = _form_class(model, row)(data={
            f"{field}__{language}": text for (field, language), text in current.items()})
        if form.validate_on_submit():
            texts = {}
            for name, bound in form._fields.items():
                if "__" in name:
                    field, language = name.split("__", 1)
                    texts[field, language] = bound.data or ""
            count = save_translations(model, row_id, texts)
            flash(f"Translations saved ({count} in all).", "success")
            return redirect(url_for(".edit", model=model, row_id=row_id))
        fields = [form[name] for name in form._fields if "__" in name]
        heading = getattr(row, "name", None) or getattr(row, "label", "")
        return self.render("loket_admin/translation_edit.html", form=form, fields=fields,
                           heading=heading, title=TITLES[model])
