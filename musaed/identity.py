"""Proving who someone is: national id, then a one-time code to the mobile on file.

Nothing personal is shown or changed before `verify_code` says OK. Issue 25:
a stranger who types someone's id must neither lock them out nor use up
their codes, so

- a code belongs to the conversation it was sent for (a `Caller`): it works
  there only, and a new code in one conversation never spoils another's;
- wrong codes lock the conversation that typed them, not the id;
- codes are kept only as a keyed hash (HMAC-SHA256 under a secret of
  musaed/keys.py, bound to the conversation and id: a copied database gives
  no code away). In development the code's digits also go to the
  `otp_outbox` table, which is the SMS (`make code ID=…`); with a real SMS
  gateway (MUSAED_SMS_URL) they are never stored;
- codes are limited by who asks and for whom, all counted in the store
  (see LIMITS below). No code is ever written to a log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from musaed import catalogue, keys, settings, sms, store
from musaed.arabic import to_ascii_digits
from musaed.language import ARABIC
from musaed.store import Db

log = logging.getLogger(__name__)

CODE_TTL_MINUTES = 5
CODE_TTL = timedelta(minutes=CODE_TTL_MINUTES)
MAX_WRONG_CODES = 3
LOCK_MINUTES = 15
LOCK_FOR = timedelta(minutes=LOCK_MINUTES)
# LIMITS. Each code is an SMS someone pays for, to a person who may not have asked for it.
# The owner's mobile: at most MAX_CODES in any CODE_WINDOW, and MAX_CODES_A_DAY.
MAX_CODES = 3
CODE_WINDOW_MINUTES = 15
CODE_WINDOW = timedelta(minutes=CODE_WINDOW_MINUTES)
MAX_CODES_A_DAY = 10
DAY = timedelta(days=1)
# One caller (a conversation, or an address where the channel gives one) for one id: at
# most CALLER_CODES in a window and CALLER_CODES_A_DAY, so that a stranger hammering an
# id from one place takes fewer than the owner's MAX_CODES, and the owner, elsewhere,
# can still get one (a new code in 5 minutes covers an expired one).
CALLER_CODES = 2
CALLER_CODES_A_DAY = 3
# One caller asks codes for at most CALLER_IDS different ids an hour: trying ids
# one after another (and guessing each one's codes) stops there.
CALLER_IDS = 3
CALLER_IDS_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Caller:
    """Who asks for or types a code: their conversation (a channel identity's,
    channels/ids.py), and their network address where the channel gives one."""

    conversation: str
    address: Optional[str] = None


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
    match = _SIX_DIGITS.search(re.sub(r"[\s\-]", "", to_ascii_digits(text or "")))
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


def _lock_minutes_left(db: Db, caller: Caller, now: datetime) -> int:
    row = store.verification_lock(db, caller.conversation)
    if not row or not row["locked_until"]:
        return 0
    return _minutes_until(datetime.fromisoformat(row["locked_until"]), now)


def code_text(code: str, language: str = ARABIC) -> str:
    """The SMS the person gets, in the language they are writing in."""
    return catalogue.load(language).labels["sms_code"].format(code=code, minutes=CODE_TTL_MINUTES)


def code_hash(national_id: str, conversation: str, code: str) -> str:
    """The keyed hash kept instead of a code: a million codes are quick to try
    against a plain hash, not against one whose key is not in the database."""
    key = keys.shared_secret(settings.CODE_SECRET, "code.secret")
    return hmac.new(key, f"{conversation}\n{national_id}\n{code}".encode(), hashlib.sha256).hexdigest()


def _free_again(times: list, window: timedelta, now: datetime) -> int:
    """Minutes until the oldest of `times` leaves `window` (at least 1)."""
    return max(1, _minutes_until(datetime.fromisoformat(times[0]) + window, now))


def _limit_minutes(db: Db, national_id: str, caller: Caller, now: datetime) -> int:
    """0 when a code may go to `national_id` for `caller` now; else minutes to wait."""
    since_hour = store.now_iso(now - CALLER_IDS_WINDOW)
    askers = [{"conversation": caller.conversation}] + ([{"address": caller.address}] if caller.address else [])
    for asker in askers:
        ids = store.ids_asked_since(db, since_hour, **asker)
        if national_id not in ids and len(ids) >= CALLER_IDS:
            return _free_again(sorted(ids.values()), CALLER_IDS_WINDOW, now)
        for limit, window in ((CALLER_CODES, CODE_WINDOW), (CALLER_CODES_A_DAY, DAY)):
            asked = store.code_requests_since(db, national_id, store.now_iso(now - window), **asker)
            if len(asked) >= limit:
                return _free_again(asked, window, now)
    for limit, window in ((MAX_CODES, CODE_WINDOW), (MAX_CODES_A_DAY, DAY)):
        asked = store.code_requests_since(db, national_id, store.now_iso(now - window))
        if len(asked) >= limit:
            return _free_again(asked, window, now)
    return 0


def send_code(
    db: Db,
    national_id: str,
    caller: Caller,
    now: Optional[datetime] = None,
    sender: Optional[sms.Sender] = None,
    language: str = ARABIC,
) -> Outcome:
    """Send a fresh 6-digit code for `caller`'s conversation to the mobile on file, within the limits.

    An id that is not on file gets the same outcome, and the same work, as
    one that is ("sent"; "limited" past a limit): what the person is told
    never says whether a number is registered. The counts and the new code
    are one transaction, so conversations asking at once cannot pass a
    limit together.
    """
    now = _now(now)
    sender = sender or sms.from_env()
    delivery = None
    with store.transaction(db):
        store.serialize(db, f"identity:{national_id}")
        minutes = _lock_minutes_left(db, caller, now)
        if minutes:
            return Outcome("locked", minutes_left=minutes)
        minutes = _limit_minutes(db, national_id, caller, now)
        if minutes:
            return Outcome("limited", minutes_left=minutes)
        store.record_code_request(db, national_id, store.now_iso(now), caller.conversation, caller.address)
        person = store.get_person(db, national_id)
        if person is not None:
            code = f"{secrets.randbelow(10**6):06d}"
            times = {"created_at": store.now_iso(now), "expires_at": store.now_iso(now + CODE_TTL)}
            store.save_code(
                db,
                national_id=national_id,
                conversation=caller.conversation,
                code_hash=code_hash(national_id, caller.conversation, code),
                **times,
            )
            if isinstance(sender, sms.OutboxOnly):  # development: the outbox is the SMS
                store.write_outbox(db, national_id=national_id, mobile=person["mobile"], code=code, **times)
            delivery = (person["mobile"] or "", code)
    if delivery is not None:
        # Never the code itself in a log, at any level.
        log.info("one-time code sent for %s", mask_id(national_id))
        sender.deliver(delivery[0], code_text(delivery[1], language))
    return Outcome("sent", attempts_left=MAX_WRONG_CODES)


def _wrong_code(db: Db, caller: Caller, now: datetime, pending_id: Optional[int]) -> Outcome:
    lock = store.verification_lock(db, caller.conversation)
    failed = (lock["failed"] if lock else 0) + 1
    if failed >= MAX_WRONG_CODES:
        if pending_id is not None:
            store.use_code(db, pending_id, store.now_iso(now))
        store.set_verification_lock(db, caller.conversation, 0, store.now_iso(now + LOCK_FOR))
        log.warning("verification paused for %d min in a conversation after %d wrong codes", LOCK_MINUTES, failed)
        return Outcome("locked", minutes_left=LOCK_MINUTES)
    store.set_verification_lock(db, caller.conversation, failed, None)
    return Outcome("wrong", attempts_left=MAX_WRONG_CODES - failed)


def verify_code(db: Db, national_id: str, code: str, caller: Caller, now: Optional[datetime] = None) -> Outcome:
    """Check a code typed in `caller`'s conversation; three wrong codes pause
    verification in that conversation for 15 minutes (the owner, elsewhere, is not locked).

    For an id not on file no code exists, so every code is wrong, counted
    and locked alike, and "expired" comes after the same five minutes.
    """
    now = _now(now)
    with store.transaction(db):
        store.serialize(db, f"identity:{national_id}")
        minutes = _lock_minutes_left(db, caller, now)
        if minutes:
            return Outcome("locked", minutes_left=minutes)
        if store.get_person(db, national_id) is None:
            asked = store.latest_code_request(db, national_id, caller.conversation)
            if asked is None:
                return Outcome("no_code")
            if datetime.fromisoformat(asked) + CODE_TTL <= now:
                return Outcome("expired")
            return _wrong_code(db, caller, now, None)
        pending = store.pending_code(db, national_id, caller.conversation)
        if pending is None:
            return Outcome("no_code")
        if datetime.fromisoformat(pending["expires_at"]) <= now:
            store.use_code(db, pending["id"], store.now_iso(now))
            return Outcome("expired")
        typed = code_hash(national_id, caller.conversation, code or "")
        if hmac.compare_digest(pending["code_hash"], typed):
            store.use_code(db, pending["id"], store.now_iso(now))
            store.clear_verification_lock(db, caller.conversation)
            log.info("identity verified: %s", mask_id(national_id))
            return Outcome("ok")
        return _wrong_code(db, caller, now, pending["id"])
