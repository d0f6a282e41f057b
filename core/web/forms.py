"""The help center's forms: the ticket form (with each category's extra questions) and replies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from babel import support
from flask import current_app
from flask_babel import get_translations
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from itsdangerous import BadSignature, TimestampSigner
from werkzeug.datastructures import FileStorage
from wtforms import (
    EmailField,
    Field,
    HiddenField,
    MultipleFileField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.fields.core import Flags, Label, UnboundField
from wtforms.i18n import messages_path
from wtforms.utils import unset_value
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import DateTimeLocalInput

from ..i18n import _l, current_language
from ..models import CategoryField, FieldKind
from ..security import FormCsrf
from ..services.answers import (
    BAD_EMAIL,
    EMAIL_MAX,
    NAME_MAX,
    REQUIRED,
    SUBJECT_MAX,
    TEXT_MAX,
    TOO_LONG,
    Question,
    check_answers,
)
from ..services.contacts import is_email_address
from ..state import loket

# Prefix for the form names of a category's extra questions, so that an admin's
# "email" or "subject" field can never shadow the form's own fields.
EXTRA_PREFIX = "extra_"


class EmailAddress:
    """Validator: an address we could write back to."""

    def __init__(self, message: Any = None):
        self.message = message or BAD_EMAIL

    def __call__(self, form: Any, field: Field) -> None:
        value = (field.data or "").strip()
        if value and not is_email_address(value):
            raise ValidationError(self.message)
        field.data = value


def _required() -> DataRequired:
    return DataRequired(message=REQUIRED)


def _longest(limit: int) -> Length:
    return Length(max=limit, message=TOO_LONG)


class _Asked:
    """Marks a question required for the page (the mark, the browser's own check) only:
    ``core.services.answers`` decides, the same for the form and the API."""

    field_flags = {"required": True}

    def __call__(self, form: Any, field: Field) -> None:
        return None


# WTForms' own messages a help center form can show, and Flask-WTF's. Neither ships an
# Indonesian or Filipino catalogue, so the desk's catalogues carry these (listed here so
# that extraction finds them) and ``_FormTranslations`` asks them first.
WTFORMS_MESSAGES = (
    _l("This field is required."),
    _l("Invalid input."),
    _l("Invalid email address."),
    _l("Not a valid choice."),
    _l("Invalid Choice: could not coerce."),
    _l("Invalid value, must be one of: %(values)s."),
    _l("Not a valid datetime value."),
    _l("Invalid CSRF Token."),
    _l("CSRF token missing."),
    _l("CSRF failed."),
    _l("CSRF token expired."),
    # Flask-WTF's reasons for refusing a form (core.errors shows them to API callers).
    _l("The CSRF token is missing."),
    _l("The CSRF session token is missing."),
    _l("The CSRF token has expired."),
    _l("The CSRF token is invalid."),
    _l("The CSRF tokens do not match."),
)


@lru_cache(maxsize=16)
def _wtforms_catalogue(language: str) -> support.NullTranslations:
    """WTForms' own catalogue for a language, read once per process (empty when it has none).

    Flask-WTF would read it from disk on every request that builds a form: about 15% of
    a ticket submission.
    """
    return support.Translations.load(messages_path(), [language], domain="wtforms")


class _FormTranslations:
    """WTForms' messages in the customer's language: the desk's catalogues, then WTForms'."""

    def gettext(self, string: str) -> str:
        found = get_translations().ugettext(string)
        return found if found != string else _wtforms_catalogue(current_language()).ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        # Unformatted: WTForms fills in its own placeholders (%(min)d) afterwards.
        found = get_translations().ungettext(singular, plural, n)
        if found not in (singular, plural):
            return found
        return _wtforms_catalogue(current_language()).ungettext(singular, plural, n)


_FORM_TRANSLATIONS = _FormTranslations()


class ShownAtField(HiddenField):
    """The signed time the form was shown: a fresh stamp (its default) unless the form
    sent one back, which then is its value. WTForms makes the default of every field it
    processes, so a sent form signed a stamp only to drop it."""

    def process(self, formdata: Any, data: Any = unset_value,
                extra_filters: Any = None) -> None:
        if data is unset_value and formdata is not None and self.name in formdata:
            data = None  # the value sent replaces it (an empty one too)
        super().process(formdata, data, extra_filters)


# Field classes whose constructor only stores what it was given (no object made for one
# form): a bound field of these is made from a kept copy of its first binding.
_KEPT_KINDS = frozenset({StringField, EmailField, TextAreaField, HiddenField, FileField,
                         MultipleFileField, SelectField, ShownAtField})
# Set for each form, never kept: the form and its meta.
_PER_FORM = frozenset({"_form", "meta"})


def _label_given(unbound: UnboundField) -> bool:
    label = unbound.args[0] if unbound.args else unbound.kwargs.get("label")
    return label is not None


def _fresh_label(label: Label) -> Label:
    return Label(label.field_id, label.text)


def _fresh_flags(kept: Flags) -> Flags:
    flags = Flags()
    flags.__dict__.update(kept.__dict__)
    return flags


# How each kind of kept value a form may change (its label, flags, render_kw, choices) is
# copied for a form. Validators are not: WTForms itself gives every form the list the
# field was declared with.
_COPIERS: dict[type, Any] = {Label: _fresh_label, Flags: _fresh_flags, dict: dict, list: list}


def bind_kept(form: Any, unbound: UnboundField, options: dict[str, Any]) -> Field:
    """``unbound`` bound to ``form`` as WTForms binds it, from the state its first binding
    left (kept on the unbound field, by name, prefix and translations).

    A form class is the same for every request and its fields' labels, validators,
    widgets and flags never change, yet WTForms constructs each field afresh for every
    form: about a seventh of a ticket submission. The kept state holds no form;
    what a form may change (flags, choices, render_kw, the label) is copied per form,
    and a label WTForms makes from the name is made again in this form's language.
    """
    key = (options["name"], options["prefix"], options["translations"])
    kept = unbound.__dict__.get("_loket_kept")
    found = kept.get(key) if kept is not None else None
    if found is None:
        field = unbound.bind(form=form, **options)
        if (type(field) in _KEPT_KINDS and "csrf_impl" not in unbound.kwargs
                and field._datalist is None):
            state = {k: v for k, v in vars(field).items() if k not in _PER_FORM}
            copied = tuple((k, _COPIERS[type(v)]) for k, v in state.items()
                           if type(v) in _COPIERS and k != "validators")
            if kept is None:
                kept = unbound._loket_kept = {}  # type: ignore[attr-defined]
            kept[key] = (type(field), state, copied, _label_given(unbound))
        return field
    kind, state, copied, labelled = found
    field = object.__new__(kind)
    values = field.__dict__
    values.update(state)
    values["_form"] = form
    values["meta"] = form.meta
    for name, copy in copied:
        values[name] = copy(values[name])
    if not labelled:  # WTForms' own label from the name, in this request's language
        field.label = Label(field.id, field.gettext(options["name"].replace("_", " ").title()))
    return field


class CustomerForm(FlaskForm):
    """A form a customer fills in: its messages come in the customer's language."""

    class Meta:
        csrf_class = FormCsrf  # the session's kept token, not one signed per form

        def get_translations(self, form: Any) -> _FormTranslations:
            return _FORM_TRANSLATIONS

        def bind_field(self, form: Any, unbound_field: UnboundField,
                       options: dict[str, Any]) -> Field:
            return bind_kept(form, unbound_field, options)


SHOWN_AT_SALT = "loket.ticket-form.shown-at"


def _signer() -> TimestampSigner:
    return TimestampSigner(current_app.config["SECRET_KEY"], salt=SHOWN_AT_SALT)


def form_shown_stamp() -> str:
    """When the form was shown, signed: a bot cannot claim it waited (no session needed)."""
    return _signer().sign("form").decode()


def seconds_since_shown(stamp: str | None) -> float | None:
    """How long ago ``stamp`` was made; None when it is missing or not ours."""
    try:
        _value, when = _signer().unsign(stamp or "", return_timestamp=True)
    except BadSignature:
        return None
    return (dt.datetime.now(dt.UTC) - when).total_seconds()


class TicketForm(CustomerForm):
    """The fields every ticket form asks; see ``ticket_form_class`` for the category's own."""

    name = StringField(_l("Your name"), validators=[_required(), _longest(NAME_MAX)],
                       render_kw={"autocomplete": "name"})
    email = EmailField(_l("Your email address"),
                       validators=[_required(), _longest(EMAIL_MAX), EmailAddress()],
                       render_kw={"autocomplete": "email"})
    subject = StringField(_l("Subject"), validators=[_required(), _longest(SUBJECT_MAX)])
    description = TextAreaField(_l("How can we help?"),
                                validators=[_required(), _longest(TEXT_MAX)],
                                render_kw={"rows": 8})
    attachments = MultipleFileField(_l("Attachments"))
    # One id per form shown: sending the same form twice (a double click, a retry after
    # a dropped connection) opens one ticket.
    # The two hidden fields are labelled as WTForms would name them ("Submission", "Shown
    # At"): never shown, and a label left to WTForms is looked up in the catalogues for
    # every form.
    submission = HiddenField("Submission", validators=[Optional(), _longest(64)])
    # Spam defences that need no third-party service and no JavaScript: a field people
    # never see (hidden, out of the tab order, hidden from screen readers) that bots fill
    # in, and the signed time the form was shown (people need more than a few seconds).
    website = StringField(_l("Leave this field empty"), validators=[Optional()],
                          render_kw={"autocomplete": "off", "tabindex": "-1"})
    shown_at = ShownAtField("Shown At", default=form_shown_stamp)

    extra_fields: tuple[FieldSpec, ...] = ()
    # What ``validate`` found the category's answers to be, ready to store.
    answers: dict[str, Any] = {}

    def extra(self) -> list[tuple[FieldSpec, Field]]:
        """The category's questions with their bound form fields, in the admin's order."""
        return [(spec, self[spec.form_name]) for spec in self.extra_fields]

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields and the category's answers (one check, shared with the API), then the
        spam checks; those answer alike: "send it again".

        A bot learns nothing from the answer (the same words for a filled trap and a
        hurried form); a person who was just very quick sends the same form again,
        now with a fresh stamp.
        """
        ok = super().validate(extra_validators)
        raw = {spec.name: bound.data for spec, bound in self.extra()
               if spec.kind != FieldKind.FILE}
        files = {spec.name for spec, bound in self.extra()
                 if spec.kind == FieldKind.FILE and isinstance(bound.data, FileStorage)
                 and bound.data.filename}
        self.answers, errors = check_answers(self.extra_fields, raw, files)
        for name, message in errors.items():
            self[EXTRA_PREFIX + name].errors.append(message)
        if not ok or errors:
            return False
        min_seconds = loket().config["form_min_seconds"]
        # What was posted, not the field's default (a fresh stamp when the field is missing).
        posted = self.shown_at.raw_data[0] if self.shown_at.raw_data else None
        waited = seconds_since_shown(posted)
        hurried = min_seconds and (waited is None or waited < min_seconds)
        if (self.website.data or "").strip() or hurried:
            self.website.data = ""
            self.shown_at.data = form_shown_stamp()
            self.form_errors.append(_l("Please check your answers and send the form again."))
            return False
        return True


class FieldSpec(Question):
    """A question as the form shows it."""

    __slots__ = ()

    @property
    def form_name(self) -> str:
        return EXTRA_PREFIX + self.name


def _extra_field(spec: FieldSpec, choice_labels: tuple[str, ...] = ()) -> Field:
    # No checks here: TicketForm.validate asks core.services.answers, as the API does.
    asked = [_Asked()] if spec.required else []
    kwargs: dict[str, Any] = {"description": spec.help_text, "validators": asked}
    if spec.kind == FieldKind.TEXTAREA:
        return TextAreaField(spec.label, render_kw={"rows": 4}, **kwargs)
    if spec.kind == FieldKind.EMAIL:
        return EmailField(spec.label, **kwargs)
    if spec.kind == FieldKind.DATETIME:
        return StringField(spec.label, widget=DateTimeLocalInput(), render_kw={"step": 60},
                           **kwargs)
    if spec.kind == FieldKind.CHOICE:
        # The value is the admin's own choice (what is stored and checked); the words
        # shown may be a translation, line for line.
        labels = choice_labels if len(choice_labels) == len(spec.choices) else spec.choices
        choices = [SelectChoice("", _l("Choose…"))] + [
            SelectChoice(value, label) for value, label in zip(spec.choices, labels, strict=True)]
        return SelectField(spec.label, choices=choices, validate_choice=False, **kwargs)
    if spec.kind == FieldKind.FILE:
        return FileField(spec.label, **kwargs)
    # FieldKind.TEXT, and any kind this version does not know yet.
    return StringField(spec.label, **kwargs)


@lru_cache(maxsize=512)
def _build(specs: tuple[FieldSpec, ...],
           choice_labels: tuple[tuple[str, ...], ...]) -> type[TicketForm]:
    attrs: dict[str, Any] = {"extra_fields": specs}
    for spec, labels in zip(specs, choice_labels, strict=True):
        attrs[spec.form_name] = _extra_field(spec, labels)
    return type("CategoryTicketForm", (TicketForm,), attrs)


def ticket_form_class(fields: Iterable[CategoryField | Question],
                      choice_labels: Mapping[str, Sequence[str]] | None = None
                      ) -> type[TicketForm]:
    """The ticket form for a category: the common fields, then its questions in order.

    ``choice_labels`` are the words shown for a choice question's answers (a
    translation), by question name. Classes are cached by the questions'
    definitions and words, so an admin's edit gives a new class and a busy form
    does not build one per request.
    """
    specs = tuple(FieldSpec(*(q if isinstance(q, Question) else Question.of(q))) for q in fields)
    labels = tuple(tuple((choice_labels or {}).get(spec.name, ())) for spec in specs)
    return _build(specs, labels)


class TrackingPageForm(CustomerForm):
    """A form of the tracking page: its token is the ticket's
    (``security.ticket_form_token``), checked by the view, not the session's."""

    class Meta:
        csrf = False


class ReplyForm(TrackingPageForm):
    """The customer writes again on the tracking page."""

    text = TextAreaField(_l("Your reply"), validators=[_required(), _longest(TEXT_MAX)],
                         render_kw={"rows": 6})
    attachments = MultipleFileField(_l("Attachments"))


class ResolveForm(TrackingPageForm):
    """The customer says their problem is solved; the form is only its token."""
