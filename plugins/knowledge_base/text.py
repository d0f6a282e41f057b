"""Words for search: tokens, stop words, Snowball stems (en, id) and a Filipino affix stripper.

Index and query go through the same ``analyse``, so whatever a rule does to a word it does
on both sides: "pembayaran" and "membayar" both become "bayar", "i-reset" and "ni-reset"
both "reset".

Filipino has no stemmer in Snowball or PostgreSQL; ``strip_filipino`` removes what a
reader would call the affixes of a Tagalog verb or noun, conservatively (a root keeps at
least three letters, so short words are left alone):

* Taglish prefixes written with a hyphen: i-reset, mag-login, na-verify, pina-check;
* prefixes, longest first: nakapag-, makapag-, pinaka-, ipinag-, nakipag-, makipag-,
  ipag-, pinag-, nag-, mag-, pag-, naka-, maka-, ipa-, pina-, na-, ma-, pa-, i-, when
  what is left starts as a Tagalog root does (a vowel, or a consonant and a vowel), so
  English loanwords keep theirs ("password" stays "password");
* the infixes -um- and -in- after a first consonant (bumili -> bili, binili -> bili);
* the repeated first syllable of the aspect (babayaran -> bayaran, magpapadala -> padala);
* suffixes -han, -hin, -an, -in, with d -> r undone (bayaran -> bayad).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*", re.UNICODE)

STOP_WORDS = {
    "en": set("""a an and are as at be but by can do does for from has have how i if in into is
        it its me my no not of on or our so that the their then there these this to was we
        what when where which who why will with you your am been did doesn't don't get got i'm
        can't cannot should would could""".split()),
    "id": set("""ada adalah agar akan aku anda apa apakah atau bagaimana bahwa belum bisa
        dalam dan dari dengan di ini itu jika juga kami karena ke kenapa ketika mengapa oleh
        pada para saat saja saya sudah tapi tetapi tidak untuk yang ya nya lah kah pun""".split()),
    "fil": set("""ang ng mga sa na at ay ko ako mo ka ikaw siya kami tayo kayo sila ito iyan
        iyon po ba pa din rin lang lamang naman kasi pero kung para may wala hindi oo paano
        bakit ano saan kailan si ni kay nang yung yun niya nila namin natin ninyo akin
        dito doon the and to my is""".split()),
}

_STEMMERS = {"en": "english", "id": "indonesian"}

_FIL_PREFIXES = ("nakapag", "makapag", "nakipag", "makipag", "ipinag", "pinaka", "ipag",
                 "pinag", "naka", "maka", "pina", "nag", "mag", "pag", "ipa", "na", "ma",
                 "pa", "i")
_FIL_SUFFIXES = ("han", "hin", "an", "in")
_VOWELS = set("aeiou")
MIN_ROOT = 3


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` without accents (hyphenated Taglish kept whole)."""
    folded = (text or "").lower()
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return WORD.findall(folded)


@lru_cache(maxsize=4)
def _stemmer(language: str) -> snowballstemmer.stemmer:  # type: ignore[name-defined]
    return snowballstemmer.stemmer(_STEMMERS[language])


@lru_cache(maxsize=50_000)
def strip_filipino(word: str) -> str:
    """The root of a Filipino word, as far as common affixes go (see the module's docstring)."""
    if "-" in word:  # i-reset, mag-login: the part after the prefix is the (English) root
        prefix, _, rest = word.partition("-")
        if prefix in _FIL_PREFIXES or prefix in ("ni", "nai", "maki", "naki"):
            return rest.replace("-", "")
        return word.replace("-", "")
    root = word
    for prefix in _FIL_PREFIXES:
        rest = root[len(prefix):]
        if root.startswith(prefix) and len(rest) >= MIN_ROOT + 1 and _tagalog_start(rest):
            root = rest
            break
    root = _strip_infix(root)
    root = _strip_reduplication(root)
    for suffix in _FIL_SUFFIXES:
        if root.endswith(suffix) and len(root) - len(suffix) >= MIN_ROOT + 1:
            root = root[: -len(suffix)]
            if root.endswith("r") and root[-2:-1] in _VOWELS:
                root = root[:-1] + "d"  # bayaran -> bayad: intervocalic d became r
            break
    return root


def _tagalog_start(root: str) -> bool:
    # A Tagalog root starts with a vowel or one consonant and a vowel: "password" keeps its
    # "pa" (no root "ssword"), "nagbayad" loses "nag".
    return root[0] in _VOWELS or root[1] in _VOWELS


def _strip_infix(word: str) -> str:
    if len(word) >= MIN_ROOT + 3 and word[0] not in _VOWELS and word[1:3] in ("um", "in"):
        return word[0] + word[3:]
    return word


def _strip_reduplication(word: str) -> str:
    # babayad -> bayad, papadala -> padala: a first consonant-vowel syllable said twice.
    if (len(word) >= MIN_ROOT + 2 and word[0] not in _VOWELS and word[1] in _VOWELS
            and word[2:4] == word[0:2]):
        return word[2:]
    return word


@lru_cache(maxsize=200_000)
def stem(word: str, language: str) -> str:
    """One word's index form in ``language`` (cached: Snowball's English costs ~0.1 ms a word)."""
    if language == "fil":
        return strip_filipino(word)
    if language in _STEMMERS:
        return _stemmer(language).stemWord(word.replace("-", ""))
    return word


def analyse(text: str, language: str, *, keep_stop_words: bool = False) -> list[str]:
    """The index forms of ``text``'s words, in order; stop words dropped unless kept."""
    stop = set() if keep_stop_words else STOP_WORDS.get(language, set())
    return [stem(word, language) for word in words(text) if word not in stop]


def search_words(text: str, language: str) -> list[str]:
    """The words of a query worth searching for, unstemmed, without repeats (at most 12)."""
    stop = STOP_WORDS.get(language, set())
    found = [word for word in words(text) if word not in stop and len(word) > 1]
    return list(dict.fromkeys(found))[:12]


ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def one_edit_away(word: str) -> set[str]:
    """Every string one deletion, transposition, replacement or insertion from ``word``."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    transposes = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in ALPHABET}
    inserts = {a + c + b for a, b in splits for c in ALPHABET}
    return (deletes | transposes | replaces | inserts) - {word}
