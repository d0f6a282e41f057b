"""A stand-in channel plugin, written only against core's published plugin API.

It is what "Writing a channel plugin" in the README describes, whole: two
channels (``loopback``, a messenger that writes to a chat id, and
``loopmail``, which writes to email addresses), a signed webhook in, and
``deliver_message`` out over real HTTP to a stand-in platform
(``tests/standin.py``) that honours an ``Idempotency-Key`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any

from flask import Blueprint, abort, jsonify, request

from core import csrf_exempt, hookimpl
from core.hookspecs import ChannelSpec, DeliveryError, DeliveryResult
from core.raw import RawOriginal
from core.services import tickets
from core.settings import Setting
from core.state import loket

NAME = __name__  # registered under its module name: settings are tests.loopback.*
MAX_BODY = 64 * 1024


def _url(value: object) -> str:
    return str(value or "").rstrip("/")


@hookimpl
def plugin_settings() -> list[Setting]:
    return [
        Setting("api_url", "", _url, "Where the stand-in platform listens."),
        Setting("secret", "loopback-secret", str, "Signs webhook posts.", secret=True),
    ]


def settings() -> dict[str, Any]:
    return loket().config.plugin(NAME)


@hookimpl
def register_channels() -> list[ChannelSpec]:
    return [
        ChannelSpec("loopback", "Loopback", can_push=True, max_text=4096,
                    identity_kind="loopback"),
        ChannelSpec("loopmail", "Loopback mail", can_push=True, identity_kind="email"),
    ]


bp = Blueprint("loopback", __name__, url_prefix="/loopback")
csrf_exempt(bp)


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@bp.post("/webhook")
def webhook() -> Any:
    # Size first, then the signature over the raw bytes, then parse: nothing stored before.
    if (request.content_length or 0) > MAX_BODY:
        abort(413)
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY:
        abort(413)
    given = request.headers.get("X-Loopback-Signature", "")
    if not hmac.compare_digest(given.encode(), sign(body, settings()["secret"]).encode()):
        abort(403)
    try:
        update = json.loads(body)
        kind = update["kind"]
    except (ValueError, KeyError, TypeError):
        abort(400)
    if kind == "receipt":
        message = tickets.record_receipt("loopback", str(update["message_id"]),
                                         str(update["state"]), error=update.get("error", ""))
        return jsonify(known=message is not None)
    if kind != "message":
        return jsonify(ignored=kind)
    result = tickets.receive_message(
        channel="loopback",
        identity=tickets.Identity("loopback", str(update["chat_id"]),
                                  name=str(update.get("name", ""))),
        text=str(update.get("text", "")), external_id=str(update["update_id"]),
        continue_open=True, language=str(update.get("language", "en")),
        raw=RawOriginal(body, "application/json"))
    return jsonify(ticket=result.ticket.id, message=result.message.id,
                   duplicate=result.duplicate, created=result.created)


@hookimpl
def register_blueprints(app: Any) -> list[Blueprint]:
    return [bp]


@hookimpl
def deliver_message(ticket: Any, message: Any, recipient: str,
                    idempotency_key: str) -> DeliveryResult:
    payload = json.dumps({"channel": message.channel, "to": recipient,
                          "subject": message.subject, "text": message.body_text,
                          "ticket": ticket.id}).encode()
    req = urllib.request.Request(
        settings()["api_url"] + "/send", data=payload, method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        reason = exc.read().decode(errors="replace")[:300]
        if exc.code == 429 or exc.code >= 500:
            retry_after = exc.headers.get("Retry-After")
            raise DeliveryError(f"platform busy ({exc.code}): {reason}",
                                retry_after=float(retry_after) if retry_after else None) from None
        raise DeliveryError(f"refused ({exc.code}): {reason}", permanent=True) from None
    return DeliveryResult(state="sent", external_id=answer["id"])
