"""WhatsApp Cloud API numbers: signed webhooks, /messages, the media API, templates."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import quote

from core.hookspecs import DeliveryError
from core.i18n import _

from .base import Event, Fetched, Media, TooLarge, call
from .graph import MetaPlatform, raise_for

_MEDIA = ("image", "video", "document", "audio", "sticker")
_STATES = {"sent": "sent", "delivered": "delivered", "read": "read", "played": "read",
           "failed": "failed"}


class WhatsApp(MetaPlatform):
    name = "whatsapp"
    label = "WhatsApp"
    max_text = 4096
    reply_window = dt.timedelta(hours=24)
    template_outside_window = True

    def parse(self, account: Any, data: Any) -> list[Event]:
        events: list[Event] = []
        for entry in data.get("entry") or []:
            for change in entry.get("changes") or []:
                if change.get("field") != "messages":
                    continue  # echoes of our own messages, account and template news
                value = change.get("value") or {}
                names = {c.get("wa_id"): (c.get("profile") or {}).get("name", "")
                         for c in value.get("contacts") or []}
                for message in value.get("messages") or []:
                    event = _message_event(account, message, names)
                    if event is not None:
                        events.append(event)
                for status in value.get("statuses") or []:
                    state = _STATES.get(status.get("status"))
                    if state and status.get("id"):
                        errors = status.get("errors") or [{}]
                        error = (f"WhatsApp {errors[0].get('code')}: {errors[0].get('title')}"
                                 if state == "failed" else "")
                        events.append(Event("status", f"{account.id}:{status['id']}",
                                            status=state, error=error))
        return events

    def fetch_media(self, account: Any, media: Media, max_bytes: int) -> Fetched:
        info = call("GET", f"{self.api_url()}/{quote(media.ref)}", headers=self.token(account))
        body = raise_for(info, "WhatsApp")
        if int(body.get("file_size") or 0) > max_bytes:
            raise TooLarge(f"larger than {max_bytes} bytes")
        file = call("GET", body["url"], headers=self.token(account), raw=True,
                    max_bytes=max_bytes)
        if file.status != 200:
            raise DeliveryError(f"WhatsApp answered {file.status} for the media file")
        mime = body.get("mime_type") or media.mime_type
        return Fetched(file.body, media.filename or f"{media.kind}-{media.ref}", mime)

    def send(self, account: Any, recipient: str, text: str, files: list[Fetched], *,
             window_open: bool, since_customer: Any, idempotency_key: str,
             template_values: list[str] | None = None) -> str:
        url = f"{self.api_url()}/{account.external_id}/messages"
        base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": recipient}
        if not window_open:
            if not account.template_name:
                raise DeliveryError(
                    "More than 24 hours since the customer last wrote, and this WhatsApp "
                    "account has no approved template configured to send instead.",
                    permanent=True)
            template: dict[str, Any] = {"name": account.template_name,
                                        "language": {"code": account.template_language or "en"}}
            if template_values:
                template["components"] = [{"type": "body", "parameters": [
                    {"type": "text", "text": value} for value in template_values]}]
            payload = dict(base, type="template", template=template)
            return self._sent(account, call("POST", url, json_body=payload,
                                            headers=self.token(account)))
        last = ""
        if text:
            last = self._sent(account, call("POST", url, headers=self.token(account),
                                            json_body=dict(base, type="text",
                                                           text={"body": text})))
        for file in files:
            upload = call("POST", f"{self.api_url()}/{account.external_id}/media",
                          form={"messaging_product": "whatsapp", "type": file.mime_type},
                          files={"file": file}, headers=self.token(account))
            media_id = raise_for(upload, "WhatsApp")["id"]
            kind = _kind_of(file.mime_type)
            item: dict[str, Any] = {"id": media_id}
            if kind == "document":
                item["filename"] = file.filename
            last = self._sent(account, call("POST", url, headers=self.token(account),
                                            json_body=dict(base, type=kind, **{kind: item})))
        return last

    def _sent(self, account: Any, answer: Any) -> str:
        body = raise_for(answer, "WhatsApp")
        return f"{account.id}:{body['messages'][0]['id']}"

    def check(self, account: Any) -> str:
        answer = call("GET", f"{self.api_url()}/{account.external_id}"
                             "?fields=display_phone_number,verified_name",
                      headers=self.token(account))
        body = raise_for(answer, "WhatsApp")
        return f"{body.get('verified_name', '?')} ({body.get('display_phone_number', '?')})"

    def link(self, account: Any) -> str:
        return f"https://wa.me/{re.sub(r'[^0-9]', '', account.handle)}"


def _message_event(account: Any, message: dict[str, Any],
                   names: dict[str, str]) -> Event | None:
    kind = message.get("type")
    sender = str(message.get("from") or "")
    if not sender or not message.get("id"):
        return None
    name = names.get(sender, "")
    external_id = f"{account.id}:{message['id']}"
    if kind in ("reaction", "system", "ephemeral", "request_welcome"):
        return None  # reactions and number changes are not a customer's words
    if kind == "revoke":
        original = (message.get("revoke") or {}).get("original_message_id", "")
        return Event("delete", f"{account.id}:{original}", sender, name)
    if kind == "edit":
        edit = message.get("edit") or {}
        inner = edit.get("message") or {}
        return Event("edit", f"{account.id}:{edit.get('original_message_id', '')}", sender,
                     name, _text_of(inner) or "(edited; the new version has no text)")
    media = []
    item = message.get(kind) if kind in _MEDIA else None
    if isinstance(item, dict) and item.get("id"):
        media.append(Media(kind, str(item["id"]), item.get("filename", ""),
                           item.get("mime_type", "")))
    text = _text_of(message)
    if not text and not media:
        # The customer wrote something WhatsApp would not pass on (or a kind this desk
        # does not read): a message still says so rather than nothing.
        text = _("(The customer sent a kind of message WhatsApp does not pass on.)")
    return Event("message", external_id, sender, name, text, media)


def _text_of(message: dict[str, Any]) -> str:
    kind = message.get("type")
    if kind == "text":
        return str((message.get("text") or {}).get("body", ""))
    if kind in _MEDIA:
        return str((message.get(kind) or {}).get("caption", ""))
    if kind == "location":
        loc = message.get("location") or {}
        place = " ".join(filter(None, [loc.get("name"), loc.get("address")]))
        return (_("Location: %(latitude)s, %(longitude)s", latitude=loc.get("latitude"),
                  longitude=loc.get("longitude")) + f" {place}").strip()
    if kind == "contacts":
        lines = []
        for contact in message.get("contacts") or []:
            phones = ", ".join(p.get("phone", "") for p in contact.get("phones") or [])
            name = (contact.get("name") or {}).get("formatted_name", "")
            lines.append(_("Shared contact: %(contact)s", contact=f"{name} {phones}".strip()))
        return "\n".join(lines)
    if kind == "button":
        return str((message.get("button") or {}).get("text", ""))
    if kind == "interactive":
        reply = message.get("interactive") or {}
        chosen = reply.get("button_reply") or reply.get("list_reply") or {}
        return str(chosen.get("title", ""))
    if kind == "order":
        items = (message.get("order") or {}).get("product_items") or []
        return f"Order of {len(items)} item(s)"
    return ""


def _kind_of(mime_type: str) -> str:
    """The WhatsApp message type a file goes out as: stickers and voice notes as themselves."""
    if mime_type == "image/webp":
        return "sticker"
    if mime_type in ("image/jpeg", "image/png"):
        return "image"
    if mime_type in ("audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr"):
        return "audio"
    if mime_type in ("video/mp4", "video/3gpp"):
        return "video"
    return "document"


def register() -> WhatsApp:
    return WhatsApp()
