"""Words that speak of billing: tokens, their roots in English, Indonesian and Filipino, phrases.

A phrase matches whole words and their inflected or affixed forms, never a
substring: "refund" matches "refunded", "tagihan" matches "ditagih", "bayad"
matches "nagbayad", but "charge" does not match "recharge" and "bayar" does not
match "bayangan". Each word is reduced to a small set of candidate roots by the
analyser of a language; a phrase word and a text word match when their candidate
sets share a root. Candidate sets (rather than one stem) keep the matcher
forgiving where an affix is ambiguous, and both sides go through the same rules,
so whatever a rule gets wrong it gets wrong the same way on both.

English uses the Snowball stemmer. Indonesian uses Snowball's Indonesian stemmer
plus the affix rules below: Snowball does not restore the consonant that meN-
and peN- swallow (it gives "embali" for "pengembalian" and "agih" for
"penagihan") and reads the ke- of "kembalikan" as a prefix, so the rules add the
restored forms. Filipino has no stemmer; ``filipino_roots`` strips its prefixes,
infixes, suffixes and reduplicated first syllables.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import snowballstemmer

LANGUAGES = ("en", "id", "fil")
MIN_ROOT = 3
VOWELS = set("aeiou")

_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
_JOINS = re.compile(r"[-']")


def normalise(text: str) -> str:
    """Case-folded, accents removed, compatibility forms unified (full-width letters...)."""
    text = text or ""
    if text.isascii():  # most tickets: nothing to decompose, no accent to drop
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.casefold()


def tokens(text: str) -> list[frozenset[str]]:
    """The words of ``text`` in order; each is the set of its surface forms.

    A hyphenated word counts as itself joined and as each of its parts:
    Taglish writes "i-cancel", "nag-refund", "magre-renew".
    """
    found = []
    # ’ and ' join the same words (neither is a letter): one replace for the whole text.
    for word in _WORD.findall(normalise(text).replace("’", "'")):
        if "-" not in word and "'" not in word:  # most words: the word is its one form
            found.append(frozenset((word,)))
            continue
        parts = [p for p in _JOINS.split(word) if p]
        # A one-letter part is an affix or a clitic ("i-cancel", "e-mail"), not a word.
        forms = {"".join(parts)} | {p for p in parts if len(p) > 1}
        found.append(frozenset(forms))
    return found


def _plausible(root: str) -> bool:
    return len(root) >= MIN_ROOT and any(ch in VOWELS for ch in root)


# -- English --------------------------------------------------------------------------------

_english = snowballstemmer.stemmer("english")
_indonesian = snowballstemmer.stemmer("indonesian")


@functools.lru_cache(maxsize=50_000)
def english_roots(word: str) -> frozenset[str]:
    return frozenset({_english.stemWord(word)})


# -- Indonesian -----------------------------------------------------------------------------

# Particles and possessives come off first, then derivational suffixes.
_ID_PARTICLES = ("lah", "kah", "tah", "pun", "nya", "ku", "mu")
_ID_SUFFIXES = ("kan", "an", "i")
# Prefixes whose nasal swallows a root's first consonant: (prefix, consonant restored).
_ID_NASAL = (("meny", "s"), ("peny", "s"), ("meng", "k"), ("peng", "k"), ("men", "t"),
             ("pen", "t"), ("mem", "p"), ("pem", "p"))
_ID_PREFIXES = ("memper", "diper", "meng", "peng", "meny", "peny", "mem", "pem", "men", "pen",
                "ber", "ter", "per", "me", "pe", "di", "ke", "se", "be")


def _affixes_off(word: str, prefixes: tuple[str, ...], nasal: tuple[tuple[str, str], ...],
                 suffixes: tuple[str, ...] = ()) -> set[str]:
    """The forms left by taking one prefix or suffix off ``word``; a nasal prefix before a
    vowel also gives the root with the consonant it swallowed put back."""
    out = {word[len(p):] for p in prefixes if word.startswith(p)}
    out |= {word[:-len(s)] for s in suffixes if word.endswith(s)}
    for prefix, consonant in nasal:
        rest = word[len(prefix):]
        if word.startswith(prefix) and rest[:1] in VOWELS:
            out.add(consonant + rest)
    return out


def _indonesian_step(word: str) -> set[str]:
    return _affixes_off(word, _ID_PREFIXES, _ID_NASAL, _ID_PARTICLES + _ID_SUFFIXES)


@functools.lru_cache(maxsize=50_000)
def indonesian_roots(word: str) -> frozenset[str]:
    """Snowball's stem, and the forms left by taking affixes off one at a time."""
    return frozenset(_closure(word, _indonesian_step) | {_indonesian.stemWord(word)})


# -- Filipino -------------------------------------------------------------------------------

# Longest first; each leaves the rest of the word to the next step.
_FIL_PREFIXES = ("ipinag", "nakapag", "makapag", "pinaka", "ipagpa", "nagpa", "magpa", "pinag",
                 "nakaka", "makaka", "naka", "maka", "ipag", "pag", "nag", "mag", "ipa", "ika",
                 "nang", "mang", "pang", "na", "ma", "pa", "ka", "ni", "i")
# mang-/pang-/nang- swallow the root's first consonant: maningil (singil), pamilí (bili).
_FIL_NASAL = (("mang", "k"), ("nang", "k"), ("pang", "k"), ("man", "s"), ("man", "t"),
              ("nan", "s"), ("nan", "t"), ("pan", "s"), ("pan", "t"), ("mam", "b"),
              ("mam", "p"), ("nam", "b"), ("nam", "p"), ("pam", "b"), ("pam", "p"))
_FIL_SUFFIXES = ("han", "hin", "nan", "nin", "an", "in")


def _filipino_step(word: str) -> set[str]:
    out = _affixes_off(word, _FIL_PREFIXES, _FIL_NASAL)
    # -um- and -in- after the first consonant: bumili (bili), sinisingil (sisingil).
    if len(word) > 4 and word[0] not in VOWELS and word[1:3] in ("um", "in") \
            and word[3] in VOWELS:
        out.add(word[0] + word[3:])
    # Before a vowel they are prefixes: inayos (ayos), umalis (alis).
    if word[:2] in ("um", "in") and word[2:3] in VOWELS:
        out.add(word[2:])
    for suffix in _FIL_SUFFIXES:
        if word.endswith(suffix):
            rest = word[:-len(suffix)]
            out.add(rest)
            if rest.endswith("r"):  # bayaran: the d of bayad turns r before a suffix
                out.add(rest[:-1] + "d")
            if rest.endswith("u"):  # bayaran, bilhin: a root's final o turns u
                out.add(rest[:-1] + "o")
    # A reduplicated first syllable: babayad (bayad), sisingil (singil), aalis (alis).
    if len(word) >= 5 and word[0] not in VOWELS and word[:2] == word[2:4]:
        out.add(word[2:])
    if len(word) >= 4 and word[0] in VOWELS and word[0] == word[1]:
        out.add(word[1:])
    return out


@functools.lru_cache(maxsize=50_000)
def filipino_roots(word: str) -> frozenset[str]:
    """The word and every form left by taking off Filipino affixes (no stemmer exists)."""
    return frozenset(_closure(word, _filipino_step))


def _closure(word: str, step: object, depth: int = 4) -> set[str]:
    found = {word}
    frontier = {word}
    for _ in range(depth):
        fresh = set()
        for form in frontier:
            fresh |= {f for f in step(form) if _plausible(f)}  # type: ignore[operator]
        fresh -= found
        if not fresh:
            break
        found |= fresh
        frontier = fresh
    return found


ANALYSERS = {"en": english_roots, "id": indonesian_roots, "fil": filipino_roots}


@functools.lru_cache(maxsize=50_000)
def roots(forms: frozenset[str], language: str) -> frozenset[str]:
    """The candidate roots of a word's surface forms (``tokens``) in one language; kept per
    word, as its analysers keep each form's (a ticket's words are mostly ones seen before)."""
    analyse = ANALYSERS[language]
    result: set[str] = set()
    for form in forms:
        result |= analyse(form)
    return frozenset(result)


# -- Phrases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phrase:
    """A phrase as the matcher uses it: its words' candidate roots, in order."""

    text: str
    language: str
    kind: str
    request_kind: str = ""

    @property
    def words(self) -> tuple[frozenset[str], ...]:
        return _phrase_words(self.text, self.language)


@functools.lru_cache(maxsize=10_000)
def _phrase_words(text: str, language: str) -> tuple[frozenset[str], ...]:
    # Phrases are read afresh for every ticket (an admin's edit applies at once); their
    # roots are worked out once per text.
    return tuple(roots(forms, language) for forms in tokens(text))


@dataclass(frozen=True)
class Found:
    """A phrase found in a text, at its first place (the index of its first word)."""

    phrase: Phrase
    at: int


class PhraseTable(list):  # type: ignore[type-arg]
    """Phrases in their order, with each phrase's words worked out once and the phrases
    listed by every root of their first word, per language.

    Kept with the phrases routing reads (``routing.active_phrases``), so that a ticket
    looks up the roots of its own words instead of trying every phrase.
    """

    def __init__(self, phrases: Iterable[Phrase] = ()):
        super().__init__(phrases)
        self.words = [phrase.words for phrase in self]
        self.by_first_root: dict[str, dict[str, list[int]]] = {}
        for index, (phrase, wanted) in enumerate(zip(self, self.words, strict=True)):
            if not wanted:
                continue  # a phrase with no words matches nothing
            table = self.by_first_root.setdefault(phrase.language, {})
            for root in wanted[0]:
                table.setdefault(root, []).append(index)


def find(phrases: Iterable[Phrase], text: str) -> list[Found]:
    """The phrases that occur in ``text`` as whole words (inflected or affixed), in the
    phrases' order, each at its first place."""
    table = phrases if isinstance(phrases, PhraseTable) else PhraseTable(phrases)
    words = tokens(text)
    starts: list[tuple[int, int]] = []
    for language, by_root in table.by_first_root.items():
        at = [roots(word, language) for word in words]
        # Only the phrases whose first word is somewhere in the text can occur in it.
        candidates = {index for word_roots in at for root in word_roots
                      for index in by_root.get(root, ())}
        for index in candidates:
            wanted = table.words[index]
            for start in range(len(words) - len(wanted) + 1):
                if all(wanted[k] & at[start + k] for k in range(len(wanted))):
                    starts.append((index, start))
                    break
    return [Found(table[index], start) for index, start in sorted(starts)]
