"""The help center's forms: the ticket form (with each category's extra questions) and replies."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
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
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import DateTimeLocalInput

from ..i18n import _l
from ..models import CategoryField, FieldKind
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


class TicketForm(FlaskForm):
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
    submission = HiddenField(validators=[Optional(), Length(max=64)])

    extra_fields: tuple[FieldSpec, ...] = ()
    # What ``validate`` found the category's answers to be, ready to store.
    answers: dict[str, Any] = {}

    def extra(self) -> list[tuple[FieldSpec, Field]]:
        """The category's questions with their bound form fields, in the admin's order."""
        return [(spec, self[spec.form_name]) for spec in self.extra_fields]

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        raw = {spec.name: bound.data for spec, bound in self.extra()
               if spec.kind != FieldKind.FILE}
        files = {spec.name for spec, bound in self.extra()
                 if spec.kind == FieldKind.FILE and isinstance(bound.data, FileStorage)
                 and bound.data.filename}
        self.answers, errors = check_answers(self.extra_fields, raw, files)
        for name, message in errors.items():
            self[EXTRA_PREFIX + name].errors.append(message)
        return ok and not errors


class FieldSpec(Question):
    """A question as the form shows it."""

    __slots__ = ()

    @property
    def form_name(self) -> str:
        return EXTRA_PREFIX + self.name


def _extra_field(spec: FieldSpec) -> Field:
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
        choices = [SelectChoice("", _l("Choose…"))] + [SelectChoice(c) for c in spec.choices]
        return SelectField(spec.label, choices=choices, validate_choice=False, **kwargs)
    if spec.kind == FieldKind.FILE:
        return FileField(spec.label, **kwargs)
    # FieldKind.TEXT, and any kind this version does not know yet.
    return StringField(spec.label, **kwargs)


@lru_cache(maxsize=512)
def _build(specs: tuple[FieldSpec, ...]) -> type[TicketForm]:
    attrs: dict[str, Any] = {"extra_fields": specs}
    for spec in specs:
        attrs[spec.form_name] = _extra_field(spec)
    return type("CategoryTicketForm", (TicketForm,), attrs)


def ticket_form_class(fields: Iterable[CategoryField | Question]) -> type[TicketForm]:
    """The ticket form for a category: the common fields, then its questions in order.

    Classes are cached by the questions' definitions, so an admin's edit gives a
    new class and a busy form does not build one per request.
    """
    return _build(tuple(FieldSpec(*(q if isinstance(q, Question) else Question.of(q)))
                        for q in fields))


class ReplyForm(FlaskForm):
    """The customer writes again on the tracking page."""

    text = TextAreaField(_l("Your reply"), validators=[_required(), _longest(TEXT_MAX)],
                         render_kw={"rows": 6})
    attachments = MultipleFileField(_l("Attachments"))


class ResolveForm(FlaskForm):
    """The customer says their problem is solved; the form is only its CSRF token."""
