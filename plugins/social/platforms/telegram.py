"""Telegram bots: Bot API webhooks with a secret token, sendMessage/sendDocument, getFile."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from core.hookspecs import DeliveryError
from core.i18n import _

from .. import vault
from .base import Event, Fetched, Media, Platform, Refused, TooLarge, call, constant_time_equal

# Updates that carry a customer's message; everything else (inline queries, button
# presses, channel posts, membership changes) is acknowledged and dropped.
_MESSAGE_KEYS = ("message", "edited_message")
_MEDIA = ("document", "voice", "audio", "video", "video_note", "animation", "sticker")


class Telegram(Platform):
    name = "telegram"
    label = "Telegram"
    max_text = 4096
    secret_names = ("token",)
    generated = ("webhook_secret",)

    def _bot(self, account: Any, method: str) -> str:
        return f"{self.api_url()}/bot{vault.secret(account, 'token')}/{method}"

    def verify(self, account: Any, headers: Any, body: bytes) -> None:
        given = headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not constant_time_equal(given, vault.secret(account, "webhook_secret")):
            raise Refused(403, "wrong or missing secret token")

    def update_key(self, data: Any, body: bytes) -> str:
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if isinstance(update_id, int):
            return f"update:{update_id}"
        return super().update_key(data, body)

    def parse(self, account: Any, data: Any) -> list[Event]:
        key = next((k for k in _MESSAGE_KEYS if isinstance(data.get(k), dict)), None)
        if key is None:
            return []
        message = data[key]
        chat = message.get("chat") or {}
        if chat.get("type", "private") != "private" or "id" not in chat:
            return []  # groups and channels: not a support conversation
        sender = message.get("from") or chat
        name = " ".join(filter(None, [sender.get("first_name"), sender.get("last_name")]))
        external_id = f"{account.id}:{chat['id']}:{message.get('message_id')}"
        text = str(message.get("text") or message.get("caption") or "")
        if key == "edited_message":
            return [Event("edit", external_id, str(chat["id"]), name, text)]
        media = _media(message)
        text = "\n".join(filter(None, [text, _described(message)]))
        if not text and not media:
            return []  # a service message (pinned, joined, new photo...)
        return [Event("message", external_id, str(chat["id"]), name, text, media)]

    def fetch_media(self, account: Any, media: Media, max_bytes: int) -> Fetched:
        if media.size and media.size > max_bytes:
            raise TooLarge(f"larger than {max_bytes} bytes")
        answer = call("GET", self._bot(account, "getFile") + "?file_id=" + quote(media.ref))
        _raise_for(answer)
        path = answer.body["result"]["file_path"]
        token = vault.secret(account, "token")
        file = call("GET", f"{self.api_url()}/file/bot{token}/{path}", raw=True,
                    max_bytes=max_bytes)
        if file.status != 200:
            raise DeliveryError(f"Telegram answered {file.status} for the file")
        filename = media.filename or path.rsplit("/", 1)[-1]
        return Fetched(file.body, filename, media.mime_type)

    def send(self, account: Any, recipient: str, text: str, files: list[Fetched], *,
             window_open: bool, since_customer: Any, idempotency_key: str,
             template_values: list[str] | None = None) -> str:
        last = None
        if text:
            answer = call("POST", self._bot(account, "sendMessage"),
                          json_body={"chat_id": recipient, "text": text})
            last = _raise_for(answer)
        for file in files:
            method, field = _SEND_AS.get(file.mime_type, ("sendDocument", "document"))
            answer = call("POST", self._bot(account, method),
                          form={"chat_id": recipient}, files={field: file})
            last = _raise_for(answer)
        message_id = (last or {}).get("result", {}).get("message_id")
        return f"{account.id}:{recipient}:{message_id}"

    def check(self, account: Any) -> str:
        answer = call("GET", self._bot(account, "getMe"))
        result = _raise_for(answer)["result"]
        return f"@{result.get('username', '?')} (bot id {result.get('id')})"

    def register_webhook(self, account: Any, url: str) -> dict[str, Any]:
        answer = call("POST", self._bot(account, "setWebhook"), json_body={
            "url": url, "secret_token": vault.secret(account, "webhook_secret"),
            "allowed_updates": list(_MESSAGE_KEYS)})
        _raise_for(answer)
        return answer.body

    def link(self, account: Any) -> str:
        return f"https://t.me/{account.handle}"


def _media(message: dict[str, Any]) -> list[Media]:
    found = []
    photos = message.get("photo")
    if isinstance(photos, list) and photos:
        biggest = max(photos, key=lambda p: p.get("file_size") or p.get("width", 0))
        found.append(Media("photo", biggest["file_id"], f"photo-{message.get('message_id')}.jpg",
                           "image/jpeg", biggest.get("file_size") or 0))
    for kind in _MEDIA:
        item = message.get(kind)
        if isinstance(item, dict) and item.get("file_id"):
            found.append(Media(kind, item["file_id"], item.get("file_name", ""),
                               item.get("mime_type", ""), item.get("file_size") or 0))
    return found


def _described(message: dict[str, Any]) -> str:
    """What a location or a shared contact says, as text an agent can read."""
    location = message.get("location")
    if isinstance(location, dict):
        return _("Location: %(latitude)s, %(longitude)s", latitude=location.get("latitude"),
                 longitude=location.get("longitude"))
    contact = message.get("contact")
    if isinstance(contact, dict):
        name = " ".join(filter(None, [contact.get("first_name"), contact.get("last_name")]))
        return _("Shared contact: %(contact)s",
                 contact=f"{name} {contact.get('phone_number', '')}".strip())
    return ""


# A sticker, a voice note or a song goes out as one (shown as such in the chat); any other
# file as a document, which keeps its name and is not recompressed.
_SEND_AS = {"image/webp": ("sendSticker", "sticker"), "audio/ogg": ("sendVoice", "voice"),
            "audio/mpeg": ("sendAudio", "audio"), "audio/mp4": ("sendAudio", "audio"),
            "audio/x-m4a": ("sendAudio", "audio")}


def _raise_for(answer: Any) -> dict[str, Any]:
    """The Bot API's answer, or the DeliveryError its error means."""
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status == 200 and body.get("ok"):
        return body
    code = body.get("error_code", answer.status)
    reason = f"Telegram {code}: {body.get('description') or answer.body}"
    if code == 429:
        retry_after = (body.get("parameters") or {}).get("retry_after")
        raise DeliveryError(reason, retry_after=float(retry_after) if retry_after else None)
    if code in (400, 401, 403, 404):
        # Blocked by the user (403), an invalid token (401), a chat that is gone: retrying
        # cannot help.
        raise DeliveryError(reason, permanent=True)
    raise DeliveryError(reason)


def register() -> Platform:
    return Telegram()
