"""What every platform adapter provides, the events it parses updates into, and its HTTP."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from core.hookspecs import ChannelSpec, DeliveryError


class OutcomeUnknown(DeliveryError):
    """The request reached the platform but no answer came back: it may have been sent."""


class Refused(Exception):
    """A webhook request that is not the platform's: answered with ``status``, stores nothing."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Media:
    """A file the customer sent, to fetch through the platform's media API."""

    kind: str  # photo, document, voice, audio, video, sticker, image, file
    ref: str  # Telegram file_id, WhatsApp media id, Messenger URL
    filename: str = ""
    mime_type: str = ""
    size: int = 0


@dataclass
class Event:
    """One thing an update says. ``kind``: message, edit, delete, status or read (a
    watermark: everything we sent ``sender`` until ``read_up_to`` was read); all else is
    dropped by the parser."""

    kind: str
    external_id: str  # the message's id, unique per account
    sender: str = ""  # chat id, phone number, page-scoped id
    name: str = ""
    text: str = ""
    media: list[Media] = field(default_factory=list)
    status: str = ""  # for status: delivered, read, failed
    error: str = ""
    read_up_to: Any = None  # for read: a UTC datetime; what we sent the sender until then


@dataclass
class Fetched:
    data: bytes
    filename: str
    mime_type: str


class Platform:
    """One messaging platform. A new platform is a module with a subclass and a ``register``.

    Every call that reaches the platform goes to ``api_url`` (a setting), so tests
    and self-hosted API servers can point elsewhere.
    """

    name: str = ""
    label: str = ""
    max_text: int = 4096
    reply_window = None  # a timedelta where the platform limits free-form replies
    secret_names: tuple[str, ...] = ()  # what ``loket social add`` asks for
    generated: tuple[str, ...] = ()  # secrets made here when not given
    # Outside the reply window the account's approved template goes instead of the text.
    template_outside_window = False

    def channel(self) -> ChannelSpec:
        return ChannelSpec(self.name, self.label, can_push=True, attachments=True,
                           max_text=self.max_text, reply_window=self.reply_window,
                           identity_kind=self.name, order=40)

    def api_url(self) -> str:
        from core.state import loket

        return loket().config.plugin("social")[f"{self.name}_api_url"]

    # -- In -----------------------------------------------------------------------------

    def verify(self, account: Any, headers: Any, body: bytes) -> None:
        """Raise ``Refused`` unless the request is signed for this account."""
        raise NotImplementedError

    def handshake(self, account: Any, args: Any) -> str:
        """Answer the platform's GET subscription check, or raise ``Refused``."""
        raise Refused(405, "this platform makes no GET handshake")

    def update_key(self, data: Any, body: bytes) -> str:
        """The delivery's key: the same update delivered again has the same key."""
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def parse(self, account: Any, data: Any) -> list[Event]:
        raise NotImplementedError

    def fetch_media(self, account: Any, media: Media, max_bytes: int) -> Fetched:
        raise NotImplementedError

    def sender_name(self, account: Any, sender: str) -> str:
        """The name of a sender the update did not name (asked of the platform), or ""."""
        return ""

    # -- Out ----------------------------------------------------------------------------

    def send(self, account: Any, recipient: str, text: str, files: list[Fetched], *,
             window_open: bool, since_customer: Any, idempotency_key: str,
             template_values: list[str] | None = None) -> str:
        """Send text (and files); return the platform's message id or raise DeliveryError.

        ``template_values`` fill the account's template's variables where the platform
        sends a template instead of text (outside its reply window)."""
        raise NotImplementedError

    def check(self, account: Any) -> str:
        """Check the credentials against the platform; a line saying who it is, or raise."""
        raise NotImplementedError

    def register_webhook(self, account: Any, url: str) -> dict[str, Any]:
        raise NotImplementedError(f"{self.label} webhooks are registered in Meta's app dashboard")

    def link(self, account: Any) -> str:
        """Where the help center's button leads: opens the conversation in the app."""
        raise NotImplementedError

    def new_secrets(self) -> dict[str, str]:
        return {name: secrets.token_urlsafe(24) for name in self.generated}


def constant_time_equal(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def hub_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- HTTP -------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: Any  # parsed JSON, or the text when it is not JSON
    headers: Any


def call(method: str, url: str, *, json_body: Any = None, form: dict[str, Any] | None = None,
         files: dict[str, Fetched] | None = None, headers: dict[str, str] | None = None,
         timeout: float = 15, raw: bool = False, max_bytes: int = 0) -> Answer:
    """One HTTP call; a transport failure raises ``DeliveryError`` (temporary)."""
    data = None
    heads = dict(headers or {})
    if files is not None:
        data, content_type = _multipart(form or {}, files)
        heads["Content-Type"] = content_type
    elif json_body is not None:
        data = json.dumps(json_body).encode()
        heads["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=heads)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload, got = response.status, _read(response, max_bytes), response.headers
    except urllib.error.HTTPError as exc:
        status, payload, got = exc.code, exc.read(65536), exc.headers
    except urllib.error.URLError as exc:
        # urllib wraps what fails while connecting and sending: the platform never had
        # the whole request, so nothing was sent.
        raise DeliveryError(f"could not reach the platform: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        # The request went out and the answer did not come back (a timeout, a dropped
        # connection): the platform may have acted on it.
        raise OutcomeUnknown(f"no answer from the platform: {type(exc).__name__}: {exc}") \
            from None
    if raw and 200 <= status < 300:
        return Answer(status, payload, got)
    try:
        body: Any = json.loads(payload or b"null")
    except ValueError:
        body = payload.decode("utf-8", "replace")[:500]
    return Answer(status, body, got)


class TooLarge(Exception):
    pass


def _read(response: Any, max_bytes: int) -> bytes:
    if not max_bytes:
        return response.read()
    data = response.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TooLarge(f"larger than {max_bytes} bytes")
    return data


def _multipart(form: dict[str, Any], files: dict[str, Fetched]) -> tuple[bytes, str]:
    boundary = "loket" + secrets.token_hex(12)
    parts = []
    for name, value in form.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + str(value).encode() + b"\r\n")
    for name, file in files.items():
        filename = file.filename.replace('"', "")
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: {file.mime_type}\r\n\r\n'.encode()
                     + file.data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
