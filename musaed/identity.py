"""Proving who someone is: national id, then a one-time code to the mobile on file.

Nothing personal is shown or changed before `verify_code` says OK.  The code
is kept in the `otp_outbox` table for verification and delivered by
musaed/sms.py (in development the table is the delivery: `make code ID=…`);
it is never written to a log. At most MAX_CODES codes go to one id in any
CODE_WINDOW, whatever the number of conversations or channels asking.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from musaed import catalogue, sms, store
from musaed.arabic import to_ascii_digits
from musaed.language import ARABIC
from musaed.store import Db

log = logging.getLogger(__name__)

CODE_TTL_MINUTES = 5
CODE_TTL = timedelta(minutes=CODE_TTL_MINUTES)
MAX_WRONG_CODES = 3
LOCK_MINUTES = 15
LOCK_FOR = timedelta(minutes=LOCK_MINUTES)
# No more than this many codes to one national id in any CODE_WINDOW: each is
# an SMS someone pays for, to a person who may not have asked for it.
MAX_CODES = 3
CODE_WINDOW_MINUTES = 15
CODE_WINDOW = timedelta(minutes=CODE_WINDOW_MINUTES)

_TEN_DIGITS = re.compile(r"(?<!\d)\d{10}(?!\d)")
_ANY_DIGITS = re.compile(r"\d+")
_SIX_DIGITS = re.compile(r"(?<!\d)\d{6}(?!\d)")


def mask_id(national_id: str) -> str:
    """1234567890 → 1******890: enough to tell records apart in a log."""
    nid = str(national_id or "")
    return nid[:1] + "*" * max(len(nid) - 4, 0) + nid[-3:] if len(nid) > 4 else "***"


def check_digit_ok(national_id: str) -> bool:
    """The Saudi national id / iqama check digit (Luhn over the ten digits)."""
    total = 0
    for i, ch in enumerate(national_id):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class ParsedId:
    national_id: Optional[str]
    error: Optional[str]  # None | "missing" | "length" | "prefix" | "check_digit"


def parse_national_id(text: str) -> ParsedId:
    """Read a national id from what the person typed (any digit script, spaces)."""
    digits_text = to_ascii_digits(text or "")
    compact = re.sub(r"[\s\-]", "", digits_text)
    match = _TEN_DIGITS.search(compact)
    if not match:
        return ParsedId(None, "length" if _ANY_DIGITS.search(compact) else "missing")
    nid = match.group()
    if nid[0] not in "12":
        return ParsedId(None, "prefix")
    if not check_digit_ok(nid):
        return ParsedId(None, "check_digit")
    return ParsedId(nid, None)


def parse_code(text: str) -> Optional[str]:
    match = _SIX_DIGITS.search(to_ascii_digits(text or "").replace(" ", ""))
    return match.group() if match else None


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | limited | locked | ok | wrong | expired | no_code
    attempts_left: int = 0
    minutes_left: int = 0


def _now(now: Optional[datetime]) -> datetime:
    return now or datetime.now(timezone.utc)


def _minutes_until(until: datetime, now: datetime) -> int:
    """Whole minutes, rounded up, from `now` to `until` (0 once passed)."""
    return max(0, math.ceil((until - now).total_seconds() / 60))


def _lock_minutes_left(db: Db, national_id: str, now: datetime) -> int:
    row = store.identity_lock(db, national_id)
    if not row or not row["locked_until"]:
        return 0
    return _minutes_until(datetime.fromisoformat(row["locked_until"]), now)


def code_text(code: str, language: str = ARABIC) -> str:
    """The SMS the person gets, in the language they are writing in."""
    return catalogue.load(language).labels["sms_code"].format(code=code, minutes=CODE_TTL_MINUTES)


def send_code(
    db: Db,
    national_id: str,
    now: Optional[datetime] = None,
    sender: Optional[sms.Sender] = None,
    language: str = ARABIC,
) -> Outcome:
    """Send a fresh 6-digit code to the mobile on file, within the limit.

    An id that is not on file gets the same outcome, and the same work, as
    one that is ("sent"; "limited" after MAX_CODES): what the person is told
    never says whether a number is registered. The count and the new code
    are one transaction, so conversations asking at once cannot pass the
    limit together.
    """
    now = _now(now)
    delivery = None
    with store.transaction(db):
        store.serialize(db, f"identity:{national_id}")
        minutes = _lock_minutes_left(db, national_id, now)
        if minutes:
            return Outcome("locked", minutes_left=minutes)
        recent = store.code_requests_since(db, national_id, store.now_iso(now - CODE_WINDOW))
        if len(recent) >= MAX_CODES:
            # Free again when the oldest code in the window leaves it.
            until = datetime.fromisoformat(recent[0]) + CODE_WINDOW
            return Outcome("limited", minutes_left=max(1, _minutes_until(until, now)))
        store.record_code_request(db, national_id, store.now_iso(now))
        person = store.get_person(db, national_id)
        if person is not None:
            code = f"{secrets.randbelow(10**6):06d}"
            store.save_code(
                db,
                national_id=national_id,
                mobile=person["mobile"],
                code=code,
                created_at=store.now_iso(now),
                expires_at=store.now_iso(now + CODE_TTL),
            )
            delivery = (person["mobile"] or "", code)
    if delivery is not None:
        # Never the code itself in a log, at any level.
        log.info("one-time code sent for %s", mask_id(national_id))
        (sender or sms.from_env()).deliver(delivery[0], code_text(delivery[1], language))
    return Outcome("sent", attempts_left=MAX_WRONG_CODES)


def _wrong_code(db: Db, national_id: str, now: datetime, pending_id: Optional[int]) -> Outcome:
    lock = store.identity_lock(db, national_id)
    failed = (lock["failed"] if lock else 0) + 1
    if failed >= MAX_WRONG_CODES:
        if pending_id is not None:
            store.use_code(db, pending_id, store.now_iso(now))
        store.set_identity_lock(db, national_id, 0, store.now_iso(now + LOCK_FOR))
        log.warning("identity locked for %d min after %d wrong codes: %s", LOCK_MINUTES, failed, mask_id(national_id))
        return Outcome("locked", minutes_left=LOCK_MINUTES)
    store.set_identity_lock(db, national_id, failed, None)
    return Outcome("wrong", attempts_left=MAX_WRONG_CODES - failed)


def verify_code(db: Db, national_id: str, code: str, now: Optional[datetime] = None) -> Outcome:
    """Check a code; three wrong codes lock the id for 15 minutes.

    For an id not on file no code exists, so every code is wrong, counted
    and locked alike, and "expired" comes after the same five minutes.
    """
    now = _now(now)
    with store.transaction(db):
        store.serialize(db, f"identity:{national_id}")
        minutes = _lock_minutes_left(db, national_id, now)
        if minutes:
            return Outcome("locked", minutes_left=minutes)
        if store.get_person(db, national_id) is None:
            asked = store.latest_code_request(db, national_id)
            if asked is None:
                return Outcome("no_code")
            if datetime.fromisoformat(asked) + CODE_TTL <= now:
                return Outcome("expired")
            return _wrong_code(db, national_id, now, None)
        pending = store.pending_code(db, national_id)
        if pending is None:
            return Outcome("no_code")
        if datetime.fromisoformat(pending["expires_at"]) <= now:
            store.use_code(db, pending["id"], store.now_iso(now))
            return Outcome("expired")
        if secrets.compare_digest(pending["code"], code or ""):
            store.use_code(db, pending["id"], store.now_iso(now))
            store.clear_identity_lock(db, national_id)
            log.info("identity verified: %s", mask_id(national_id))
            return Outcome("ok")
        return _wrong_code(db, national_id, now, pending["id"])
