"""The phrases and dispute thresholds a new desk starts with; admins change them in the console.

Strong phrases speak of billing on their own. Weak ones ("cancel", "batal",
"i-cancel") count only beside a context word (a card, a statement, a
membership): "cancel my registration email" is not a billing question.
Chargeback phrases route and escalate at once. A phrase matches whole words and
their inflections and affixes (see plugins/billing_desk/words.py), so one
entry covers "refund", "refunded" and "refunds", or "tagihan", "ditagih" and
"penagihan".
"""
from peewee import *

# (text, kind, request kind)
PHRASES = {
    "en": [
        ("refund", "strong", "refund"), ("money back", "strong", "refund"),
        ("charge", "strong", "explain"), ("overcharge", "strong", "explain"),
        ("double charge", "strong", "refund"), ("billing", "strong", "explain"),
        ("bill", "strong", "explain"), ("invoice", "strong", "explain"),
        ("receipt", "strong", "explain"), ("payment", "strong", ""), ("paid", "strong", ""),
        ("pay", "strong", ""), ("subscription", "strong", ""), ("subscribe", "strong", ""),
        ("unsubscribe", "strong", "cancel"), ("transaction", "strong", "explain"),
        ("purchase", "strong", ""), ("debit", "strong", "explain"),
        ("dispute", "strong", "refund"),
        ("cancel", "weak", "cancel"), ("renew", "weak", "renew"),
        ("stop", "weak", "cancel"), ("terminate", "weak", "cancel"),
        ("card", "context", ""), ("credit card", "context", ""), ("bank", "context", ""),
        ("statement", "context", ""), ("membership", "context", ""), ("premium", "context", ""),
        ("plan", "context", ""), ("monthly", "context", ""), ("trial", "context", ""),
        ("price", "context", ""), ("fee", "context", ""), ("money", "context", ""),
        ("account statement", "context", ""), ("auto renew", "context", ""),
        ("chargeback", "chargeback", "refund"), ("charge back", "chargeback", "refund"),
    ],
    "id": [
        ("tagihan", "strong", "explain"), ("pembayaran", "strong", ""),
        ("langganan", "strong", ""), ("pengembalian dana", "strong", "refund"),
        ("refund", "strong", "refund"), ("uang kembali", "strong", "refund"),
        ("kembalikan uang", "strong", "refund"), ("transaksi", "strong", "explain"),
        ("biaya", "strong", "explain"), ("debet", "strong", "explain"),
        ("batal", "weak", "cancel"), ("berhenti", "weak", "cancel"),
        ("perpanjang", "weak", "renew"), ("terpotong", "weak", "explain"),
        ("kartu", "context", ""), ("kartu kredit", "context", ""), ("rekening", "context", ""),
        ("saldo", "context", ""), ("uang", "context", ""), ("bank", "context", ""),
        ("keanggotaan", "context", ""), ("premium", "context", ""), ("paket", "context", ""),
        ("bulanan", "context", ""), ("harga", "context", ""), ("pulsa", "context", ""),
        ("chargeback", "chargeback", "refund"), ("sanggah transaksi", "chargeback", "refund"),
    ],
    "fil": [
        ("bayad", "strong", ""), ("singil", "strong", "explain"),
        ("nasingil", "strong", "explain"), ("refund sa bayad", "strong", "refund"),
        ("refund", "strong", "refund"), ("charge", "strong", "explain"),
        ("subscription", "strong", ""), ("transaksyon", "strong", "explain"),
        ("resibo", "strong", "explain"), ("ibalik ang pera", "strong", "refund"),
        ("i-cancel", "weak", "cancel"), ("cancel", "weak", "cancel"),
        ("ihinto", "weak", "cancel"), ("itigil", "weak", "cancel"),
        ("renew", "weak", "renew"), ("kaltas", "weak", "explain"),
        ("bawas", "weak", "explain"),
        ("card", "context", ""), ("kard", "context", ""), ("bangko", "context", ""),
        ("pera", "context", ""), ("membership", "context", ""), ("premium", "context", ""),
        ("buwanan", "context", ""), ("presyo", "context", ""), ("load", "context", ""),
        ("chargeback", "chargeback", "refund"),
    ],
}

# A dispute above these goes straight to the billing department's escalation target.
THRESHOLDS = [("USD", "200"), ("EUR", "200"), ("GBP", "150"), ("JPY", "30000"),
              ("IDR", "3000000"), ("PHP", "10000")]


def up(migrator, db):
    rows = [(text, language, kind, request_kind, True)
            for language, phrases in PHRASES.items()
            for text, kind, request_kind in phrases]
    placeholder = db.param
    with db.atomic():
        for row in rows:
            db.execute_sql(
                "INSERT INTO billing_phrase (text, language, kind, request_kind, active) "
                f"VALUES ({', '.join([placeholder] * 5)})", row)
        for currency, amount in THRESHOLDS:
            db.execute_sql("INSERT INTO billing_dispute_threshold (currency, amount) "
                           f"VALUES ({placeholder}, {placeholder})", (currency, amount))


def down(migrator, db):
    db.execute_sql("DELETE FROM billing_phrase")
    db.execute_sql("DELETE FROM billing_dispute_threshold")
