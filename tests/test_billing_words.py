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


# -- The phrase table and the center names, worked out once ------------------------------------


def _shipped_phrases() -> list[Phrase]:
    import importlib.util
    from pathlib import Path

    import plugins.billing_desk as package

    path = Path(package.__file__).parent / "migrations" / "0002_shipped_phrases.py"
    spec = importlib.util.spec_from_file_location("shipped_phrases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [Phrase(text, language, kind, request_kind)
            for language, rows in module.PHRASES.items()
            for text, kind, request_kind in rows]


def _every_phrase_tried(phrases: list[Phrase], text: str) -> list[tuple[str, str, int]]:
    """``find`` as it was: every phrase tried against every place of the text."""
    from plugins.billing_desk.words import roots

    words = tokens(text)
    found = []
    for phrase in phrases:
        wanted = phrase.words
        for start in range(len(words) - len(wanted) + 1):
            if wanted and all(wanted[k] & roots(words[start + k], phrase.language)
                              for k in range(len(wanted))):
                found.append((phrase.text, phrase.language, start))
                break
    return found


def test_the_phrase_table_finds_what_trying_every_phrase_finds():
    from plugins.billing_desk.words import PhraseTable

    from .test_billing_routing import HELD_OUT, TABLE

    phrases = _shipped_phrases()
    table = PhraseTable(phrases)
    texts = [text for _language, text, _billing in TABLE + HELD_OUT] + [
        "Refund the refund, money back and MONEY-BACK; nag-refund na, i-cancel ko na",
        "Ditagih lagi, tagihan dan penagihan: pengembalian dananya", "", "123 456"]
    assert sum(1 for text in texts if _every_phrase_tried(phrases, text)) > len(texts) // 2
    for text in texts:
        expected = _every_phrase_tried(phrases, text)
        assert [(f.phrase.text, f.phrase.language, f.at) for f in find(table, text)] == expected
        assert [(f.phrase.text, f.phrase.language, f.at) for f in find(phrases, text)] == expected


def test_a_kept_phrase_table_never_works_out_a_phrases_words_again(monkeypatch):
    from plugins.billing_desk.words import PhraseTable

    table = PhraseTable(_shipped_phrases())
    monkeypatch.setattr(Phrase, "words", property(lambda self: pytest.fail("worked out again")))
    assert [f.phrase.text for f in find(table, "Please refund my last payment")][:1] == ["refund"]


def test_text_is_normalised_the_same_on_the_ascii_shortcut():
    from plugins.billing_desk.words import normalise

    assert normalise("EPOCH.COM Refund") == "epoch.com refund"
    assert normalise("ÉPOCH.COM Ｒefund") == "epoch.com refund"  # accents, full-width letters
    assert normalise("") == "" and normalise(None) == ""  # type: ignore[arg-type]
    assert tokens("Nag-refund ako’t i-cancel") == tokens("nag-refund ako't I-CANCEL")


class _Center:
    def __init__(self, name: str, descriptors: str = ""):
        self.name, self.descriptors = name, descriptors

    def descriptor_list(self) -> list[str]:
        return [line.strip() for line in self.descriptors.splitlines() if line.strip()]


def _centers() -> list[_Center]:
    return [_Center("Epoch", "EPOCH.COM\nEPOCH *SUPPORT"), _Center("CCBill", "CCBILL.COM*SITE"),
            _Center("Verotel", "CARDBILLING.COM\nVTSUP.COM"), _Center("Segpay", "SEGPAY*EU"),
            _Center("AB", "AB")]


def _every_span(text: str, centers: list[_Center]) -> tuple[str, str] | None:
    """``match_center`` as it was: every run of up to six words joined, then looked up."""
    from plugins.billing_desk.centers import MAX_SPAN, letter_runs, names_of

    runs = letter_runs(text)
    spans = {"".join(runs[s:e]) for s in range(len(runs))
             for e in range(s + 1, min(s + MAX_SPAN, len(runs)) + 1)}
    best = None
    for center in centers:
        for name in names_of(center):
            key = "".join(letter_runs(name))
            if len(key) >= 3 and key in spans and (best is None or len(key) > best[0]):
                best = (len(key), (center.name, name))
    return best[1] if best else None


@pytest.mark.parametrize("text", [
    "Why is there a line from EPOCH.COM on my statement?", "epoch com", "EPOCHCOM 12.00",
    "E P O C H . C O M", "E P O C H C O M", "epochal charge", "CCBILL.COM*SITE 888-596-9279",
    "cc bill com site", "thanks to Segpay", "CARDBILLING.COM 0800", "cardbilling", "ab ab ab",
    "segpayeu", "vtsup com and epoch", "", "1234 5678", "Ｅｐｏｃｈ.ｃｏｍ",
])
def test_a_center_is_found_in_text_as_joining_every_span_found_it(text):
    from plugins.billing_desk.centers import CenterTable, match_center

    centers = _centers()
    found = match_center(text, CenterTable(centers))
    assert ((found.center.name, found.descriptor) if found else None) == _every_span(text, centers)


def test_a_kept_center_table_reads_only_the_texts_letters(monkeypatch):
    from plugins.billing_desk import centers as module

    table = module.CenterTable(_centers())
    read: list[str] = []
    runs = module.letter_runs
    monkeypatch.setattr(module, "letter_runs", lambda text: (read.append(text), runs(text))[1])
    assert module.match_center("charged by EPOCH.COM", table).descriptor == "EPOCH.COM"
    assert read == ["charged by EPOCH.COM"]
