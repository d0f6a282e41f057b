"""Reading API input: JSON bodies, plain values, a category's extra fields, base64 attachments.

Every check here collects ``{field: message}`` into an ``Invalid`` error that
the API answers with 422; nothing raises past the view for bad input. Strings
are refused when they hold a NUL or an unpaired surrogate, which PostgreSQL
cannot store, so a hostile client gets a 422 and never a 500.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from flask import request

from ..attachments import AttachmentRejected, Storage, StoredFile
from ..models import Category, CategoryField, FieldKind
from ..numbers import MAX_ID, parse_id  # noqa: F401  (the API reads ids through here)
from ..services.contacts import is_email_address

TEXT_LIMITS = FieldKind.MAX_LENGTH


class BadRequest(Exception):
    """The body is not a JSON object: 400."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Invalid(Exception):
    """Input that parsed but does not hold up: 422 with ``fields``."""

    def __init__(self, fields: dict[str, str], message: str = "Some fields are not valid."):
        super().__init__(message)
        self.fields = fields


def json_body() -> dict[str, Any]:
    """The request's JSON object, or ``BadRequest`` for another type or malformed JSON."""
    if not request.is_json:
        raise BadRequest("unsupported_content_type",
                         "Send the request body as JSON (Content-Type: application/json).")
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("invalid_json", "The request body must be a JSON object.")
    return body


@dataclass
class Errors:
    """Collects field errors while a body is read, then raises them together."""

    fields: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, message)

    def raise_any(self) -> None:
        if self.fields:
            raise Invalid(self.fields)


def storable(value: str) -> bool:
    """A string the database can hold: no NUL, no unpaired surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text(errors: Errors, body: dict[str, Any], name: str, *, required: bool = False,
         max_length: int = 200, label: str | None = None) -> str | None:
    """A trimmed string from ``body[name]``; None when absent (or an error when required)."""
    value = body.get(name)
    key = label or name
    if value is None:
        if required:
            errors.add(key, "This field is required.")
        return None
    if not isinstance(value, str):
        errors.add(key, "Must be a string.")
        return None
    if not storable(value):
        errors.add(key, "Contains characters that cannot be stored.")
        return None
    value = value.strip()
    if required and not value:
        errors.add(key, "This field is required.")
        return None
    if len(value) > max_length:
        errors.add(key, f"At most {max_length} characters.")
        return None
    return value


def parse_datetime(value: str) -> dt.datetime | None:
    """An ISO 8601 date-time; aware values are turned into naive UTC. None when unreadable."""
    if not value or not storable(value):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().upper())
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    return parsed


def string_list(errors: Errors, value: Any, name: str, *, max_items: int = 50,
                max_length: int = 64) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.add(name, "Must be an array of strings.")
        return None
    if len(value) > max_items:
        errors.add(name, f"At most {max_items} items.")
        return None
    if any(not storable(v) or len(v.strip()) > max_length for v in value):
        errors.add(name, f"Each item must be storable text of at most {max_length} characters.")
        return None
    return value


# -- A category's extra fields -----------------------------------------------------------


def category_fields(category: Category) -> list[CategoryField]:
    return list(CategoryField.select().where(CategoryField.category == category)
                .order_by(CategoryField.position, CategoryField.id))


def check_answers(errors: Errors, fields: list[CategoryField], answers: Any,
                  file_answers: set[str]) -> dict[str, Any]:
    """Validate answers to a category's fields, as the web form does; return form_data.

    ``file_answers`` names the file fields that an attachment answered. Errors
    are reported as ``fields.<name>``.
    """
    if answers is None:
        answers = {}
    if not isinstance(answers, dict):
        errors.add("fields", "Must be an object of answers by field name.")
        return {}
    by_name = {f.name: f for f in fields}
    for name in answers:
        if name not in by_name:
            errors.add(f"fields.{name}", "This category has no such field.")
        elif by_name[name].kind == FieldKind.FILE:
            errors.add(f"fields.{name}",
                       "A file field is answered by an attachment naming it in \"field\".")
    form_data: dict[str, Any] = {}
    for spec in fields:
        key = f"fields.{spec.name}"
        if spec.kind == FieldKind.FILE:
            if spec.required and spec.name not in file_answers:
                errors.add(key, "This field is required: attach a file with "
                                f"\"field\": \"{spec.name}\".")
            continue
        value = answers.get(spec.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if spec.required:
                errors.add(key, "This field is required.")
            continue
        if not isinstance(value, str):
            errors.add(key, "Must be a string.")
            continue
        if not storable(value):
            errors.add(key, "Contains characters that cannot be stored.")
            continue
        value = value.strip()
        if len(value) > TEXT_LIMITS.get(spec.kind, 500):
            errors.add(key, f"At most {TEXT_LIMITS.get(spec.kind, 500)} characters.")
            continue
        if spec.kind == FieldKind.EMAIL:
            if not is_email_address(value):
                errors.add(key, "Enter a valid email address.")
                continue
        elif spec.kind == FieldKind.DATETIME:
            when = _answer_datetime(value)
            if when is None:
                errors.add(key, "Enter a date and time in ISO 8601 (2024-05-01T14:30).")
                continue
            value = when
        elif spec.kind == FieldKind.CHOICE:
            if value not in spec.choice_list():
                errors.add(key, "Choose one of: " + ", ".join(spec.choice_list()))
                continue
        form_data[spec.name] = value
    return form_data


def _answer_datetime(value: str) -> str | None:
    """A datetime answer as stored: naive as given, or UTC with a Z when it had an offset."""
    try:
        parsed = dt.datetime.fromisoformat(value.upper())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.isoformat()
    try:
        utc = parsed.astimezone(dt.UTC)
    except OverflowError:
        return None
    return utc.replace(tzinfo=None).isoformat() + "Z"


# -- Attachments ---------------------------------------------------------------------------


@dataclass
class Upload:
    filename: str
    data: bytes
    field: str


def read_attachments(errors: Errors, value: Any, *, max_files: int, max_bytes: int,
                     file_fields: set[str]) -> list[Upload]:
    """Decode ``attachments: [{filename, content_base64, field?}]``; nothing is stored yet."""
    if value is None:
        return []
    if not isinstance(value, list):
        errors.add("attachments", "Must be an array of {filename, content_base64}.")
        return []
    if len(value) > max_files:
        errors.add("attachments", f"At most {max_files} files per message.")
        return []
    uploads = []
    for index, item in enumerate(value):
        key = f"attachments[{index}]"
        if not isinstance(item, dict):
            errors.add(key, "Must be an object {filename, content_base64}.")
            continue
        item_errors = Errors()
        filename = text(item_errors, item, "filename", required=True, max_length=255,
                        label=f"{key}.filename")
        field_name = text(item_errors, item, "field", max_length=64, label=f"{key}.field")
        content = item.get("content_base64")
        data = b""
        if not isinstance(content, str):
            item_errors.add(f"{key}.content_base64", "Must be a base64 string.")
        elif len(content) > (max_bytes + 2) // 3 * 4 + 4:
            item_errors.add(f"{key}.content_base64",
                            f"The file is larger than {max_bytes} bytes.")
        else:
            try:
                data = base64.b64decode(content.encode("ascii"), validate=True)
            except (binascii.Error, ValueError, UnicodeEncodeError):
                item_errors.add(f"{key}.content_base64", "Not valid base64.")
        if field_name and field_name not in file_fields:
            item_errors.add(f"{key}.field", "This category has no file field of that name.")
        for name, message in item_errors.fields.items():
            errors.add(name, message)
        if not item_errors.fields and filename is not None:
            uploads.append(Upload(filename, data, field_name or ""))
    return uploads


def store_attachments(errors: Errors, uploads: list[Upload], config: Any) -> tuple[
        list[StoredFile], dict[str, str]]:
    """Store decoded uploads (type sniffed, size checked); return files and sha256 -> field."""
    storage = Storage(config["attachments_path"])
    stored: list[StoredFile] = []
    by_field: dict[str, str] = {}
    for index, upload in enumerate(uploads):
        try:
            saved = storage.save_bytes(upload.data, upload.filename,
                                       max_bytes=config["upload_max_bytes"],
                                       allowed_types=config["upload_allowed_types"])
        except AttachmentRejected as exc:
            errors.add(f"attachments[{index}]", str(exc))
            continue
        stored.append(saved)
        if upload.field:
            by_field[saved.sha256] = upload.field
    return stored, by_field
