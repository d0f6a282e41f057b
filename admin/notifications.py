"""Admins reword the notifications customers receive, per language."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from wtforms.validators import ValidationError

from core.i18n import LANGUAGE_NAMES
from core.models import NotificationTemplate, utcnow
from core.notifications import (
    KINDS,
    PLACEHOLDERS,
    core_wording,
    forget_wording,
    unknown_placeholders,
)

from .base import SecuredModelView


def _kind_formatter(view: Any, context: Any, model: NotificationTemplate, name: str) -> str:
    return KINDS.get(model.key, model.key)


class NotificationTemplateView(SecuredModelView):
    """One row per notification and language an admin reworded; core's wording otherwise."""

    column_list = ("key", "language", "subject", "updated_at")
    column_labels = {"key": "Notification"}
    column_formatters = {"key": _kind_formatter}
    column_default_sort = ("key", False)
    form_columns = ("key", "language", "subject", "body")
    form_choices = {
        "key": list(KINDS.items()),
        "language": [(code, name) for code, name in LANGUAGE_NAMES.items()],
    }
    form_widget_args = {"body": {"rows": 12}}
    form_args = {
        "subject": {"description": "For channels with subjects (email)."},
        "body": {"description": Markup(
            "Placeholders: " + ", ".join(f"<code>{{{p}}}</code>" for p in PLACEHOLDERS)
            + ". Where none is given here for a language, core's own wording in that "
            "language is used (its catalogue), else this text in the desk's default language.")},
    }

    def on_model_change(self, form: Any, model: NotificationTemplate, is_created: bool) -> None:
        unknown = unknown_placeholders(f"{model.subject}\n{model.body}")
        if unknown:
            raise ValidationError(
                "Unknown placeholder(s): " + ", ".join("{" + name + "}" for name in unknown)
                + ". Use " + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + ".")
        if not (model.body or "").strip():
            raise ValidationError("The text must not be empty.")
        model.updated_at = utcnow()

    def after_model_change(self, form: Any, model: NotificationTemplate, is_created: bool) -> None:
        forget_wording()  # this process at once; other processes within half a minute

    def after_model_delete(self, model: NotificationTemplate) -> None:
        forget_wording()

    def create_form(self, obj: Any = None) -> Any:
        form = super().create_form(obj)
        # Start from core's wording, so an admin edits rather than writes from nothing.
        key = form.key.data or next(iter(KINDS))
        language = form.language.data or "en"
        if not form.body.data:
            subject, body = core_wording(key, language) or core_wording(key, "en")
            form.subject.data, form.body.data = subject, body
        return form
