"""Facebook Messenger pages: signed webhooks, the Send API with message tags."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote, urlparse

from core.hookspecs import DeliveryError
from core.i18n import _

from .. import vault
from .base import Event, Fetched, Media, call
from .graph import MetaPlatform, raise_for

# Messenger's human-agent tag lets a person answer for 7 days after the customer wrote.
HUMAN_AGENT_WINDOW = dt.timedelta(days=7)
_KINDS = {"image": "image", "video": "video", "audio": "audio", "file": "file"}


class Messenger(MetaPlatform):
    name = "messenger"
    label = "Messenger"
    max_text = 2000
    reply_window = dt.timedelta(hours=24)

    def parse(self, account: Any, data: Any) -> list[Event]:
        events: list[Event] = []
        for entry in data.get("entry") or []:
            for item in entry.get("messaging") or []:
                sender = str((item.get("sender") or {}).get("id") or "")
                message = item.get("message")
                if isinstance(message, dict):
                    if message.get("is_echo") or not sender or not message.get("mid"):
                        continue  # our own message, echoed back
                    event = _message_event(account, sender, message)
                    if event is not None:
                        events.append(event)
                elif isinstance(item.get("message_edit"), dict):
                    edit = item["message_edit"]
                    events.append(Event("edit", f"{account.id}:{edit.get('mid')}", sender,
                                        text=str(edit.get("text", ""))))
                elif isinstance(item.get("delivery"), dict):
                    for mid in item["delivery"].get("mids") or []:
                        events.append(Event("status", f"{account.id}:{mid}", status="delivered"))
                elif isinstance(item.get("read"), dict) and sender:
                    watermark = item["read"].get("watermark")
                    if isinstance(watermark, int) and watermark > 0:
                        until = dt.datetime.fromtimestamp(watermark / 1000, dt.UTC)
                        events.append(Event("read", "", sender,
                                            read_up_to=until.replace(tzinfo=None)))
                # postbacks, optins, referrals, reactions: nothing to store
        return events

    def fetch_media(self, account: Any, media: Media, max_bytes: int) -> Fetched:
        if urlparse(media.ref).scheme not in ("http", "https"):
            raise DeliveryError(f"not a web address: {media.ref[:80]}", permanent=True)
        file = call("GET", media.ref, raw=True, max_bytes=max_bytes)
        if file.status != 200:
            raise DeliveryError(f"Messenger's file server answered {file.status}")
        name = media.filename or urlparse(media.ref).path.rsplit("/", 1)[-1] or media.kind
        return Fetched(file.body, name, file.headers.get("Content-Type", ""))

    def sender_name(self, account: Any, sender: str) -> str:
        """The Graph API's user profile for a page-scoped id: Messenger's webhooks name
        nobody. Asked by the worker, once per new contact."""
        answer = call("GET", f"{self.api_url()}/{quote(sender)}?fields=first_name,last_name",
                      headers=self.token(account), timeout=10)
        body = raise_for(answer, "Messenger")
        return " ".join(str(body.get(k) or "").strip() for k in ("first_name", "last_name")
                        if body.get(k)).strip()

    def send(self, account: Any, recipient: str, text: str, files: list[Fetched], *,
             window_open: bool, since_customer: Any, idempotency_key: str,
             template_values: list[str] | None = None) -> str:
        if window_open:
            kind: dict[str, Any] = {"messaging_type": "RESPONSE"}
        elif since_customer is not None and since_customer <= HUMAN_AGENT_WINDOW:
            kind = {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        else:
            raise DeliveryError("More than 7 days since the customer last wrote: Messenger "
                                "allows no reply now; ask them to write again.", permanent=True)
        url = (f"{self.api_url()}/me/messages?access_token="
               f"{quote(vault.secret(account, 'token'))}")
        last = ""
        if text:
            last = self._sent(account, call("POST", url, json_body=dict(
                kind, recipient={"id": recipient}, message={"text": text})))
        for file in files:
            family = file.mime_type.split("/", 1)[0]
            attachment = {"attachment": {"type": family if family in ("image", "audio", "video")
                                         else "file", "payload": {"is_reusable": False}}}
            form = dict(kind, recipient=json.dumps({"id": recipient}),
                        message=json.dumps(attachment))
            last = self._sent(account, call("POST", url, form=form, files={"filedata": file}))
        return last

    def _sent(self, account: Any, answer: Any) -> str:
        return f"{account.id}:{raise_for(answer, 'Messenger')['message_id']}"

    def check(self, account: Any) -> str:
        answer = call("GET", f"{self.api_url()}/me?fields=id,name",
                      headers=self.token(account))
        body = raise_for(answer, "Messenger")
        return f"{body.get('name', '?')} (page id {body.get('id')})"

    def link(self, account: Any) -> str:
        return f"https://m.me/{account.handle}"


def _message_event(account: Any, sender: str, message: dict[str, Any]) -> Event | None:
    text = str(message.get("text") or "")
    media = []
    notes = []
    for attachment in message.get("attachments") or []:
        kind = attachment.get("type")
        payload = attachment.get("payload") or {}
        if kind in _KINDS and payload.get("url"):
            media.append(Media(_KINDS[kind], str(payload["url"])))
        elif kind == "location":
            where = payload.get("coordinates") or {}
            notes.append(_("Location: %(latitude)s, %(longitude)s", latitude=where.get('lat'), longitude=where.get('long')))
        elif kind == "fallback":
            notes.append(_("Shared link: %(url)s",
                           url=payload.get("url") or attachment.get("url", "")))
    text = "\n".join(filter(None, [text, *notes]))
    if not text and not media:
        return None
    return Event("message", f"{account.id}:{message['mid']}", sender, "", text, media)


def register() -> Messenger:
    return Messenger()
