"""Telegram: the Bot API docs' updates posted to the real webhook, replies out to a stand-in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from core.models import Attachment, ContactIdentity, Delivery, Message, Ticket, TicketEvent

from .social_standin import Desk, StandIn, corpus_dir, make_desk, post

SECRET = "tg-webhook-secret-for-tests"
TOKEN = "123456:TEST-TOKEN"


def sent_ok(platform: StandIn) -> Any:
    return lambda seen: (200, {"ok": True, "result": {
        "message_id": 500 + len(platform.seen), "chat": {"id": seen.json()["chat_id"]}}}, {})


@pytest.fixture
def standin() -> Iterator[StandIn]:
    platform = StandIn().start()
    platform.on("POST", f"/bot{TOKEN}/sendMessage", handler=sent_ok(platform))
    yield platform
    platform.stop()


def telegram_desk(make_app: Any, standin: StandIn, **config: Any) -> Iterator[Desk]:
    desks = make_desk(make_app, standin, "telegram", {"token": TOKEN, "webhook_secret": SECRET},
                      config, handle="loket_test_bot")
    for desk in desks:
        desk.send = lambda update, secret=SECRET, desk=desk: post(  # type: ignore[attr-defined]
            desk.url, json.dumps(update).encode(), {"X-Telegram-Bot-Api-Secret-Token": secret})
        yield desk


@pytest.fixture
def desk(make_app: Any, standin: StandIn) -> Iterator[Desk]:
    yield from telegram_desk(make_app, standin)


def corpus(name: str, update_id: int | None = None) -> dict[str, Any]:
    data = json.loads((corpus_dir("webhooks", "telegram", "official_docs") / name).read_text())
    if update_id is not None:
        data["update_id"] = update_id
    return data


def test_a_text_message_opens_a_ticket_for_the_chat_and_is_acknowledged_on_telegram(desk):
    status, _ = desk.send(corpus("02_message_text.json"))
    assert status == 200
    with desk.db():
        ticket = Ticket.get()
        message = Message.get(Message.ticket == ticket, Message.author_kind == "contact")
        assert ticket.channel == "telegram"
        assert message.body_text == "/start"
        assert message.raw_path  # the raw update is kept
        identity = ContactIdentity.get(ContactIdentity.contact == ticket.contact)
        assert (identity.kind, identity.value) == ("telegram", "1111111")
        assert ticket.contact.name == "Test Firstname Test Lastname"
        ack = Message.get(Message.notification == "ticket_opened")
        assert ack.delivery_state == Delivery.SENT
        assert ack.external_id == f"{desk.account.id}:1111111:{500 + 1}"
    sent = desk.standin.requests("POST", f"/bot{TOKEN}/sendMessage")
    assert len(sent) == 1
    assert sent[0].json()["chat_id"] == "1111111"
    assert f"#{ticket.id}" in sent[0].json()["text"]
    assert "http://desk.test/" in sent[0].json()["text"]  # the tracking link


@pytest.mark.parametrize("name", ["01_message_text_minimal.json", "03_forwarded_message.json",
                                  "05_message_with_reply.json", "07_message_with_entities.json"])
def test_every_text_sample_of_the_docs_gives_one_message_with_its_text(desk, name):
    expected = json.loads((corpus_dir("webhooks", "telegram", "official_docs")
                           / "expected.json").read_text())[name]
    assert desk.send(corpus(name))[0] == 200
    with desk.db():
        message = Message.get(Message.author_kind == "contact")
        assert message.body_text == expected["text"]


@pytest.mark.parametrize("name", ["04_forwarded_channel_message.json", "11_inline_query.json",
                                  "12_chosen_inline_result.json", "13_callback_query.json"])
def test_inline_queries_button_presses_and_channel_chatter_create_nothing(desk, name):
    data = corpus(name)
    if name.startswith("04"):
        data["message"]["chat"]["type"] = "channel"
    assert desk.send(data)[0] == 200
    with desk.db():
        assert Ticket.select().count() == 0


def test_group_chatter_and_service_messages_create_nothing(desk):
    group = corpus("02_message_text.json", 1)
    group["message"]["chat"] = {"id": -100123, "type": "group", "title": "Fans"}
    service = corpus("02_message_text.json", 2)
    del service["message"]["text"]
    service["message"]["new_chat_title"] = "Renamed"
    assert desk.send(group)[0] == 200
    assert desk.send(service)[0] == 200
    with desk.db():
        assert Ticket.select().count() == 0
        assert Message.select().count() == 0


def test_a_forged_or_missing_secret_token_is_refused_and_stores_nothing(desk):
    assert desk.send(corpus("02_message_text.json"), secret="wrong")[0] == 403
    status, _ = post(desk.url, json.dumps(corpus("02_message_text.json")).encode())
    assert status == 403
    assert post(f"{desk.base}/social/telegram/not-an-account", b"{}",
                {"X-Telegram-Bot-Api-Secret-Token": SECRET})[0] == 404
    with desk.db():
        from plugins.social.models import SocialInbox

        assert SocialInbox.select().count() == 0
        assert Ticket.select().count() == 0


def test_malformed_json_is_refused_and_a_body_over_the_limit_is_refused_unread(desk):
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert post(desk.url, b"{not json", headers)[0] == 400
    assert post(desk.url, b"[1, 2]", headers)[0] == 400
    big = json.dumps({"update_id": 9, "message": {"text": "x" * 300_000}}).encode()
    assert post(desk.url, big, headers)[0] == 413
    with desk.db():
        assert Ticket.select().count() == 0


def test_the_same_update_twice_and_two_racing_deliveries_give_one_message(desk):
    update = corpus("02_message_text.json", 77)
    results = []
    threads = [threading.Thread(target=lambda: results.append(desk.send(update)[0]))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 4
    assert desk.send(update)[0] == 200  # and replayed later
    with desk.db():
        assert Message.select().where(Message.author_kind == "contact").count() == 1
        assert Ticket.select().count() == 1
    assert len(desk.standin.requests("POST", f"/bot{TOKEN}/sendMessage")) == 1


def test_an_edit_updates_the_stored_text_and_says_so(desk):
    assert desk.send(corpus("02_message_text.json", 1))[0] == 200
    assert desk.send(corpus("06_edited_message.json", 2))[0] == 200
    with desk.db():
        assert Ticket.select().count() == 1
        message = Message.get(Message.author_kind == "contact")
        assert message.body_text.startswith("Edited text")
        assert "Edited by the customer" in message.body_text
        event = TicketEvent.get(TicketEvent.kind == "message_edited")
        assert event.old_value == "/start"


def test_a_second_message_from_the_chat_joins_its_open_ticket(desk):
    first = corpus("02_message_text.json", 1)
    second = corpus("02_message_text.json", 2)
    second["message"]["message_id"] = 1366
    second["message"]["text"] = "Still waiting for my payout"
    desk.send(first)
    desk.send(second)
    with desk.db():
        assert Ticket.select().count() == 1
        assert Message.select().where(Message.author_kind == "contact").count() == 2


def test_a_voice_note_is_fetched_through_getfile_and_stored_as_an_attachment(desk):
    ogg = b"OggS\x00\x02" + b"\x00" * 200
    desk.standin.on("GET", f"/bot{TOKEN}/getFile", (200, {"ok": True, "result": {
        "file_id": "x", "file_path": "voice/file_7.oga"}}, {}))
    desk.standin.on("GET", f"/file/bot{TOKEN}/voice/file_7.oga", (200, ogg, {
        "Content-Type": "application/octet-stream"}))
    assert desk.send(corpus("09_message_voice.json", 5))[0] == 200
    with desk.db():
        attachment = Attachment.get()
        assert attachment.content_type == "audio/ogg"
        assert attachment.size == len(ogg)
        assert attachment.message.author_kind == "contact"


def test_a_media_download_that_fails_is_retried_then_leaves_a_note_not_a_gap(make_app, standin):
    desks = telegram_desk(make_app, standin, **{"social.media_attempts": 2})
    desk = next(desks)
    desk.standin.on("GET", f"/bot{TOKEN}/getFile",
                    (500, {"ok": False, "error_code": 500, "description": "Internal"}, {}))
    assert desk.send(corpus("10_message_document.json", 6))[0] == 200
    from plugins.social import inbox
    from plugins.social.models import SocialInbox

    with desk.db():
        row = SocialInbox.get()
        assert row.state == "pending" and row.attempts == 1  # the update is kept for later
        assert Message.select().count() == 0
        SocialInbox.update(next_attempt_at=None).execute()
        assert inbox.process(row.id) == "done"
        message = Message.get(Message.author_kind == "contact")
        assert "could not be fetched" in message.body_text
        assert "Testfile.pdf" in message.body_text
        assert Attachment.select().count() == 0
    next(desks, None)


def test_a_file_over_the_size_limit_is_not_downloaded_and_leaves_a_note(small_uploads):
    desk = small_uploads
    assert desk.send(corpus("08_message_audio.json", 8))[0] == 200  # 3.9 MB > 1 MB
    with desk.db():
        message = Message.get(Message.author_kind == "contact")
        assert "not stored: larger than" in message.body_text
    assert not desk.standin.requests("GET", f"/bot{TOKEN}/getFile")


@pytest.fixture
def small_uploads(make_app, standin):
    yield from telegram_desk(make_app, standin, upload_max_bytes=1024 * 1024)


def _ticket_with_reply(desk: Desk, text: str = "We are on it.", attachments: Any = ()) -> Any:
    from core.services import tickets

    from .factories import make_staff

    desk.send(corpus("02_message_text.json", 1))
    with desk.db():
        staff = make_staff("agent@desk.test", "Ana Agent")
        ticket = Ticket.get()
        return tickets.reply(ticket, staff, text, attachments=attachments)


def test_an_agent_reply_goes_out_by_sendmessage_and_stores_telegrams_message_id(desk):
    reply = _ticket_with_reply(desk)
    with desk.db():
        reply = Message.get_by_id(reply.id)
        assert reply.delivery_state == Delivery.SENT
        assert reply.external_id.startswith(f"{desk.account.id}:1111111:")
    sent = desk.standin.requests("POST", f"/bot{TOKEN}/sendMessage")
    assert sent[-1].json() == {"chat_id": "1111111", "text": "We are on it."}


def test_an_agents_file_goes_out_by_senddocument(desk):
    from core.attachments import Storage

    desk.standin.on("POST", f"/bot{TOKEN}/sendDocument",
                    (200, {"ok": True, "result": {"message_id": 900}}, {}))
    with desk.db():
        from core.state import loket

        stored = Storage(loket().config["attachments_path"]).save_bytes(
            b"%PDF-1.4\n" + b"0" * 100, "invoice.pdf", max_bytes=10**6,
            allowed_types=["application/pdf"])
    reply = _ticket_with_reply(desk, "Your invoice.", [stored])
    document = desk.standin.requests("POST", f"/bot{TOKEN}/sendDocument")
    assert len(document) == 1
    assert b'filename="invoice.pdf"' in document[0].body
    assert b"%PDF-1.4" in document[0].body
    with desk.db():
        assert Message.get_by_id(reply.id).external_id.endswith(":900")


@pytest.mark.parametrize("status,answer,state,says", [
    (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
     Delivery.FAILED, "blocked by the user"),
    (401, {"ok": False, "error_code": 401, "description": "Unauthorized"},
     Delivery.FAILED, "Unauthorized"),
    (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 37",
           "parameters": {"retry_after": 37}}, Delivery.QUEUED, "Too Many Requests"),
])
def test_telegrams_refusals_show_on_the_message_and_a_rate_limit_waits_as_told(
        desk, status, answer, state, says):
    from core.models import utcnow

    desk.send(corpus("02_message_text.json", 1))
    desk.standin.on("POST", f"/bot{TOKEN}/sendMessage", (status, answer, {}))
    with desk.db():
        from core.services import tickets

        from .factories import make_staff

        before = utcnow()
        reply = tickets.reply(Ticket.get(), make_staff("a@desk.test", "Ana"), "Hello")
        reply = Message.get_by_id(reply.id)
        assert reply.delivery_state == state
        assert says in reply.delivery_error
        if status == 429:
            wait = (reply.next_attempt_at - before).total_seconds()
            assert 36 <= wait <= 40
        else:
            assert TicketEvent.select().where(TicketEvent.kind == "delivery_failed").count() == 1


def run_cli(desk: Desk, *args: str) -> Any:
    from click.testing import CliRunner

    from plugins.social.cli import social

    with desk.db():  # as ``loket`` runs a plugin's command: in the app, with a connection
        return CliRunner().invoke(social, list(args))


def test_telegram_webhook_command_registers_the_url_with_the_secret_token(desk):
    desk.standin.on("POST", f"/bot{TOKEN}/setWebhook",
                    (200, {"ok": True, "result": True, "description": "Webhook was set"}, {}))
    result = run_cli(desk, "telegram-webhook", "telegram support")
    assert result.exit_code == 0, result.output
    assert "Webhook was set" in result.output
    call = desk.standin.requests("POST", f"/bot{TOKEN}/setWebhook")[0].json()
    assert call["url"] == f"http://desk.test/social/telegram/{desk.account.slug}"
    assert call["secret_token"] == SECRET


def test_check_command_asks_getme_and_reports_a_bad_token(desk):
    desk.standin.on("GET", f"/bot{TOKEN}/getMe", (200, {"ok": True, "result": {
        "id": 123456, "is_bot": True, "username": "loket_test_bot"}}, {}))
    result = run_cli(desk, "check")
    assert result.exit_code == 0, result.output
    assert "@loket_test_bot" in result.output
    desk.standin.on("GET", f"/bot{TOKEN}/getMe",
                    (401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, {}))
    result = run_cli(desk, "check")
    assert result.exit_code == 1
    assert "FAILED" in result.output and "Unauthorized" in result.output


def test_handled_updates_are_pruned_after_the_set_days_failed_ones_stay(desk):
    import datetime as dt

    from core.models import utcnow
    from plugins.social import inbox
    from plugins.social.models import SocialInbox

    desk.send(corpus("02_message_text.json", 1))
    desk.send(corpus("02_message_text.json", 2))
    with desk.db():
        first, second = SocialInbox.select().order_by(SocialInbox.id)
        SocialInbox.update(processed_at=utcnow() - dt.timedelta(days=8)).execute()
        SocialInbox.update(state="failed").where(SocialInbox.id == second.id).execute()
        assert inbox.prune(7) == 1
        assert [row.id for row in SocialInbox.select()] == [second.id]
        assert inbox.prune(0) == 0


@pytest.mark.parametrize("data,name,method,field", [
    (b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 100, "sticker.webp", "sendSticker", "sticker"),
    (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01\x1eOpusHead" + b"\x00" * 100, "voice.ogg",
     "sendVoice", "voice"),
])
def test_an_agents_sticker_or_voice_note_goes_out_as_one(desk, data, name, method, field):
    from core.attachments import Storage

    desk.standin.on("POST", f"/bot{TOKEN}/{method}",
                    (200, {"ok": True, "result": {"message_id": 901}}, {}))
    with desk.db():
        from core.state import loket

        stored = Storage(loket().config["attachments_path"]).save_bytes(
            data, name, max_bytes=10**6, allowed_types=["image/webp", "audio/ogg"])
    reply = _ticket_with_reply(desk, "Here.", [stored])
    sent = desk.standin.requests("POST", f"/bot{TOKEN}/{method}")
    assert len(sent) == 1
    assert f'name="{field}"; filename="{name}"'.encode() in sent[0].body
    assert desk.standin.requests("POST", f"/bot{TOKEN}/sendDocument") == []
    with desk.db():
        assert Message.get_by_id(reply.id).external_id.endswith(":901")
