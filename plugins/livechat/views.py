"""The chat page on the help center, and what the embeddable widget loads from the desk."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, jsonify, make_response, render_template, request
from flask_babel import force_locale

from core import csrf_exempt
from core.i18n import _
from core.state import loket

bp = Blueprint("livechat", __name__, url_prefix="/chat", template_folder="templates",
               static_folder="static", static_url_path="/static")


def settings() -> dict[str, Any]:
    return loket().config.plugin("livechat")


def socket_url() -> str:
    """Where browsers open the socket: the setting, else the public URL's host on the bind port."""
    if settings()["socket_url"]:
        return settings()["socket_url"]
    public = urlsplit(loket().config["public_url"])
    port = settings()["bind"].rpartition(":")[2]
    scheme = "wss" if public.scheme == "https" else "ws"
    return f"{scheme}://{public.hostname}:{port}/"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins() -> set[str]:
    return {_origin(loket().config["public_url"])} | {
        _origin(o) for o in settings()["allowed_origins"]}


def strings() -> dict[str, str]:
    """Every text the widget shows, in the current locale (the same catalogue as the pages)."""
    return {
        "title": _("Chat with us"), "open": _("Chat with us"), "close": _("Close the chat"),
        "name": _("Your name"), "email": _("Email (optional)"), "start": _("Start chatting"),
        "message": _("Your message"), "placeholder": _("Type your message…"),
        "send": _("Send"), "person": _("Talk to a person"), "yes": _("Yes, that solved it"),
        "no": _("No, it did not"), "you": _("You"), "bot": _("Assistant"), "agent": _("Agent"),
        "desk": _("Help desk"), "sending": _("Sending…"), "sent": _("Sent"),
        "typing": _("Someone is typing…"), "connecting": _("Connecting…"),
        "reconnecting": _("Connection lost. Reconnecting…"),
        "waiting": _("Waiting for a person from our team…"),
        "with_agent": _("You are chatting with %(name)s.", name="%(name)s"),
        "offline": _("Nobody is available right now. Leave your email and we will answer by "
                     "email."),
        "leave_email": _("Your email address"), "send_email": _("Send my email address"),
        "closed": _("This chat has ended. Write again to reopen it."), "end": _("End chat"),
        "rate": _("How was this chat?"), "rate_score": _("%(score)s out of 5", score="%(score)s"),
        "rated": _("Thank you for your rating."),
        "transcript": _("Email me this chat"), "send_transcript": _("Send the transcript"),
        "seen": _("Seen"), "attach": _("Send a file"), "agent_typing": _("%(name)s is typing…", name="%(name)s"),
        "error": _("Something went wrong. Please try again."),
        "error_rate": _("You are sending messages too quickly. Please wait a moment."),
        "error_too_long": _("That message is too long."),
        "error_email": _("Please enter a valid email address."),
    }


@bp.get("/")
def start() -> Any:
    from flask_babel import get_locale

    lang = str(get_locale() or "en").replace("_", "-")
    response = render_template("livechat/chat.html", user_type=request.args.get("user_type", ""),
                               category=request.args.get("category", ""), lang=lang)
    # The desk's strict policy, plus the socket's address: the page opens a WebSocket there.
    return response, 200, {"Content-Security-Policy": _policy_with_socket()}


def _policy_with_socket() -> str:
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"font-src 'self'; connect-src 'self' {_origin(socket_url())}; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@bp.get("/config.json")
def config() -> Any:
    """What the widget needs: the socket's address and its texts in the visitor's language.

    Any site may embed the widget, but only allowed origins get an answer their
    page can read (CORS); the socket checks the same list again.
    """
    from .desk import language

    lang = language(request.args.get("lang"))
    with force_locale(lang):
        body = {"socket": socket_url(), "lang": lang, "strings": strings(),
                "max_message": settings()["max_message"]}
    response = jsonify(body)
    origin = request.headers.get("Origin")
    if origin and _origin(origin) in allowed_origins():
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# -- Files from the widget --------------------------------------------------------------------

TOKEN_HEADER = "X-Loket-Chat-Token"


def _cors(response: Any) -> Any:
    origin = request.headers.get("Origin")
    if origin and _origin(origin) in allowed_origins():
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = TOKEN_HEADER
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Vary"] = "Origin"
    return response


def _refuse(status: int, code: str, text: str) -> Any:
    return _cors(jsonify({"type": "error", "code": code, "text": text})), status


@bp.route("/upload", methods=("POST", "OPTIONS"))
@csrf_exempt
def upload() -> Any:
    """A visitor sends a file: multipart ``file`` and ``client_id``, the visitor's signed
    token in the X-Loket-Chat-Token header.

    No CSRF token: the header is what authorises, and no other site's page can set it
    without the CORS preflight, which only allowed origins pass. The desk's attachment
    rules apply (size, sniffed type), then ``livechat.files_per_chat``; uploads count
    against the help center's ticket-opening limits per address. The file is stored on
    the chat's ticket and reaches the visitor's sockets like any message of theirs.
    """
    from core.attachments import AttachmentRejected, Storage, rejection_message

    from . import bus, desk, tokens

    origin = request.headers.get("Origin")
    if origin is not None and _origin(origin) not in allowed_origins():
        abort(403)
    if request.method == "OPTIONS":
        return _cors(make_response("", 204))
    lang = desk.language(request.form.get("lang"))
    with force_locale(lang):
        visitor = tokens.visitor_of(request.headers.get(TOKEN_HEADER, ""))
        if visitor is None:
            return _refuse(401, "token", _("Something went wrong. Please try again."))
        file = request.files.get("file")
        client_id = request.form.get("client_id", "")
        if file is None or not client_id or len(client_id) > 64:
            return _refuse(400, "invalid", _("Something went wrong. Please try again."))
        if desk.files_sent(visitor) >= settings()["files_per_chat"]:
            return _refuse(429, "files", _("You cannot send more files in this chat."))
        config = loket().config
        try:
            stored = Storage(config["attachments_path"]).save(
                file.stream, file.filename or "", max_bytes=config["upload_max_bytes"],
                allowed_types=config["upload_allowed_types"])
        except AttachmentRejected as exc:
            status = 413 if exc.reason == "too_large" else 415
            return _refuse(status, exc.reason,
                           rejection_message(exc, file.filename or "", config["upload_max_bytes"],
                                             config["upload_allowed_types"]))
        outcome = desk.post(visitor, client_id, stored.filename,
                            name=request.form.get("name", "")[:120], lang=lang,
                            attachments=[stored])
    for event in outcome.events:
        bus.publish(visitor, event)  # with Redis; without, the chat process reads it
    return _cors(jsonify({"ack": outcome.ack, "events": outcome.events}))
