"""The OpenAPI 3.1 document of JSON API v1, served at ``/api/v1/openapi.json``.

Written by hand beside the views (``core/api/v1.py``) and the shapes they
return (``core/api/serialize.py``); ``tests/test_api_schema.py`` runs
Schemathesis against the live endpoints to prove the three agree. Objects are
closed (``additionalProperties: false``) so a field added to a response
without a line here fails that test.
"""

from __future__ import annotations

from typing import Any

from ..models import Delivery, FieldKind, Priority, Status
from ..numbers import MAX_ID


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Any], required: list[str] | None = None,
            **extra: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "additionalProperties": False,
              "required": list(properties) if required is None else required}
    schema.update(extra)
    return schema


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response = _json(_ref("Error"), description)
    if headers:
        response["headers"] = headers
    return response


STRING = {"type": "string"}
DATETIME = {"type": "string", "format": "date-time"}
TEXT = {"type": "string", "maxLength": 50_000}

RESPONSES = {
    "BadRequest": _error("The body is not a JSON object, or not sent as application/json."),
    "Unauthorized": _error(
        "No agent token (or ticket key) was sent, or the token is not valid.",
        {"WWW-Authenticate": {"description": 'Always `Bearer realm="loket"`.',
                              "schema": {"type": "string"}}}),
    "NotFound": _error("No such ticket, a wrong key, or a ticket outside the agent's "
                       "departments: the same answer for each."),
    "Conflict": _error("The desk refuses the change in the ticket's present state "
                       "(e.g. a closed ticket cannot be reopened)."),
    "TooLarge": _error("The request body is larger than the attachments allowed."),
    "Invalid": _error("Some fields are not valid; `error.fields` maps each to a message."),
}


def _responses(ok: dict[str, Any], *errors: str, ok_status: str = "200") -> dict[str, Any]:
    codes = {"BadRequest": "400", "Unauthorized": "401", "NotFound": "404", "Conflict": "409",
             "TooLarge": "413", "Invalid": "422"}
    responses = {ok_status: ok}
    for name in errors:
        responses[codes[name]] = {"$ref": f"#/components/responses/{name}"}
    return responses


NUMBER_PARAMETER = {
    "name": "number", "in": "path", "required": True,
    "description": "The public ticket number.",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
}


def _schemas() -> dict[str, Any]:
    attachment_in = _object({
        "filename": {"type": "string", "minLength": 1, "maxLength": 255},
        "content_base64": {"type": "string", "contentEncoding": "base64",
                           "description": "The file's bytes in standard base64."},
        "field": {"type": "string", "maxLength": 64,
                  "description": "The name of the category's `file` field this file answers."},
    }, required=["filename", "content_base64"])
    author = _object({
        "kind": {"type": "string", "enum": ["customer", "agent", "system", "bot"]},
        "name": STRING,
    })
    agent_author = _object({
        "kind": {"type": "string", "enum": ["customer", "agent", "system", "bot"]},
        "name": STRING,
        "staff": _nullable(_ref("Staff")),
        "contact": _nullable(_ref("Contact")),
    })
    message_common = {
        "id": {"type": "integer"},
        "text": STRING,
        "html": {"type": "string", "description": "Sanitised HTML, or empty."},
        "created_at": DATETIME,
        "attachments": {"type": "array", "items": _ref("Attachment")},
    }
    # What customers and agents both see of a ticket.
    ticket_common = {
        "number": {"type": "integer"},
        "subject": STRING,
        "status": {"type": "string", "enum": list(Status.ALL)},
        "category": _nullable(_ref("CategoryRef")),
        "language": STRING,
        "created_at": DATETIME,
        "updated_at": DATETIME,
    }
    ticket_public = {
        **ticket_common,
        "fields": {"type": "object", "description": "Answers to the category's extra fields."},
        "messages": {"type": "array", "items": _ref("Message")},
    }
    summary = {
        **ticket_common,
        "priority": {"type": "string", "enum": list(Priority.ALL)},
        "channel": STRING,
        "department": _nullable(_ref("Department")),
        "assignee": _nullable(_ref("Staff")),
        "contact": _ref("Contact"),
        "tags": {"type": "array", "items": STRING},
        "escalation_level": {"type": "integer"},
        "first_response_at": _nullable(DATETIME),
        "resolved_at": _nullable(DATETIME),
        "closed_at": _nullable(DATETIME),
        "due_at": _nullable(DATETIME),
    }
    category_field = _object({
        "name": STRING,
        "label": STRING,
        "kind": {"type": "string", "enum": list(FieldKind.ALL)},
        "required": {"type": "boolean"},
        "choices": {"type": "array", "items": STRING,
                    "description": "The allowed answers of a `choice` field."},
        "help_text": STRING,
    })
    return {
        "Error": _object({
            "error": _object({
                "code": {"type": "string", "description": "A stable machine-readable code."},
                "message": STRING,
                "fields": {"type": "object", "additionalProperties": STRING,
                           "description": "Field name -> message. Extra fields are named "
                                          "`fields.<name>`, files `attachments[<i>]`."},
            }, required=["code", "message"]),
        }),
        "UserType": _object({"slug": STRING, "name": STRING, "description": STRING}),
        "CategoryField": category_field,
        "Category": _object({
            "slug": STRING, "name": STRING, "description": STRING,
            "user_type": {"type": "string", "description": "The user type's slug."},
            "fields": {"type": "array", "items": _ref("CategoryField")},
            "children": {"type": "array", "items": _ref("Category")},
        }),
        "CategoryRef": _object({"slug": STRING, "name": STRING}),
        "Department": _object({"id": {"type": "integer"}, "slug": STRING, "name": STRING}),
        "Staff": _object({"id": {"type": "integer"}, "name": STRING, "email": STRING}),
        "Contact": _object({"id": {"type": "integer"}, "name": STRING,
                            "email": _nullable(STRING)}),
        "Attachment": _object({
            "id": {"type": "integer"}, "filename": STRING,
            "content_type": {"type": "string", "description": "Sniffed from the content."},
            "size": {"type": "integer"},
            "field": _nullable(STRING),
        }),
        "AttachmentUpload": attachment_in,
        "Message": _object({"author": author, **message_common}),
        "AgentMessage": _object({
            "author": agent_author, **message_common,
            "internal": {"type": "boolean", "description": "An internal note, never shown "
                                                           "to the customer."},
            "channel": STRING,
            "delivery_state": _nullable({"type": "string",
                                         "enum": [s for s in Delivery.ALL if s]}),
            "delivery_error": _nullable(STRING),
            "delivery_updated_at": _nullable(DATETIME),
        }),
        "Ticket": _object(ticket_public, description="What the customer sees: no internal "
                                                    "notes, no staff email addresses."),
        "CreatedTicket": _object({
            **ticket_public,
            "access_key": {"type": "string",
                           "description": "The secret for X-Ticket-Key; shown only here."},
            "tracking_url": {"type": "string", "format": "uri"},
        }),
        "TicketSummary": _object(summary),
        "AgentTicket": _object({
            **summary,
            "fields": {"type": "object"},
            "user_type": _nullable(STRING),
            "messages": {"type": "array", "items": _ref("AgentMessage")},
        }),
    }


def _paths() -> dict[str, Any]:
    agent = [{"bearerAuth": []}]
    agent_or_customer = [{"bearerAuth": []}, {"ticketKey": []}]
    public: list[Any] = []
    return {
        "/user-types": {"get": {
            "operationId": "listUserTypes", "tags": ["help center"], "security": public,
            "summary": "The user types a customer chooses from",
            "responses": _responses(_json(_object(
                {"user_types": {"type": "array", "items": _ref("UserType")}}),
                "Active user types in the admin's order.")),
        }},
        "/categories": {"get": {
            "operationId": "listCategories", "tags": ["help center"], "security": public,
            "summary": "Visible categories as a tree, with the extra fields each asks",
            "description": "Build a ticket form from this: each category lists its `fields` "
                           "(kind text, textarea, email, datetime, choice or file).",
            "parameters": [{"name": "user_type", "in": "query", "required": False,
                            "description": "A user type's slug; all active ones when left out.",
                            "schema": {"type": "string"}}],
            "responses": _responses(_json(_object(
                {"categories": {"type": "array", "items": _ref("Category")}}),
                "Top-level categories, each with its children."), "Invalid"),
        }},
        "/tickets": {
            "post": {
                "operationId": "openTicket", "tags": ["tickets"], "security": public,
                "summary": "Open a ticket (customers; no authentication)",
                "description": (
                    "Answers to the category's extra fields go in `fields` by name and are "
                    "checked as the web form checks them: required, email, ISO 8601 "
                    "datetime, choice among its choices. A `file` field is answered by an "
                    "entry of `attachments` whose `field` names it. Files are sniffed; "
                    "types and sizes follow the desk's upload settings. Keep the returned "
                    "`access_key`: it is the only way to read the ticket again."),
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _object({
                        "user_type": {"type": "string", "maxLength": 64,
                                      "description": "A user type's slug."},
                        "category": {"type": "string", "maxLength": 64,
                                     "description": "A visible category's slug within "
                                                    "that user type."},
                        "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "email": {"type": "string", "format": "email", "maxLength": 254},
                        "subject": {"type": "string", "minLength": 1, "maxLength": 250},
                        "description": {"type": "string", "minLength": 1,
                                        "maxLength": 50_000},
                        "fields": {"type": "object",
                                   "additionalProperties": {"type": "string"}},
                        "language": {"type": "string", "enum": ["en", "id", "fil"]},
                        "attachments": {"type": "array", "items": _ref("AttachmentUpload")},
                    }, required=["user_type", "category", "name", "email", "subject",
                                 "description"]),
                    "example": {
                        "user_type": "member", "category": "registration-and-login",
                        "name": "Rina", "email": "rina@example.com",
                        "subject": "Cannot sign in",
                        "description": "The code never arrives.",
                        "fields": {"registered_email": "rina@example.com"},
                        "language": "en"},
                }}},
                "responses": _responses(_json(_ref("CreatedTicket"), "The ticket, opened."),
                                        "BadRequest", "TooLarge", "Invalid",
                                        ok_status="201"),
            },
            "get": {
                "operationId": "listTickets", "tags": ["agents"], "security": agent,
                "summary": "The agent's tickets, most recently updated first",
                "description": "Only tickets the agent may see (admins: all; agents: their "
                               "departments', their own and unrouted ones). Pages follow "
                               "`next_cursor`; there is no total count.",
                "parameters": [
                    {"name": "status", "in": "query",
                     "schema": {"type": "string", "enum": list(Status.ALL)}},
                    {"name": "priority", "in": "query",
                     "schema": {"type": "string", "enum": list(Priority.ALL)}},
                    {"name": "channel", "in": "query", "schema": {"type": "string"}},
                    {"name": "department", "in": "query", "description": "A department slug.",
                     "schema": {"type": "string"}},
                    {"name": "assignee", "in": "query",
                     "description": '"me", "none", or an agent id.',
                     "schema": {"type": "string", "pattern": "^(me|none|[1-9][0-9]{0,8})$"}},
                    {"name": "category", "in": "query", "description": "A category slug.",
                     "schema": {"type": "string"}},
                    {"name": "q", "in": "query", "description": "Words in the subject.",
                     "schema": {"type": "string"}},
                    {"name": "updated_since", "in": "query", "schema": DATETIME},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 100,
                                "default": 25}},
                    {"name": "cursor", "in": "query",
                     "description": "`next_cursor` of the previous page.",
                     "schema": {"type": "string"}},
                ],
                "responses": _responses(_json(_object({
                    "tickets": {"type": "array", "items": _ref("TicketSummary")},
                    "next_cursor": _nullable(STRING),
                }), "One page of tickets."), "Unauthorized", "Invalid"),
            },
        },
        "/tickets/{number}": {
            "parameters": [NUMBER_PARAMETER],
            "get": {
                "operationId": "getTicket", "tags": ["tickets", "agents"],
                "security": agent_or_customer,
                "summary": "One ticket: the customer's view with X-Ticket-Key, "
                           "the full view with an agent token",
                "responses": _responses(_json(
                    {"oneOf": [_ref("Ticket"), _ref("AgentTicket")]},
                    "`Ticket` for the customer, `AgentTicket` (internal notes, department, "
                    "assignee, tags, delivery states) for an agent."),
                    "Unauthorized", "NotFound"),
            },
            "patch": {
                "operationId": "updateTicket", "tags": ["agents"], "security": agent,
                "summary": "Change status, priority, department, tags, subject or assignee",
                "description": "All changes apply together or not at all; each writes an "
                               "audit event.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _object({
                        "status": {"type": "string", "enum": list(Status.ALL)},
                        "priority": {"type": "string", "enum": list(Priority.ALL)},
                        "department": {"type": "string", "description": "A department slug."},
                        "tags": {"type": "array", "maxItems": 50,
                                 "items": {"type": "string", "maxLength": 64}},
                        "subject": {"type": "string", "minLength": 1, "maxLength": 250},
                        "assignee": {"oneOf": [
                            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                            {"type": "null"}],
                            "description": "An agent id, or null for nobody."},
                    }, required=[]),
                }}},
                "responses": _responses(_json(_ref("AgentTicket"), "The ticket, changed."),
                                        "BadRequest", "Unauthorized", "NotFound",
                                        "Conflict", "TooLarge", "Invalid"),
            },
        },
        "/tickets/{number}/messages": {
            "parameters": [NUMBER_PARAMETER],
            "post": {
                "operationId": "addMessage", "tags": ["tickets", "agents"],
                "security": agent_or_customer,
                "summary": "Write on a ticket: the customer replies, an agent replies or "
                           "notes",
                "description": (
                    "With X-Ticket-Key only `text` and `attachments` are accepted. An agent "
                    "sends a reply (delivered through the ticket's channel, or left on the "
                    "tracking page) or, with `internal: true`, a note. `status` is where the "
                    "ticket goes next: for a reply it defaults to `pending` and `null` keeps "
                    "the present status."),
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _object({
                        "text": {"type": "string", "minLength": 1, "maxLength": 50_000},
                        "internal": {"type": "boolean", "default": False},
                        "status": _nullable({"type": "string", "enum": list(Status.ALL)}),
                        "attachments": {"type": "array", "items": _ref("AttachmentUpload")},
                    }, required=["text"]),
                }}},
                "responses": _responses(_json(
                    {"oneOf": [_ref("Message"), _ref("AgentMessage")]},
                    "The message written: `Message` for the customer, `AgentMessage` for an "
                    "agent."),
                    "BadRequest", "Unauthorized", "NotFound", "Conflict", "TooLarge",
                    "Invalid", ok_status="201"),
            },
        },
        "/openapi.json": {"get": {
            "operationId": "getOpenApi", "tags": ["meta"], "security": public,
            "summary": "This document",
            "responses": {"200": {"description": "The OpenAPI 3.1 document.",
                                  "content": {"application/json": {
                                      "schema": {"type": "object"}}}}},
        }},
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loket JSON API",
            "version": "1",
            "description": (
                "Customers open tickets and follow them with the ticket's access key "
                "(`X-Ticket-Key`). Agents list, read, answer and change the tickets of "
                "their departments with a personal API token (`Authorization: Bearer`). "
                "Every error has the shape `{\"error\": {\"code\", \"message\", "
                "\"fields\"?}}`; a wrong key, a missing ticket and a ticket outside the "
                "agent's departments answer the same 404."),
        },
        "servers": [{"url": "/api/v1"}],
        "tags": [{"name": "help center"}, {"name": "tickets"}, {"name": "agents"},
                 {"name": "meta"}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "responses": RESPONSES,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "An agent's API token."},
                "ticketKey": {"type": "apiKey", "in": "header", "name": "X-Ticket-Key",
                              "description": "The access key returned when the ticket "
                                             "was opened (also in the tracking link)."},
            },
        },
    }
