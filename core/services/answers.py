"""A category's extra questions and the one check of their answers, for the web form and the API.

Both entry points hand the raw answers here and get back either the values to
store in ``Ticket.form_data`` or one message per field, so that the same input
stores the same value and earns the same error wherever it comes from. The
length limits of the ticket's own fields live here too, for the same reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .. import db
from ..i18n import _l
from ..models import CategoryField, FieldKind
from ..sanitize import storable as _cleaned
from ..state import loket
from .contacts import NAME_MAX, is_email_address
from .tickets import SUBJECT_MAX, TEXT_MAX

EMAIL_MAX = 254  # the longest address SMTP carries
__all__ = ["NAME_MAX", "EMAIL_MAX", "SUBJECT_MAX", "TEXT_MAX", "Question", "check_answers",
           "questions_of", "questions_by_category", "canonical_datetime", "storable"]

# The messages every entry point gives; Length validators format %(max)d themselves.
REQUIRED = _l("This field is required.")
TOO_LONG = _l("At most %(max)d characters.")
NOT_STORABLE = _l("Contains characters that cannot be stored.")
NOT_TEXT = _l("Must be a string.")
BAD_EMAIL = _l("Please enter a valid email address, like name@example.com.")
BAD_DATETIME = _l("Enter a date and time, like 2024-05-01T14:30.")
BAD_CHOICE = _l("Choose one of the offered answers.")
FILE_REQUIRED = _l("Please attach a file.")
NO_SUCH_FIELD = _l("This category has no such question.")
FILE_BY_ATTACHMENT = _l("A file question is answered by an attachment that names it.")


class Question(NamedTuple):
    """What a check or a form needs of a CategoryField row; hashable, so forms can be cached."""

    name: str
    label: str
    kind: str
    required: bool
    choices: tuple[str, ...]
    help_text: str

    @classmethod
    def of(cls, row: CategoryField) -> Question:
        return cls(row.name, row.label, row.kind, bool(row.required),
                   tuple(choices_of(row)), row.help_text or "")

    @property
    def max_length(self) -> int:
        return FieldKind.MAX_LENGTH.get(self.kind, FieldKind.MAX_LENGTH[FieldKind.TEXT])


def choices_of(row: CategoryField) -> list[str]:
    """A choice question's answers: a plugin's current list (``field_choices``), else the
    admin's. Every reader of a question comes through here, so the form offers and the
    check accepts the same answers."""
    if row.kind != FieldKind.CHOICE:
        return row.choice_list()
    offered = loket().hook.field_choices(field=row)
    return [str(choice) for choice in offered] if offered is not None else row.choice_list()


def questions_of(category_id: int) -> list[Question]:
    """A category's questions in the admin's order (SQL compiled once: the form is busy)."""
    rows = _questions_of.all(category_id)
    return [Question.of(row) for row in rows]


def questions_by_category(category_ids: list[int]) -> dict[int, list[Question]]:
    """The questions of several categories at once (a category tree), in the admin's order."""
    found: dict[int, list[Question]] = {}
    if category_ids:
        for row in (CategoryField.select().where(CategoryField.category.in_(category_ids))
                    .order_by(CategoryField.position, CategoryField.id)):
            found.setdefault(row.category_id, []).append(Question.of(row))
    return found


_questions_of = db.Select(
    "category_field.of_category", CategoryField,
    lambda category_id: (CategoryField.select().where(CategoryField.category == category_id)
                         .order_by(CategoryField.position, CategoryField.id)))


def storable(value: str) -> bool:
    """Text the database can hold: no NUL, no unpaired surrogate (PostgreSQL refuses both)."""
    return _cleaned(value) == value


def too_long(limit: int) -> str:
    return TOO_LONG % {"max": limit}


def canonical_datetime(value: str) -> str | None:
    """The one stored form of a date-time answer, or None when it is not one.

    Seconds always (``2024-05-01T14:30:00``): a browser sends ``14:30``, an API
    client ``14:30:00``, and both mean the same moment. A value with an offset
    is turned into UTC and marked ``Z``; one without stays as the customer gave
    it, since nothing tells us their time zone.
    """
    try:
        parsed = dt.datetime.fromisoformat(value.strip().upper())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.isoformat(timespec="seconds")
    try:
        utc = parsed.astimezone(dt.UTC)
    except OverflowError:
        return None
    return utc.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def check_answers(questions: Iterable[Question], answers: Mapping[str, Any],
                  files: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """Check the answers to a category's questions: (what to store, {question: message}).

    ``answers`` maps question names to what the customer sent (strings; a web
    form sends every question, an API client only some). ``files`` names the
    file questions an attachment answered; a file's name is added to the stored
    answers by whoever stores the file. Unanswered optional questions are not
    stored. Answers to questions the category does not ask are errors.
    """
    questions = list(questions)
    answered_files = set(files)
    by_name = {q.name: q for q in questions}
    errors: dict[str, str] = {}
    for name in answers:
        if name not in by_name:
            errors[name] = str(NO_SUCH_FIELD)
        elif by_name[name].kind == FieldKind.FILE and answers[name] not in (None, ""):
            errors[name] = str(FILE_BY_ATTACHMENT)
    cleaned: dict[str, Any] = {}
    for question in questions:
        if question.name in errors:
            continue
        if question.kind == FieldKind.FILE:
            if question.required and question.name not in answered_files:
                errors[question.name] = str(FILE_REQUIRED)
            continue
        value, message = _check_one(question, answers.get(question.name))
        if message is not None:
            errors[question.name] = str(message)
        elif value:
            cleaned[question.name] = value
    return cleaned, errors


def _check_one(question: Question, value: Any) -> tuple[str, Any]:
    """One answer: (the value to store, "" when unanswered; the error or None)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        return "", NOT_TEXT
    if not storable(value):
        return "", NOT_STORABLE
    value = value.strip()
    if not value:
        return "", REQUIRED if question.required else None
    if len(value) > question.max_length:
        return "", too_long(question.max_length)
    if question.kind == FieldKind.EMAIL and not is_email_address(value):
        return "", BAD_EMAIL
    if question.kind == FieldKind.DATETIME:
        when = canonical_datetime(value)
        return (when, None) if when is not None else ("", BAD_DATETIME)
    if question.kind == FieldKind.CHOICE and value not in question.choices:
        return "", BAD_CHOICE
    return value, None
