"""The help center's forms: the ticket form (with each category's extra questions) and replies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, NamedTuple

from flask import current_app
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from itsdangerous import BadSignature, TimestampSigner
from wtforms import (
    DateTimeLocalField,
    EmailField,
    Field,
    HiddenField,
    MultipleFileField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from ..i18n import _l
from ..models import CategoryField, FieldKind
from ..services.contacts import is_email_address

# Prefix for the form names of a category's extra questions, so that an admin's
# "email" or "subject" field can never shadow the form's own fields.
EXTRA_PREFIX = "extra_"
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]

class EmailAddress:
    """Validator: an address we could write back to."""

    def __init__(self, message: Any = None):
        self.message = message or _l("Please enter a valid email address, like name@example.com.")

    def __call__(self, form: Any, field: Field) -> None:
        value = (field.data or "").strip()
        if value and not is_email_address(value):
            raise ValidationError(self.message)
        field.data = value


def _required() -> DataRequired:
    return DataRequired(message=_l("This field is required."))


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


class TicketForm(FlaskForm):
    """The fields every ticket form asks; see ``ticket_form_class`` for the category's own."""

    name = StringField(_l("Your name"), validators=[_required(), Length(max=200)],
                       render_kw={"autocomplete": "name"})
    email = EmailField(_l("Your email address"),
                       validators=[_required(), Length(max=254), EmailAddress()],
                       render_kw={"autocomplete": "email"})
    subject = StringField(_l("Subject"), validators=[_required(), Length(max=250)])
    description = TextAreaField(_l("How can we help?"),
                                validators=[_required(), Length(max=20000)],
                                render_kw={"rows": 8})
    attachments = MultipleFileField(_l("Attachments"))
    # One id per form shown: sending the same form twice (a double click, a retry after
    # a dropped connection) opens one ticket.
    submission = HiddenField(validators=[Optional(), Length(max=64)])
    # Spam defences that need no third-party service and no JavaScript: a field people
    # never see (hidden, out of the tab order, hidden from screen readers) that bots fill
    # in, and the signed time the form was shown (people need more than a few seconds).
    website = StringField(_l("Leave this field empty"), validators=[Optional()],
                          render_kw={"autocomplete": "off", "tabindex": "-1"})
    shown_at = HiddenField(default=form_shown_stamp)

    extra_fields: tuple[FieldSpec, ...] = ()

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields, then the spam checks; both answer alike: "send it again".

        A bot learns nothing from the answer (the same words for a filled trap and a
        hurried form); a person who was just very quick sends the same form again,
        now with a fresh stamp.
        """
        if not super().validate(extra_validators):
            return False
        min_seconds = current_app.extensions["loket"].config["form_min_seconds"]
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

    def extra(self) -> list[tuple[FieldSpec, Field]]:
        """The category's questions with their bound form fields, in the admin's order."""
        return [(spec, self[spec.form_name]) for spec in self.extra_fields]


class FieldSpec(NamedTuple):
    """What the form needs of a CategoryField row; hashable, so built classes can be cached."""

    name: str
    label: str
    kind: str
    required: bool
    choices: tuple[str, ...]
    help_text: str

    @property
    def form_name(self) -> str:
        return EXTRA_PREFIX + self.name

    @classmethod
    def of(cls, row: CategoryField) -> FieldSpec:
        return cls(row.name, row.label, row.kind, bool(row.required),
                   tuple(row.choice_list()), row.help_text or "")


def _extra_field(spec: FieldSpec) -> Field:
    need = [_required()] if spec.required else [Optional()]
    longest = Length(max=FieldKind.MAX_LENGTH.get(spec.kind, FieldKind.MAX_LENGTH[FieldKind.TEXT]))
    kwargs: dict[str, Any] = {"description": spec.help_text}
    if spec.kind == FieldKind.TEXTAREA:
        return TextAreaField(spec.label, validators=need + [longest], render_kw={"rows": 4},
                             **kwargs)
    if spec.kind == FieldKind.EMAIL:
        return EmailField(spec.label, validators=need + [longest, EmailAddress()], **kwargs)
    if spec.kind == FieldKind.DATETIME:
        # InputRequired, so that a date that does not parse says so rather than "required".
        when = [InputRequired(message=_l("This field is required."))] if spec.required else need
        return DateTimeLocalField(
            spec.label, validators=when, format=DATETIME_FORMATS,
            render_kw={"step": 60}, **kwargs)
    if spec.kind == FieldKind.CHOICE:
        choices = [SelectChoice("", _l("Choose…"))] + [SelectChoice(c) for c in spec.choices]
        return SelectField(spec.label, validators=need, choices=choices,
                           validate_choice=True, **kwargs)
    if spec.kind == FieldKind.FILE:
        file_need = [FileRequired(message=_l("Please attach a file."))] if spec.required else []
        return FileField(spec.label, validators=file_need, **kwargs)
    # FieldKind.TEXT, and any kind this version does not know yet.
    return StringField(spec.label, validators=need + [longest], **kwargs)


@lru_cache(maxsize=512)
def _build(specs: tuple[FieldSpec, ...]) -> type[TicketForm]:
    attrs: dict[str, Any] = {"extra_fields": specs}
    for spec in specs:
        attrs[spec.form_name] = _extra_field(spec)
    return type("CategoryTicketForm", (TicketForm,), attrs)


def ticket_form_class(fields: Iterable[CategoryField]) -> type[TicketForm]:
    """The ticket form for a category: the common fields, then its questions in order.

    Classes are cached by the questions' definitions, so an admin's edit gives a
    new class and a busy form does not build one per request.
    """
    return _build(tuple(FieldSpec.of(row) for row in fields))


def answer_of(spec: FieldSpec, field: Field) -> Any:
    """The value stored in Ticket.form_data for a question (file fields are handled apart)."""
    data = field.data
    if spec.kind == FieldKind.DATETIME:
        return data.isoformat(timespec="minutes") if data else ""
    if isinstance(data, str):
        return data.strip()
    return data if data is not None else ""


class ReplyForm(FlaskForm):
    """The customer writes again on the tracking page."""

    text = TextAreaField(_l("Your reply"), validators=[_required(), Length(max=20000)],
                         render_kw={"rows": 6})
    attachments = MultipleFileField(_l("Attachments"))


class ResolveForm(FlaskForm):
    """The customer says their problem is solved; the form is only its CSRF token."""
