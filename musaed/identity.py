"""Proving who someone is: national id, then a one-time code to the mobile on file.

Nothing personal is shown or changed before `verify_code` says OK.  In
development the code is "sent" by writing it to the `otp_outbox` table and
the log; production swaps `send_code` for an SMS gateway.
"""
from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlite_utils import Database

from musaed import store
from musaed.arabic import to_ascii_digits

log = logging.getLogger(__name__)

CODE_TTL = timedelta(minutes=5)
MAX_WRONG_CODES = 3
LOCK_FOR = timedelta(minutes=15)

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
    status: str  # sent | unknown | locked | ok | wrong | expired | no_code
    attempts_left: int = 0
    minutes_left: int = 0


def _now(now: Optional[datetime]) -> datetime:
    return now or datetime.now(timezone.utc)


def _lock_minutes_left(db: Database, national_id: str, now: datetime) -> int:
    row = store._one(db, "SELECT * FROM identity_locks WHERE national_id = ?", [national_id])
    if not row or not row["locked_until"]:
        return 0
    until = datetime.fromisoformat(row["locked_until"])
    return max(0, -(-int((until - now).total_seconds()) // 60)) if until > now else 0


def send_code(db: Database, national_id: str, now: Optional[datetime] = None) -> Outcome:
    """Send a fresh 6-digit code to the mobile on file (the outbox, in development)."""
    now = _now(now)
    person = store.get_person(db, national_id)
    if person is None:
        return Outcome("unknown")
    minutes = _lock_minutes_left(db, national_id, now)
    if minutes:
        return Outcome("locked", minutes_left=minutes)
    code = f"{secrets.randbelow(10**6):06d}"
    with store.transaction(db):
        # A new code replaces any earlier one.
        db.execute("UPDATE otp_outbox SET used_at = ? WHERE national_id = ? AND used_at IS NULL",
                   [store.now_iso(now), national_id])
        store._insert(db, "otp_outbox", {
            "national_id": national_id, "mobile": person["mobile"], "code": code,
            "created_at": store.now_iso(now), "expires_at": store.now_iso(now + CODE_TTL),
            "used_at": None,
        })
    log.info("one-time code for %s to mobile ending %s: %s (development outbox)",
             mask_id(national_id), (person["mobile"] or "")[-2:], code)
    return Outcome("sent", attempts_left=MAX_WRONG_CODES)


def verify_code(db: Database, national_id: str, code: str, now: Optional[datetime] = None) -> Outcome:
    """Check a code; three wrong codes lock the id for 15 minutes."""
    now = _now(now)
    minutes = _lock_minutes_left(db, national_id, now)
    if minutes:
        return Outcome("locked", minutes_left=minutes)
    with store.transaction(db):
        pending = store._one(
            db, "SELECT * FROM otp_outbox WHERE national_id = ? AND used_at IS NULL "
                "ORDER BY id DESC LIMIT 1", [national_id])
        if pending is None:
            return Outcome("no_code")
        if datetime.fromisoformat(pending["expires_at"]) <= now:
            db.execute("UPDATE otp_outbox SET used_at = ? WHERE id = ?", [store.now_iso(now), pending["id"]])
            return Outcome("expired")
        if secrets.compare_digest(pending["code"], code or ""):
            db.execute("UPDATE otp_outbox SET used_at = ? WHERE id = ?", [store.now_iso(now), pending["id"]])
            db.execute("DELETE FROM identity_locks WHERE national_id = ?", [national_id])
            log.info("identity verified: %s", mask_id(national_id))
            return Outcome("ok")
        lock = store._one(db, "SELECT * FROM identity_locks WHERE national_id = ?", [national_id])
        failed = (lock["failed"] if lock else 0) + 1
        if failed >= MAX_WRONG_CODES:
            db.execute("UPDATE otp_outbox SET used_at = ? WHERE id = ?", [store.now_iso(now), pending["id"]])
            db.execute("INSERT OR REPLACE INTO identity_locks VALUES (?, 0, ?)",
                       [national_id, store.now_iso(now + LOCK_FOR)])
            log.warning("identity locked for %d min after %d wrong codes: %s",
                        LOCK_FOR.seconds // 60, failed, mask_id(national_id))
            return Outcome("locked", minutes_left=LOCK_FOR.seconds // 60)
        db.execute("INSERT OR REPLACE INTO identity_locks VALUES (?, ?, NULL)", [national_id, failed])
        return Outcome("wrong", attempts_left=MAX_WRONG_CODES - failed)
