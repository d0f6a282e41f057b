"""Messenger: botman's and fbmessenger's webhook bodies posted signed; the Send API stand-in."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest

from core.models import Attachment, ContactIdentity, Delivery, Message, Ticket

from .social_standin import Desk, StandIn, corpus_dir, make_desk, post

APP_SECRET = "messenger-app-secret-for-tests"
TOKEN = "EAAPage-test-token"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def standin() -> Iterator[StandIn]:
    platform = StandIn().start()
    platform.on("POST", "/me/messages", handler=lambda seen: (200, {
        "recipient_id": seen.json()["recipient"]["id"] if seen.body.startswith(b"{") else "x",
        "message_id": f"m_out{len(platform.seen)}"}, {}))
    yield platform
    platform.stop()


def messenger_desk(make_app: Any, standin: StandIn, secret: str = APP_SECRET) -> Iterator[Desk]:
    for desk in make_desk(make_app, standin, "messenger",
                          {"token": TOKEN, "app_secret": secret, "verify_token": "v"},
                          handle="loket.support", external_id="111899832631525"):
        def send(update: Any, signature: str | None = None, desk: Desk = desk) -> Any:
            body = update if isinstance(update, bytes) else json.dumps(update).encode()
            return post(desk.url, body, {"X-Hub-Signature-256": signature if signature
                                         is not None else sign(body, secret)})
        desk.send = send  # type: ignore[attr-defined]
        yield desk


@pytest.fixture
def desk(make_app: Any, standin: StandIn) -> Iterator[Desk]:
    yield from messenger_desk(make_app, standin)


def botman(name: str) -> dict[str, Any]:
    return json.loads((corpus_dir("webhooks", "messenger", "botman") / name).read_text())


def expected(name: str) -> dict[str, Any]:
    return json.loads((corpus_dir("webhooks", "messenger", "botman") / "expected.json")
                      .read_text())[name]


def test_the_signed_request_of_the_corpus_verifies_and_a_forged_one_is_refused(make_app, standin):
    folder = corpus_dir("webhooks", "messenger", "signature")
    case = json.loads((folder / "case.json").read_text())
    body = (folder / "body.json").read_bytes()
    desk = next(messenger_desk(make_app, standin, secret=case["app_secret"]))
    assert desk.send(body, case["invalid_example"]["x_hub_signature"])[0] == 403
    assert desk.send(body, case["x_hub_signature_sha1"])[0] == 403  # SHA-1 is not accepted
    assert desk.send(body, case["x_hub_signature_256_computed_by_collector"])[0] == 200
    with desk.db():
        message = Message.get(Message.author_kind == "contact")
        assert message.body_text == "Hi"


@pytest.mark.parametrize("name", ["01_message_text.json", "04_message_text_nlp.json",
                                  "05_message_text.json", "14_message_quick_reply.json"])
def test_text_messages_open_a_ticket_for_the_page_scoped_id(desk, name):
    want = expected(name)
    assert desk.send(botman(name))[0] == 200
    with desk.db():
        ticket = Ticket.get()
        message = Message.get(Message.author_kind == "contact")
        assert message.body_text == want["text"]
        assert message.external_id == f"{desk.account.id}:{want['mid']}"
        identity = ContactIdentity.get(ContactIdentity.contact == ticket.contact)
        assert (identity.kind, identity.value) == ("messenger", want["sender_id"])


@pytest.mark.parametrize("name", ["02_message_echo.json", "03_postback.json", "06_empty.json",
                                  "07_referral.json", "08_optin.json", "09_delivery.json",
                                  "10_read.json", "11_account_linking.json",
                                  "12_checkout_update.json", "13_foo.json"])
def test_echoes_receipts_postbacks_and_other_events_create_nothing(desk, name):
    assert desk.send(botman(name))[0] == 200
    with desk.db():
        assert Ticket.select().count() == 0 and Message.select().count() == 0


def test_fbmessenger_payloads_one_message_and_nothing_for_the_rest(desk):
    folder = corpus_dir("webhooks", "messenger", "fbmessenger")
    for path in sorted(folder.glob("payload_*.json")):
        assert desk.send(json.loads(path.read_text()))[0] == 200
    with desk.db():
        assert Message.select().where(Message.author_kind == "contact").count() == 1


def test_images_are_fetched_from_their_urls_and_a_location_becomes_text(desk, standin):
    data = botman("15_message_attachment_image.json")
    for index, attachment in enumerate(data["entry"][0]["messaging"][0]["message"]
                                       ["attachments"]):
        attachment["payload"]["url"] = f"{standin.url}/cdn/image{index}.png"
        standin.on("GET", f"/cdn/image{index}.png", (200, PNG + bytes([index]),
                                                      {"Content-Type": "image/png"}))
    assert desk.send(data)[0] == 200
    location = botman("19_message_attachment_location.json")
    location["entry"][0]["messaging"][0]["message"]["mid"] = "mid.location"
    assert desk.send(location)[0] == 200
    with desk.db():
        assert Ticket.select().count() == 1  # the same customer, the same open ticket
        assert Attachment.select().count() == 2
        assert {a.content_type for a in Attachment.select()} == {"image/png"}
        assert Message.get(Message.external_id == f"{desk.account.id}:mid.location").body_text \
            == "Location: 37.483872693672, -122.14900441942"


def test_a_delivery_receipt_marks_our_message_delivered(desk, standin):
    assert desk.send(botman("01_message_text.json"))[0] == 200
    with desk.db():
        ack = Message.get(Message.notification == "ticket_opened")
        mid = ack.external_id.split(":", 1)[1]
    receipt = botman("09_delivery.json")
    receipt["entry"][0]["messaging"][0]["delivery"]["mids"] = [mid]
    assert desk.send(receipt)[0] == 200
    with desk.db():
        assert Message.get_by_id(ack.id).delivery_state == Delivery.DELIVERED


def _reply_after(desk: Desk, hours: float) -> Message:
    from core.services import tickets

    from .factories import make_staff

    assert desk.send(botman("01_message_text.json"))[0] == 200
    with desk.db():
        ticket = Ticket.get()
        Ticket.update(last_customer_message_at=ticket.last_customer_message_at
                      - dt.timedelta(hours=hours)).execute()
        reply = tickets.reply(ticket, make_staff("a@desk.test", "Ana"), "Here is the answer.")
        return Message.get_by_id(reply.id)


def test_within_24_hours_a_reply_is_a_response(desk, standin):
    reply = _reply_after(desk, 1)
    assert reply.delivery_state == Delivery.SENT
    sent = standin.requests("POST", "/me/messages")[-1]
    assert sent.query["access_token"] == [TOKEN]
    assert sent.json() == {"messaging_type": "RESPONSE", "recipient": {"id": "1433960459967306"},
                           "message": {"text": "Here is the answer."}}


def test_after_24_hours_a_reply_carries_the_human_agent_tag(desk, standin):
    reply = _reply_after(desk, 30)
    assert reply.delivery_state == Delivery.SENT
    sent = standin.requests("POST", "/me/messages")[-1].json()
    assert (sent["messaging_type"], sent["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_after_7_days_no_reply_is_allowed_and_the_ticket_says_why(desk, standin):
    before = len(standin.requests("POST", "/me/messages"))
    reply = _reply_after(desk, 24 * 8)
    assert reply.delivery_state == Delivery.FAILED
    assert "7 days" in reply.delivery_error
    assert len(standin.requests("POST", "/me/messages")) == before + 1  # only the acknowledgement


def test_an_invalid_token_fails_the_reply_with_graphs_reason(desk, standin):
    assert desk.send(botman("01_message_text.json"))[0] == 200
    standin.on("POST", "/me/messages", (400, {"error": {
        "message": "Error validating access token: Session has expired",
        "type": "OAuthException", "code": 190, "error_subcode": 463,
        "fbtrace_id": "H2il2t5bn4e"}}, {}))
    from core.services import tickets

    from .factories import make_staff

    with desk.db():
        reply = tickets.reply(Ticket.get(), make_staff("a@desk.test", "Ana"), "Hello")
        reply = Message.get_by_id(reply.id)
    assert reply.delivery_state == Delivery.FAILED
    assert "190" in reply.delivery_error and "Session has expired" in reply.delivery_error


def test_an_edit_from_messenger_updates_the_message(desk):
    assert desk.send(botman("01_message_text.json"))[0] == 200
    edit = {"object": "page", "entry": [{"id": "111899832631525", "time": 1, "messaging": [{
        "sender": {"id": "1433960459967306"}, "recipient": {"id": "111899832631525"},
        "timestamp": 2, "message_edit": {"mid": "mid.1480279487147:4388d3b344",
                                         "text": "Hi, my card was charged twice",
                                         "num_edit": 1}}]}]}
    assert desk.send(edit)[0] == 200
    with desk.db():
        message = Message.get(Message.author_kind == "contact")
        assert message.body_text.startswith("Hi, my card was charged twice")


def test_a_reaction_creates_nothing(desk):
    reaction = {"object": "page", "entry": [{"id": "111899832631525", "time": 1, "messaging": [{
        "sender": {"id": "1433960459967306"}, "recipient": {"id": "111899832631525"},
        "timestamp": 2, "reaction": {"mid": "m_out1", "action": "react", "emoji": "\u2764",
                                     "reaction": "love"}}]}]}
    assert desk.send(reaction)[0] == 200
    with desk.db():
        assert Message.select().count() == 0


def test_an_agents_image_goes_out_as_a_multipart_attachment(desk, standin):
    from core.attachments import Storage
    from core.services import tickets
    from core.state import loket

    from .factories import make_staff

    assert desk.send(botman("01_message_text.json"))[0] == 200
    with desk.db():
        stored = Storage(loket().config["attachments_path"]).save_bytes(
            PNG, "screenshot.png", max_bytes=10**6, allowed_types=["image/png"])
        reply = tickets.reply(Ticket.get(), make_staff("a@desk.test", "Ana"), "See here.",
                              attachments=[stored])
        assert Message.get_by_id(reply.id).delivery_state == Delivery.SENT
    upload = standin.requests("POST", "/me/messages")[-1]
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    assert b'"type": "image"' in upload.body and PNG in upload.body
    assert b'name="filedata"; filename="screenshot.png"' in upload.body


def test_a_new_senders_name_is_asked_of_the_profile_api_once(desk, standin):
    psid = "1433960459967306"
    standin.on("GET", f"/{psid}", (200, {"first_name": "Budi", "last_name": "Santoso",
                                         "id": psid}, {}))
    assert desk.send(botman("01_message_text.json"))[0] == 200
    second = botman("01_message_text.json")
    second["entry"][0]["messaging"][0]["message"]["mid"] = "mid.second"
    assert desk.send(second)[0] == 200
    asked = standin.requests("GET", f"/{psid}")
    assert len(asked) == 1  # a contact we know is not asked about again
    assert asked[0].query["fields"] == ["first_name,last_name"]
    assert asked[0].headers["Authorization"] == f"Bearer {TOKEN}"
    with desk.db():
        ticket = Ticket.get()
        assert ticket.contact.name == "Budi Santoso"
        assert Message.select().where(Message.author_kind == "contact").count() == 2


def test_a_profile_the_platform_refuses_leaves_the_message_stored_without_a_name(desk, standin):
    standin.on("GET", "/1433960459967306", (400, {"error": {
        "message": "(#100) No profile available for that user.", "type": "OAuthException",
        "code": 100}}, {}))
    assert desk.send(botman("01_message_text.json"))[0] == 200
    with desk.db():
        message = Message.get(Message.author_kind == "contact")
        assert message.body_text == "Hi" and message.ticket.contact.name == ""


def test_a_read_watermark_marks_what_we_sent_before_it_read_and_nothing_after(desk, standin):
    assert desk.send(botman("01_message_text.json"))[0] == 200
    with desk.db():
        ack = Message.get(Message.notification == "ticket_opened")
        assert ack.delivery_state == Delivery.SENT
        sent_at = ack.delivery_updated_at
    read = botman("10_read.json")
    item = read["entry"][0]["messaging"][0]
    item["sender"]["id"] = "1433960459967306"
    epoch = int(sent_at.replace(tzinfo=dt.UTC).timestamp() * 1000)
    item["read"]["watermark"] = epoch - 60_000  # a minute before we sent it
    assert desk.send(read)[0] == 200
    with desk.db():
        assert Message.get_by_id(ack.id).delivery_state == Delivery.SENT
    item["read"]["watermark"] = epoch + 1000
    item["timestamp"] += 1  # another delivery of the webhook, not a replay
    assert desk.send(read)[0] == 200
    with desk.db():
        assert Message.get_by_id(ack.id).delivery_state == Delivery.READ
    # another customer's watermark reads nothing of ours
    with desk.db():
        Message.update(delivery_state=Delivery.SENT).where(Message.id == ack.id).execute()
    item["sender"]["id"] = "someone-else"
    item["timestamp"] += 1
    assert desk.send(read)[0] == 200
    with desk.db():
        assert Message.get_by_id(ack.id).delivery_state == Delivery.SENT


def test_an_agents_voice_note_goes_out_as_audio(desk, standin):
    from core.attachments import Storage
    from core.services import tickets
    from core.state import loket

    from .factories import make_staff

    ogg = b"OggS\x00\x02" + b"\x00" * 22 + b"\x01\x1eOpusHead" + b"\x00" * 100
    assert desk.send(botman("01_message_text.json"))[0] == 200
    with desk.db():
        stored = Storage(loket().config["attachments_path"]).save_bytes(
            ogg, "voice.ogg", max_bytes=10**6, allowed_types=["audio/ogg"])
        reply = tickets.reply(Ticket.get(), make_staff("a@desk.test", "Ana"), "Listen.",
                              attachments=[stored])
        assert Message.get_by_id(reply.id).delivery_state == Delivery.SENT
    upload = standin.requests("POST", "/me/messages")[-1]
    assert b'"type": "audio"' in upload.body and ogg in upload.body
