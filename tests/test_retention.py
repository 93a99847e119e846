"""Retention in one setting, applied by `musaed-care purge` and on a timer (musaed/retention.py),
on SQLite and PostgreSQL, with rows dated in the past."""

import json
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from musaed import privacy, retention, store

from conftest import EVENT_INSERT, EVENTS_TABLE

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


def test_the_setting_reads_three_durations_with_defaults_and_refuses_nonsense():
    assert retention.parse(retention.DEFAULT) == retention.Policy()
    assert retention.Policy() == retention.Policy(timedelta(days=30), timedelta(days=180), timedelta(days=1))
    assert retention.parse("codes=12h, unverified=7d") == retention.Policy(
        unverified=timedelta(days=7), codes=timedelta(hours=12)
    )
    for wrong in ("codes=1", "verified=forever", "kept=3d", "codes=-1d"):
        with pytest.raises(ValueError):
            retention.parse(wrong)


def conversation(sender: str, days_ago: float, verified=None, reset=False) -> list:
    """Rows of one conversation whose latest event was `days_ago` before NOW."""
    at = (NOW - timedelta(days=days_ago)).timestamp()
    events = [
        {"event": "session_started", "timestamp": at - 60},
        {"event": "user", "timestamp": at - 30, "text": "ضاعت هويتي", "parse_data": {"intent": {"name": "x"}}},
    ]
    if verified is not None or reset:
        slot = {"event": "slot", "name": "verified_id", "value": verified, "timestamp": at - 10}
        events.append(privacy.protect_event(slot, key=privacy._keys(b"k")))
    events.append({"event": "bot", "text": "…", "timestamp": at})
    return [
        [sender, e["event"], e["timestamp"], None, e.get("name"), json.dumps(e, ensure_ascii=False)] for e in events
    ]


CONVERSATIONS = [
    *conversation("unverified-31d", 31),
    *conversation("unverified-29d", 29),
    *conversation("verified-181d", 181, "1010000014"),
    *conversation("verified-100d", 100, "1010000014"),
    # A verified_id emptied (a reset): no one verified; 31 days is past.
    *conversation("reset-31d", 31, reset=True),
]
KEPT = {"unverified-29d", "verified-100d"}


@pytest.fixture(params=["sqlite", "postgresql"])
def tracker_store(request, tmp_path):
    """Rasa's events table with the conversations above: (its location, a function listing its senders)."""
    if request.param == "sqlite":
        path = tmp_path / "trackers.db"
        with sqlite3.connect(path) as conn:
            conn.execute(EVENTS_TABLE.format(id="INTEGER PRIMARY KEY"))
            conn.executemany(EVENT_INSERT.format(m="?"), CONVERSATIONS)
        conn.close()

        def senders():
            with sqlite3.connect(path) as conn:
                return {r[0] for r in conn.execute("SELECT sender_id FROM events")}

        return path, senders
    import psycopg2

    url = request.getfixturevalue("pg_url")
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(EVENTS_TABLE.format(id="SERIAL PRIMARY KEY"))
        cur.executemany(EVENT_INSERT.format(m="%s"), CONVERSATIONS)
    conn.close()

    def senders():
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT sender_id FROM events")
            return {r[0] for r in cur.fetchall()}

    return url, senders


def at(days: float = 0, hours: float = 0) -> str:
    return store.now_iso(NOW - timedelta(days=days, hours=hours))


def seed_codes(db) -> None:
    """Two of each short-lived row: a day old or more, and younger. Lock tables as the store has them."""
    tables = db.table_names()
    for row in (
        {"national_id": "1010000014", "code": "111111", "created_at": at(2), "expires_at": at(2), "used_at": None},
        {"national_id": "1010000014", "code": "222222", "created_at": at(hours=2), "expires_at": at(hours=2)},
    ):
        store.insert_rows(db, "otp_outbox", [row])
    store.insert_rows(
        db,
        "code_requests",
        [{"national_id": "1010000014", "requested_at": at(2)}, {"national_id": "1010000014", "requested_at": at(0)}],
    )
    if "verification_locks" in tables:  # per conversation (migration 003)
        locks = [
            {"conversation": "rest:a", "failed": 3, "locked_until": at(hours=1)},  # expired
            {"conversation": "rest:b", "failed": 3, "locked_until": at(hours=-1)},  # still locked
        ]
        store.insert_rows(db, "verification_locks", locks)
        for days in (2, 0):
            store.insert_rows(
                db,
                "one_time_codes",
                [
                    {
                        "national_id": "1010000014",
                        "conversation": "rest:a",
                        "code_hash": "x",
                        "created_at": at(days),
                        "expires_at": at(days),
                    }
                ],
            )
    else:
        locks = [
            {"national_id": "1010000014", "failed": 3, "locked_until": at(hours=1)},
            {"national_id": "1010000022", "failed": 3, "locked_until": at(hours=-1)},
        ]
        store.insert_rows(db, "identity_locks", locks)


def locks_left(db) -> list:
    table = "verification_locks" if "verification_locks" in db.table_names() else "identity_locks"
    return [r["locked_until"] for r in db.query(f"SELECT locked_until FROM {table}")]


def test_purge_deletes_what_is_past_its_retention_and_keeps_the_rest(tracker_store, open_store):
    where, senders = tracker_store
    db = open_store()
    seed_codes(db)
    counts = retention.purge(db, where, retention.Policy(), now=NOW)
    assert senders() == KEPT
    assert counts["conversations"] == 3
    assert [r["code"] for r in db.query("SELECT code FROM otp_outbox")] == ["222222"]
    assert [r["requested_at"] for r in db.query("SELECT requested_at FROM code_requests")] == [at(0)]
    assert locks_left(db) == [at(hours=-1)]
    assert counts["otp_outbox"] == counts["code_requests"] == 1
    assert counts.get("verification_locks", 0) + counts.get("identity_locks", 0) == 1
    if "one_time_codes" in db.table_names():
        assert [r["created_at"] for r in db.query("SELECT created_at FROM one_time_codes")] == [at(0)]
    # Again: nothing more to do.
    assert set(retention.purge(db, where, retention.Policy(), now=NOW).values()) == {0}


def test_a_shorter_setting_deletes_more_but_not_the_day_the_code_limits_count(tracker_store, open_store):
    where, senders = tracker_store
    db = open_store()
    seed_codes(db)
    store.insert_rows(db, "code_requests", [{"national_id": "1010000014", "requested_at": at(hours=3)}])
    retention.purge(db, where, retention.parse("unverified=1d,verified=50d,codes=1h"), now=NOW)
    assert senders() == set()
    assert [r["code"] for r in db.query("SELECT code FROM otp_outbox")] == []  # 2 hours old
    # Asked for today: the limit of codes a day still sees it.
    left = sorted(r["requested_at"] for r in db.query("SELECT requested_at FROM code_requests"))
    assert left == [at(hours=3), at(0)]


def test_musaed_care_purge_applies_the_setting(tmp_path, monkeypatch):
    from care import cli

    path = tmp_path / "trackers.db"
    with sqlite3.connect(path) as conn:
        conn.execute(EVENTS_TABLE.format(id="INTEGER PRIMARY KEY"))
        conn.executemany(EVENT_INSERT.format(m="?"), CONVERSATIONS)
    conn.close()
    db_file = tmp_path / "musaed.db"
    seed_codes(store.open_db(db_file))
    monkeypatch.setenv("MUSAED_CARE_LOG", str(tmp_path / "care.log"))
    # Against today's clock, NOW being in the past: everything above is at least 29 days old.
    monkeypatch.setenv("MUSAED_RETENTION", "unverified=40d,verified=150d,codes=1m")
    assert cli.main(["purge", "--json", "--db", str(db_file), "--tracker-db", str(path)]) == 0
    with sqlite3.connect(path) as conn:
        left = {r[0] for r in conn.execute("SELECT DISTINCT sender_id FROM events")}
    conn.close()
    assert left == {"unverified-29d", "unverified-31d", "reset-31d", "verified-100d"}  # the setting, not the defaults
    assert store.open_db(db_file).execute("SELECT COUNT(*) FROM otp_outbox").fetchone()[0] == 0


def test_the_timer_purges_on_its_own_and_make_run_and_make_cluster_start_it(tmp_path):
    path = tmp_path / "trackers.db"
    with sqlite3.connect(path) as conn:
        conn.execute(EVENTS_TABLE.format(id="INTEGER PRIMARY KEY"))
    conn.close()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MUSAED_DB": str(tmp_path / "musaed.db")}
    proc = subprocess.Popen(
        retention.timer_command(sys.executable, path, every=0.3),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)  # started, and purged an empty store at least once
        with sqlite3.connect(path) as conn:
            conn.executemany(EVENT_INSERT.format(m="?"), conversation("unverified-31d-late", 31))
        conn.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sqlite3.connect(path) as conn:
                left = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            conn.close()
            if not left:
                break
            time.sleep(0.2)
        assert left == 0 and proc.poll() is None  # deleted by the next round, still running
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for script in ("run.py", "cluster.py"):
        assert "retention.timer_command(" in (ROOT / "scripts" / script).read_text(), script
