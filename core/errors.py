"""Error pages for people and JSON errors for the API, in one stable shape."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import peewee
from flask import Flask, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .i18n import _
from .state import loket

log = logging.getLogger(__name__)


def api_error(status: int, code: str, message: str, fields: dict[str, Any] | None = None) -> Any:
    """The API's error body: {"error": {"code", "message", "fields"}}."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    return response


# How long a client should wait before asking again while the database is unreachable.
RETRY_AFTER_SECONDS = 30


class _Outage:
    """Whether this app (in this process) finds the database unreachable, so the log says so once.

    A database that is down fails every request; a traceback per request (thousands
    in seconds) buries the one line that matters. The first failure logs what is
    wrong, the first request that reaches the database again logs that it is back.
    """

    def __init__(self) -> None:
        self.since: float | None = None
        self.lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        g.loket_database_failed = True
        with self.lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.error("database unavailable (%s: %s); answering 503 until it is back",
                  type(exc).__name__, _first_line(exc))

    def answered(self) -> None:
        if self.since is None or g.get("loket_database_failed"):
            return
        with self.lock:
            since, self.since = self.since, None
        if since is not None:
            log.warning("database is back after %.0f s of outage", time.monotonic() - since)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def database_answered() -> None:
    """Called after a request that used the database without a connection error."""
    outage = loket().extras.get("outage")
    if outage is not None:
        outage.answered()


def _is_api() -> bool:
    return request.path.startswith("/api/")


def register_error_handlers(app: Flask) -> None:
    outage = app.extensions["loket"].extras["outage"] = _Outage()

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        if _is_api():
            # Flask-WTF's reason, in the caller's language (the catalogues carry it).
            return api_error(400, "csrf", _(exc.description))
        return render_template("loket/error.html", status=400,
                               message=_("Your form expired or was sent from another site. "
                                         "Please go back, reload the page and try again.")), 400

    @app.errorhandler(413)
    def _too_large(exc: HTTPException) -> Any:
        limit = app.extensions["loket"].config["upload_max_bytes"] // (1024 * 1024)
        if _is_api():
            if g.get("body_too_complex"):
                return api_error(413, "too_complex",
                                 _("The request body has too many JSON objects or items."))
            return api_error(413, "too_large",
                             _("The request is too large: at most %(bytes)s bytes here (files "
                               "up to %(limit)s MB each).", bytes=g.get("body_limit", 0),
                               limit=limit))
        return render_template("loket/error.html", status=413,
                               message=_("The files you sent are too large. Each file may be "
                                         "at most %(limit)s MB.", limit=limit)), 413

    @app.errorhandler(peewee.OperationalError)
    @app.errorhandler(peewee.InterfaceError)
    def _database_unavailable(exc: Exception) -> Any:
        outage.failed(exc)
        if _is_api():
            response = api_error(503, "unavailable",
                                 _("The service is briefly unavailable; try again later."))
        else:
            response = app.make_response((render_template(
                "loket/error.html", status=503,
                message=_("Please try again in a few minutes.")), 503))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(peewee.DataError)
    @app.errorhandler(OverflowError)
    def _out_of_range(exc: Exception) -> Any:
        # A value the database cannot hold (an over-large number, say) that no check
        # caught before the query: the request is bad, not the server.
        log.info("refused a value the database cannot hold: %s", _first_line(exc))
        if _is_api():
            return api_error(400, "bad_request", _("A value in the request is out of range."))
        return render_template("loket/error.html", status=400,
                               message=_("Something in your request is not valid.")), 400

    @app.errorhandler(429)
    def _too_many(exc: HTTPException) -> Any:
        # werkzeug's TooManyRequests carries Retry-After; a custom body must keep it.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() == "retry-after"]
        if _is_api():
            response = api_error(429, "too_many_requests",
                                 _("Too many requests. Try again after Retry-After seconds."))
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
        # Werkzeug's descriptions are English only: the page says its own, translated.
        return render_template("loket/error.html", status=exc.code, message=""), exc.code
