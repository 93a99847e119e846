"""Mixed Arabic and English lines that read right: isolates around what runs the other way.

A reply in Arabic holds tracking numbers (MSD-25054664), ids, dates and
English words; a reply in English holds Arabic names and addresses. Left to
the bidi algorithm, the neutral characters between them (dashes, commas,
slashes, "?") join the wrong side: «• MSD-25054664 — الإبلاغ…» becomes a
left-to-right line and "Delivery: 7781 ،الرياض، حي النرجس" loses its order.
Wrapping each such run in FSI … PDI (U+2068, U+2069, Unicode 6.3 isolates)
lays it out on its own, and a line's direction is taken from its first
strong letter outside isolates (UAX #9, P2).

The channels send the marks as they are (Telegram's and WhatsApp's apps lay
them out); the web widget and the care page turn each isolate into `<bdi>`.
A library for this? python-bidi and arabic-reshaper reorder text for a
display without bidi; none inserts isolates, so this is a few expressions.
"""

from __future__ import annotations

import re

FSI = "\u2068"
PDI = "\u2069"
MARKS = re.compile("[\u2066-\u2069]")

_ARABIC = "\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff"
_ARABIC_LETTER = re.compile(f"[{_ARABIC}]")
_LATIN_LETTER = re.compile("[A-Za-z]")

# In an Arabic line: a run of Latin letters and digits with the punctuation that
# lives inside ids, dates, times, e-mail and web addresses, and single spaces
# between Latin words ("Absher app", "MSD-25054664", "2026-12-06 14:05").
_LATIN_WORD = r"[A-Za-z0-9](?:[A-Za-z0-9@:/.+_-]*[A-Za-z0-9])?"
_LATIN_RUN = re.compile(rf"{_LATIN_WORD}(?: {_LATIN_WORD})*")
# A bare number in an Arabic line needs no isolate unless it is long (an id, a
# phone number) or has separators (a date, a time): short counts read right.
_NUMBER_ONLY = re.compile(r"\d{1,4}")
# In an English line: Arabic words with the digits and punctuation between them
# (an address «7781 طريق الملك فهد، حي النرجس، الرياض 13325»), with digits
# that stand right before or after them.
_ARABIC_RUN = re.compile(
    rf"(?:\d+ )?[{_ARABIC}](?:[{_ARABIC}0-9\u0660-\u0669 ،؛,./-]*[{_ARABIC}0-9\u0660-\u0669])?(?: \d+(?![A-Za-z]))?"
)


def is_arabic(text: str) -> bool:
    """More Arabic letters than Latin ones (what a reader would call its language)."""
    arabic = len(_ARABIC_LETTER.findall(text))
    return arabic > 0 and arabic >= len(_LATIN_LETTER.findall(text))


def strip(text: str) -> str:
    """`text` without directional isolates (to compare or to count)."""
    return MARKS.sub("", text)


def _isolate(match: re.Match) -> str:
    return f"{FSI}{match.group(0)}{PDI}"


def isolate(text: str) -> str:
    """`text` with each run that goes against its line's language in FSI … PDI.

    The whole message's language decides what runs against it: an English
    summary's address line is mostly Arabic, and is still an English line.
    Text already isolated is left as it is.
    """
    if not text or MARKS.search(text):
        return text
    arabic = is_arabic(text)
    return "\n".join(_line(line, arabic) for line in text.split("\n"))


def _line(line: str, arabic: bool) -> str:
    if not (_ARABIC_LETTER.search(line) and (_LATIN_LETTER.search(line) or re.search(r"\d", line))):
        return line  # one script (or none): nothing runs against it
    if arabic:

        def latin(match: re.Match) -> str:
            run = match.group(0)
            return run if _NUMBER_ONLY.fullmatch(run) else _isolate(match)

        return _LATIN_RUN.sub(latin, line)
    return _ARABIC_RUN.sub(_isolate, line)
