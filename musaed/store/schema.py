"""The application database's schema: named migrations, applied once, recorded in a table."""

from __future__ import annotations

import sqlite3
from typing import Callable, Iterable, List, Tuple, Union

from musaed.store.connection import Db, dialect, now_iso, serialize, transaction

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


# Issue 28: live handover. A conversation's handovers, one row each time the person asks
# for a person (waiting -> agent -> closed); at most one open per conversation. Every
# message of either side, every agent's note and every change of state is a row of
# handover_messages, whose growing id is the cursor the channels and the console poll.
_M008_LIVE_HANDOVER = """
CREATE TABLE handovers (
    id INTEGER PRIMARY KEY,
    conversation TEXT NOT NULL,
    channel TEXT NOT NULL,
    language TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('waiting', 'agent', 'closed')),
    agent TEXT,
    national_id TEXT,                       -- the person, once verified in the bot's flow
    out_of_hours INTEGER NOT NULL DEFAULT 0,
    awaiting TEXT,                          -- the person's next message is: 'message' (kept) or 'comment'
    requested_at TEXT NOT NULL,
    claimed_at TEXT,
    closed_at TEXT,
    closed_by TEXT,                         -- an agent, or 'person' (the wait cancelled)
    returned_at TEXT,                       -- the person's first message to the bot again
    rating INTEGER CHECK (rating BETWEEN 1 AND 5),
    rating_comment TEXT
);
CREATE UNIQUE INDEX handovers_one_open ON handovers(conversation) WHERE state IN ('waiting', 'agent');
CREATE INDEX handovers_state ON handovers(state, requested_at);
CREATE INDEX handovers_conversation ON handovers(conversation, id);
CREATE TABLE handover_messages (
    id INTEGER PRIMARY KEY,
    handover_id INTEGER NOT NULL REFERENCES handovers(id) ON DELETE CASCADE,
    conversation TEXT NOT NULL,
    channel TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('person', 'agent', 'system', 'note', 'event')),
    agent TEXT,
    text TEXT NOT NULL,
    buttons TEXT,                           -- JSON [{"title", "payload"}] of a system message
    to_bot INTEGER NOT NULL DEFAULT 0,      -- a person's message the bot answered too (while waiting)
    at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX handover_messages_of ON handover_messages(handover_id, id);
CREATE INDEX handover_messages_to_deliver ON handover_messages(channel, delivered_at);
CREATE TABLE care_agents_seen (
    agent TEXT PRIMARY KEY,
    last_seen TEXT NOT NULL
)
"""


# Issue 30: what people are told without asking (a request's status change, an expiry reminder),
# one row each, written in the transaction of the change it announces (dedupe_key: one change,
# or one document's window, announced once). The notify worker sends it (musaed/notify_worker.py),
# or the Rasa server a widget open at that moment is connected to; a sender claims a row with a
# lease (leased_by, lease_until: one conditional UPDATE) so one sender at a time has it, across
# replicas and workers. No text is stored: it is made from the catalogue when sent, in the row's
# language, from `payload` (service and status; document, days and relation).
_M009_NOTIFICATIONS = """
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('status', 'reminder')),
    national_id TEXT NOT NULL,              -- whom it is for (their mobile on file, for an SMS)
    conversation TEXT NOT NULL,             -- where: the conversation that made the request, or opted in
    channel TEXT NOT NULL,                  -- that conversation's channel: web, telegram, whatsapp, rest
    language TEXT NOT NULL,
    tracking_number TEXT,                   -- a status change's request
    payload TEXT NOT NULL,                  -- JSON: what the text is made of
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    route TEXT,                             -- how: widget, telegram, whatsapp, whatsapp_template, sms, sms_outbox
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until TEXT,
    leased_by TEXT,
    last_error TEXT,                        -- the API's status and code: never a text, a number or an id
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX notifications_due ON notifications(state, next_attempt_at);
CREATE INDEX notifications_channel ON notifications(channel, state);
CREATE INDEX notifications_person ON notifications(national_id, state);
-- Expiry reminders, only for a verified person who said yes (their own and their dependents'
-- documents): opting out deletes the row.
CREATE TABLE reminder_subscriptions (
    national_id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,             -- where the reminders go: where they said yes (the latest)
    channel TEXT NOT NULL,
    language TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX reminder_subscriptions_conversation ON reminder_subscriptions(conversation);
-- Telegram and WhatsApp chats: when the person last wrote (WhatsApp's 24-hour window) and
-- whether they blocked the bot (Telegram's 403), written by the channels.
CREATE TABLE messenger_contacts (
    conversation TEXT PRIMARY KEY,
    last_inbound_at TEXT,
    blocked_at TEXT
);
-- The language the request was made in: what its status changes are said in.
ALTER TABLE requests ADD COLUMN language TEXT
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


# Issue 31: documents people send in the chat (the family record's copy of the ID and its
# report). The file is on disk (musaed/documents.py: 0600, a random name, outside the web
# root); its row says whose conversation sent it, which of the service's documents it was
# taken as, its type, size and hash, and, once the request is made, the request. A row
# with no request is a document of a request under way, kept for a short while only.
# Stands alone: it needs no table of another migration but `requests`.
_M010_DOCUMENTS = """
CREATE TABLE documents (
    id TEXT PRIMARY KEY,                    -- the reference a conversation carries (letters only)
    conversation TEXT NOT NULL,
    service_id TEXT,                        -- the request under way it was taken for
    kind TEXT,                              -- which of the service's documents (NULL: none asked yet)
    file_type TEXT NOT NULL CHECK (file_type IN ('image/jpeg', 'image/png', 'application/pdf')),
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    stored_name TEXT NOT NULL UNIQUE,       -- its random file name under MUSAED_DOCUMENTS_DIR
    received_at TEXT NOT NULL,
    tracking_number TEXT REFERENCES requests(tracking_number),
    attached_at TEXT
);
CREATE INDEX documents_conversation ON documents(conversation, tracking_number);
CREATE INDEX documents_request ON documents(tracking_number);
CREATE INDEX documents_received ON documents(received_at)
"""


# Named, in order; each applies whole (one transaction) and is recorded by name.
MIGRATIONS: Tuple[Tuple[str, Union[str, Callable[[Db], None]]], ...] = (
    ("001_initial", _M001_INITIAL),
    ("002_code_limit_and_one_open_request", _M002_CODE_LIMIT_AND_ONE_OPEN_REQUEST),
    ("003_codes_per_conversation", _M003_CODES_PER_CONVERSATION),
    ("004_webhook_replays", _M004_WEBHOOK_REPLAYS),
    ("005_care_audit", _m005_care_audit),
    ("007_web_sessions", _M007_WEB_SESSIONS),
    ("008_live_handover", _M008_LIVE_HANDOVER),
    ("009_notifications", _M009_NOTIFICATIONS),
    ("010_documents", _M010_DOCUMENTS),
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
            "documents",  # their files are swept by the retention purge (no row, no file)
            "notifications",
            "reminder_subscriptions",
            "messenger_contacts",
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


# -- retention (musaed/retention.py) ------------------------------------------


def delete_older(db: Db, table: str, column: str, before: str) -> int:
    """Delete the rows of `table` whose ISO time `column` is before `before`; how many.
    A table that is not there (a migration of another part not applied) counts 0."""
    if table not in db.table_names():
        return 0
    with transaction(db):
        return db.execute(f"DELETE FROM {table} WHERE {column} < ?", [before]).rowcount
