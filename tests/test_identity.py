"""Proving who someone is: national id parsing, masking, one-time codes and locks."""
import logging
import re
from datetime import date, datetime, timedelta, timezone

import pytest

from musaed import identity, seed, store

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
IDS = seed.ids()
KHALID = IDS["khalid"]


@pytest.fixture
def db(tmp_path):
    db = store.open_db(tmp_path / "musaed.db")
    seed.seed(db, today=date(2026, 11, 23))
    return db


def latest_code(db, national_id=KHALID):
    return db.execute("SELECT code FROM otp_outbox WHERE national_id = ? ORDER BY id DESC LIMIT 1",
                      [national_id]).fetchone()[0]


def wrong_code(code):
    return f"{(int(code) + 1) % 10**6:06d}"


# -- national ids ------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(IDS))
def test_seeded_ids_are_valid(name):
    assert identity.check_digit_ok(IDS[name])
    assert identity.parse_national_id(IDS[name]) == identity.ParsedId(IDS[name], None)


def test_check_digit_rejects_a_changed_last_digit():
    assert not identity.check_digit_ok(KHALID[:-1] + str((int(KHALID[-1]) + 1) % 10))


def test_check_digit_is_luhn_with_doubled_digits_over_nine():
    # Worked by hand: doubled 1,3,5,7,9 → 2,6,1,5,9 (23) + 2,4,6,8 (20) + 7 = 50.
    assert identity.check_digit_ok("1234567897")
    assert not identity.check_digit_ok("1234567890")


@pytest.mark.parametrize("text", [
    "١٠١٠٠٠٠٠١٤",                 # Arabic-Indic digits
    "۱۰۱۰۰۰۰۰۱۴",                 # Persian digits
    "1010 000 014",               # spaces
    "101-000-0014",               # dashes
    "رقم هويتي 1010000014 لو سمحت",
])
def test_parse_national_id_reads_any_script_and_spacing(text):
    assert identity.parse_national_id(text).national_id == KHALID


@pytest.mark.parametrize("text, error", [
    ("101000001", "length"),
    ("10100000144", "length"),
    ("3010000010", "prefix"),     # passes the check digit, but ids start with 1 or 2
    ("1010000015", "check_digit"),
    ("ما عندي رقم", "missing"),
    ("", "missing"),
])
def test_parse_national_id_errors(text, error):
    assert identity.parse_national_id(text) == identity.ParsedId(None, error)


@pytest.mark.parametrize("nid", ["1010000014", "2010000129", "123456789012", "12345"])
def test_mask_id_shows_only_first_one_and_last_three(nid):
    masked = identity.mask_id(nid)
    assert masked == nid[0] + "*" * (len(nid) - 4) + nid[-3:]
    assert sum(ch.isdigit() for ch in masked) == 4


@pytest.mark.parametrize("nid", ["1234", "12", "", None])
def test_mask_id_hides_short_values_entirely(nid):
    assert identity.mask_id(nid) == "***"


# -- one-time codes ----------------------------------------------------------

def test_send_code_to_unknown_id(db):
    assert identity.send_code(db, "1999999993", now=T0).status == "unknown"
    assert db.execute("SELECT COUNT(*) FROM otp_outbox").fetchone()[0] == 0


def test_send_code_writes_six_digits_to_outbox(db):
    outcome = identity.send_code(db, KHALID, now=T0)
    assert outcome.status == "sent"
    row = next(db.query("SELECT * FROM otp_outbox WHERE national_id = ?", [KHALID]))
    assert re.fullmatch(r"\d{6}", row["code"])
    assert row["mobile"] == "0551000001"
    assert datetime.fromisoformat(row["expires_at"]) == T0 + timedelta(minutes=5)


def test_right_code_verifies_once(db):
    identity.send_code(db, KHALID, now=T0)
    code = latest_code(db)
    assert identity.verify_code(db, KHALID, code, now=T0 + timedelta(minutes=1)).status == "ok"
    assert identity.verify_code(db, KHALID, code, now=T0 + timedelta(minutes=2)).status == "no_code"


def test_new_code_replaces_the_earlier_one(db):
    identity.send_code(db, KHALID, now=T0)
    old = latest_code(db)
    identity.send_code(db, KHALID, now=T0 + timedelta(minutes=1))
    new = latest_code(db)
    if old != new:
        assert identity.verify_code(db, KHALID, old, now=T0 + timedelta(minutes=2)).status == "wrong"
    assert identity.verify_code(db, KHALID, new, now=T0 + timedelta(minutes=2)).status == "ok"


def test_three_wrong_codes_lock_for_fifteen_minutes(db):
    identity.send_code(db, KHALID, now=T0)
    code = latest_code(db)
    bad = wrong_code(code)
    first = identity.verify_code(db, KHALID, bad, now=T0)
    second = identity.verify_code(db, KHALID, bad, now=T0)
    third = identity.verify_code(db, KHALID, bad, now=T0)
    assert (first.status, first.attempts_left) == ("wrong", 2)
    assert (second.status, second.attempts_left) == ("wrong", 1)
    assert (third.status, third.minutes_left) == ("locked", 15)
    # Locked: even the right code, and sending a new one, are refused.
    assert identity.verify_code(db, KHALID, code, now=T0 + timedelta(minutes=1)).status == "locked"
    assert identity.send_code(db, KHALID, now=T0 + timedelta(minutes=10)).minutes_left == 5
    assert identity.send_code(db, KHALID, now=T0 + timedelta(minutes=14, seconds=59)).status == "locked"


def test_a_new_code_works_after_the_lock_expires(db):
    identity.send_code(db, KHALID, now=T0)
    bad = wrong_code(latest_code(db))
    for _ in range(3):
        identity.verify_code(db, KHALID, bad, now=T0)
    later = T0 + timedelta(minutes=15)
    assert identity.send_code(db, KHALID, now=later).status == "sent"
    assert identity.verify_code(db, KHALID, latest_code(db), now=later + timedelta(minutes=1)).status == "ok"


def test_lock_is_per_person(db):
    identity.send_code(db, KHALID, now=T0)
    bad = wrong_code(latest_code(db))
    for _ in range(3):
        identity.verify_code(db, KHALID, bad, now=T0)
    assert identity.send_code(db, IDS["sara"], now=T0).status == "sent"


def test_code_expires_after_five_minutes(db):
    identity.send_code(db, KHALID, now=T0)
    code = latest_code(db)
    assert identity.verify_code(db, KHALID, code, now=T0 + timedelta(minutes=5, seconds=1)).status == "expired"
    assert identity.verify_code(db, KHALID, code, now=T0 + timedelta(minutes=6)).status == "no_code"


def test_code_just_before_five_minutes_is_accepted(db):
    identity.send_code(db, KHALID, now=T0)
    assert identity.verify_code(db, KHALID, latest_code(db),
                                now=T0 + timedelta(minutes=4, seconds=59)).status == "ok"


def test_logs_never_contain_the_full_national_id(db, caplog):
    caplog.set_level(logging.INFO, logger="musaed.identity")
    identity.send_code(db, KHALID, now=T0)
    identity.verify_code(db, KHALID, latest_code(db), now=T0)
    identity.send_code(db, KHALID, now=T0)
    bad = wrong_code(latest_code(db))
    for _ in range(3):
        identity.verify_code(db, KHALID, bad, now=T0)
    messages = [r.getMessage() for r in caplog.records if r.name == "musaed.identity"]
    assert len(messages) >= 4  # sent, verified, sent, locked
    assert all(KHALID not in m for m in messages)
    assert all(identity.mask_id(KHALID) in m for m in messages)
