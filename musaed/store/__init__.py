"""The application database: people's records and service requests, in SQLite or PostgreSQL.

Plain functions that take a `db` (sqlite_utils.Database), named migrations
recorded in a table, one transaction per write that belongs together. This
is the only module that speaks SQL to the application data: identity,
eligibility, customer care, the seed and the scripts call these functions,
so PostgreSQL is one adapter (musaed/store/postgres.py), not a second store.
SQLite is the default; ``MUSAED_DATABASE_URL=postgresql://…`` selects
PostgreSQL. The SQL is written once, in what both engines share.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from sqlite_utils import Database

if TYPE_CHECKING:
    from musaed.store.postgres import PostgresDatabase

from musaed import files, settings
from musaed.arabic import to_ascii_digits

DEFAULT_PATH = Path(settings.DB.default)
TRACKING_PREFIX = "MSD-"


def db_path() -> Path:
    return Path(settings.DB.get())


# One connection per thread and database file, opened and migrated once: an
# action server turn used to open a connection and re-check the migrations
# (under BEGIN IMMEDIATE) for every action call.
_connections = threading.local()

# A connection: sqlite_utils' Database, or the PostgreSQL adapter with the same methods.
Db = Union[Database, "PostgresDatabase"]


def open_db(path: Optional[os.PathLike] = None, url: Optional[str] = None) -> Db:
    """The application database, created and migrated on first use in this thread.

    `url` (or MUSAED_DATABASE_URL when neither is given) names a PostgreSQL
    database; otherwise the SQLite file at `path` or MUSAED_DB. ``:memory:``
    is a new, empty database at every call.
    """
    if path is None and url is None:
        url = settings.DATABASE_URL.given()
    cache = _connections.__dict__
    if url:
        db = cache.get(url)
        if db is None or not _alive(db):
            from musaed.store.postgres import PostgresDatabase

            db = cache[url] = PostgresDatabase(url)
            migrate(db)
        return db
    if path is None:
        path = db_path()
    if str(path) == ":memory:":
        return _connect(":memory:")
    key = str(Path(path).resolve())
    db = cache.get(key)
    if db is None or not _alive(db):
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = cache[key] = _connect(key)
    return db


def dialect(db: Db) -> str:
    return getattr(db, "dialect", "sqlite")


def _alive(db: Db) -> bool:
    try:
        db.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - closed by its user, or the server went away
        return False


def _connect(path: str) -> Db:
    # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE),
    # so two writers never deadlock upgrading a read lock.
    if path != ":memory:":
        # 0600 before SQLite opens it: its -wal and -shm files take the database's mode.
        files.create_private(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    db = Database(conn)
    migrate(db)
    return db


@contextmanager
def transaction(db: Db) -> Iterator[Db]:
    """One atomic write: everything inside commits together or not at all.

    On SQLite it holds the database's write lock from the start (BEGIN
    IMMEDIATE), so transactions run one at a time; on PostgreSQL what must
    not interleave takes `serialize` inside it.
    """
    db.execute("BEGIN IMMEDIATE" if dialect(db) == "sqlite" else "BEGIN")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def serialize(db: Db, key: str) -> None:
    """Inside a transaction: wait until no other transaction holds `key`, then hold it to the end.

    A check-then-write (the code limit, a wrong-code count, a migration) must
    not interleave across replicas. SQLite's BEGIN IMMEDIATE already runs
    one transaction at a time; PostgreSQL takes a transaction-level advisory lock.
    """
    if dialect(db) == "postgresql":
        db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [key])


def now_iso(now: Optional[datetime] = None) -> str:
    return (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")


# -- schema ------------------------------------------------------------------

# Plain DDL rather than sqlite-utils' table.create(): its helpers commit on
# their own, and a migration must apply whole or not at all.
_M001_INITIAL = """
CREATE TABLE people (
    national_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    mobile TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('citizen', 'resident')),
    birth_date TEXT NOT NULL,                 -- ISO dates throughout
    id_expiry TEXT,                           -- national ID card or iqama
    photo_valid_until TEXT,
    national_address TEXT,                    -- NULL: not registered
    data_verified INTEGER NOT NULL DEFAULT 1, -- 0: records need correcting
    medical_exam_ok INTEGER NOT NULL DEFAULT 1,
    card_pending_activation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE family_links (
    head_id TEXT NOT NULL REFERENCES people(national_id),
    member_id TEXT NOT NULL REFERENCES people(national_id),
    relation TEXT NOT NULL,                   -- wife, husband, son, daughter, mother, ...
    PRIMARY KEY (head_id, member_id)
);
CREATE TABLE passports (
    national_id TEXT PRIMARY KEY REFERENCES people(national_id),
    number TEXT NOT NULL,
    expiry TEXT NOT NULL
);
CREATE TABLE health_insurance (
    national_id TEXT PRIMARY KEY REFERENCES people(national_id),
    provider TEXT NOT NULL,
    expiry TEXT NOT NULL
);
CREATE TABLE fines (
    id INTEGER PRIMARY KEY,
    national_id TEXT NOT NULL REFERENCES people(national_id),
    amount INTEGER NOT NULL,
    description TEXT NOT NULL,
    paid INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE family_records (
    head_id TEXT PRIMARY KEY REFERENCES people(national_id),
    number TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE requests (
    tracking_number TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    applicant_id TEXT NOT NULL REFERENCES people(national_id),
    beneficiary_id TEXT NOT NULL REFERENCES people(national_id),
    status TEXT NOT NULL,
    delivery_address TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    conversation_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX requests_applicant ON requests(applicant_id);
CREATE INDEX requests_beneficiary ON requests(beneficiary_id);
CREATE TABLE request_events (
    id INTEGER PRIMARY KEY,
    tracking_number TEXT NOT NULL REFERENCES requests(tracking_number),
    status TEXT NOT NULL,
    note TEXT,
    actor TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX request_events_request ON request_events(tracking_number);
-- The development stand-in for SMS: one row per one-time code sent.
CREATE TABLE otp_outbox (
    id INTEGER PRIMARY KEY,
    national_id TEXT NOT NULL,
    mobile TEXT,
    code TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX otp_outbox_person ON otp_outbox(national_id);
CREATE TABLE identity_locks (
    national_id TEXT PRIMARY KEY,
    failed INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT
);
"""


# A request in one of these is over; in any other it is open, and at most one
# request per (service, beneficiary) may be open.
CLOSED_STATUSES = ("delivered", "rejected", "cancelled")
_CLOSED_SQL = ", ".join(f"'{s}'" for s in CLOSED_STATUSES)

# Issue 14: codes limited per national id across conversations and channels;
# one open request per service and beneficiary, whichever conversation asks.
_M002_CODE_LIMIT_AND_ONE_OPEN_REQUEST = f"""
-- Every code asked for, for any id typed (on file or not: the limit must not tell them apart).
CREATE TABLE code_requests (
    id INTEGER PRIMARY KEY,
    national_id TEXT NOT NULL,
    requested_at TEXT NOT NULL
);
CREATE INDEX code_requests_person ON code_requests(national_id, requested_at);
-- Open duplicates made before this rule: the oldest stays open, the rest are cancelled.
CREATE TEMP TABLE _duplicate_requests AS
    SELECT r.tracking_number FROM requests r
    WHERE r.status NOT IN ({_CLOSED_SQL}) AND EXISTS (
        SELECT 1 FROM requests o
        WHERE o.service_id = r.service_id AND o.beneficiary_id = r.beneficiary_id
          AND o.status NOT IN ({_CLOSED_SQL})
          AND (o.created_at < r.created_at
               OR (o.created_at = r.created_at AND o.tracking_number < r.tracking_number)));
INSERT INTO request_events (tracking_number, status, note, actor, at)
    SELECT tracking_number, 'cancelled', 'duplicate open request', 'migration',
           strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')
    FROM _duplicate_requests;
UPDATE requests SET status = 'cancelled', updated_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')
    WHERE tracking_number IN (SELECT tracking_number FROM _duplicate_requests);
DROP TABLE _duplicate_requests;
CREATE UNIQUE INDEX requests_one_open ON requests(service_id, beneficiary_id)
    WHERE status NOT IN ({_CLOSED_SQL})
"""


# Issue 25: webhook deliveries seen (WhatsApp message ids, Telegram update ids), for a day,
# so a replayed body is acknowledged and not handled again, on whichever replica it lands.
_M004_WEBHOOK_REPLAYS = """
CREATE TABLE webhook_deliveries (
    channel TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (channel, delivery_id)
);
CREATE INDEX webhook_deliveries_seen ON webhook_deliveries(seen_at)
"""

# Issue 25: the widget's web sessions, so «محادثة جديدة» ends one for good and an idle
# one expires, on whichever replica its socket lands. The key is a hash of the
# session id (the token's random part): the table names no conversation.
_M007_WEB_SESSIONS = """
CREATE TABLE web_sessions (
    session_key TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX web_sessions_seen ON web_sessions(last_seen)
"""


# Issue 25: what customer-care agents read and change, one row each: who (the agent), what
# (the action, the tracking number or conversation id), whose record (the national id, in
# full: the database is the place for it) and when. Append-only: a trigger on each engine
# refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL), and the store has no function
# that would try.
_M005_CARE_AUDIT_TABLE = """
CREATE TABLE care_audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    agent TEXT NOT NULL,
    action TEXT NOT NULL,
    national_id TEXT,
    subject TEXT,
    detail TEXT
);
CREATE INDEX care_audit_person ON care_audit(national_id, at);
CREATE INDEX care_audit_at ON care_audit(at)
"""
_M005_SQLITE_TRIGGERS = (
    "CREATE TRIGGER care_audit_no_update BEFORE UPDATE ON care_audit "
    "BEGIN SELECT RAISE(ABORT, 'care_audit is append-only'); END",
    "CREATE TRIGGER care_audit_no_delete BEFORE DELETE ON care_audit "
    "BEGIN SELECT RAISE(ABORT, 'care_audit is append-only'); END",
)
_M005_POSTGRES_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION care_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$body$ BEGIN RAISE EXCEPTION 'care_audit is append-only'; END $body$",
    "CREATE TRIGGER care_audit_no_change BEFORE UPDATE OR DELETE ON care_audit "
    "FOR EACH ROW EXECUTE PROCEDURE care_audit_append_only()",
    "CREATE TRIGGER care_audit_no_truncate BEFORE TRUNCATE ON care_audit "
    "FOR EACH STATEMENT EXECUTE PROCEDURE care_audit_append_only()",
)


def _m005_care_audit(db: Db) -> None:
    """The table in shared SQL, its triggers in each engine's own (a trigger body has its own `;`)."""
    _run_script(db, _M005_CARE_AUDIT_TABLE)
    for statement in _M005_POSTGRES_TRIGGERS if dialect(db) == "postgresql" else _M005_SQLITE_TRIGGERS:
        db.execute(statement)


def _run_script(db: Db, script: Union[str, Callable[[Db], None]]) -> None:
    if callable(script):  # a migration whose DDL differs by engine
        script(db)
        return
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


# Issue 25: a code belongs to the conversation it was sent for and is kept only
# as a keyed hash; wrong codes lock that conversation, not the id for everyone;
# every code request says who asked (conversation, and address where known).
_M003_CODES_PER_CONVERSATION = """
CREATE TABLE one_time_codes (
    id INTEGER PRIMARY KEY,
    national_id TEXT NOT NULL,
    conversation TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX one_time_codes_pending ON one_time_codes(conversation, national_id, used_at);
CREATE TABLE verification_locks (
    conversation TEXT PRIMARY KEY,
    failed INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT
);
ALTER TABLE code_requests ADD COLUMN conversation TEXT;
ALTER TABLE code_requests ADD COLUMN address TEXT;
CREATE INDEX code_requests_conversation ON code_requests(conversation, requested_at);
CREATE INDEX code_requests_address ON code_requests(address, requested_at);
DROP TABLE identity_locks;
-- Codes sent before were bound to no conversation: none is accepted any more.
UPDATE otp_outbox SET used_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now') WHERE used_at IS NULL
"""


# Named, in order; each applies whole (one transaction) and is recorded by name.
MIGRATIONS: Tuple[Tuple[str, Union[str, Callable[[Db], None]]], ...] = (
    ("001_initial", _M001_INITIAL),
    ("002_code_limit_and_one_open_request", _M002_CODE_LIMIT_AND_ONE_OPEN_REQUEST),
    ("003_codes_per_conversation", _M003_CODES_PER_CONVERSATION),
    ("004_webhook_replays", _M004_WEBHOOK_REPLAYS),
    ("005_care_audit", _m005_care_audit),
    ("007_web_sessions", _M007_WEB_SESSIONS),
)


def migrate(db: Db) -> None:
    """Apply the migrations not yet recorded in `_migrations`, each in its own transaction."""
    with transaction(db):
        serialize(db, "musaed-migrations")  # replicas starting together migrate once
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        if dialect(db) == "sqlite":
            columns = {row[1] for row in db.execute("PRAGMA table_info(_migrations)").fetchall()}
            if "version" in columns:  # recorded by number before migrations had names
                old = db.execute("SELECT version, applied_at FROM _migrations").fetchall()
                db.execute("DROP TABLE _migrations")
                db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
                for version, at in old:
                    db.execute("INSERT INTO _migrations VALUES (?, ?)", [MIGRATIONS[version - 1][0], at])
    for name, script in MIGRATIONS:
        with transaction(db):
            serialize(db, "musaed-migrations")
            # Checked inside the transaction: another process may have applied it meanwhile.
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone():
                continue
            _run_script(db, script)
            db.execute("INSERT INTO _migrations VALUES (?, ?)", [name, now_iso()])


def applied_migrations(db: Db) -> List[str]:
    return [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]


def insert_rows(db: Db, table: str, rows: Iterable[dict], ignore_existing: bool = False) -> None:
    """Insert rows in one transaction; with `ignore_existing`,
    a row whose key is already there is left as it is."""
    conflict = " ON CONFLICT DO NOTHING" if ignore_existing else ""
    with transaction(db):
        for row in rows:
            marks = ", ".join("?" for _ in row)
            db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks}){conflict}", list(row.values()))


def integrity_errors() -> tuple:
    """What either engine raises when a constraint refuses a write."""
    errors: tuple = (sqlite3.IntegrityError,)
    try:
        from musaed.store.postgres import IntegrityError

        errors += (IntegrityError,)
    except ImportError:  # psycopg2 missing: SQLite only
        pass
    return errors


def clear_records(db: Db) -> None:
    """Empty every table of people's records and requests (the demo seed starts over)."""
    with transaction(db):
        for table in (
            "request_events",
            "requests",
            "otp_outbox",
            "one_time_codes",
            "code_requests",
            "verification_locks",
            "fines",
            "family_records",
            "health_insurance",
            "passports",
            "family_links",
            "people",
        ):
            db.execute(f"DELETE FROM {table}")


# -- people and their records ------------------------------------------------


def _one(db: Db, sql: str, params) -> Optional[dict]:
    rows = list(db.query(sql, params))
    return rows[0] if rows else None


def people_count(db: Db) -> int:
    return db.execute("SELECT COUNT(*) FROM people").fetchone()[0]


def get_person(db: Db, national_id: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM people WHERE national_id = ?", [national_id])


def dependents(db: Db, head_id: str) -> List[dict]:
    """The people whose services `head_id` may request, with their relation."""
    return list(
        db.query(
            "SELECT p.*, f.relation FROM family_links f JOIN people p ON p.national_id = f.member_id "
            "WHERE f.head_id = ? ORDER BY p.birth_date",
            [head_id],
        )
    )


def relation(db: Db, head_id: str, member_id: str) -> Optional[str]:
    row = _one(db, "SELECT relation FROM family_links WHERE head_id = ? AND member_id = ?", [head_id, member_id])
    return row["relation"] if row else None


def passport(db: Db, national_id: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM passports WHERE national_id = ?", [national_id])


def insurance(db: Db, national_id: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM health_insurance WHERE national_id = ?", [national_id])


def unpaid_fines(db: Db, national_id: str) -> List[dict]:
    return list(db.query("SELECT * FROM fines WHERE national_id = ? AND paid = 0", [national_id]))


def family_record(db: Db, head_id: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM family_records WHERE head_id = ?", [head_id])


# -- one-time codes and identity locks ----------------------------------------
# Callers hold a transaction around what must be atomic (musaed/identity.py).


def record_code_request(db: Db, national_id: str, at: str, conversation: str, address: Optional[str]) -> None:
    _insert(
        db,
        "code_requests",
        {"national_id": national_id, "requested_at": at, "conversation": conversation, "address": address},
    )


def code_requests_since(db: Db, national_id: str, since: str, **asked_by: Optional[str]) -> List[str]:
    """When codes were asked for this id since `since`, oldest first; only by
    `conversation=` or `address=` when given."""
    where = "national_id = ? AND requested_at > ?"
    params: List[Optional[str]] = [national_id, since]
    for column in ("conversation", "address"):
        if column in asked_by:
            where += f" AND {column} = ?"
            params.append(asked_by[column])
    return [
        r["requested_at"]
        for r in db.query(f"SELECT requested_at FROM code_requests WHERE {where} ORDER BY requested_at", params)
    ]


def ids_asked_since(db: Db, since: str, **asked_by: Optional[str]) -> Dict[str, str]:
    """The ids one conversation (`conversation=`) or address (`address=`) asked codes
    for since `since`: {national id: its first request in that time}."""
    [(column, value)] = asked_by.items()
    assert column in ("conversation", "address")
    rows = db.query(
        f"SELECT national_id, MIN(requested_at) AS first FROM code_requests "
        f"WHERE {column} = ? AND requested_at > ? GROUP BY national_id",
        [value, since],
    )
    return {r["national_id"]: r["first"] for r in rows}


def latest_code_request(db: Db, national_id: str, conversation: str) -> Optional[str]:
    row = _one(
        db,
        "SELECT MAX(requested_at) AS at FROM code_requests WHERE national_id = ? AND conversation = ?",
        [national_id, conversation],
    )
    return row["at"] if row else None


def save_code(db: Db, *, national_id: str, conversation: str, code_hash: str, created_at: str, expires_at: str) -> None:
    """Keep a new code's hash for verification in `conversation`; it replaces any
    earlier one pending there (never another conversation's: that would let a
    stranger spoil the owner's code)."""
    db.execute(
        "UPDATE one_time_codes SET used_at = ? WHERE national_id = ? AND conversation = ? AND used_at IS NULL",
        [created_at, national_id, conversation],
    )
    _insert(
        db,
        "one_time_codes",
        {
            "national_id": national_id,
            "conversation": conversation,
            "code_hash": code_hash,
            "created_at": created_at,
            "expires_at": expires_at,
            "used_at": None,
        },
    )


def pending_code(db: Db, national_id: str, conversation: str) -> Optional[dict]:
    return _one(
        db,
        "SELECT * FROM one_time_codes WHERE national_id = ? AND conversation = ? AND used_at IS NULL "
        "ORDER BY id DESC LIMIT 1",
        [national_id, conversation],
    )


def use_code(db: Db, code_id: int, at: str) -> None:
    db.execute("UPDATE one_time_codes SET used_at = ? WHERE id = ?", [at, code_id])


def write_outbox(
    db: Db, *, national_id: str, mobile: Optional[str], code: str, created_at: str, expires_at: str
) -> None:
    """Development only: the code's digits where `make code` and the tests read them (the SMS stand-in)."""
    _insert(
        db,
        "otp_outbox",
        {
            "national_id": national_id,
            "mobile": mobile,
            "code": code,
            "created_at": created_at,
            "expires_at": expires_at,
            "used_at": None,
        },
    )


def latest_code(db: Db, national_id: str) -> Optional[dict]:
    """The newest code sent to this id (the development outbox)."""
    return _one(
        db,
        "SELECT code, created_at, expires_at FROM otp_outbox WHERE national_id = ? ORDER BY id DESC LIMIT 1",
        [national_id],
    )


def verification_lock(db: Db, conversation: str) -> Optional[dict]:
    """(failed codes so far, locked_until) of this conversation, if any."""
    return _one(db, "SELECT * FROM verification_locks WHERE conversation = ?", [conversation])


def set_verification_lock(db: Db, conversation: str, failed: int, locked_until: Optional[str]) -> None:
    db.execute(
        "INSERT INTO verification_locks (conversation, failed, locked_until) VALUES (?, ?, ?) "
        "ON CONFLICT (conversation) DO UPDATE SET failed = excluded.failed, locked_until = excluded.locked_until",
        [conversation, failed, locked_until],
    )


def clear_verification_lock(db: Db, conversation: str) -> None:
    db.execute("DELETE FROM verification_locks WHERE conversation = ?", [conversation])


# -- retention (musaed/retention.py) ------------------------------------------


def delete_older(db: Db, table: str, column: str, before: str) -> int:
    """Delete the rows of `table` whose ISO time `column` is before `before`; how many.
    A table that is not there (a migration of another part not applied) counts 0."""
    if table not in db.table_names():
        return 0
    with transaction(db):
        return db.execute(f"DELETE FROM {table} WHERE {column} < ?", [before]).rowcount


# -- web sessions (channels/socketio.py) ----------------------------------------


def start_web_session(db: Db, session_key: str, at: str) -> None:
    db.execute("INSERT INTO web_sessions (session_key, created_at, last_seen) VALUES (?, ?, ?)", [session_key, at, at])


def live_web_session(db: Db, session_key: str, idle_since: str) -> Optional[dict]:
    """The session if it was not ended and was last seen at or after `idle_since`, else None."""
    return _one(
        db,
        "SELECT * FROM web_sessions WHERE session_key = ? AND ended_at IS NULL AND last_seen >= ?",
        [session_key, idle_since],
    )


def touch_web_session(db: Db, session_key: str, at: str) -> None:
    db.execute(
        "UPDATE web_sessions SET last_seen = ? WHERE session_key = ? AND ended_at IS NULL AND last_seen < ?",
        [at, session_key, at],
    )


def end_web_session(db: Db, session_key: str, at: str) -> None:
    """Ends the session for good (a row is made if it had none)."""
    with transaction(db):
        if db.execute("SELECT 1 FROM web_sessions WHERE session_key = ?", [session_key]).fetchone():
            db.execute(
                "UPDATE web_sessions SET ended_at = ? WHERE session_key = ? AND ended_at IS NULL", [at, session_key]
            )
        else:
            db.execute(
                "INSERT INTO web_sessions (session_key, created_at, last_seen, ended_at) VALUES (?, ?, ?, ?)",
                [session_key, at, at, at],
            )


# -- requests ----------------------------------------------------------------


def _insert(db: Db, table: str, row: dict) -> None:
    """INSERT inside the caller's transaction (sqlite-utils' insert commits itself)."""
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))


def _add_event(db: Db, tracking_number: str, status: str, *, actor: str, note: Optional[str], at: str) -> None:
    _insert(
        db,
        "request_events",
        {
            "tracking_number": tracking_number,
            "status": status,
            "note": note,
            "actor": actor,
            "at": at,
        },
    )


def _new_tracking_number(db: Db) -> str:
    while True:
        number = f"{TRACKING_PREFIX}{secrets.randbelow(10**8):08d}"
        if not _one(db, "SELECT 1 AS x FROM requests WHERE tracking_number = ?", [number]):
            return number


def create_request(
    db: Db,
    *,
    service_id: str,
    applicant_id: str,
    beneficiary_id: str,
    conversation_id: str,
    delivery_address: Optional[str] = None,
    details: Optional[Dict] = None,
    status: str = "submitted",
    now: Optional[datetime] = None,
) -> Tuple[dict, bool]:
    """Create a request and its first event in one transaction.

    At most one request per (service, beneficiary) is open: while one is,
    this returns it and `created=False`, whichever conversation or channel
    asks — so confirming twice, or fifty times at once from fifty
    conversations, makes one request. The unique index `requests_one_open`
    holds the rule even for writers that bypass this check.
    """
    at = now_iso(now)
    try:
        with transaction(db):
            serialize(db, f"request:{service_id}:{beneficiary_id}")
            existing = open_request(db, service_id, beneficiary_id)
            if existing:
                return existing, False
            number = _new_tracking_number(db)
            _insert(
                db,
                "requests",
                {
                    "tracking_number": number,
                    "service_id": service_id,
                    "applicant_id": applicant_id,
                    "beneficiary_id": beneficiary_id,
                    "status": status,
                    "delivery_address": delivery_address,
                    "details": json.dumps(details or {}, ensure_ascii=False),
                    # Unique per request; since migration 002 the open-request index
                    # is what makes creation idempotent.
                    "conversation_id": conversation_id,
                    "idempotency_key": number,
                    "created_at": at,
                    "updated_at": at,
                },
            )
            _add_event(db, number, status, actor=applicant_id, note=None, at=at)
    except integrity_errors():
        existing = open_request(db, service_id, beneficiary_id)
        if existing is None:
            raise
        return existing, False
    return _required(get_request(db, number)), True


def open_request(db: Db, service_id: str, beneficiary_id: str) -> Optional[dict]:
    """The open request for this service and beneficiary, if there is one."""
    return _one(
        db,
        f"SELECT * FROM requests WHERE service_id = ? AND beneficiary_id = ? AND status NOT IN ({_CLOSED_SQL})",
        [service_id, beneficiary_id],
    )


def get_request(db: Db, tracking_number: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM requests WHERE tracking_number = ?", [tracking_number])


def request_events(db: Db, tracking_number: str) -> List[dict]:
    return list(db.query("SELECT * FROM request_events WHERE tracking_number = ? ORDER BY id", [tracking_number]))


def requests_visible_to(db: Db, national_id: str) -> List[dict]:
    """Requests the person made, or made for them, or for their dependents; newest first."""
    return list(
        db.query(
            "SELECT * FROM requests WHERE applicant_id = ? OR beneficiary_id = ? "
            "OR beneficiary_id IN (SELECT member_id FROM family_links WHERE head_id = ?) "
            "ORDER BY created_at DESC, tracking_number",
            [national_id] * 3,
        )
    )


def requests_of_person(db: Db, national_id: str) -> List[dict]:
    """Requests the person made or that were made for them (their data, for a copy); newest first."""
    return list(
        db.query(
            "SELECT * FROM requests WHERE applicant_id = ? OR beneficiary_id = ? "
            "ORDER BY created_at DESC, tracking_number",
            [national_id, national_id],
        )
    )


def can_see_request(db: Db, national_id: str, request: dict) -> bool:
    return (
        national_id in (request["applicant_id"], request["beneficiary_id"])
        or relation(db, national_id, request["beneficiary_id"]) is not None
    )


class RequestConflict(Exception):
    """A status change that would leave two requests open for one service and beneficiary."""

    def __init__(self, tracking_number: str, open_request: Optional[dict]) -> None:
        super().__init__(f"{tracking_number}: another request is open ({(open_request or {}).get('tracking_number')})")
        self.tracking_number = tracking_number
        self.open_request = open_request


def set_request_status(
    db: Db,
    tracking_number: str,
    status: str,
    *,
    actor: str,
    note: Optional[str] = None,
    now: Optional[datetime] = None,
    audit: Optional[dict] = None,
) -> dict:
    """Move a request to `status`, keeping the change as an event (and `audit`, a care_audit
    row, in the same transaction).

    Reopening a closed request while another is open for the same service and
    beneficiary raises RequestConflict, with nothing written.
    """
    at = now_iso(now)
    try:
        with transaction(db):
            request = get_request(db, tracking_number)
            if not request:
                raise KeyError(tracking_number)
            if status not in CLOSED_STATUSES:
                serialize(db, f"request:{request['service_id']}:{request['beneficiary_id']}")
                other = open_request(db, request["service_id"], request["beneficiary_id"])
                if other and other["tracking_number"] != tracking_number:
                    raise RequestConflict(tracking_number, other)
            db.execute(
                "UPDATE requests SET status = ?, updated_at = ? WHERE tracking_number = ?",
                [status, at, tracking_number],
            )
            _add_event(db, tracking_number, status, actor=actor, note=note, at=at)
            if audit is not None:
                _insert(db, "care_audit", {"at": at, **audit})
    except integrity_errors():
        # The unique index `requests_one_open` caught what the check did not (a writer outside the store).
        request = get_request(db, tracking_number) or {}
        raise RequestConflict(
            tracking_number, open_request(db, request.get("service_id", ""), request.get("beneficiary_id", ""))
        ) from None
    return _required(get_request(db, tracking_number))


# -- the care audit (append-only: rows are added and read, never changed) --------


def add_care_audit(
    db: Db,
    *,
    agent: str,
    action: str,
    national_id: Optional[str] = None,
    subject: Optional[str] = None,
    detail: Optional[str] = None,
    now: Optional[datetime] = None,
) -> None:
    """One row of what an agent did (a single INSERT: atomic on its own)."""
    _insert(
        db,
        "care_audit",
        {
            "at": now_iso(now),
            "agent": agent,
            "action": action,
            "national_id": national_id,
            "subject": subject,
            "detail": detail,
        },
    )


def care_audit(
    db: Db,
    *,
    national_id: Optional[str] = None,
    agent: Optional[str] = None,
    since: Optional[str] = None,
    limit: int = 100,
) -> List[dict]:
    """Audit rows, newest first: of one person's records, one agent's, since a time."""
    where, params = [], []
    for column, value, op in (("national_id", national_id, "="), ("agent", agent, "="), ("at", since, ">=")):
        if value is not None:
            where.append(f"{column} {op} ?")
            params.append(value)
    sql = "SELECT * FROM care_audit" + (" WHERE " + " AND ".join(where) if where else "")
    return list(db.query(sql + " ORDER BY id DESC LIMIT ?", [*params, int(limit)]))


def _required(row: Optional[dict]) -> dict:
    """A row just written in this connection's transaction: it is there."""
    if row is None:
        raise LookupError("a row written a moment ago is missing")
    return row


_TRACKING = re.compile(r"(?i)\bmsd[\s\-_]*(\d+)")
_BARE_TRACKING = re.compile(r"(?<!\d)(\d{8})(?!\d)")


def parse_tracking_number(text: str) -> Tuple[Optional[str], bool]:
    """(canonical "MSD-12345678" or None, whether something malformed was typed)."""
    text = to_ascii_digits(text or "")
    m = _TRACKING.search(text)
    if m:
        digits = m.group(1)
        return (f"{TRACKING_PREFIX}{digits}", False) if len(digits) == 8 else (None, True)
    m = _BARE_TRACKING.search(text)
    return (f"{TRACKING_PREFIX}{m.group(1)}", False) if m else (None, False)


# -- webhook deliveries (replays) --------------------------------------------


def first_delivery(db: Db, channel: str, delivery_id: str, at: str, forget_before: str) -> bool:
    """Record a webhook delivery; False when `channel` saw `delivery_id` since `forget_before` (a replay).

    Deliveries seen before `forget_before` are deleted on the way: the table holds about a day.
    """
    with transaction(db):
        db.execute("DELETE FROM webhook_deliveries WHERE seen_at < ?", [forget_before])
        cur = db.execute(
            "INSERT INTO webhook_deliveries (channel, delivery_id, seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [channel, str(delivery_id), at],
        )
        return cur.rowcount == 1
