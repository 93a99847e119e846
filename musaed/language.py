"""Which language a person wrote in: Arabic (Arabizi included) or English.

Musaed answers in the language of the person's latest message.  A message in
Arabic letters is Arabic.  A message in Latin letters is English when most
of its words are common English words, and Arabic otherwise: Arabizi
("abi ajaddid hawiyti", "3ndi su2al") is mostly words no English list has.
wordfreq, which the Arabizi reader already uses, says how common an English
word is.  Language-identification libraries (langdetect, lingua) know no
Arabizi, and are unreliable on the one- or two-word messages most chat
turns are.

A message with no words of either kind (a national id, a code, an emoji, a
button's payload) says nothing, and the conversation keeps its language.
"""

from __future__ import annotations

import re
from typing import Optional

from wordfreq import zipf_frequency

ARABIC = "ar"
ENGLISH = "en"
LANGUAGES = (ARABIC, ENGLISH)

_ARABIC_WORD = re.compile(r"[\u0621-\u064a\u0671-\u06d3]+")
_LATIN_WORD = re.compile(r"[A-Za-z0-9']*[A-Za-z][A-Za-z0-9']*")
# Arabizi writes ع، ح، ء، خ، ق as digits inside words ("3ndi", "7ayak", "su2al").
_ARABIZI_DIGIT = re.compile(r"[A-Za-z][2356789]|[2356789][A-Za-z]")
# At or above this Zipf frequency (once per ~3 million words) a word is
# everyday English; Arabizi words score below it ("abi" 3.3, "kam" 3.1, "salam" 3.0).
_COMMON_ENGLISH = 3.5
# Words both kinds of writer use, which say nothing about the language.
_NEUTRAL = frozenset({"ok", "okay", "k", "iqama", "absher", "msd", "id", "sms", "otp", "qr"})


def detect(text: str) -> Optional[str]:
    """ "ar", "en", or None when the message has no words that tell."""
    if (text or "").startswith("/"):  # a button's payload ("/affirm"), not words
        return None
    arabic = len(_ARABIC_WORD.findall(text or ""))
    latin = [w.lower().strip("'") for w in _LATIN_WORD.findall(text or "")]
    latin = [w for w in latin if w and w not in _NEUTRAL]
    if arabic and arabic >= len(latin):
        return ARABIC
    english = sum(1 for w in latin if not _ARABIZI_DIGIT.search(w) and zipf_frequency(w, "en") >= _COMMON_ENGLISH)
    if english and english > len(latin) - english:
        return ENGLISH
    if latin or arabic:
        return ARABIC
    return None


def of(value: Optional[str]) -> str:
    """A stored language (slot value) as one of LANGUAGES: Arabic unless English."""
    return ENGLISH if value == ENGLISH else ARABIC
