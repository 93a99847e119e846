"""Keep one-time codes and full national ids out of every log line, whoever writes it.

Musaed's own code logs neither (ids go through `identity.mask_id`). But
Rasa and rasa-sdk log what people type when run with ``--debug`` ("Received
user message '482913'"), and a code or an id in a log is readable by anyone
who reads logs. `install()` makes every log record of the process
carry a rewritten message: a run of 6 digits (any script) becomes
``******``, a run of 10 becomes the masked id.
"""

from __future__ import annotations

import logging
import re

from musaed.arabic import to_ascii_digits
from musaed.identity import mask_id

_DIGIT = r"[0-9\u0660-\u0669\u06F0-\u06F9]"
_RUN = re.compile(rf"(?<!{_DIGIT})(?:{_DIGIT}{{10}}|{_DIGIT}{{6}})(?!{_DIGIT})")


def redact(text: str) -> str:
    def hide(match: re.Match) -> str:
        digits = match.group()
        return "******" if len(digits) == 6 else mask_id(to_ascii_digits(digits))

    return _RUN.sub(hide, text)


def _redacted(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logging's to report
        return record
    safe = redact(message)
    if safe != message:
        record.msg, record.args = safe, None
    return record


_installed = False


def install() -> None:
    """Redact every record this process logs from now on, through any logger or handler.

    A record factory rather than handler filters: handlers added later (Sanic
    configures its own at start-up) are covered too, and only records a
    logger is about to emit are looked at.
    """
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *args, **kwargs: _redacted(make_record(*args, **kwargs)))
    _installed = True
