"""Console views for social accounts (admins only): secrets write-only, webhook URL shown."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from wtforms import PasswordField, SelectField
from wtforms.validators import ValidationError

from admin.base import SecuredModelView

from . import accounts, platforms, templates, vault
from .models import SocialAccount, SocialInbox


def _webhook(view: Any, context: Any, model: SocialAccount, name: str) -> Markup:
    return Markup("<code>{}</code>").format(accounts.webhook_url(model))


class SocialAccountView(SecuredModelView):
    """Bots, numbers and pages. A secret field left empty keeps the stored secret."""

    column_list = ("name", "platform", "handle", "enabled", "category", "department", "webhook")
    column_formatters = {"webhook": _webhook}
    column_labels = {"webhook": "Webhook URL (give it to the platform)"}
    form_columns = ("name", "platform", "handle", "external_id", "enabled", "category",
                    "department", "template_name", "template_language", "template_parameters")
    column_descriptions = {
        "handle": "Public: the bot's user name, the WhatsApp number, the page name.",
        "external_id": "WhatsApp: the phone number id. Messenger: the page id.",
        "template_name": "WhatsApp: approved template sent outside the 24-hour window.",
        "template_parameters": "WhatsApp: ticket values for the template's variables {{1}}, "
                               "{{2}}, ... in order, comma-separated: name, number, subject, "
                               "agent, department, reply.",
    }
    form_extra_fields = {
        "token": PasswordField("Access token / bot token (write-only)"),
        "app_secret": PasswordField("App secret, Meta platforms (write-only)"),
        "verify_token": PasswordField("Verify token, Meta platforms (write-only; empty: "
                                      "generated)"),
    }
    form_overrides = {"platform": SelectField}

    def create_form(self, obj: Any = None) -> Any:
        return self._with_choices(super().create_form(obj))

    def edit_form(self, obj: Any = None) -> Any:
        return self._with_choices(super().edit_form(obj))

    def _with_choices(self, form: Any) -> Any:
        form.platform.choices = [(name, platforms.get(name).label) for name in platforms.names()]
        return form

    def on_model_change(self, form: Any, model: SocialAccount, is_created: bool) -> None:
        try:
            model.template_parameters = templates.parse(model.template_parameters)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        values = {name: getattr(form, name).data for name in ("token", "app_secret",
                                                             "verify_token")}
        if is_created:
            values = {**platforms.get(model.platform).new_secrets(),
                      **{k: v for k, v in values.items() if v}}
        vault.write(model, values)
        accounts.forget()


class SocialInboxView(SecuredModelView):
    """Webhook updates as received: what is pending, done or failed (and why)."""

    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("id", "account", "update_key", "state", "attempts", "error", "received_at",
                   "processed_at")
    column_filters = ("state",)
    column_default_sort = ("id", True)


def views() -> list[Any]:
    return [SocialAccountView(SocialAccount, name="Social accounts", category="Channels",
                              endpoint="social_accounts"),
            SocialInboxView(SocialInbox, name="Social inbox", category="Channels",
                            endpoint="social_inbox")]
