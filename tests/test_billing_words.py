"""The billing desk's word rules, without a database: roots, phrases, amounts in text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from plugins.billing_desk.money import AmountError, amounts_in, parse_amount
from plugins.billing_desk.words import (
    Phrase,
    english_roots,
    filipino_roots,
    find,
    indonesian_roots,
    tokens,
)


@pytest.mark.parametrize("word, root", [
    ("nagbayad", "bayad"), ("magbabayad", "bayad"), ("pagbabayad", "bayad"),
    ("binayaran", "bayad"), ("bayaran", "bayad"), ("sinisingil", "singil"),
    ("nasingil", "singil"), ("singilin", "singil"), ("maningil", "singil"),
    ("kinaltasan", "kaltas"), ("ibinalik", "balik"), ("bumili", "bili"),
])
def test_the_filipino_affix_stripper_finds_the_root(word, root):
    assert root in filipino_roots(word)


@pytest.mark.parametrize("word, root", [
    ("pembayarannya", "bayar"), ("ditagih", "tagih"), ("penagihan", "tagih"),
    ("terpotong", "potong"), ("langganannya", "langganan"), ("berlangganan", "langganan"),
    ("pengembalian", "kembali"), ("dikembalikan", "kembali"), ("bayarlah", "bayar"),
    ("membatalkan", "batal"), ("diperpanjang", "perpanjang"), ("menyanggah", "sanggah"),
])
def test_indonesian_roots_restore_what_men_and_pen_swallow(word, root):
    assert root in indonesian_roots(word)


def test_snowball_alone_misses_nasal_assimilation_which_is_why_rules_are_added():
    import snowballstemmer

    stem = snowballstemmer.stemmer("indonesian").stemWord
    assert stem("pengembalian") != stem("kembali")  # "embali" vs "kembali"
    assert indonesian_roots("pengembalian") & indonesian_roots("kembali")


@pytest.mark.parametrize("word, root", [("refunded", "refund"), ("charges", "charg"),
                                        ("cancelling", "cancel"), ("cancelled", "cancel"),
                                        ("billing", "bill")])
def test_english_inflections_share_a_stem(word, root):
    assert english_roots(word) == {root}


def test_words_match_whole_words_never_substrings():
    charge = [Phrase("charge", "en", "strong")]
    assert find(charge, "you charged me") and find(charge, "CHARGES!")
    assert not find(charge, "recharge the stream") and not find(charge, "discharged")
    bayad = [Phrase("bayad", "fil", "strong")]
    assert not find(bayad, "bayani") and not find(bayad, "bayanihan")
    tagihan = [Phrase("tagihan", "id", "strong")]
    assert not find(tagihan, "tag saya") and find(tagihan, "Ditagih lagi")


def test_phrases_of_several_words_match_in_order():
    refund = [Phrase("pengembalian dana", "id", "strong")]
    assert find(refund, "Saya minta pengembalian dananya")
    assert not find(refund, "dana pengembalian")
    money_back = [Phrase("money back", "en", "strong")]
    assert find(money_back, "I want my MONEY BACK now")
    assert not find(money_back, "back to the money page")


def test_hyphenated_taglish_counts_each_part():
    assert {"icancel", "cancel"} <= set(tokens("i-cancel")[0])
    assert "i" not in tokens("i-cancel")[0]  # a one-letter part is an affix, not a word
    assert find([Phrase("refund", "fil", "strong")], "nag-refund na ako")


@pytest.mark.parametrize("text, found", [
    ("I was charged $29.99 twice", [(Decimal("29.99"), "USD")]),
    ("USD 1,250.00", [(Decimal("1250.00"), "USD")]),
    ("Rp 5.000.000 terpotong", [(Decimal("5000000"), "IDR")]),
    ("Rp 150.000,00", [(Decimal("150000.00"), "IDR")]),
    ("₱12,000 nasingil", [(Decimal("12000"), "PHP")]),
    ("300 EUR please", [(Decimal("300"), "EUR")]),
    ("¥50000", [(Decimal("50000"), "JPY")]),
    ("version 2.5 of the app, 3 videos", []),
])
def test_amounts_written_in_text_are_read_with_their_currency(text, found):
    assert amounts_in(text) == found


@pytest.mark.parametrize("text, currency, error", [
    ("10.999", "USD", "decimals"), ("1500.5", "JPY", "decimals"), ("150.000", "IDR", "decimals"),
    ("-1", "USD", "negative"), ("0.00", "EUR", "negative"), ("1e5", "USD", "format"),
    ("NaN", "USD", "format"), ("100001", "USD", "huge"), ("5", "XXX", "currency"),
])
def test_parse_amount_refuses_bad_amounts(text, currency, error):
    with pytest.raises(AmountError) as info:
        parse_amount(text, currency)
    assert info.value.code == error


def test_parse_amount_keeps_the_currencys_decimals():
    assert parse_amount("29.9", "USD") == Decimal("29.90")
    assert str(parse_amount("1500", "JPY")) == "1500"
    assert str(parse_amount("150000.00", "IDR")) == "150000"  # ISO's printed ",00"
