"""Files in the chat: the visitor uploads over HTTP with their signed token, the desk's
attachment rules apply, files are links to downloads (never shown inline), both ways."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from core import db
from core.models import Attachment, Message
from plugins.livechat import desk
from plugins.livechat.models import Chat
from plugins.livechat.tokens import new_visitor
from tests.factories import build_desk
from tests.livechat_support import ORIGIN, ChatProcess, Visitor, in_app, running_chat
from tests.test_admin_helpers import post, sign_in

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 200


@pytest.fixture
def desk_app(make_app: Any) -> Any:
    app = make_app(plugins=["livechat"], upload_max_bytes=4096,
                   **{"livechat.files_per_chat": 2})
    with app.app_context(), db.connection():
        app.desk = build_desk()
    return app


@pytest.fixture
def chat(desk_app: Any, db_url: str, tmp_path: Any) -> Iterator[ChatProcess]:
    yield from running_chat(desk_app, db_url, tmp_path)


def _upload(client: Any, token: str | None, data: bytes = PNG, name: str = "receipt.png",
            client_id: str = "f-1", origin: str = ORIGIN) -> Any:
    headers = {"Origin": origin}
    if token is not None:
        headers["X-Loket-Chat-Token"] = token
    return client.post("/chat/upload", headers=headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), name), "client_id": client_id,
                             "lang": "en", "name": "Sari"})


def test_a_visitors_file_reaches_the_ticket_the_socket_and_downloads_only(
        desk_app: Any, chat: ChatProcess) -> None:
    visitor = Visitor(chat.url, name="Sari")
    visitor.say("I paid, here is the receipt")
    client = desk_app.test_client()
    response = _upload(client, visitor.token)
    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    ack = response.json["ack"]
    # The chat process finds it and sends it to the visitor's socket, with its link.
    event = visitor.message(lambda e: e["id"] == ack["id"])
    assert event["author"] == "visitor" and event["client_id"] == "f-1"
    (file,) = event["files"]
    assert file["name"] == "receipt.png" and file["size"] == len(PNG)
    path = file["url"].removeprefix("http://desk.test")
    download = client.get(path)
    assert download.status_code == 200 and download.data == PNG
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in download.headers["Content-Security-Policy"]

    def stored() -> tuple[int, int]:
        message = Message.get_by_id(ack["id"])
        attachment = Attachment.get(Attachment.message == message.id)
        return message.ticket_id, attachment.ticket_id

    ticket_id, attachment_ticket = in_app(desk_app, stored)
    assert ticket_id == attachment_ticket
    # The same client id again is one message.
    again = _upload(client, visitor.token)
    assert again.json["ack"]["id"] == ack["id"]
    visitor.close()


def test_uploads_are_refused_without_a_valid_token_from_foreign_sites_and_over_the_rules(
        desk_app: Any, chat: ChatProcess) -> None:
    client = desk_app.test_client()
    visitor = Visitor(chat.url)
    visitor.say("hello")
    assert _upload(client, None).status_code == 401
    assert _upload(client, visitor.token + "x").status_code == 401
    _other, other_token = in_app(desk_app, new_visitor)
    assert _upload(client, visitor.token, origin="https://evil.example").status_code == 403
    html = _upload(client, visitor.token, data=b"<html><script>alert(1)</script></html>",
                   name="page.html", client_id="f-html")
    assert html.status_code == 415 and html.json["code"] == "type_not_allowed"
    big = _upload(client, visitor.token, data=PNG + b"\x00" * 5000, client_id="f-big")
    assert big.status_code == 413
    # Two files per chat here, then refused.
    assert _upload(client, visitor.token, client_id="f-a").status_code == 200
    assert _upload(client, visitor.token, client_id="f-b").status_code == 200
    third = _upload(client, visitor.token, client_id="f-c")
    assert third.status_code == 429 and third.json["code"] == "files"
    # Another visitor's upload lands in their own chat, never in this one.
    assert _upload(client, other_token, client_id="f-o").status_code == 200
    counts = in_app(desk_app, lambda: sorted(
        Attachment.select().where(Attachment.ticket == t).count()
        for t in {c.ticket_id for c in Chat.select()}))
    assert counts == [1, 2]
    visitor.close()


def test_an_agents_file_reaches_the_visitor_as_a_download_link(
        desk_app: Any, chat: ChatProcess) -> None:
    visitor = Visitor(chat.url, name="Sari")
    ack = visitor.say("Please send me the form")
    row = in_app(desk_app, lambda: Chat.get(Chat.ticket == Message.get_by_id(ack["id"]).ticket_id))
    in_app(desk_app, lambda: desk.accept(Chat.get_by_id(row.id), desk_app.desk.agent))
    agent = desk_app.test_client()
    sign_in(agent, "agent@desk.test")
    url = f"/admin/livechat_console/{row.id}"
    response = post(agent, url + "/act", {"action": "reply", "text": "Here it is",
                                          "files": (io.BytesIO(PNG), "form.png")},
                    token_from=url)
    assert response.status_code == 302
    event = visitor.message(lambda e: e["text"] == "Here it is")
    (file,) = event["files"]
    assert file["name"] == "form.png"
    assert desk_app.test_client().get(file["url"].removeprefix("http://desk.test")).data == PNG
    visitor.close()
