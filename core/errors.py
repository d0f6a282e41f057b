"""Error pages for people and JSON errors for the API, in one stable shape."""

from __future__ import annotations

import logging
from typing import Any

import peewee
from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .i18n import _

log = logging.getLogger(__name__)


def api_error(status: int, code: str, message: str, fields: dict[str, Any] | None = None) -> Any:
    """The API's error body: {"error": {"code", "message", "fields"}}."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    return response


def _is_api() -> bool:
    return request.path.startswith("/api/")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        if _is_api():
            return api_error(400, "csrf", exc.description)
        return render_template("loket/error.html", status=400,
                               message=_("Your form expired or was sent from another site. "
                                         "Please go back, reload the page and try again.")), 400

    @app.errorhandler(413)
    def _too_large(exc: HTTPException) -> Any:
        limit = app.extensions["loket"].config["upload_max_bytes"] // (1024 * 1024)
        if _is_api():
            return api_error(413, "too_large", f"The request is too large (files up to {limit} MB).")
        return render_template("loket/error.html", status=413,
                               message=_("The files you sent are too large. Each file may be "
                                         "at most %(limit)s MB.", limit=limit)), 413

    @app.errorhandler(peewee.DataError)
    @app.errorhandler(OverflowError)
    def _out_of_range(exc: Exception) -> Any:
        # A value the database cannot hold (an over-large number, say) that no check
        # caught before the query: the request is bad, not the server.
        log.info("refused a value the database cannot hold: %s", (str(exc).splitlines() or [type(exc).__name__])[0])
        if _is_api():
            return api_error(400, "bad_request", "A value in the request is out of range.")
        return render_template("loket/error.html", status=400,
                               message=_("Something in your request is not valid.")), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if _is_api():
            code = (exc.name or "error").lower().replace(" ", "_")
            return api_error(exc.code or 500, code, exc.description or exc.name)
        return render_template("loket/error.html", status=exc.code,
                               message=exc.description), exc.code
