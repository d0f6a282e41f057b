"""Routing by meaning: a table of realistic messages in English, Indonesian and Filipino.

Every ticket is opened through ``open_ticket`` in the "Registration and login"
category (whose department is Support), so only the text can send it to
Billing. Rows marked True must reach Billing, rows marked False must stay.
``test_the_routing_tables_accuracy`` prints the accuracy the README quotes.
"""

from __future__ import annotations

from typing import Any

import pytest

from core import db as core_db
from core.models import Ticket
from core.services.tickets import Identity, open_ticket

from .factories import build_desk

BILLING, STAYS = True, False

TABLE: list[tuple[str, str, bool]] = [
    # -- English: inflections, and "cancel" only beside a billing word ---------------------
    ("en", "I was charged twice for my membership this month", BILLING),
    ("en", "Please refund my last payment", BILLING),
    ("en", "I cancelled but you still charged my card", BILLING),
    ("en", "Why is there a line from EPOCH.COM on my statement?", BILLING),
    ("en", "I want my money back", BILLING),
    ("en", "My subscription renewed without asking me", BILLING),
    ("en", "Cancel my subscription please", BILLING),
    ("en", "Stop the auto renew on my account", BILLING),
    ("en", "I was refunded only half of it", BILLING),
    ("en", "How do I cancel my premium membership?", BILLING),
    ("en", "There is an unknown transaction on my credit card", BILLING),
    ("en", "My bank did a chargeback, what now", BILLING),
    ("en", "Can I get invoices for my purchases?", BILLING),
    ("en", "CCBILL.COM*SITE 888-596-9279 what is this", BILLING),
    ("en", "Renew my plan for another year", BILLING),
    ("en", "I paid but my account is still free", BILLING),
    ("en", "Overcharged by $30 this month", BILLING),
    ("en", "Cancelling did not help, you keep billing me", BILLING),
    # -- Indonesian: ber-, meN-, di-, ter-, peN-, ke-...-an, -kan, -i, -nya, -lah ------------
    ("id", "Pembayarannya sudah terpotong dari kartu tapi akun belum aktif", BILLING),
    ("id", "Saya ditagih dua kali bulan ini", BILLING),
    ("id", "Tolong batalkan langganannya", BILLING),
    ("id", "Saldo saya terpotong Rp 150.000 tanpa alasan", BILLING),
    ("id", "Saya minta pengembalian dana", BILLING),
    ("id", "Kenapa ada tagihan dari SEGPAY di rekening saya?", BILLING),
    ("id", "Tolong kembalikan uang saya", BILLING),
    ("id", "Bagaimana cara berhenti berlangganan?", BILLING),
    ("id", "Perpanjangan paket premium saya gagal", BILLING),
    ("id", "Pembayaran saya ditolak padahal saldo cukup", BILLING),
    ("id", "Sudah bayar tapi tidak bisa masuk, saya mau refund", BILLING),
    ("id", "Transaksi EPOCH *SUPPORT ini tidak saya kenal", BILLING),
    ("id", "Biayanya terlalu mahal, bayarlah yang wajar", BILLING),
    ("id", "Penagihan kartu kredit saya salah", BILLING),
    ("id", "Kenapa saya dikenai biaya lagi?", BILLING),
    # -- Filipino: nag-, mag-, na-, -um-, -in-, i-, pag-, reduplication, Taglish -------------
    ("fil", "Nagbayad na ako pero hindi pa rin active ang account ko", BILLING),
    ("fil", "Bakit ako sinisingil ulit?", BILLING),
    ("fil", "Nasingil ako ng dalawang beses", BILLING),
    ("fil", "Gusto ko ng refund sa binayaran ko", BILLING),
    ("fil", "Paki-cancel po ng subscription ko", BILLING),
    ("fil", "Magbabayad sana ako pero ayaw tanggapin ng card ko", BILLING),
    ("fil", "I-cancel niyo na po ang membership ko", BILLING),
    ("fil", "Kinaltasan ako ng ₱500 sa card ko", BILLING),
    ("fil", "Na-charge ako kahit na-cancel ko na", BILLING),
    ("fil", "Doble ang pagbabayad ko, pakibalik", BILLING),
    ("fil", "Hindi ko kilala itong VTSUP.COM sa bank statement ko", BILLING),
    ("fil", "Paano mag-renew ng premium?", BILLING),
    ("fil", "Singilin niyo na lang ako sa susunod na buwan", BILLING),
    ("fil", "Ibalik ang pera ko please", BILLING),
    ("fil", "Bayaran ko ba ulit?", BILLING),
    # -- Must stay: registration, login, content, and "cancel" without billing --------------
    ("en", "Cancel my registration email", STAYS),
    ("en", "I can't log in, my password reset link expired", STAYS),
    ("en", "How do I change my profile picture?", STAYS),
    ("en", "My video was removed for copyright", STAYS),
    ("en", "Please cancel the upload, I picked the wrong video", STAYS),
    ("en", "The verification email never arrives", STAYS),
    ("en", "Renew my password please", STAYS),
    ("en", "Stop sending me newsletters", STAYS),
    ("en", "The page does not load in Chrome", STAYS),
    ("en", "I saw your billboard downtown, great campaign", STAYS),
    ("en", "Where is the recharge button for the live stream?", STAYS),
    ("id", "Saya tidak bisa masuk ke akun saya", STAYS),
    ("id", "Email verifikasi pendaftaran tidak sampai", STAYS),
    ("id", "Tolong batalkan pendaftaran email saya", STAYS),
    ("id", "Video saya terpotong di tengah", STAYS),
    ("id", "Konten saya dihapus karena hak cipta", STAYS),
    ("id", "Bagaimana cara mengganti kata sandi?", STAYS),
    ("id", "Bayangan di foto profil saya aneh", STAYS),
    ("fil", "Hindi ako maka-login sa account ko", STAYS),
    ("fil", "Paano palitan ang password ko?", STAYS),
    ("fil", "I-cancel ang registration email ko", STAYS),
    ("fil", "Tinanggal ang video ko kahit akin naman", STAYS),
    ("fil", "Hindi dumarating ang verification email", STAYS),
    ("fil", "Nag-upload ako pero hindi lumalabas", STAYS),
    ("fil", "Bayani ang tawag nila sa studio namin", STAYS),
]


# Written after the rules and the table above were settled, and never tuned for: the
# figure for messages the rules have not seen. Misses here are known, not hidden.
HELD_OUT: list[tuple[str, str, bool]] = [
    ("en", "my card got debited 3 times", BILLING),
    ("en", "how much is the VIP?", BILLING),
    ("en", "Please stop charging me", BILLING),
    ("en", "I need to cancel my account, I'm leaving", STAYS),
    ("en", "Please delete my account and all data", STAYS),
    ("en", "Cancel my livestream booking", STAYS),
    ("id", "Tolong hentikan perpanjangan otomatis", BILLING),
    ("id", "Kok uang saya hilang 50 ribu", BILLING),
    ("id", "Saya sudah membayar tapi premium belum aktif", BILLING),
    ("fil", "Ang mahal naman ng singil niyo", BILLING),
    ("fil", "Pwede bang bayaran via GCash?", BILLING),
    ("fil", "Nagpa-refund ako last week pero wala pa", BILLING),
    ("fil", "Mag-unsubscribe na ako", BILLING),
]


@pytest.fixture
def billing_desk(make_app: Any) -> Any:
    app = make_app(plugins=["billing_desk"])
    with app.app_context(), core_db.connection():
        desk = build_desk()
        from plugins.billing_desk.demo import load

        load()  # the demo centers, whose descriptors some rows quote
        yield desk


def routed_to_billing(desk: Any, text: str, language: str) -> bool:
    ticket = open_ticket(identity=Identity("email", "cust@example.test"), subject="Help",
                         text=text, category=desk.login, language=language)
    fresh = Ticket.get_by_id(ticket.id)
    # A chargeback or a large dispute goes on to Billing's escalation target at once.
    return fresh.department_id in (desk.billing.id, desk.management.id) and \
        "billing" in fresh.tags


def test_the_table_is_large_and_covers_three_languages():
    assert len(TABLE) >= 60
    assert {language for language, _text, _want in TABLE} == {"en", "id", "fil"}
    assert sum(1 for *_rest, want in TABLE if want is STAYS) >= 20


@pytest.mark.parametrize("language, text, want", TABLE, ids=[t for _l, t, _w in TABLE])
def test_route_ticket_by_words(billing_desk: Any, language: str, text: str, want: bool):
    assert routed_to_billing(billing_desk, text, language) is want


def _accuracy(desk: Any, table: list[tuple[str, str, bool]], name: str) -> float:
    right = {language: [0, 0] for language in ("en", "id", "fil")}
    misses = []
    for language, text, want in table:
        got = routed_to_billing(desk, text, language)
        right[language][0] += got is want
        right[language][1] += 1
        if got is not want:
            misses.append(text)
    total = sum(r for r, _n in right.values())
    print(f"\n{name}: {total}/{len(table)} right ({100 * total / len(table):.1f}%); "
          + ", ".join(f"{lang} {r}/{n}" for lang, (r, n) in right.items()))
    for text in misses:
        print(f"  miss: {text}")
    return total / len(table)


def test_the_routing_tables_accuracy(billing_desk: Any, capsys: Any):
    with capsys.disabled():
        seen = _accuracy(billing_desk, TABLE, "billing routing table")
        unseen = _accuracy(billing_desk, HELD_OUT, "held-out rows")
    assert seen >= 0.95
    assert unseen >= 0.75  # a regression guard, not a claim of perfection


def test_phrases_are_read_once_and_an_admins_change_applies_at_once(billing_desk: Any,
                                                                   monkeypatch: Any):
    from plugins.billing_desk import models
    from plugins.billing_desk.models import BillingPhrase
    from plugins.billing_desk.routing import active_phrases

    first = active_phrases()
    assert active_phrases() is first  # one read serves the next tickets
    assert not routed_to_billing(billing_desk, "my parcel never arrived", "en")
    phrase = BillingPhrase.create(text="parcel", language="en", kind="strong")
    assert routed_to_billing(billing_desk, "my parcel never arrived", "en")
    phrase.delete_instance()
    assert not routed_to_billing(billing_desk, "my parcel never arrived", "en")
    # A change another process made past the models is seen once the cache has aged.
    core_db.database.execute_sql(
        "INSERT INTO billing_phrase (text, language, kind, request_kind, active) "
        "VALUES ('parcel', 'en', 'strong', '', TRUE)")
    monkeypatch.setattr(models, "READ_CACHE_SECONDS", 0.0)
    assert routed_to_billing(billing_desk, "my parcel never arrived", "en")


def test_a_ticket_is_read_once_for_routing_and_for_its_case(billing_desk: Any, monkeypatch: Any):
    # route_ticket (before the write) and ticket_created (after the commit) ask the same
    # question about the same ticket: the words are looked up once, the answers agree.
    from plugins.billing_desk import routing
    from plugins.billing_desk.models import BillingCase

    calls: list[str] = []
    real_find = routing.words.find
    monkeypatch.setattr(routing.words, "find", lambda phrases, text: (
        calls.append(text), real_find(phrases, text))[1])
    ticket = open_ticket(identity=Identity("email", "once@example.test"), subject="Refund",
                         text="Please refund my last payment", category=billing_desk.login,
                         language="en")
    assert calls == ["Refund\nPlease refund my last payment"]
    case = BillingCase.get(BillingCase.ticket == ticket.id)
    assert case.request_kind == "refund"
    # Another ticket with other words is read afresh; the same words again are not.
    open_ticket(identity=Identity("email", "twice@example.test"), subject="Refund",
                text="I was charged twice", category=billing_desk.login, language="en")
    assert len(calls) == 2


def test_a_billing_case_commits_in_its_tickets_own_transaction(billing_desk: Any,
                                                                 monkeypatch: Any) -> None:
    from plugins.billing_desk import cases
    from plugins.billing_desk.models import BillingCase

    writes: list[int] = []
    real_write = core_db.write_transaction
    monkeypatch.setattr(core_db, "write_transaction",
                        lambda: (writes.append(1), real_write())[1])
    inside: list[bool] = []
    real_insert = cases._insert_case
    monkeypatch.setattr(cases, "_insert_case", lambda case: (
        inside.append(core_db.database.obj.in_transaction()), real_insert(case))[1])
    ticket = open_ticket(identity=Identity("email", "one@example.test"), subject="Refund",
                         text="Please refund my last payment", category=billing_desk.login,
                         language="en")
    assert inside == [True] and len(writes) == 1  # one write transaction for both rows
    assert BillingCase.get(BillingCase.ticket == ticket.id).request_kind == "refund"


def test_a_failing_billing_case_never_loses_its_ticket(billing_desk: Any, monkeypatch: Any,
                                                      caplog: Any) -> None:
    from plugins.billing_desk import cases
    from plugins.billing_desk.models import BillingCase

    def broken(case: Any) -> Any:
        raise core_db.peewee.OperationalError("no such table: billing_case")

    monkeypatch.setattr(cases, "_insert_case", broken)
    ticket = open_ticket(identity=Identity("email", "kept@example.test"), subject="Chargeback",
                         text="My bank did a chargeback, what now", category=billing_desk.login,
                         language="en")
    fresh = Ticket.get_by_id(ticket.id)  # committed, routed as before
    assert "billing" in fresh.tags and "chargeback" in fresh.tags
    assert not BillingCase.select().where(BillingCase.ticket == ticket.id).exists()
    assert "billing_desk failed in record_new_ticket" in caplog.text


def test_the_case_insert_writes_every_column(billing_desk: Any) -> None:
    import datetime as dt
    from decimal import Decimal

    from plugins.billing_desk.centers import active_centers
    from plugins.billing_desk.models import BillingCase

    statement = core_db.STATEMENTS["billing_desk.case_insert"]
    ticket = open_ticket(identity=Identity("email", "row@example.test"), subject="Hello",
                         text="nothing about money", category=billing_desk.login, language="en")
    center = active_centers()[0]
    values = dict(ticket=ticket.id, center=center.id, request_kind="refund",
                  transaction_id="TX-1", amount=Decimal("12.50"), currency="USD",
                  charged_on=dt.date(2026, 11, 2), matched="refund", escalation_reason="why",
                  created_at=dt.datetime(2026, 11, 3, 4, 5, 6))
    case = statement(BillingCase(**values))
    stored = BillingCase.select().where(BillingCase.id == case.id).dicts().get()
    assert stored == {"id": case.id, **values}
    with pytest.raises(core_db.peewee.IntegrityError):  # one case per ticket
        statement(BillingCase(**values))
