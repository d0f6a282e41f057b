"""Each API operation declared once: its route, request and response models, and its document.

``Api.operation`` registers a Flask view together with the pydantic models of
its query string, its body and its answers. The same declaration then reads
requests (``read_query``, ``read_body``: unknown query parameters are a 400,
bad values a 422 in ``core.errors.api_error``'s shape), writes answers
(``respond``: the model's own serialisation) and builds the OpenAPI 3.1
document (``Api.document``). Nothing is described twice, so nothing drifts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from typing import Annotated, Any, TypeVar

from flask import Blueprint, g, jsonify, request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError

from ..errors import api_error
from ..i18n import _, _l
from ..numbers import MAX_ID
from ..services.answers import NOT_STORABLE, NOT_TEXT, REQUIRED, storable, too_long

M = TypeVar("M", bound=BaseModel)
REF = "#/components/schemas/{model}"


def _storable(value: str) -> str:
    if not storable(value):
        raise PydanticCustomError("not_storable", str(NOT_STORABLE))
    return value


# A string the database can hold (PostgreSQL refuses NUL and unpaired surrogates):
# a hostile client gets a 422, never a 500.
Text = Annotated[str, AfterValidator(_storable)]


def text(**constraints: Any) -> Any:
    """``Text`` with length, pattern or schema constraints (placed first, so the document
    shows them)."""
    return Annotated[str, Field(**constraints), AfterValidator(_storable)]


class Request(BaseModel):
    """A request body: closed, strict (JSON types as sent), strings trimmed."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class Query(BaseModel):
    """A query string: every value arrives as text, so numbers are read from it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Answer(BaseModel):
    """A response body: closed, and every field always present (null when empty)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    @classmethod
    def of_row(cls, row: Any) -> Any:
        """The answer of a row whose attributes bear the answer's field names; None for None."""
        return None if row is None else cls.model_validate(row, from_attributes=True)


class BadRequest(Exception):
    """The request cannot be read at all (not JSON, an unknown parameter): 400."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Invalid(Exception):
    """Input that was read but does not hold up: 422 with a message per field."""

    def __init__(self, fields: dict[str, str], message: str | None = None):
        # Raised while answering a request: the message is in the caller's language.
        super().__init__(message or _("Some fields are not valid."))
        self.fields = fields


@dataclass
class ErrorKind:
    """A documented error answer, shared by the operations that may give it."""

    status: int
    description: str
    headers: dict[str, Any] = field(default_factory=dict)


@dataclass
class Operation:
    method: str
    rule: str
    operation_id: str
    summary: str
    tags: list[str]
    security: list[dict[str, list[str]]]
    ok: tuple[int, Any, str]
    errors: tuple[str, ...]
    description: str = ""
    query: type[Query] | None = None
    body: type[Request] | None = None
    example: dict[str, Any] | None = None
    binary: bool = False  # the success answer is a file, not JSON

    @property
    def path(self) -> str:
        """The rule in OpenAPI's spelling: ``<int:number>`` becomes ``{number}``."""
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", self.rule)


class Api:
    """The operations of one blueprint and the document they make."""

    def __init__(self, blueprint: Blueprint, *, title: str, version: str, description: str,
                 tags: list[str], security_schemes: dict[str, Any],
                 error_model: type[BaseModel], errors: dict[str, ErrorKind]):
        self.blueprint = blueprint
        self.info = {"title": title, "version": version, "description": description}
        self.tags = tags
        self.security_schemes = security_schemes
        self.error_model = error_model
        self.errors = errors
        self.operations: list[Operation] = []
        self._document: dict[str, Any] | None = None

    def operation(self, method: str, rule: str, *, operation_id: str, summary: str,
                  tags: list[str], ok: tuple[int, Any, str], errors: Iterable[str] = (),
                  security: Iterable[str] = (), description: str = "",
                  query: type[Query] | None = None, body: type[Request] | None = None,
                  example: dict[str, Any] | None = None,
                  binary: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Route ``view`` and declare it. ``ok`` is (status, model(s), description).

        Any operation may be sent an unknown query parameter, so each documents 400.
        """
        errors = tuple(dict.fromkeys(("BadRequest", *errors)))
        unknown = set(errors) - set(self.errors)
        if unknown:
            raise ValueError(f"undeclared error answers {sorted(unknown)}")
        op = Operation(method.upper(), rule, operation_id, summary, tags,
                       [{name: []} for name in security], ok, errors, description, query, body,
                       example, binary)
        self.operations.append(op)

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(view)
            def wrapper(**kwargs: Any) -> Any:
                g.api_operation = op
                allowed = set(op.query.model_fields) if op.query is not None else set()
                for name in request.args:
                    if name not in allowed:
                        raise BadRequest("unknown_parameter",
                                         _("Unknown query parameter %(name)s.",
                                           name=repr(name)))
                return view(**kwargs)

            self.blueprint.add_url_rule(rule, view.__name__, wrapper, methods=[op.method])
            return wrapper

        return decorate

    # -- The document ------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document, built once from the declarations."""
        if self._document is None:
            self._document = self._build()
        return self._document

    def _build(self) -> dict[str, Any]:
        inputs = {op.body for op in self.operations if op.body is not None}
        outputs = {self.error_model}
        for op in self.operations:
            outputs.update(m for m in _models(op.ok[1]))
        _, top = models_json_schema(
            [(m, "validation") for m in sorted(inputs, key=_name)]
            + [(m, "serialization") for m in sorted(outputs, key=_name)], ref_template=REF)
        schemas = _untitled(top.get("$defs", {}))
        paths: dict[str, Any] = {}
        for op in self.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = self._operation(op)
        responses = {}
        for name, kind in self.errors.items():
            responses[name] = {"description": kind.description, "content": {
                "application/json": {"schema": {"$ref": REF.format(model=_name(self.error_model))}}}}
            if kind.headers:
                responses[name]["headers"] = kind.headers
        return {
            "openapi": "3.1.0",
            "info": self.info,
            "servers": [{"url": self.blueprint.url_prefix or "/"}],
            "tags": [{"name": tag} for tag in self.tags],
            "paths": paths,
            "components": {"schemas": schemas, "responses": responses,
                           "securitySchemes": self.security_schemes},
        }

    def _operation(self, op: Operation) -> dict[str, Any]:
        status, models, description = op.ok
        if op.binary:
            content = {"application/octet-stream": {"schema": {"type": "string",
                                                               "format": "binary"}}}
            ok: dict[str, Any] = {"description": description, "content": content,
                                  "headers": {"Content-Disposition": {
                                      "description": "Always `attachment`, with the file's name.",
                                      "schema": {"type": "string"}}}}
        else:
            ok = {"description": description,
                  "content": {"application/json": {"schema": _schema_of(models)}}}
        spec: dict[str, Any] = {
            "operationId": op.operation_id, "tags": op.tags, "security": op.security,
            "summary": op.summary,
            "responses": {str(status): ok, **{
                str(self.errors[name].status): {"$ref": f"#/components/responses/{name}"}
                for name in op.errors}},
        }
        if op.description:
            spec["description"] = op.description
        parameters = _path_parameters(op.rule) + (_query_parameters(op.query)
                                                  if op.query is not None else [])
        if parameters:
            spec["parameters"] = parameters
        if op.body is not None:
            media: dict[str, Any] = {"schema": {"$ref": REF.format(model=_name(op.body))}}
            if op.example is not None:
                media["example"] = op.example
            spec["requestBody"] = {"required": True, "content": {"application/json": media}}
        return spec


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def _models(declared: Any) -> list[type[BaseModel]]:
    if declared is None:
        return []
    return list(declared) if isinstance(declared, tuple) else [declared]


def _schema_of(declared: Any) -> dict[str, Any]:
    models = _models(declared)
    if not models:
        return {"type": "object"}
    refs = [{"$ref": REF.format(model=_name(m))} for m in models]
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


def _untitled(schema: Any) -> Any:
    """Drop pydantic's generated titles and null defaults: noise in a document."""
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties" or key == "$defs":
            out[key] = {name: _untitled(sub) for name, sub in value.items()}
        elif key == "default" and value is None:
            continue  # "absent" and "null" are the same to these readers; say neither
        elif key != "title":
            out[key] = _untitled(value)
    return out


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    parameters = []
    for converter, name in re.findall(r"<(?:(\w+):)?(\w+)>", rule):
        schema = ({"type": "integer", "minimum": 1, "maximum": MAX_ID} if converter == "int"
                  else {"type": "string"})
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _query_parameters(model: type[Query]) -> list[dict[str, Any]]:
    schema = _untitled(model.model_json_schema(ref_template=REF))
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        # A query string has no null: a parameter is there or it is not.
        options = [p for p in prop.pop("anyOf", []) if p.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
        elif options:
            prop["anyOf"] = options
        parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            parameter["description"] = prop.pop("description")
        parameters.append(parameter)
    return parameters


# -- Reading requests --------------------------------------------------------------------------


def _operation() -> Operation:
    return g.api_operation


def read_query() -> Any:
    """The current operation's query model, filled from the query string, or ``Invalid``."""
    model = _operation().query
    assert model is not None, "the operation declares no query"
    return _validate(model, request.args.to_dict(flat=True))


def read_body() -> Any:
    """The current operation's body model, filled from the JSON body, or BadRequest/Invalid."""
    model = _operation().body
    assert model is not None, "the operation declares no body"
    return _validate(model, json_body())


def json_body() -> dict[str, Any]:
    """The request's JSON object, or ``BadRequest`` for another type or malformed JSON."""
    if not request.is_json:
        raise BadRequest("unsupported_content_type",
                         _("Send the request body as JSON (Content-Type: application/json)."))
    try:
        body = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):
        raise BadRequest("invalid_json", _("The request body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise BadRequest("invalid_json", _("The request body must be a JSON object."))
    return body


def _validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(field_errors(exc)) from None


def field_errors(exc: ValidationError) -> dict[str, str]:
    """``{field: message}``: ``fields.<name>`` for answers, ``attachments[<i>].<key>`` for files."""
    found: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        found.setdefault(location(error["loc"]), _message(error))
    return found


def location(loc: Iterable[Any]) -> str:
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name


# Pydantic's error types, said the way the web form says them where it says them at all.
MUST_BE = {
    "bool_type": _l("Must be true or false."),
    "int_type": _l("Must be a whole number."),
    "int_parsing": _l("Must be a whole number."),
    "list_type": _l("Must be an array."),
    "dict_type": _l("Must be an object."),
    "model_type": _l("Must be an object."),
    "model_attributes_type": _l("Must be an object."),
    "extra_forbidden": _l("Unknown field."),
    "string_type": NOT_TEXT,
    "missing": REQUIRED,
}


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in MUST_BE:
        return str(MUST_BE[kind])
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return str(REQUIRED)
    if kind == "string_too_long":
        return too_long(ctx["max_length"])
    if kind == "too_long":
        return str(_l("At most %(count)s items.", count=ctx.get("max_length")))
    if kind == "literal_error":
        return str(_l("Choose one of: %(choices)s", choices=ctx.get("expected", "")))
    return error["msg"]


def respond(answer: BaseModel, status: int = 200, location: str | None = None) -> Any:
    """A declared answer as JSON, serialised by its own model."""
    response = jsonify(answer.model_dump(mode="json"))
    response.status_code = status
    if location is not None:
        response.headers["Location"] = location
    return response


def register_error_answers(api: Api) -> None:
    """Answer BadRequest and Invalid in the API's error shape."""

    @api.blueprint.errorhandler(BadRequest)
    def _bad_request(exc: BadRequest) -> Any:
        return api_error(400, exc.code, str(exc))

    @api.blueprint.errorhandler(Invalid)
    def _invalid(exc: Invalid) -> Any:
        return api_error(422, "invalid", str(exc), exc.fields)
