"""The OpenAPI document matches the API: Schemathesis calls every operation over WSGI.

Each operation gets a bounded number of generated requests; every response must
have a documented status code, content type, headers and body schema, and no
request may cause a server error. Requests carry an agent token or the seeded
ticket's key where the operation takes them, and half of the generated ticket
numbers are swapped for the seeded ticket so the success paths are exercised too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core import db as core_db
from core.api.v1 import api
from core.passwords import new_api_token
from core.services.tickets import Identity, add_note, open_ticket, reply

from .factories import build_desk

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@dataclass
class Seeded:
    number: int
    key: str
    admin_token: str
    agent_token: str


@pytest.fixture
def seeded(app: Any) -> Seeded:
    """A desk with one ticket that has a reply and a note, and two agents with tokens."""
    with app.app_context(), core_db.connection():
        desk = build_desk()
        tokens = []
        for staff in (desk.admin, desk.agent):
            token, hashed = new_api_token()
            staff.api_token_hash = hashed
            staff.save()
            tokens.append(token)
        ticket = open_ticket(identity=Identity("email", "rina@example.com", name="Rina"),
                             subject="Cannot sign in", text="The code never arrives.",
                             channel="api", category=desk.login,
                             form_data={"registered_email": "rina@example.com"})
        reply(ticket, desk.agent, "Please try again.")
        add_note(ticket, desk.agent, "Old app version.")
        return Seeded(ticket.id, ticket.access_key, *tokens)


@pytest.fixture
def api_schema(app: Any, seeded: Seeded) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


METHODS = {"get", "post", "put", "patch", "delete"}
# Known without an app, so each operation is its own test.
OPERATIONS = [(method.upper(), path) for path, item in api.document()["paths"].items()
              for method in item if method in METHODS]
# Schemathesis does not call the document's own address.
CALLED = [(method, path) for method, path in OPERATIONS if path != "/openapi.json"]


def _prepare(case: Any, seeded: Seeded, mode: GenerationMode) -> dict[str, str]:
    """Choose the credentials the operation takes; point most cases at the seeded ticket.

    Invalid cases keep whatever Schemathesis made invalid (a bad number, a bad
    Authorization header) and only get credentials where it sent none.
    """
    headers = case.headers or {}
    number = (case.path_parameters or {}).get("number")
    if mode == GenerationMode.POSITIVE:
        for name in ("Authorization", "X-Ticket-Key"):
            headers.pop(name, None)
        if isinstance(number, int) and number % 4 != 3:
            case.path_parameters["number"] = seeded.number
    else:
        # A query parameter the HTTP client would leave out turns an invalid case (an unknown
        # parameter) into a valid one: send it, empty.
        if case.query:
            case.query = {k: _sent(v) for k, v in case.query.items()}
        if "Authorization" in headers or "X-Ticket-Key" in headers:
            return {}
    schemes = {name for requirement in case.operation.definition.raw.get("security", [])
               for name in requirement}
    if not schemes:
        return {}
    if "ticketKey" in schemes and isinstance(number, int) and number % 8 < 4:
        return {"X-Ticket-Key": seeded.key}
    # Some requests go out as the department's agent, most as the admin.
    if isinstance(number, int) and number % 3 == 0:
        return {"Authorization": f"Bearer {seeded.agent_token}"}
    return {"Authorization": f"Bearer {seeded.admin_token}"}


def _sent(value: Any) -> Any:
    """A generated query value with something left to send. The test client (werkzeug) leaves
    out a null value, and sends a list as one parameter per item less its nulls: an empty list,
    or a list of nulls, would send nothing at all."""
    if isinstance(value, (list, tuple, set)):
        return [_sent(item) for item in value] or ""
    return "" if value is None else value


def _has_inputs(operation: Any) -> bool:
    return any(len(container) for container in (
        operation.path_parameters, operation.query, operation.headers, operation.body))


@pytest.mark.parametrize("method, path", CALLED, ids=[f"{m} {p}" for m, p in CALLED])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
def test_operation_matches_the_document(api_schema: Any, seeded: Seeded, method: str,
                                        path: str, mode: GenerationMode) -> None:
    operation = next(result.ok() for result in api_schema.get_all_operations()
                     if result.ok().method.upper() == method and result.ok().path == path)

    if mode == GenerationMode.NEGATIVE and not _has_inputs(operation):
        pytest.skip("nothing in this operation's request can be made invalid")

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=20, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        headers = _prepare(case, seeded, mode)
        checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])
        case.call_and_validate(headers=headers, checks=checks)

    run()


@pytest.mark.parametrize("value", [None, [], [None], ()], ids=["null", "empty list",
                                                             "list of null", "empty tuple"])
def test_an_unknown_query_parameter_reaches_the_app_whatever_its_value(
        api_schema: Any, seeded: Seeded, value: Any) -> None:
    """An invalid case that only the unknown parameter makes invalid stays invalid on the
    wire: the generated ``{"": []}`` once went out as no parameter and was answered 200."""
    operation = next(result.ok() for result in api_schema.get_all_operations()
                     if result.ok().method == "get" and result.ok().path == "/tickets")
    case = operation.Case(query={"active": "false", "": value})
    headers = _prepare(case, seeded, GenerationMode.NEGATIVE)
    response = case.call(headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_parameter"


def test_documented_example_opens_a_ticket(api_schema: Any) -> None:
    operation = next(result.ok() for result in api_schema.get_all_operations()
                     if result.ok().method == "post" and result.ok().path == "/tickets")
    example = api.document()["paths"]["/tickets"]["post"]["requestBody"]["content"][
        "application/json"]["example"]
    case = operation.Case(body=example, media_type="application/json")
    response = case.call_and_validate(checks=CHECKS)
    assert response.status_code == 201


def test_every_api_route_is_documented(app: Any) -> None:
    """Routes of the blueprint and paths of the document are the same set."""
    documented = {(method, "/api/v1" + re.sub(r"\{(\w+)\}", r"<int:\1>", path))
                  for method, path in OPERATIONS}
    routed = {(method, rule.rule) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("api_v1.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed == documented

