"""Error pages for people and JSON errors for the API, in one stable shape."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .i18n import _


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
            if g.get("body_too_complex"):
                return api_error(413, "too_complex",
                                 "The request body has too many JSON objects or items.")
            return api_error(413, "too_large",
                             f"The request is too large: at most {g.get('body_limit', 0)} bytes "
                             f"here (files up to {limit} MB each).")
        return render_template("loket/error.html", status=413,
                               message=_("The files you sent are too large. Each file may be "
                                         "at most %(limit)s MB.", limit=limit)), 413

    @app.errorhandler(429)
    def _too_many(exc: HTTPException) -> Any:
        # werkzeug's TooManyRequests carries Retry-After; a custom body must keep it.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() == "retry-after"]
        if _is_api():
            response = api_error(429, "too_many_requests",
                                 "Too many requests. Try again after Retry-After seconds.")
        else:
            # The page's own text for 429 says to wait; no message needed.
            response = make_response(render_template("loket/error.html", status=429,
                                                     message=""), 429)
        response.headers.extend(headers)
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if _is_api():
            code = (exc.name or "error").lower().replace(" ", "_")
            return api_error(exc.code or 500, code, exc.description or exc.name)
        return render_template("loket/error.html", status=exc.code,
                               message=exc.description), exc.code
