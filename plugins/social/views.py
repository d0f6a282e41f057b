"""The one webhook endpoint of every account: ``/social/<platform>/<slug>``."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, request

from core import csrf_exempt
from core.state import loket

from . import accounts, inbox, platforms
from .platforms.base import Refused

bp = Blueprint("social", __name__, url_prefix="/social")
csrf_exempt(bp)


def _account(platform_name: str, slug: str) -> tuple[Any, Any]:
    platform = platforms.get(platform_name)
    account = accounts.by_slug(platform_name, slug) if platform is not None else None
    if account is None:
        abort(404)
    return platform, account


@bp.get("/<platform_name>/<slug>")
def handshake(platform_name: str, slug: str) -> Any:
    """Meta's subscription check: echo ``hub.challenge`` when the verify token matches."""
    platform, account = _account(platform_name, slug)
    try:
        challenge = platform.handshake(account, request.args)
    except Refused as exc:
        abort(exc.status)
    return Response(challenge, mimetype="text/plain")


@bp.post("/<platform_name>/<slug>")
def webhook(platform_name: str, slug: str) -> Any:
    # The size first, then the signature over the raw bytes, then the JSON: a request
    # that fails any of them stores nothing.
    limit = loket().config["social.max_body_bytes"]  # one look-up, not the plugin's dict
    if (request.content_length or 0) > limit:
        abort(413)
    body = request.get_data(cache=False)
    if len(body) > limit:
        abort(413)
    platform, account = _account(platform_name, slug)
    try:
        platform.verify(account, request.headers, body)
    except Refused as exc:
        abort(exc.status)
    try:
        data = json.loads(body)
    except ValueError:
        abort(400)
    if not isinstance(data, dict):
        abort(400)
    inbox.accept(account, platform.update_key(data, body), body)
    loket().jobs.nudge(inbox.RELAY)
    return Response("ok", mimetype="text/plain")
