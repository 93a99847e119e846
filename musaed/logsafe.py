"""Keep one-time codes, national ids and phone numbers out of every log line, and one record one line.

Musaed's own code logs none of them (ids go through `identity.mask_id`). But
Rasa and rasa-sdk log what people type (at debug level "Received user
message '482913'"; at any level a UserWarning quoting a malformed
``/inform{…}`` payload), and a code or an id in a log is readable by anyone
who reads logs. `install()` makes every log record of the process — any
logger, Python warnings (routed through the ``py.warnings`` logger), the
exception text and the extra fields a library attaches — carry a rewritten
message:

- a code (6 digits) becomes ``******``; an id (10 digits) ``1******014``; a
  mobile number (05…, 9665…, 009665…) ``05******67`` — in any digit script,
  typed whole or in groups with spaces or dashes («1010 000 014», «659-185»),
  as the bot accepts them; JSON's ``\\u0661``-style digits are read as digits;
- control characters (newlines included) and bidi controls are escaped
  (``\\n``, ``\\x1b``, ``\\u202e``), so what someone typed cannot start a
  forged log line or reorder one; a traceback keeps its lines, each indented.
"""

from __future__ import annotations

import logging
import re
from typing import Optional

from musaed.identity import mask_id

_DIGIT = "0-9\u0660-\u0669\u06f0-\u06f9"
# Between the groups of one number: spaces (any), or a dash with spaces around it.
_SEP = r"(?:\s*[\-\u2010-\u2015\u2212]\s*|\s+)"
_GROUP = re.compile(rf"[{_DIGIT}]+")
_ASCII = str.maketrans(
    "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
    "\u06f0\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9",
    "0123456789" * 2,
)
# Digit groups joined by separators, not touching another digit.
_CHAIN = re.compile(rf"(?<![{_DIGIT}])[{_DIGIT}]+(?:{_SEP}[{_DIGIT}]+)*(?![{_DIGIT}])")
# Dates and times are numbers in groups too: never read as an id or a code.
_DATE = re.compile(
    rf"(?<![{_DIGIT}])\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]\d{{2}}:\d{{2}}(?::\d{{2}}(?:[.,]\d+)?)?)?(?![{_DIGIT}])"
)
# JSON writers (structlog's, Rasa's tracker dumps) escape non-ASCII digits.
_ESCAPED_DIGIT = re.compile(r"\\u06([6fF])([0-9])")
# C0 and C1 controls, DEL, line/paragraph separators, and the bidi controls.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_COLOUR = re.compile("\x1b\\[[0-9;]*m")


def _mask_digits(digits: str) -> Optional[str]:
    """The mask for a number of these ASCII digits, or None when it is none of ours."""
    if len(digits) == 6:
        return "******"
    if len(digits) == 10:
        return phone_mask(digits, 2) if digits.startswith("05") else mask_id(digits)
    if len(digits) == 12 and digits.startswith("9665"):
        return phone_mask(digits, 4)
    if len(digits) == 14 and digits.startswith("009665"):
        return phone_mask(digits, 6)
    return None


def phone_mask(digits: str, keep: int) -> str:
    """0551234567 → 05******67: the country and mobile prefix and the last two digits."""
    return digits[:keep] + "*" * (len(digits) - keep - 2) + digits[-2:]


def _mask_chain(chain: str) -> str:
    """Mask, in one run of digit groups, every stretch of consecutive groups that is a code,
    an id or a phone number: the longest from each group on, left to right."""
    groups = list(_GROUP.finditer(chain))
    if sum(g.end() - g.start() for g in groups) < 6:
        return chain  # most numbers in a log line: a port, a count, a status
    out, done, i = [], 0, 0
    while i < len(groups):
        found = None
        digits = ""
        for j in range(i, len(groups)):
            digits += groups[j].group().translate(_ASCII)
            if len(digits) > 14:
                break
            mask = _mask_digits(digits)
            if mask is not None:
                found = (j, mask)
        if found is None:
            i += 1
            continue
        j, mask = found
        out.append(chain[done : groups[i].start()])
        out.append(mask)
        done = groups[j].end()
        i = j + 1
    out.append(chain[done:])
    return "".join(out)


def _mask_numbers(text: str) -> str:
    return _CHAIN.sub(lambda m: _mask_chain(m.group()), text)


def redact(text: str) -> str:
    """`text` with codes, national ids and phone numbers masked (dates and times left as they are)."""
    if not any(ch.isdigit() for ch in text) and "\\u06" not in text:
        return text
    text = _ESCAPED_DIGIT.sub(lambda m: chr(int(f"06{m.group(1)}{m.group(2)}", 16)), text)
    out, done = [], 0
    for date in _DATE.finditer(text):
        out.append(_mask_numbers(text[done : date.start()]))
        out.append(date.group())
        done = date.end()
    out.append(_mask_numbers(text[done:]))
    return "".join(out)


def escape(text: str) -> str:
    """Control and bidi characters written as escapes: one record stays one line, in order."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group()) or f"\\u{ord(m.group()):04x}", text)


def clean(text: str) -> str:
    """What a log line may carry of `text`: masked, then escaped."""
    return escape(redact(text))


def _clean_block(text: str) -> str:
    """A traceback or stack: masked, controls escaped but its own lines kept, each indented
    (a line at the margin is always the start of a record)."""
    lines = redact(text).split("\n")
    return "\n".join("  " + escape(line) for line in lines)


_formatter = logging.Formatter()


def _redacted(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logging's to report
        return record
    if record.name == "py.warnings":
        # formatwarning's own end of line, and the colours Rasa wraps its warnings in.
        message = _COLOUR.sub("", message).rstrip("\n")
    safe = clean(message)
    if safe != message or record.name == "py.warnings":
        record.msg, record.args = safe, None
    if record.exc_info and not record.exc_text:
        record.exc_text = _clean_block(_formatter.formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = _clean_block(record.exc_text)
    if record.stack_info:
        record.stack_info = _clean_block(record.stack_info)
    return record


def _make_record_with_clean_extra(make_record):
    """Logger.makeRecord, its `extra` fields cleaned: a library's own fields (Sanic's request
    line, say) are set on the record after the record factory has run, and its handler
    formats them into the line."""

    def make(self, name, level, fn, lno, msg, args, exc_info, func=None, extra=None, sinfo=None):
        if extra:
            extra = {key: clean(value) if isinstance(value, str) else value for key, value in extra.items()}
        return make_record(self, name, level, fn, lno, msg, args, exc_info, func, extra, sinfo)

    return make


_installed = False


def install() -> None:
    """Redact and escape every record this process logs from now on, through any logger or
    handler, and send Python warnings through logging so they are too.

    A record factory rather than handler filters: handlers added later (Sanic
    configures its own at start-up) are covered too, and only records a
    logger is about to emit are looked at.
    """
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *args, **kwargs: _redacted(make_record(*args, **kwargs)))
    logging.Logger.makeRecord = _make_record_with_clean_extra(logging.Logger.makeRecord)  # type: ignore[method-assign]
    # warnings.showwarning writes to stderr itself, past every handler: log them instead
    # (a UserWarning quotes the payload it could not parse, ids and codes included).
    logging.captureWarnings(True)
    _installed = True
