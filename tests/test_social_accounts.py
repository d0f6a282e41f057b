"""Two accounts of one platform: a customer's conversations with each stay apart."""

from __future__ import annotations

import json
from typing import Any

from core import db
from core.models import Message, Ticket
from core.services import tickets
from tests.factories import build_desk

from .social_standin import StandIn, post, serve_app

BOTS = {"north": "111:NORTH-TOKEN", "south": "222:SOUTH-TOKEN"}


def update(update_id: int, text: str, chat_id: int = 1111111) -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1441645532, "text": text,
        "chat": {"id": chat_id, "type": "private", "first_name": "Rina"},
        "from": {"id": chat_id, "first_name": "Rina"}}}).encode()


def test_a_customer_writing_to_two_bots_keeps_one_ticket_per_bot_and_hears_back_from_each(
        make_app: Any) -> None:
    from plugins.social import vault
    from plugins.social.models import SocialAccount

    standin = StandIn().start()
    for token in BOTS.values():
        standin.on("POST", f"/bot{token}/sendMessage", handler=lambda seen: (200, {
            "ok": True, "result": {"message_id": 900 + len(standin.seen)}}, {}))
    app = make_app(plugins=["social"], **{"social.telegram_api_url": standin.url})
    urls = {}
    with app.app_context(), db.connection():
        for name, token in BOTS.items():
            account = SocialAccount(platform="telegram", name=name, handle=f"{name}_bot")
            vault.write(account, {"token": token, "webhook_secret": f"secret-{name}"})
            account.save()
            urls[name] = f"/social/telegram/{account.slug}"
    base, stop = serve_app(app)
    try:
        def send(bot: str, update_id: int, text: str) -> None:
            status, _ = post(base + urls[bot], update(update_id, text),
                             {"X-Telegram-Bot-Api-Secret-Token": f"secret-{bot}"})
            assert status == 200

        send("north", 1, "North: my payout")
        send("south", 1, "South: my login")  # the same update id on another bot: its own
        send("north", 2, "North again")
        send("south", 2, "South again")
        with app.app_context(), db.connection():
            threads = {t.id: [m.body_text for m in Message.select().where(
                (Message.ticket == t) & (Message.author_kind == "contact")).order_by(Message.id)]
                for t in Ticket.select().order_by(Ticket.id)}
            assert list(threads.values()) == [["North: my payout", "North again"],
                                              ["South: my login", "South again"]]
            south = Ticket.select().order_by(Ticket.id.desc()).first()
            agent_reply = tickets.reply(south, build_desk().agent, "Answer from the south desk")
            assert Message.get_by_id(agent_reply.id).delivery_state == "sent"
        sent_by = {token: [s.json()["text"] for s in standin.requests(
            "POST", f"/bot{token}/sendMessage")] for token in BOTS.values()}
        assert "Answer from the south desk" in sent_by[BOTS["south"]]
        assert not any("south desk" in text for text in sent_by[BOTS["north"]])
        # each bot acknowledged its own ticket; the reply went out from the south bot only
        assert len(sent_by[BOTS["north"]]) == 1 and len(sent_by[BOTS["south"]]) == 2
    finally:
        stop()
        standin.stop()


def test_a_new_customer_s_first_messages_make_one_ticket(make_app: Any) -> None:
    # With no conversation anywhere yet, core's own look-up (run again inside the write)
    # threads the second message onto the first's ticket.
    from plugins.social import inbox, vault
    from plugins.social.models import SocialAccount, SocialInbox

    standin = StandIn().start()
    standin.on("POST", f"/bot{BOTS['north']}/sendMessage", handler=lambda seen: (
        200, {"ok": True, "result": {"message_id": 1}}, {}))
    app = make_app(plugins=["social"], **{"social.telegram_api_url": standin.url})
    try:
        with app.app_context(), db.connection():
            account = SocialAccount(platform="telegram", name="north", handle="north_bot")
            vault.write(account, {"token": BOTS["north"], "webhook_secret": "s"})
            account.save()
            for update_id in (1, 2):
                inbox.accept(account, str(update_id), update(update_id, f"hello {update_id}"))
            for row in SocialInbox.select().order_by(SocialInbox.id):
                assert inbox.process(row.id) == "done"
            assert Ticket.select().count() == 1
            assert Message.select().where(Message.author_kind == "contact").count() == 2
    finally:
        standin.stop()
