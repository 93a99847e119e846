"""The application database: schema, one open request per service and beneficiary, history, visibility."""

import re
import threading
from datetime import date, datetime, timedelta, timezone

import pytest

from musaed import seed, store

TODAY = date(2026, 11, 23)
TRACKING = re.compile(r"^MSD-\d{8}$")


@pytest.fixture
def db(open_store):
    db = open_store()
    seed.seed(db, today=TODAY)
    return db


@pytest.fixture
def ids():
    return seed.ids()


def count(db, table):
    return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def new_request(db, ids, conversation="c1", service="renew_resident_id", applicant="khalid", beneficiary="amal", **kw):
    return store.create_request(
        db,
        service_id=service,
        applicant_id=ids[applicant],
        beneficiary_id=ids[beneficiary],
        conversation_id=conversation,
        **kw,
    )


# -- opening and migrating ---------------------------------------------------


def test_open_db_creates_schema_in_wal_mode(tmp_path):
    db = store.open_db(tmp_path / "sub" / "new.db")
    assert store.applied_migrations(db) == [name for name, _ in store.MIGRATIONS]
    assert {
        "people",
        "requests",
        "request_events",
        "otp_outbox",
        "one_time_codes",
        "verification_locks",
        "code_requests",
    } <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_does_not_rerun_migrations(tmp_path):
    path = tmp_path / "musaed.db"
    first = store.open_db(path)
    applied = first.execute("SELECT * FROM _migrations").fetchall()
    seed.seed(first, today=TODAY)
    again = store.open_db(path)
    assert again.execute("SELECT * FROM _migrations").fetchall() == applied
    assert count(again, "people") == 13  # data survives: no table was recreated


def test_musaed_db_env_var_overrides_default_path(tmp_path, monkeypatch):
    target = tmp_path / "elsewhere" / "env.db"
    monkeypatch.setenv("MUSAED_DB", str(target))
    assert store.db_path() == target
    store.open_db()
    assert target.exists()
    monkeypatch.delenv("MUSAED_DB")
    assert store.db_path() == store.DEFAULT_PATH


# -- creating requests -------------------------------------------------------


def test_create_request_writes_row_and_first_event(db, ids):
    request, created = new_request(db, ids)
    assert created is True
    assert TRACKING.match(request["tracking_number"])
    assert request["status"] == "submitted"
    assert count(db, "requests") == 1
    events = store.request_events(db, request["tracking_number"])
    assert [(e["status"], e["actor"]) for e in events] == [("submitted", ids["khalid"])]


def test_same_conversation_service_and_beneficiary_is_idempotent(db, ids):
    first, _ = new_request(db, ids)
    again, created = new_request(db, ids)
    assert created is False
    assert again["tracking_number"] == first["tracking_number"]
    assert count(db, "requests") == 1
    assert count(db, "request_events") == 1


def test_another_beneficiary_is_another_request(db, ids):
    first, _ = new_request(db, ids, service="minor_national_id", beneficiary="saud")
    second, created = new_request(db, ids, service="minor_national_id", beneficiary="reem")
    assert created is True
    assert second["tracking_number"] != first["tracking_number"]


def _in_threads(n, target):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run(i):
        try:
            barrier.wait()
            results.append(target(i))
        except Exception as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


@pytest.mark.parametrize(
    "conversation",
    [
        lambda i: "same",  # one conversation confirming fifty times at once
        lambda i: f"whatsapp:9665{i:08d}",  # fifty conversations (other devices, other channels)
    ],
    ids=["one conversation", "fifty conversations"],
)
def test_fifty_concurrent_confirmations_for_one_beneficiary_create_one_request(db, open_store, ids, conversation):
    def confirm(i):
        db = open_store()
        try:
            request, created = new_request(db, ids, conversation=conversation(i))
            return request["tracking_number"], created
        finally:
            db.conn.close()

    results = _in_threads(50, confirm)
    assert len({number for number, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    db = open_store()
    assert count(db, "requests") == 1
    assert count(db, "request_events") == 1


def test_another_conversation_gets_the_open_request(db, ids):
    first, _ = new_request(db, ids, conversation="web:aaaa")
    again, created = new_request(db, ids, conversation="telegram:7000")
    assert created is False and again["tracking_number"] == first["tracking_number"]
    assert again["conversation_id"] == "web:aaaa"  # the caller can tell it was made elsewhere


@pytest.mark.parametrize("closed", store.CLOSED_STATUSES)
def test_a_closed_request_does_not_block_a_new_one(db, ids, closed):
    first, _ = new_request(db, ids)
    store.set_request_status(db, first["tracking_number"], closed, actor="agent")
    assert store.open_request(db, "renew_resident_id", ids["amal"]) is None
    second, created = new_request(db, ids)
    assert created is True and second["tracking_number"] != first["tracking_number"]
    assert store.open_request(db, "renew_resident_id", ids["amal"])["tracking_number"] == second["tracking_number"]


def test_the_database_itself_refuses_a_second_open_request(db, ids):
    first, _ = new_request(db, ids)
    row = dict(first, tracking_number="MSD-00000001", idempotency_key="MSD-00000001", conversation_id="elsewhere")
    with pytest.raises(store.integrity_errors()):
        store.insert_rows(db, "requests", [row])  # a writer that skips create_request's check
    assert count(db, "requests") == 1


def test_migration_keeps_the_oldest_of_duplicate_open_requests(tmp_path, ids):
    """A database made before the rule, holding two open requests for one beneficiary."""
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(store._M001_INITIAL)
    conn.execute("CREATE TABLE _migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    conn.execute("INSERT INTO _migrations VALUES (1, '2026-11-01T00:00:00+00:00')")
    conn.execute(
        "INSERT INTO people (national_id, name, kind, birth_date) VALUES (?, 'x', 'citizen', '1980-01-01')",
        [ids["khalid"]],
    )
    for n, (conv, at) in enumerate([("a", "2026-11-02"), ("b", "2026-11-03")], start=1):
        conn.execute(
            "INSERT INTO requests VALUES (?, 'renew_national_id', ?, ?, 'submitted', NULL, '{}', ?, ?, ?, ?)",
            [f"MSD-0000000{n}", ids["khalid"], ids["khalid"], conv, f"{conv}|k", at, at],
        )
    conn.close()
    db = store.open_db(path)
    assert store.applied_migrations(db) == sorted(name for name, _ in store.MIGRATIONS)
    assert store.get_request(db, "MSD-00000001")["status"] == "submitted"
    assert store.get_request(db, "MSD-00000002")["status"] == "cancelled"
    assert [e["status"] for e in store.request_events(db, "MSD-00000002")] == ["cancelled"]


# -- status history ----------------------------------------------------------


def test_set_request_status_keeps_history_in_order(db, ids):
    number = new_request(db, ids)[0]["tracking_number"]
    t0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    for hours, status in enumerate(["approved", "printed", "out_for_delivery"], start=1):
        updated = store.set_request_status(db, number, status, actor="system", now=t0 + timedelta(hours=hours))
    assert updated["status"] == "out_for_delivery"
    assert updated["updated_at"] == "2026-11-23T12:00:00+00:00"
    events = store.request_events(db, number)
    assert [e["status"] for e in events] == ["submitted", "approved", "printed", "out_for_delivery"]
    assert events[-1]["actor"] == "system"


def test_set_request_status_unknown_number_raises_and_writes_nothing(db):
    with pytest.raises(KeyError):
        store.set_request_status(db, "MSD-00000000", "approved", actor="system")
    assert count(db, "request_events") == 0


# -- transactions ------------------------------------------------------------


def test_failure_inside_transaction_rolls_back(db, ids):
    with pytest.raises(RuntimeError):
        with store.transaction(db):
            db.execute("UPDATE people SET mobile = NULL WHERE national_id = ?", [ids["khalid"]])
            raise RuntimeError("boom")
    assert store.get_person(db, ids["khalid"])["mobile"] == "0551000001"
    new_request(db, ids)  # the connection is not left inside a transaction
    assert count(db, "requests") == 1


def test_create_request_failing_before_its_event_leaves_no_request(db, ids, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store.requests, "_add_event", fail)
    with pytest.raises(RuntimeError):
        new_request(db, ids)
    assert count(db, "requests") == 0


# -- who sees a request ------------------------------------------------------


def test_applicant_and_head_of_family_see_request_stranger_does_not(db, ids):
    # Ahmed asks for his daughter Layla; Layla herself and Sara are the others.
    request, _ = new_request(db, ids, applicant="ahmed", beneficiary="layla")
    number = request["tracking_number"]
    for who in ("ahmed", "layla"):
        assert store.can_see_request(db, ids[who], request)
        assert [r["tracking_number"] for r in store.requests_visible_to(db, ids[who])] == [number]
    assert not store.can_see_request(db, ids["sara"], request)
    assert store.requests_visible_to(db, ids["sara"]) == []


def test_head_of_family_sees_request_made_by_someone_else_for_a_dependent(db, ids):
    # Amal applies for her son Saud: Khalid (head of family) sees it, Ahmed does not.
    request, _ = new_request(db, ids, service="minor_national_id", applicant="amal", beneficiary="saud")
    assert store.can_see_request(db, ids["khalid"], request)
    assert [r["tracking_number"] for r in store.requests_visible_to(db, ids["khalid"])] == [request["tracking_number"]]
    assert not store.can_see_request(db, ids["ahmed"], request)
    assert store.requests_visible_to(db, ids["ahmed"]) == []


def test_requests_visible_to_lists_newest_first(db, ids):
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    old, _ = new_request(db, ids, conversation="a", now=t0)
    new, _ = new_request(
        db, ids, conversation="b", service="minor_national_id", beneficiary="saud", now=t0 + timedelta(days=1)
    )
    numbers = [r["tracking_number"] for r in store.requests_visible_to(db, ids["khalid"])]
    assert numbers == [new["tracking_number"], old["tracking_number"]]


# -- tracking numbers --------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("MSD-12345678", ("MSD-12345678", False)),
        ("msd 12345678", ("MSD-12345678", False)),
        ("وين طلبي MSD-١٢٣٤٥٦٧٨ ؟", ("MSD-12345678", False)),
        ("رقم الطلب ١٢٣٤٥٦٧٨", ("MSD-12345678", False)),
        ("MSD-123", (None, True)),
        ("MSD-123456789", (None, True)),
        ("وين وصل طلبي؟", (None, False)),
        ("", (None, False)),
    ],
)
def test_parse_tracking_number(text, expected):
    assert store.parse_tracking_number(text) == expected
