"""Arabic text normalisation shared by the NLU pipeline and the actions.

One function, `normalize`, is what the actions use to read values and, inside
`lemma`, what the model sees of each word, so the two always agree.
pyarabic does the letter-level work; we add only what it lacks: alef
maksura, digits from any script, and collapsing elongated letters
("مرحبااا").  `lemma` first writes Arabizi ("shukran", "3ndi") in Arabic
letters: arabizikit proposes the readings, wordfreq picks the one Arabic
writers use most.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict

from arabizikit import Transliterator
from pyarabic import araby
from wordfreq import get_frequency_dict, zipf_frequency

# Three or more of the same letter is elongation for emphasis, never spelling.
# Digits are left alone: "1110000000" is a national id, not an elongation.
_ELONGATION = re.compile(r"([^\W\d_])\1{2,}")
_SPACES = re.compile(r"\s+")
_LATIN = re.compile(r"[A-Za-z]")
# Arabizi words are short.  A longer Latin "word" is a link or noise, and
# transliterating it costs time that grows with its length.
_ARABIZI_MAX_LETTERS = 30
# A Latin vowel at the edge of an Arabizi word is written in Arabic, as one
# of these letters.
_VOWELS = tuple("aeiouy")
_STARTS_A_VOWEL = tuple("اأإآعيو")
_ENDS_A_VOWEL = tuple("اىيةهوءع")
# Latin letters cannot tell these consonants apart: t (ت ط), d/dh/z (د ض ذ
# ظ), s (س ص), h (ه ح), and g, which is ج in Egypt and ق in the Gulf
# ("tigdar", "bitaga"), or غ.  A word's shape writes each group as one letter.
_LOOK_ALIKES = str.maketrans({"ط": "ت", "ض": "د", "ذ": "د", "ظ": "د", "ص": "س", "ح": "ه", "ق": "ج", "غ": "ج"})
# Letters that Arabic writes for long vowels (and hamza), and that Arabizi
# writers type as a vowel, or not at all.
_VOWEL_LETTERS = frozenset("اويء")
_LONG_VOWEL_LETTERS = frozenset("اوي")
# Doubled Latin vowels are long ones, which Arabic always writes ("rusoom").
_LONG_VOWEL = re.compile(r"aa|ee|ii|oo|uu|ou")
_ARABIC_WORD = re.compile("[\u0621-\u064a]+")
# Fewer consonants than this match too many unrelated words.
_MIN_CONSONANTS = 3


def to_ascii_digits(text: str) -> str:
    """Map every Unicode decimal digit (Arabic-Indic ٠-٩, Persian ۰-۹, ...) to 0-9.

    CountVectorsFeaturizer and our regexes only treat ASCII digits as numbers.
    """
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def normalize(text: str) -> str:
    """Normalise Arabic text for matching: same meaning, one spelling.

    - diacritics (harakat, shadda, small alef) and tatweel removed;
    - hamza seats folded (أ إ آ ٱ → ا, ؤ → و, ئ → ي) and ى → ي, ة → ه:
      people type these interchangeably, and dialect drops hamzas;
    - lam-alef ligatures split; digits of any script to ASCII;
    - letters repeated three times or more collapsed to one;
    - Latin lower-cased, whitespace squeezed.
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)  # presentation forms → letters
    text = araby.strip_diacritics(text)
    text = araby.strip_tatweel(text)
    text = araby.normalize_ligature(text)
    # ى before normalize_alef, which would otherwise fold it into ا.
    text = text.replace(araby.ALEF_MAKSURA, araby.YEH)
    text = araby.normalize_hamza(text, method="tasheel")
    text = araby.normalize_alef(text)
    text = araby.normalize_teh(text)
    text = to_ascii_digits(text)
    text = _ELONGATION.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip().lower()


@functools.lru_cache(maxsize=1)
def _arabizi() -> Transliterator:
    return Transliterator()


def _shape(word: str) -> str:
    """`word` normalised, each group of look-alike consonants as one letter."""
    return normalize(word).translate(_LOOK_ALIKES)


def _consonants(shape: str) -> str:
    return "".join(ch for ch in shape if ch not in _VOWEL_LETTERS)


@functools.lru_cache(maxsize=1)
def _words_by_consonants() -> dict:
    """wordfreq's Arabic words by their consonants: {consonants: [(word, shape)]}.

    Built once (about half a second, 18k keys): the tokenizer builds it when
    the model loads (components/arabic_normalizer.py).
    """
    index = defaultdict(list)
    for word in get_frequency_dict("ar", wordlist="small"):
        if not _ARABIC_WORD.fullmatch(word):
            continue
        shape = _shape(word)
        consonants = _consonants(shape)
        if len(consonants) >= _MIN_CONSONANTS:
            index[consonants].append((word, shape))
    return dict(index)


def _within(shorter: str, longer: str) -> bool:
    """True when `shorter` is `longer` with some letters left out, in order."""
    rest = iter(longer)
    return all(ch in rest for ch in shorter)


def _fewer_vowels(raw: str, reading: str) -> list[str]:
    """Arabic words spelled like `reading` with vowel letters left out, and
    look-alike consonants swapped: what arabizikit's rules do not propose.

    Its readings write every typed vowel as a letter, and g as ج: "bitaga"
    → بيتاجه, "tigdar" → تيجدار, "el5adamat" → لخادامات.  Arabic writes
    short vowels not at all (بطاقة، تقدر، الخدمات).  A word typed with a
    leading vowel may begin with an ا the reading lacks (the article "el").
    A word must keep one vowel letter for each long vowel typed ("rusoom" is
    رسوم, never رسم).
    """
    shape = _shape(reading)
    long_vowels = len(_LONG_VOWEL.findall(raw))
    found = []
    for word, word_shape in _words_by_consonants().get(_consonants(shape), ()):
        if not (
            _within(word_shape, shape)
            or (raw.startswith(_VOWELS) and word_shape.startswith("ا") and _within(word_shape[1:], shape))
        ):
            continue
        if sum(ch in _LONG_VOWEL_LETTERS for ch in word_shape) >= long_vowels:
            found.append(word)
    return found


def _most_used(raw: str, candidates: list[tuple[str, float]]) -> str:
    """Of the readings of the Arabizi word `raw`, the one Arabic text uses most.

    arabizikit ranks its readings by spelling rules alone, which write every
    Latin vowel as a long one: "salama" → سالامة, "hawiya" → هاوية.  Arabic
    writes most short vowels not at all, so the common word (سلامة, هوية) is
    usually further down its list, or not on it (`_fewer_vowels`).  wordfreq's
    small Arabic list (words of frequency 1e-6 and up) tells which; a
    reading it does not know scores 0, and ties keep arabizikit's order.

    Readings that turn what was typed into some other frequent word are
    passed over: one that drops a vowel typed at either end of the word
    ("3ndi" → عند, "abi" → بي; Arabic always writes those), a single letter
    for a longer word ("no" → ن), and an ع the writer did not type as 3
    ("wain" → وعن rather than وين).
    """
    # arabizikit's own readings first, so that they win ties.
    shorter = dict.fromkeys(  # readings often share their words: look each up once
        word for reading, _ in candidates for word in _fewer_vowels(raw, reading)
    )
    candidates = list(candidates) + [(word, float("inf")) for word in shorter]
    typed_ain = raw.count("3") + raw.count("'")
    plausible = [
        c
        for c in candidates
        if (len(c[0]) > 1 or len(raw) == 1)
        and c[0].count("ع") <= typed_ain
        and not (raw.startswith(_VOWELS) and not c[0].startswith(_STARTS_A_VOWEL))
        and not (raw.endswith(_VOWELS) and not c[0].endswith(_ENDS_A_VOWEL))
    ] or candidates
    return max(plausible, key=lambda c: (zipf_frequency(c[0], "ar", wordlist="small"), -c[1]))[0]


def lemma(word: str) -> str:
    """The model's reading of one word: `normalize(word)`, with a word in Latin
    letters first written in Arabic script.

    Saudis often type Arabic in Latin letters and digits (Arabizi: "shukran",
    "kam al rusoom", "3ndi"), mostly in the few words the training data has
    in Arabic.  Read as Arabic ("شكرا", "كم الرسوم", "عندي"), they share
    words and letter n-grams with those examples.  English words get an
    Arabic-script spelling too ("renew" → "رنو"): always the same one, so
    the English training examples still teach it.
    """
    if _LATIN.search(word) and len(word) <= _ARABIZI_MAX_LETTERS:
        # Lower case first: arabizikit reads capitals as emphatic letters (a
        # Maghrebi convention), while here a capital is only a phone's habit.
        # arabizikit splits the token into words ("msd-40213377" → msd,
        # 40213377) and drops what lies between.  A run of digits is a
        # number, not Arabizi letters: it stays as it is.
        readings = [
            w["raw"] if w["raw"].isdigit() else _most_used(w["raw"], w["candidates"])
            for w in _arabizi().transliterate(word.lower()).words
            if w["candidates"]
        ]
        word = " ".join(readings) or word
    return normalize(word)
