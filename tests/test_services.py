"""The ticket service: transactions, threading, de-duplication, audit trail and hook calls."""

from __future__ import annotations

import threading

import pytest

from core import db as core_db
from core import hookimpl
from core.attachments import Storage
from core.hookspecs import ChannelSpec, DeliveryResult, Routing
from core.models import (
    Attachment,
    Contact,
    ContactIdentity,
    Delivery,
    Message,
    Priority,
    Status,
    Ticket,
    TicketEvent,
    TicketLink,
    TicketParticipant,
)
from core.services import tickets
from core.services.contacts import find_contact
from core.services.tickets import Actor, Identity, ServiceError, merge_contacts

CUSTOMER = Identity("email", "Siti@Example.ID", name="Siti")


def _open(desk, **kwargs):
    args = dict(identity=CUSTOMER, subject="Cannot log in", text="It says my password is wrong.",
                category=desk.login, form_data={"registered_email": "siti@example.id"})
    args.update(kwargs)
    return tickets.open_ticket(**args)


def events(ticket):
    return [(e.kind, e.old_value, e.new_value) for e in
            TicketEvent.select().where(TicketEvent.ticket == ticket).order_by(TicketEvent.id)]


# -- opening ------------------------------------------------------------------------------


def test_open_ticket_creates_contact_ticket_message_and_audit(desk, spy):
    ticket = _open(desk)
    assert ticket.id and ticket.status == Status.NEW
    assert ticket.department_id == desk.support.id  # category default
    assert ticket.user_type_id == desk.member.id
    assert ticket.form_data == {"registered_email": "siti@example.id"}
    assert len(ticket.access_key) >= 30
    contact = Contact.get_by_id(ticket.contact_id)
    assert contact.email == "siti@example.id" and contact.name == "Siti"
    identity = ContactIdentity.get(ContactIdentity.contact == contact)
    assert (identity.kind, identity.value) == ("email", "siti@example.id")
    message = Message.get(Message.ticket == ticket)
    assert message.body_text == "It says my password is wrong." and message.author_kind == "contact"
    assert events(ticket) == [("created", "", "new")]
    assert spy.names() == ["contact_identified", "ticket_created"]


def test_the_same_address_is_one_contact(desk):
    first = _open(desk)
    second = _open(desk, identity=Identity("email", " siti@example.id "))
    assert first.contact_id == second.contact_id
    assert Contact.select().count() == 1


def test_route_ticket_default_uses_nearest_department_and_priority(desk):
    ticket = _open(desk, category=desk.refunds)  # refunds has no department: its parent's
    assert ticket.department_id == desk.support.id
    assert ticket.priority == Priority.NORMAL  # refunds' own default priority
    ticket = _open(desk, category=desk.payments)
    assert ticket.priority == Priority.HIGH


class Router:
    def __init__(self, routing):
        self.routing = routing
        self.seen = []

    @hookimpl
    def route_ticket(self, ticket, message, category, form_data, text):
        self.seen.append((ticket.id, message.body_text, category, form_data, text))
        return self.routing


def test_route_ticket_plugin_overrides_default_and_can_escalate(make_app, spy):
    from tests.factories import build_desk

    router = Router(None)
    app = make_app(extra_plugins=(router, spy))
    with app.app_context(), core_db.connection():
        desk = build_desk()
        router.routing = Routing(department=desk.billing, priority=Priority.URGENT,
                                 tags=["refund"], escalate=True, reason="large dispute")
        ticket = _open(desk)
        assert router.seen[0][0] is None  # decided before the ticket is saved
        assert "Cannot log in" in router.seen[0][4] and "password" in router.seen[0][4]
        ticket = Ticket.get_by_id(ticket.id)
        # billing escalates to management
        assert ticket.department_id == desk.management.id
        assert ticket.priority == Priority.URGENT and ticket.tags == ["refund"]
        assert ticket.escalation_level == 1
        assert [e[0] for e in events(ticket)] == ["created", "escalated"]
        assert spy.of("ticket_escalated")[0]["reason"] == "large dispute"


def test_route_ticket_that_raises_creates_nothing(make_app):
    class Broken:
        @hookimpl
        def route_ticket(self):
            raise RuntimeError("routing table unreachable")

    from tests.factories import build_desk

    app = make_app(extra_plugins=(Broken(),))
    with app.app_context(), core_db.connection():
        desk = build_desk()
        with pytest.raises(RuntimeError):
            _open(desk)
        assert Ticket.select().count() == 0 and Contact.select().count() == 0


class LockProbe:
    """A route_ticket that checks, while it runs, that any other writer could write."""

    def __init__(self, app):
        self.app = app
        self.calls = []

    @hookimpl
    def route_ticket(self, ticket, message, category):
        outcome = []

        def write():
            try:
                with self.app.app_context(), core_db.connection():
                    with core_db.write_transaction():
                        Contact.create(name="written while routing")
                outcome.append("wrote")
            except Exception as exc:  # pragma: no cover - reported below
                outcome.append(exc)

        other = threading.Thread(target=write, daemon=True)
        other.start()
        other.join(10)  # held write lock: the thread would still be waiting here
        self.calls.append((core_db.database.obj.in_transaction(), outcome, ticket.contact_id,
                           message.contact_id, category))
        return None


@pytest.fixture
def probed(make_app, spy):
    from tests.factories import build_desk

    app = make_app(extra_plugins=(spy,))
    probe = LockProbe(app)
    app.extensions["loket"].pm.register(probe)
    with app.app_context(), core_db.connection():
        yield build_desk(), probe


def test_route_ticket_runs_before_the_write_begins_and_holds_no_lock(probed):
    desk, probe = probed
    ticket = _open(desk)
    result = tickets.receive_message(channel="email", identity=Identity("email", "a@b.id"),
                                     text="new mail", external_id="<new@b.id>")
    assert result.created
    assert probe.calls == [(False, ["wrote"], None, None, desk.login),
                           (False, ["wrote"], None, None, None)]  # no contact yet
    assert Ticket.get_by_id(ticket.id).contact_id is not None
    assert Contact.select().where(Contact.name == "written while routing").count() == 2


def test_a_message_that_joins_a_ticket_is_not_routed(probed):
    desk, probe = probed
    ticket = _open(desk)
    tickets.receive_message(channel="email", identity=CUSTOMER, text="more",
                            external_id="<more@x>", thread_to=ticket)
    tickets.receive_message(channel="telegram", identity=Identity("telegram", "5"), text="a",
                            external_id="t1", continue_open=True)
    tickets.receive_message(channel="telegram", identity=Identity("telegram", "5"), text="b",
                            external_id="t2", continue_open=True)
    assert len(probe.calls) == 2  # the form's ticket and the first telegram message


def test_a_ticket_closed_between_the_read_and_the_write_gets_a_routed_follow_up(
        probed, spy):
    desk, probe = probed
    ticket = _open(desk)
    spy.calls.clear()
    # The channel's read (``ticket``, open) decided "it joins", and no routing ran for it;
    # an agent closes the ticket before the write.
    assert ticket.status != Status.CLOSED
    Ticket.update(status=Status.CLOSED).where(Ticket.id == ticket.id).execute()
    # A colleague of the customer answers: the write creates their contact each time it runs.
    result = tickets.receive_message(channel="email", identity=Identity("email", "cc@x.id"),
                                     text="one more", external_id="<late@x>", thread_to=ticket)
    assert result.created and result.ticket.id != ticket.id
    assert [c[:2] for c in probe.calls[1:]] == [(False, ["wrote"])]  # routed once, unlocked
    assert probe.calls[1][4].id == ticket.category_id  # as a follow-up: the old one's category
    assert TicketLink.get(TicketLink.ticket == result.ticket).other_id == ticket.id
    assert Message.select().where(Message.external_id == "<late@x>").count() == 1
    # The stopped write announced nothing: only what was committed is.
    assert spy.names() == ["contact_identified", "ticket_created"]
    assert Contact.select().where(Contact.email == "cc@x.id").count() == 1


def test_attachments_are_stored_with_the_first_message(desk, tmp_path):
    storage = Storage(tmp_path / "files")
    stored = storage.save_bytes(b"%PDF-1.4\n%...\n", "../../etc/receipt.pdf", max_bytes=1000,
                                allowed_types=["application/pdf"])
    ticket = _open(desk, attachments=[stored])
    row = Attachment.get(Attachment.ticket == ticket)
    assert row.filename == "receipt.pdf" and row.content_type == "application/pdf"
    assert row.message_id == Message.get(Message.ticket == ticket).id
    assert storage.path_for(row.sha256).read_bytes().startswith(b"%PDF")


# -- inbound messages ---------------------------------------------------------------------


def test_receive_message_deduplicates_by_channel_external_id(desk, spy):
    first = tickets.receive_message(channel="telegram", identity=Identity("telegram", "4242"),
                                    text="Halo, saya tidak bisa login", external_id="upd-1")
    again = tickets.receive_message(channel="telegram", identity=Identity("telegram", "4242"),
                                    text="Halo, saya tidak bisa login", external_id="upd-1")
    assert first.created and not first.duplicate
    assert again.duplicate and not again.created
    assert again.message.id == first.message.id and again.ticket.id == first.ticket.id
    assert Message.select().count() == 1 and Ticket.select().count() == 1
    assert spy.names().count("ticket_created") == 1
    # the same id on another channel is another message
    other = tickets.receive_message(channel="whatsapp", identity=Identity("whatsapp", "+62 811"),
                                    text="hi", external_id="upd-1")
    assert not other.duplicate and Message.select().count() == 2


def _at_once(app, count, call):
    """Run ``call`` in ``count`` threads released together; their results, none raising."""
    results, errors = [], []
    barrier = threading.Barrier(count)

    def run():
        try:
            with app.app_context(), core_db.connection():
                barrier.wait()
                results.append(call())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(results) == count
    return results


def test_concurrent_duplicate_deliveries_give_one_message(app, desk):
    """Two workers receive the same delivery at once: one message, one ticket."""
    results = _at_once(app, 4, lambda: tickets.receive_message(
        channel="whatsapp", identity=Identity("whatsapp", "628111"),
        text="payment failed", external_id="wamid.XYZ"))
    assert Message.select().where(Message.external_id == "wamid.XYZ").count() == 1
    assert Ticket.select().count() == 1
    assert sum(1 for r in results if not r.duplicate) == 1


def test_racing_submissions_of_one_form_open_one_ticket(app, desk):
    results = _at_once(app, 3, lambda: _open(desk, external_id="form:race").id)
    assert len(set(results)) == 1
    assert Ticket.select().count() == 1 and Message.select().count() == 1


def test_racing_first_tickets_of_one_new_customer_give_one_contact_and_whole_tickets(app, desk):
    """On PostgreSQL the losers of the contact's unique key run their write again, afresh."""
    count = iter(range(100))
    ids = _at_once(app, 3, lambda: _open(desk, identity=Identity("email", "new@x.id"),
                                         external_id=f"form:{next(count)}").id)
    assert len(set(ids)) == 3 and Contact.select().count() == 1
    for ticket in Ticket.select():
        assert ticket.contact_id == Contact.get().id and ticket.department_id == desk.support.id
        assert [e[0] for e in events(ticket)] == ["created"]
        assert Message.get(Message.ticket == ticket).contact_id == ticket.contact_id


def test_continue_open_threads_onto_the_contacts_open_ticket(desk, spy):
    first = tickets.receive_message(channel="telegram", identity=Identity("telegram", "77"),
                                    text="my payout is late", external_id="1",
                                    continue_open=True)
    follow = tickets.receive_message(channel="telegram", identity=Identity("telegram", "77"),
                                     text="any news?", external_id="2", continue_open=True)
    assert follow.ticket.id == first.ticket.id and not follow.created
    assert spy.names()[-1] == "message_added"
    assert Ticket.get_by_id(first.ticket.id).last_customer_message_at is not None


def test_reply_to_resolved_ticket_reopens_it(desk, spy):
    ticket = _open(desk)
    tickets.change_status(ticket, Status.RESOLVED, Actor.agent(desk.agent))
    result = tickets.receive_message(channel="email", identity=CUSTOMER, text="still broken",
                                     external_id="<m2@example.id>", thread_to=ticket)
    assert result.ticket.id == ticket.id
    fresh = Ticket.get_by_id(ticket.id)
    assert fresh.status == Status.OPEN and fresh.resolved_at is None
    assert spy.of("ticket_status_changed")[-1]["new"] == Status.OPEN


def test_reply_to_closed_ticket_opens_a_linked_follow_up(desk):
    ticket = _open(desk)
    tickets.change_status(ticket, Status.CLOSED, Actor.agent(desk.agent))
    result = tickets.receive_message(channel="email", identity=CUSTOMER, text="one more thing",
                                     external_id="<m3@example.id>", thread_to=ticket)
    assert result.created and result.ticket.id != ticket.id
    assert result.ticket.category_id == ticket.category_id
    link = TicketLink.get(TicketLink.ticket == result.ticket)
    assert (link.other_id, link.kind) == (ticket.id, "follow_up_of")


def test_participants_are_recorded_once(desk):
    result = tickets.receive_message(
        channel="email", identity=CUSTOMER, text="see cc", external_id="<cc@x>",
        participants=[Identity("email", "boss@studio.test"), Identity("email", "BOSS@studio.test"),
                      CUSTOMER])
    rows = TicketParticipant.select().where(TicketParticipant.ticket == result.ticket)
    assert [r.contact.email for r in rows] == ["boss@studio.test"]


# -- agents -------------------------------------------------------------------------------


def test_reply_sets_first_response_status_and_waits_on_portal(desk, spy):
    ticket = _open(desk)
    message = tickets.reply(ticket, desk.agent, "Please reset your password here.")
    fresh = Ticket.get_by_id(ticket.id)
    assert fresh.first_response_at is not None and fresh.status == Status.PENDING
    # no plugin owns the web channel: the reply waits on the tracking page
    assert Message.get_by_id(message.id).delivery_state == Delivery.PORTAL
    assert [e[0] for e in events(ticket)] == ["created", "reply", "status"]
    assert spy.names()[-2:] == ["ticket_status_changed", "message_added"]


class Sender:
    """Owns the telegram channel; sends by returning ``result`` or raising ``error``."""

    def __init__(self, result=None, error=None):
        self.result, self.error, self.sent = result, error, []

    @hookimpl
    def register_channels(self):
        return [ChannelSpec("telegram", "Telegram", can_push=True, identity_kind="telegram")]

    @hookimpl
    def deliver_message(self, ticket, message, recipient, idempotency_key):
        self.sent.append((message.id, recipient, idempotency_key))
        if self.error:
            raise self.error
        return self.result


def test_deliver_message_owner_reports_the_outcome(make_app):
    from tests.factories import build_desk

    sender = Sender(DeliveryResult(state=Delivery.SENT, external_id="tg-99"))
    app = make_app(extra_plugins=(sender,))
    with app.app_context(), core_db.connection():
        desk = build_desk()
        inbound = tickets.receive_message(channel="telegram", identity=Identity("telegram", "5"),
                                          text="hello", external_id="u1", notify=False)
        message = tickets.reply(inbound.ticket, desk.agent, "Hi! How can we help?")
        stored = Message.get_by_id(message.id)
        assert sender.sent == [(message.id, "5", stored.delivery_key)]
        assert stored.delivery_state == Delivery.SENT and stored.external_id == "tg-99"
        tickets.record_delivery(message.id, Delivery.READ)
        tickets.record_delivery(message.id, Delivery.DELIVERED)  # late receipt: no step back
        assert Message.get_by_id(message.id).delivery_state == Delivery.READ


def test_deliver_message_that_raises_is_retried_then_marked_failed(make_app):
    from tests.factories import build_desk

    app = make_app(extra_plugins=(Sender(error=ConnectionError("api down")),),
                   outbox_max_attempts=1)
    with app.app_context(), core_db.connection():
        desk = build_desk()
        inbound = tickets.receive_message(channel="telegram", identity=Identity("telegram", "5"),
                                          text="hello", external_id="u1", notify=False)
        message = tickets.reply(inbound.ticket, desk.agent, "Hi!")
        stored = Message.get_by_id(message.id)
        assert stored.delivery_state == Delivery.FAILED and "api down" in stored.delivery_error
        assert "delivery_failed" in [e[0] for e in events(inbound.ticket)]
        assert stored.body_text == "Hi!"  # kept, for the agent to retry


def test_note_is_internal_and_hidden_from_the_customer(desk, spy):
    ticket = _open(desk)
    note = tickets.add_note(ticket, desk.agent, "Customer is a VIP")
    assert Message.get_by_id(note.id).is_internal
    assert note.id not in [m.id for m in tickets.public_thread(ticket)]
    assert Message.get_by_id(note.id).delivery_state == Delivery.NONE
    assert spy.of("message_added")[-1]["message"].is_internal


def test_status_assign_update_escalate_are_audited_with_hooks(desk, spy):
    ticket = _open(desk)
    actor = Actor.agent(desk.agent)
    tickets.assign(ticket, desk.agent, actor)
    tickets.change_status(ticket, Status.ON_HOLD, actor)
    tickets.update_ticket(ticket, actor, priority=Priority.HIGH, tags=["VIP", "vip", " login "])
    tickets.escalate(ticket, actor, "customer threatens chargeback")
    fresh = Ticket.get_by_id(ticket.id)
    assert fresh.assignee_id == desk.agent.id and fresh.status == Status.ON_HOLD
    assert fresh.tags == ["login", "vip"] and fresh.department_id == desk.management.id
    kinds = [e[0] for e in events(ticket)]
    assert kinds == ["created", "assignee", "status", "priority", "tags", "escalated"]
    assert all(e.staff_id == desk.agent.id for e in TicketEvent.select().where(
        TicketEvent.ticket == ticket, TicketEvent.kind != "created"))
    assert spy.of("ticket_assigned")[0]["new"].id == desk.agent.id
    assert spy.of("ticket_updated")[0]["changes"]["priority"] == ("normal", "high")
    assert spy.of("ticket_escalated")[0]["new"].id == desk.management.id


def test_no_op_changes_write_nothing(desk, spy):
    ticket = _open(desk)
    before = len(spy.calls)
    tickets.change_status(ticket, Status.NEW, Actor.agent(desk.agent))
    tickets.update_ticket(ticket, Actor.agent(desk.agent), priority=ticket.priority)
    tickets.assign(ticket, None, Actor.agent(desk.agent))
    assert len(spy.calls) == before and len(events(ticket)) == 1


@pytest.mark.parametrize("call", [
    lambda t, d: tickets.change_status(t, "done", Actor.agent(d.agent)),
    lambda t, d: tickets.update_ticket(t, Actor.agent(d.agent), priority="asap"),
    lambda t, d: tickets.reply(t, d.agent, "   "),
    lambda t, d: tickets.add_note(t, d.agent, ""),
])
def test_bad_requests_are_refused_and_change_nothing(desk, call):
    ticket = _open(desk)
    with pytest.raises(ServiceError):
        call(ticket, desk)
    assert len(events(ticket)) == 1


def test_closed_ticket_stays_closed(desk):
    ticket = _open(desk)
    tickets.change_status(ticket, Status.CLOSED, Actor.agent(desk.agent))
    with pytest.raises(ServiceError):
        tickets.change_status(ticket, Status.OPEN, Actor.agent(desk.agent))
    with pytest.raises(ServiceError):
        tickets.add_customer_reply(ticket, "hello?")


def test_customer_reply_and_resolve(desk):
    ticket = _open(desk)
    tickets.reply(ticket, desk.agent, "Try again now")
    tickets.add_customer_reply(ticket, "Works, thanks")
    assert Ticket.get_by_id(ticket.id).status == Status.OPEN  # pending -> open
    tickets.customer_resolve(ticket)
    fresh = Ticket.get_by_id(ticket.id)
    assert fresh.status == Status.RESOLVED and fresh.resolved_at is not None
    assert events(ticket)[-1] == ("status", "open", "resolved")
    assert TicketEvent.select().order_by(TicketEvent.id.desc()).first().actor_kind == "contact"


# -- event hooks: after commit, isolated ---------------------------------------------------


def test_ticket_created_hooks_are_isolated_and_run_after_commit(make_app, spy):
    from tests.factories import build_desk

    seen_committed = []

    class Broken:
        @hookimpl
        def ticket_created(self, ticket):
            raise RuntimeError("notification service down")

    class Checker:
        @hookimpl
        def ticket_created(self, ticket):
            # A separate connection sees the row only once it is committed.
            database = core_db.open_database(app.extensions["loket"].config["database_url"])
            try:
                seen_committed.append(database.execute_sql(
                    f"SELECT count(*) FROM ticket WHERE id = {int(ticket.id)}").fetchone()[0])
            finally:
                database.close()

    app = make_app(extra_plugins=(Broken(), Checker(), spy))
    with app.app_context(), core_db.connection():
        desk = build_desk()
        ticket = _open(desk)
        assert Ticket.get_or_none(Ticket.id == ticket.id) is not None  # kept
        assert seen_committed == [1]
        assert "ticket_created" in spy.names()  # the others still ran


def test_record_new_ticket_writes_in_the_tickets_transaction_and_a_failure_is_undone_alone(
        make_app, spy):
    from tests.factories import build_desk

    seen = []

    class Keeper:
        @hookimpl
        def record_new_ticket(self, ticket, message):
            # Inside the ticket's own write: its rows are there, nothing is committed yet.
            seen.append((core_db.database.obj.in_transaction(), ticket.id is not None,
                         message.body_text, spy.names().count("ticket_created")))
            tickets.add_note(ticket, None, "kept beside the ticket")

    class Broken:
        @hookimpl
        def record_new_ticket(self, ticket):
            tickets.add_note(ticket, None, "written, then undone")
            raise RuntimeError("the plugin's table is gone")

    app = make_app(extra_plugins=(Keeper(), Broken(), spy))
    with app.app_context(), core_db.connection():
        desk = build_desk()
        ticket = _open(desk)
        assert seen == [(True, True, "It says my password is wrong.", 0)]
        stored = Ticket.get_or_none(Ticket.id == ticket.id)
        assert stored is not None  # the ticket is not lost with the broken plugin's work
        notes = [m.body_text for m in Message.select().where(
            Message.ticket == ticket.id, Message.is_internal).order_by(Message.id)]
        assert notes == ["kept beside the ticket"]
        # The undone note's event never fires; the kept one's and the ticket's do, after.
        added = [c["message"].body_text for c in spy.of("message_added")]
        assert added == ["kept beside the ticket"]
        assert spy.names().count("ticket_created") == 1


def test_record_new_ticket_outside_a_unit_of_work_is_refused(app):
    from core.services.unit import record

    with app.app_context(), pytest.raises(RuntimeError):
        record("record_new_ticket", ticket=None, message=None)


# -- contacts -----------------------------------------------------------------------------


def test_merge_contacts_moves_identities_and_tickets(desk, spy):
    email_ticket = _open(desk)
    chat = tickets.receive_message(channel="telegram", identity=Identity("telegram", "99"),
                                   text="me again", external_id="t1")
    keep, dup = email_ticket.contact, chat.ticket.contact
    merge_contacts(keep, dup, Actor.agent(desk.admin))
    assert Ticket.get_by_id(chat.ticket.id).contact_id == keep.id
    assert find_contact("telegram", "99").id == keep.id
    # The moved ticket says so in its audit trail, and plugins hear of it.
    (row,) = [e for e in TicketEvent.select().where(TicketEvent.ticket == chat.ticket.id)
              if e.kind == "contact"]
    assert row.old_value.startswith(f"{dup.id}:") and row.new_value.startswith(f"{keep.id}:")
    assert row.staff_id == desk.admin.id
    (update,) = [c for c in spy.of("ticket_updated") if c["ticket"].id == chat.ticket.id]
    assert update["changes"]["contact"][1].id == keep.id
    assert email_ticket.id not in [c["ticket"].id for c in spy.of("ticket_updated")]
    with pytest.raises(ValueError):
        merge_contacts(keep, keep)


def test_tracking_lookup_needs_the_right_key(desk):
    ticket = _open(desk)
    assert tickets.find_for_customer(ticket.id, ticket.access_key).id == ticket.id
    assert tickets.find_for_customer(ticket.id, "wrong") is None
    assert tickets.find_for_customer(ticket.id + 1000, ticket.access_key) is None
    assert tickets.find_for_customer("abc", ticket.access_key) is None
    assert tickets.tracking_url(ticket) == f"http://desk.test/t/{ticket.id}/{ticket.access_key}"


def test_text_no_database_can_store_is_made_storable_not_lost(desk):
    result = tickets.receive_message(
        channel="email", identity=Identity("email", "odd@example.id"),
        subject="Pembayaran\x00gagal", text="broken \ud800 surrogate and a NUL\x00 here",
        html="<p>hi\x00</p>", external_id="<nul@example.id>")
    stored = Message.get_by_id(result.message.id)
    assert stored.body_text == "broken ? surrogate and a NUL here"
    assert stored.body_html == "<p>hi</p>"
    assert Ticket.get_by_id(result.ticket.id).subject == "Pembayarangagal"


def test_odd_ids_addresses_and_file_names_are_kept_and_still_deduplicate(desk, tmp_path):
    long_id = "<" + "x" * 400 + "@mail.example.id>"
    long_address = "a" * 300 + "@example.id"
    stored = Storage(tmp_path).save_bytes(b"plain text", "bad\udce9\x00name.txt",
                                          max_bytes=100, allowed_types=["text/plain"])
    assert stored.filename == "badname.txt"
    first = tickets.receive_message(channel="email", identity=Identity("email", long_address),
                                    text="hello", external_id=long_id + "\x00",
                                    attachments=[stored])
    again = tickets.receive_message(channel="email", identity=Identity("email", long_address),
                                    text="hello", external_id=long_id + "\x00")
    assert not first.duplicate and again.duplicate
    message = Message.get_by_id(first.message.id)
    assert len(message.external_id) <= 255
    contact = Contact.get_by_id(first.ticket.contact_id)
    assert contact.email is None  # not a usable address; the identity still finds them
    assert len(ContactIdentity.get(ContactIdentity.contact == contact).value) <= 254
    assert find_contact("email", long_address).id == contact.id
    assert Attachment.get(Attachment.message == message).filename == "badname.txt"


def test_clock_at_records_what_happened_when_it_happened(desk):
    import datetime as dt

    from core.models import clock_at

    opened = dt.datetime(2026, 3, 2, 8, 30)
    with clock_at(opened):
        ticket = _open(desk)
    with clock_at(opened + dt.timedelta(hours=2)):
        tickets.reply(ticket, desk.agent, "Fixed")
    fresh = Ticket.get_by_id(ticket.id)
    assert fresh.created_at == opened
    assert fresh.first_response_at - fresh.created_at == dt.timedelta(hours=2)
    assert TicketEvent.select().order_by(TicketEvent.id.desc()).first().created_at == \
        opened + dt.timedelta(hours=2)


def test_open_ticket_with_the_same_external_id_twice_gives_one_ticket(desk, spy):
    first = _open(desk, external_id="form:abc")
    again = _open(desk, external_id="form:abc", text="sent again after a timeout")
    assert again.id == first.id
    assert Ticket.select().count() == 1 and Message.select().count() == 1
    assert spy.names().count("ticket_created") == 1


def test_customer_message_and_internal_note_each_write_their_audit_row(desk):
    ticket = _open(desk)
    reply = tickets.add_customer_reply(ticket, "Still cannot log in.")
    note = tickets.add_note(ticket, desk.agent, "Checked the logs: password resets fail.")
    rows = list(TicketEvent.select().where(TicketEvent.ticket == ticket)
                .order_by(TicketEvent.id))
    by_detail = {row.detail: row for row in rows}
    customer = by_detail[f"message={reply.id}"]
    assert customer.kind == "message" and customer.actor_kind == "contact"
    assert customer.contact_id == ticket.contact_id and customer.staff_id is None
    internal = by_detail[f"message={note.id}"]
    assert internal.kind == "note" and internal.actor_kind == "staff"
    assert internal.staff_id == desk.agent.id
