"""Proving who someone is: national id parsing, masking, one-time codes and locks."""

import hashlib
import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone

import pytest

from musaed import identity, seed, sms, store

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
IDS = seed.ids()
KHALID = IDS["khalid"]


@pytest.fixture
def db(open_store):
    """This test's own database, on SQLite and on PostgreSQL (conftest's open_store)."""
    db = open_store()
    seed.seed(db, today=date(2026, 11, 23))
    return db


def latest_code(db, national_id=KHALID):
    return db.execute(
        "SELECT code FROM otp_outbox WHERE national_id = ? ORDER BY id DESC LIMIT 1", [national_id]
    ).fetchone()[0]


OWNER = identity.Caller("web:owner")
STRANGER = identity.Caller("rest:stranger")


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


@pytest.mark.parametrize(
    "text",
    [
        "١٠١٠٠٠٠٠١٤",  # Arabic-Indic digits
        "۱۰۱۰۰۰۰۰۱۴",  # Persian digits
        "1010 000 014",  # spaces
        "101-000-0014",  # dashes
        "رقم هويتي 1010000014 لو سمحت",
    ],
)
def test_parse_national_id_reads_any_script_and_spacing(text):
    assert identity.parse_national_id(text).national_id == KHALID


@pytest.mark.parametrize(
    "text, error",
    [
        ("101000001", "length"),
        ("10100000144", "length"),
        ("3010000010", "prefix"),  # passes the check digit, but ids start with 1 or 2
        ("1010000015", "check_digit"),
        ("ما عندي رقم", "missing"),
        ("", "missing"),
    ],
)
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
# OWNER and STRANGER are two conversations; a code belongs to the one it was sent for.


def test_unknown_id_gets_the_same_outcomes_as_a_known_one_and_no_code(db):
    unknown = "1999999996"
    assert identity.check_digit_ok(unknown) and store.get_person(db, unknown) is None
    for nid in (KHALID, unknown):
        caller = identity.Caller(f"rest:{nid}")
        sent = identity.send_code(db, nid, caller, now=T0)
        assert (sent.status, sent.attempts_left) == ("sent", 3)
        outcomes = [identity.verify_code(db, nid, "000000", caller, now=T0 + timedelta(seconds=i)) for i in range(3)]
        assert [(o.status, o.attempts_left, o.minutes_left) for o in outcomes] == [
            ("wrong", 2, 0),
            ("wrong", 1, 0),
            ("locked", 0, 15),
        ], nid
    assert db.execute("SELECT COUNT(*) FROM otp_outbox WHERE national_id = ?", [unknown]).fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM one_time_codes WHERE national_id = ?", [unknown]).fetchone()[0] == 0


def test_unknown_id_code_expires_like_a_known_one(db):
    unknown = "1999999996"
    for nid in (KHALID, unknown):
        identity.send_code(db, nid, OWNER, now=T0)
        outcome = identity.verify_code(db, nid, "000000", OWNER, now=T0 + timedelta(minutes=5, seconds=1))
        assert outcome.status == "expired"


def test_unknown_id_is_limited_like_a_known_one(db):
    for nid in (KHALID, "1999999996"):
        callers = [identity.Caller(f"rest:{nid}-{i}") for i in range(4)]
        statuses = [identity.send_code(db, nid, c, now=T0 + timedelta(minutes=i)).status for i, c in enumerate(callers)]
        assert statuses == ["sent", "sent", "sent", "limited"], nid


def test_three_codes_to_one_mobile_in_fifteen_minutes_then_the_fourth_is_refused_with_the_wait(db):
    for minute in (0, 4, 8):
        caller = identity.Caller(f"web:{minute}")
        assert identity.send_code(db, KHALID, caller, now=T0 + timedelta(minutes=minute)).status == "sent"
    before = db.execute("SELECT COUNT(*) FROM otp_outbox").fetchone()[0]
    fourth = identity.send_code(db, KHALID, identity.Caller("web:10"), now=T0 + timedelta(minutes=10))
    assert (fourth.status, fourth.minutes_left) == ("limited", 5)  # the first leaves the window at 15
    assert db.execute("SELECT COUNT(*) FROM otp_outbox").fetchone()[0] == before  # nothing sent
    # A sliding window: at 15 the first code has left it, at 16 the second has not.
    assert identity.send_code(db, KHALID, identity.Caller("web:15"), now=T0 + timedelta(minutes=15)).status == "sent"
    assert identity.send_code(db, KHALID, identity.Caller("web:16"), now=T0 + timedelta(minutes=16)).status == "limited"
    # Other people are not affected.
    assert identity.send_code(db, IDS["sara"], OWNER, now=T0 + timedelta(minutes=10)).status == "sent"


def test_ten_codes_a_day_to_one_mobile(db):
    sent = [
        identity.send_code(db, KHALID, identity.Caller(f"web:{i}"), now=T0 + timedelta(minutes=20 * i)).status
        for i in range(12)
    ]
    assert sent == ["sent"] * 10 + ["limited"] * 2
    assert identity.send_code(db, KHALID, OWNER, now=T0 + timedelta(days=1, minutes=1)).status == "sent"


def test_one_conversation_gets_two_codes_for_an_id_in_a_window_and_three_a_day(db):
    statuses = [identity.send_code(db, KHALID, STRANGER, now=T0 + timedelta(minutes=i)).status for i in range(3)]
    assert statuses == ["sent", "sent", "limited"]
    later = [identity.send_code(db, KHALID, STRANGER, now=T0 + timedelta(minutes=20 + i)).status for i in range(2)]
    assert later == ["sent", "limited"]  # the third of the day
    assert identity.send_code(db, KHALID, STRANGER, now=T0 + timedelta(hours=5)).status == "limited"


def test_one_address_counts_all_its_conversations(db):
    here = [identity.Caller(f"web:tab{i}", address="203.0.113.7") for i in range(3)]
    statuses = [identity.send_code(db, KHALID, c, now=T0 + timedelta(minutes=i)).status for i, c in enumerate(here)]
    assert statuses == ["sent", "sent", "limited"]


def test_one_caller_gets_codes_for_three_ids_an_hour(db):
    ids = [IDS[n] for n in ("khalid", "sara", "fahd", "noura")]
    statuses = [
        identity.send_code(db, nid, STRANGER, now=T0 + timedelta(minutes=i)).status for i, nid in enumerate(ids)
    ]
    assert statuses == ["sent", "sent", "sent", "limited"]
    # The ids it already tried still get their codes; a fourth waits until the first leaves the hour.
    assert identity.send_code(db, IDS["sara"], STRANGER, now=T0 + timedelta(minutes=5)).status == "sent"
    assert identity.send_code(db, IDS["noura"], STRANGER, now=T0 + timedelta(minutes=61)).status == "sent"
    # The same holds per address, across conversations.
    tabs = [identity.Caller(f"web:t{i}", address="198.51.100.9") for i in range(4)]
    statuses = [identity.send_code(db, nid, c, now=T0).status for nid, c in zip(ids, tabs, strict=True)]
    assert statuses == ["sent", "sent", "sent", "limited"]


def test_code_limit_holds_for_concurrent_conversations(db, open_store):
    """Twelve conversations typing the same id at once (each its own connection): three codes."""
    callers = [identity.Caller(f"web:{i}") for i in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda c: identity.send_code(open_store(), KHALID, c).status, callers))
    assert sorted(statuses) == ["limited"] * 9 + ["sent"] * 3
    assert db.execute("SELECT COUNT(*) FROM one_time_codes WHERE national_id = ?", [KHALID]).fetchone()[0] == 3


def test_send_code_writes_six_digits_to_the_development_outbox_and_keeps_only_a_keyed_hash(db):
    outcome = identity.send_code(db, KHALID, OWNER, now=T0)
    assert outcome.status == "sent"
    row = next(db.query("SELECT * FROM otp_outbox WHERE national_id = ?", [KHALID]))
    assert re.fullmatch(r"\d{6}", row["code"])
    assert row["mobile"] == "0551000001"
    assert datetime.fromisoformat(row["expires_at"]) == T0 + timedelta(minutes=5)
    [kept] = list(db.query("SELECT * FROM one_time_codes WHERE national_id = ?", [KHALID]))
    assert row["code"] not in json.dumps(kept)
    # Keyed: not the plain hash of the code, nor of anything built from it without the key.
    assert kept["code_hash"] != hashlib.sha256(row["code"].encode()).hexdigest()
    assert kept["code_hash"] == identity.code_hash(KHALID, OWNER.conversation, row["code"])


def test_right_code_verifies_once(db):
    identity.send_code(db, KHALID, OWNER, now=T0)
    code = latest_code(db)
    assert identity.verify_code(db, KHALID, code, OWNER, now=T0 + timedelta(minutes=1)).status == "ok"
    assert identity.verify_code(db, KHALID, code, OWNER, now=T0 + timedelta(minutes=2)).status == "no_code"


def test_a_code_works_only_in_the_conversation_it_was_sent_for(db):
    identity.send_code(db, KHALID, OWNER, now=T0)
    code = latest_code(db)
    assert identity.verify_code(db, KHALID, code, STRANGER, now=T0).status == "no_code"
    identity.send_code(db, KHALID, STRANGER, now=T0)  # the stranger's own code spoils nothing of the owner's
    assert identity.verify_code(db, KHALID, code, STRANGER, now=T0).status == "wrong"
    assert identity.verify_code(db, KHALID, code, OWNER, now=T0 + timedelta(minutes=1)).status == "ok"


def test_new_code_replaces_the_earlier_one_in_the_same_conversation(db):
    identity.send_code(db, KHALID, OWNER, now=T0)
    identity.send_code(db, KHALID, OWNER, now=T0 + timedelta(minutes=1))
    second = latest_code(db)
    rows = list(db.query("SELECT used_at FROM one_time_codes WHERE national_id = ? ORDER BY id", [KHALID]))
    assert [r["used_at"] is None for r in rows] == [False, True]  # only the newest is pending
    assert identity.verify_code(db, KHALID, second, OWNER, now=T0 + timedelta(minutes=2)).status == "ok"


def test_three_wrong_codes_lock_the_conversation_for_fifteen_minutes(db):
    identity.send_code(db, KHALID, OWNER, now=T0)
    code = latest_code(db)
    bad = wrong_code(code)
    first = identity.verify_code(db, KHALID, bad, OWNER, now=T0)
    second = identity.verify_code(db, KHALID, bad, OWNER, now=T0)
    third = identity.verify_code(db, KHALID, bad, OWNER, now=T0)
    assert (first.status, first.attempts_left) == ("wrong", 2)
    assert (second.status, second.attempts_left) == ("wrong", 1)
    assert (third.status, third.minutes_left) == ("locked", 15)
    # Locked: even the right code, and sending a new one, are refused in this conversation.
    assert identity.verify_code(db, KHALID, code, OWNER, now=T0 + timedelta(minutes=1)).status == "locked"
    assert identity.send_code(db, KHALID, OWNER, now=T0 + timedelta(minutes=10)).minutes_left == 5
    assert identity.send_code(db, KHALID, OWNER, now=T0 + timedelta(minutes=14, seconds=59)).status == "locked"


def test_a_new_code_works_after_the_lock_expires(db):
    identity.send_code(db, KHALID, OWNER, now=T0)
    bad = wrong_code(latest_code(db))
    for _ in range(3):
        identity.verify_code(db, KHALID, bad, OWNER, now=T0)
    later = T0 + timedelta(minutes=15)
    assert identity.send_code(db, KHALID, OWNER, now=later).status == "sent"
    assert identity.verify_code(db, KHALID, latest_code(db), OWNER, now=later + timedelta(minutes=1)).status == "ok"


def test_a_stranger_neither_locks_the_owner_out_nor_uses_up_their_codes(db, open_store):
    """A stranger types the owner's id from five conversations at one address, asks for
    codes again and again and types wrong ones; the owner, in their own conversation
    elsewhere, still gets a code and verifies."""
    tabs = [identity.Caller(f"web:stranger{i}", address="203.0.113.7") for i in range(5)]
    for minute in range(4):
        now = T0 + timedelta(minutes=minute)
        for tab in tabs:
            identity.send_code(open_store(), KHALID, tab, now=now)
            for _ in range(3):
                identity.verify_code(open_store(), KHALID, "000000", tab, now=now)
    assert db.execute("SELECT COUNT(*) FROM one_time_codes WHERE national_id = ?", [KHALID]).fetchone()[0] == 2
    owner = identity.Caller("whatsapp:966551000001")
    now = T0 + timedelta(minutes=5)
    assert identity.send_code(db, KHALID, owner, now=now).status == "sent"
    assert identity.verify_code(db, KHALID, latest_code(db), owner, now=now).status == "ok"


def test_lock_is_per_conversation(db):
    identity.send_code(db, KHALID, OWNER, now=T0)
    bad = wrong_code(latest_code(db))
    for _ in range(3):
        identity.verify_code(db, KHALID, bad, STRANGER, now=T0)
    assert identity.send_code(db, IDS["sara"], OWNER, now=T0).status == "sent"
    assert identity.verify_code(db, KHALID, latest_code(db, IDS["sara"]), OWNER, now=T0).status == "wrong"


def test_code_expires_after_five_minutes(db):
    identity.send_code(db, KHALID, OWNER, now=T0)
    code = latest_code(db)
    assert identity.verify_code(db, KHALID, code, OWNER, now=T0 + timedelta(minutes=5, seconds=1)).status == "expired"
    assert identity.verify_code(db, KHALID, code, OWNER, now=T0 + timedelta(minutes=6)).status == "no_code"


def test_code_just_before_five_minutes_is_accepted(db):
    identity.send_code(db, KHALID, OWNER, now=T0)
    outcome = identity.verify_code(db, KHALID, latest_code(db), OWNER, now=T0 + timedelta(minutes=4, seconds=59))
    assert outcome.status == "ok"


def test_a_code_typed_with_spaces_or_a_dash_is_read():
    assert identity.parse_code("659 185") == identity.parse_code("659-185") == "659185"
    assert identity.parse_code("٦٥٩ ١٨٥") == "659185"
    assert identity.parse_code("1010 000 014") is None  # an id, not a code


def test_logs_never_contain_the_full_national_id(db, caplog):
    caplog.set_level(logging.INFO, logger="musaed.identity")
    identity.send_code(db, KHALID, OWNER, now=T0)
    identity.verify_code(db, KHALID, latest_code(db), OWNER, now=T0)
    identity.send_code(db, KHALID, OWNER, now=T0)
    bad = wrong_code(latest_code(db))
    for _ in range(3):
        identity.verify_code(db, KHALID, bad, OWNER, now=T0)
    messages = [r.getMessage() for r in caplog.records if r.name == "musaed.identity"]
    assert len(messages) >= 4  # sent, verified, sent, locked
    assert all(KHALID not in m for m in messages)


def test_no_code_is_logged_at_any_level(db, caplog):
    caplog.set_level(logging.DEBUG)
    identity.send_code(db, KHALID, OWNER, now=T0)
    code = latest_code(db)
    identity.verify_code(db, KHALID, wrong_code(code), OWNER, now=T0)
    identity.verify_code(db, KHALID, code, OWNER, now=T0)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "one-time code sent" in logged  # the sending is logged, the code is not
    assert code not in logged and wrong_code(code) not in logged


# -- delivery: the SMS gateway adapter, against a local fake gateway ------------


class FakeGateway:
    """An SMS gateway on a loopback port that records each POST (its JSON and token)."""

    def __init__(self, status=200):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received, self.status, outer = [], status, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append({"json": json.loads(body), "authorization": self.headers.get("Authorization")})
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_http_gateway_gets_the_code_for_the_mobile_on_file(db, caplog):
    gateway = FakeGateway()
    try:
        sender = sms.from_env({"MUSAED_SMS_URL": gateway.url, "MUSAED_SMS_TOKEN": "gw-token"})
        assert isinstance(sender, sms.HttpGateway)
        caplog.set_level(logging.DEBUG)
        delivered = []
        real_deliver = sender.deliver
        sender.deliver = lambda mobile, text: delivered.append(real_deliver(mobile, text)) or delivered[-1]
        assert identity.send_code(db, KHALID, OWNER, now=T0, sender=sender).status == "sent"
        assert delivered[0].result(timeout=10) is True
        [call] = gateway.received
        code = re.search(r"\d{6}", call["json"]["text"]).group()
        # With a real gateway the digits are nowhere in the database, only their keyed hash.
        assert db.execute("SELECT COUNT(*) FROM otp_outbox").fetchone()[0] == 0
        assert identity.verify_code(db, KHALID, code, OWNER, now=T0).status == "ok"
        assert call["json"]["to"] == "0551000001"
        assert code in call["json"]["text"] and "5" in call["json"]["text"]
        assert call["authorization"] == "Bearer gw-token"
        assert code not in "\n".join(r.getMessage() for r in caplog.records)
        # An id not on file: nothing reaches the gateway, the outcome is the same.
        assert identity.send_code(db, "1999999996", OWNER, now=T0, sender=sender).status == "sent"
        assert len(delivered) == 1 and len(gateway.received) == 1
    finally:
        gateway.close()


def test_the_sms_is_in_the_language_the_person_writes_in(db):
    gateway = FakeGateway()
    try:
        sender = sms.HttpGateway(gateway.url)
        delivered = []
        real_deliver = sender.deliver
        sender.deliver = lambda mobile, text: delivered.append(real_deliver(mobile, text)) or delivered[-1]
        assert identity.send_code(db, KHALID, OWNER, now=T0, sender=sender, language="en").status == "sent"
        assert delivered[0].result(timeout=10) is True
        [call] = gateway.received
        assert call["json"]["text"] == identity.code_text(re.search(r"\d{6}", call["json"]["text"]).group(), "en")
        assert "Musaed" in call["json"]["text"] and not re.search("[\u0621-\u064a]", call["json"]["text"])
        assert identity.code_text("424242") != identity.code_text("424242", "en")
    finally:
        gateway.close()


def test_http_gateway_failure_is_logged_without_the_code(caplog):
    gateway = FakeGateway(status=503)
    try:
        caplog.set_level(logging.DEBUG)
        sender = sms.HttpGateway(gateway.url)
        assert sender.deliver("0551000001", "رمز التحقق في مساعد: 424242").result(timeout=10) is False
        unreachable = sms.HttpGateway("http://127.0.0.1:9/sms", timeout=2)
        assert unreachable.deliver("0551000001", "رمز 424242").result(timeout=10) is False
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "503" in logged and "424242" not in logged and "0551000001" not in logged
    finally:
        gateway.close()


def test_without_a_gateway_url_the_outbox_is_the_delivery():
    assert isinstance(sms.from_env({}), sms.OutboxOnly)
