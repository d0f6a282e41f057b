"""``POST /email/inbound``: a raw MIME message from a mail provider's inbound forwarding.

The provider authenticates with ``Authorization: Bearer <token>`` (the
``inbound_token`` setting, compared in constant time). The answer is 202 only
after the mail is stored (or was already: 200 for a duplicate), and 503 when it
could not be, so that the provider sends it again. Rate limits (``limits``): per
token once it is right, per client address while it is not; over either, 429 with
``Retry-After``.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, jsonify, request

from core import csrf_exempt
from core.state import loket

from . import limits
from .ingest import PLUGIN, ingest_raw

bp = Blueprint("email_intake", __name__, template_folder="templates")
csrf_exempt(bp)

ACCEPTED_TYPES = ("message/rfc822", "application/octet-stream", "text/plain")


def _too_many(wait: int, why: str) -> tuple[object, int]:
    response = jsonify(error=why)
    response.headers["Retry-After"] = str(wait)
    return response, 429


@bp.post("/email/inbound")
def inbound() -> tuple[object, int]:
    settings = loket().config.plugin(PLUGIN)
    token = settings["inbound_token"]
    if not token:
        abort(404)  # the endpoint is off until a token is set
    wait = limits.failures_exhausted()
    if wait:
        return _too_many(wait, "too many attempts without the right token from this address")
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer ") or not given[7:].strip():
        limits.count_failure()
        return jsonify(error="a bearer token is required"), 401
    if not hmac.compare_digest(given[7:].strip().encode(), token.encode()):
        limits.count_failure()
        return jsonify(error="wrong token"), 403
    wait = limits.count_accepted(token)
    if wait:
        return _too_many(wait, "this token posted too many mails; send it again later")
    limit = settings["max_message_bytes"]
    if request.content_length is not None and limit and request.content_length > limit:
        return jsonify(error=f"the message is larger than {limit} bytes"), 413
    if request.mimetype not in ACCEPTED_TYPES:
        return jsonify(error="send the raw message as message/rfc822"), 415
    raw = request.stream.read(limit + 1) if limit else request.get_data()
    if limit and len(raw) > limit:
        return jsonify(error=f"the message is larger than {limit} bytes"), 413
    if not raw.strip():
        return jsonify(error="the body is empty"), 400
    result = ingest_raw(raw, via="http")
    body = {"outcome": result.outcome, "ticket": result.ticket_number, "reason": result.reason}
    if not result.stored:
        response = jsonify(body)
        response.headers["Retry-After"] = "60"
        return response, 503
    return jsonify(body), 200 if result.outcome == "duplicate" else 202
