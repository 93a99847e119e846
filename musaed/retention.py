"""How long personal data is kept, in one setting, and the purge that applies it.

    MUSAED_RETENTION="unverified=30d,verified=180d,codes=1d,notifications=30d,documents=180d"   (the default)

- `unverified`: a conversation in which nobody proved who they are is deleted
  from the tracker store this long after its latest event;
- `verified`: one in which someone verified (a `verified_id` was set) after this long;
- `codes`: one-time codes (`one_time_codes`, the development `otp_outbox`), code requests, and the other short-lived
  rows of the application database (webhook replays, web sessions, where those
  tables exist) after this long (code requests a day at least: the code limits
  count them over a day); identity locks once they have expired. The
  care audit is append-only and kept. Documents sent for a request that was
  never made (musaed/documents.py) go with these short-lived rows;
- `notifications`: a notification sent or failed (musaed/notifications.py) after
  this long: customer care reads why one failed meanwhile; queued ones are still
  owed. A chat's last message (WhatsApp's 24-hour window) is kept a day, a chat
  that blocked the bot as long as `verified`. A reminder subscription lasts until
  the person stops it («أوقف التنبيهات»), erases their data, blocks the bot, or is
  no longer on file;
- `documents`: a request's documents (the family record's copy of the ID and
  its report) this long after the request closed (delivered, rejected or
  cancelled): the request stays, a record of the service, but the documents
  were only needed to decide it. Files on disk whose row is gone are deleted
  an hour after they were written.

Durations are a number and a unit: `d` days, `h` hours, `m` minutes. Applied by
`musaed-care purge` and, every hour, by `make run` and `make cluster`
(`python -m musaed.retention --every 3600`). Requests and their history are
records of the service, not of the conversation: they are not purged here.

The tracker store is Rasa's `events` table (a SQLite file, or PostgreSQL for
the cluster), written here only to delete whole conversations.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sqlite3
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from musaed import documents, identity, settings, store
from musaed.conversations import is_url
from musaed.store import notifications as outbox

log = logging.getLogger(__name__)

DEFAULT = settings.RETENTION.default
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_PART = re.compile(r"^\s*(unverified|verified|codes|notifications|documents)\s*=\s*(\d+)\s*([dhm])\s*$")

# Short-lived tables of the application database and the time column that dates a row:
# purged after `codes`. Tables another part has not added yet are skipped.
SHORT_LIVED: Tuple[Tuple[str, str], ...] = (
    ("one_time_codes", "created_at"),
    ("otp_outbox", "created_at"),
    ("code_requests", "requested_at"),
    # WhatsApp message ids and Telegram update ids seen (a replay is refused for a day).
    ("webhook_deliveries", "seen_at"),
    # The widget's sessions, idle that long (a session with no row is no session).
    ("web_sessions", "last_seen"),
)

# A file with no row (a crash between the two, the demo seed's clearing) is deleted once this old.
ORPHAN_AFTER = timedelta(hours=1)

# Locks after wrong codes (per conversation since migration 003, per id before): deleted once expired.
LOCKS = ("verification_locks", "identity_locks")


@dataclass(frozen=True)
class Policy:
    unverified: timedelta = timedelta(days=30)
    verified: timedelta = timedelta(days=180)
    codes: timedelta = timedelta(days=1)
    notifications: timedelta = timedelta(days=30)
    documents: timedelta = timedelta(days=180)


def parse(setting: Optional[str]) -> Policy:
    """`unverified=30d,verified=180d,codes=1d,notifications=30d,documents=180d` (any of them; the rest keep
    their default)."""
    values: Dict[str, timedelta] = {}
    for part in filter(str.strip, (setting or "").split(",")):
        match = _PART.match(part)
        if not match:
            raise ValueError(f"{settings.RETENTION.name}: cannot read {part.strip()!r} (expected e.g. {DEFAULT})")
        name, number, unit = match.groups()
        values[name] = timedelta(**{_UNITS[unit]: int(number)})
    return Policy(**values)


def policy_from_env(env: Optional[Mapping[str, str]] = None) -> Policy:
    return parse(settings.RETENTION.get(env))


# -- the tracker store -------------------------------------------------------------

# Per conversation: when it last moved, and whether anyone verified in it (a
# `verified_id` slot event with a value, encrypted or not: no key is needed).
_CONVERSATIONS = (
    "SELECT sender_id, MAX(timestamp) AS last_at, "
    "MAX(CASE WHEN type_name = 'slot' AND action_name = 'verified_id' "
    "AND data NOT LIKE '%\"value\": null%' THEN 1 ELSE 0 END) AS verified "
    "FROM events GROUP BY sender_id"
)


def _tracker_execute(tracker_db, work) -> int:
    """Run `work(cursor, mark)` on the tracker store in one transaction; 0 when it has no events yet."""
    if is_url(tracker_db):
        import psycopg2
        import psycopg2.errors

        with closing(psycopg2.connect(str(tracker_db))) as conn:
            try:
                with conn, conn.cursor() as cur:
                    return work(cur, "%s")
            except psycopg2.errors.UndefinedTable:
                return 0
    if not os.path.exists(tracker_db):
        return 0
    with closing(sqlite3.connect(str(tracker_db), timeout=10)) as conn:
        try:
            with conn:
                return work(conn.cursor(), "?")
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return 0
            raise


def _delete_conversations(cur, mark: str, senders: Sequence[str]) -> int:
    deleted = 0
    for i in range(0, len(senders), 500):
        batch = list(senders[i : i + 500])
        cur.execute(f"DELETE FROM events WHERE sender_id IN ({', '.join(mark for _ in batch)})", batch)
        deleted += len(batch)
    return deleted


def purge_conversations(tracker_db, policy: Policy, now: Optional[datetime] = None) -> int:
    """Delete the conversations past their retention; how many conversations."""
    now = now or datetime.now(timezone.utc)
    cutoff = {
        0: (now - policy.unverified).timestamp(),
        1: (now - policy.verified).timestamp(),
    }

    def work(cur, mark: str) -> int:
        cur.execute(_CONVERSATIONS)  # no parameters: psycopg2 leaves its % alone
        old = [sender for sender, last_at, verified in cur.fetchall() if (last_at or 0) < cutoff[int(verified or 0)]]
        return _delete_conversations(cur, mark, old)

    return _tracker_execute(tracker_db, work)


def protect_existing(tracker_db) -> int:
    """Rewrite the rows an earlier version stored as the tracker store now writes them (codes
    removed, ids masked or encrypted: musaed/privacy.py), one conversation per transaction so
    Rasa's writes wait at most that long; how many rows changed. Safe to run again."""
    from musaed import privacy

    def senders(cur, mark: str) -> int:
        cur.execute("SELECT DISTINCT sender_id FROM events")
        found.extend(sender for (sender,) in cur.fetchall())
        return 0

    def one(sender: str):
        def work(cur, mark: str) -> int:
            cur.execute(f"SELECT id, data FROM events WHERE sender_id = {mark} ORDER BY id", [sender])
            rows = cur.fetchall()
            events = [json.loads(data) for _, data in rows]
            changed = 0
            for (row_id, data), new in zip(rows, privacy.protect_stored(events, key), strict=True):
                text = json.dumps(new)
                if new != json.loads(data):
                    cur.execute(f"UPDATE events SET data = {mark} WHERE id = {mark}", [text, row_id])
                    changed += 1
            return changed

        return work

    found: List[str] = []
    key = privacy.keys()
    _tracker_execute(tracker_db, senders)
    return sum(_tracker_execute(tracker_db, one(sender)) for sender in found)


# -- the application database ----------------------------------------------------------


def purge_records(db: store.Db, policy: Policy, now: Optional[datetime] = None) -> Dict[str, int]:
    """Delete codes, code requests and other short-lived rows past `codes`, expired identity
    locks, and documents past theirs; how many rows of each table (files, for documents)."""
    now = now or datetime.now(timezone.utc)
    counts = {}
    for table, column in SHORT_LIVED:
        kept = policy.codes
        if table == "code_requests":  # the code limits count a day of them (musaed/identity.py)
            kept = max(kept, identity.DAY)
        counts[table] = store.delete_older(db, table, column, store.now_iso(now - kept))
    for table in LOCKS:  # expired locks
        counts[table] = store.delete_older(db, table, "locked_until", store.now_iso(now))
    # Documents: a request's after it closed; those no request took with the short-lived rows.
    if "documents" in db.table_names():
        counts["documents"] = documents.purge(
            db,
            store.now_iso(now - policy.codes),
            store.now_iso(now - policy.documents),
            (now - ORPHAN_AFTER).timestamp(),
        )
    # Live handovers (their messages with them): as long as conversations, verified or not.
    if "handovers" in db.table_names():
        counts["handovers"] = store.purge_handovers(
            db, store.now_iso(now - policy.unverified), store.now_iso(now - policy.verified)
        )
    # Notifications (migration 009): sent or failed ones after `notifications`; a chat's last
    # message once it tells nothing (past WhatsApp's window), a blocked chat after `verified`.
    if "notifications" in db.table_names():
        counts["notifications"] = outbox.purge(db, store.now_iso(now - policy.notifications))
        counts["messenger_contacts"] = outbox.purge_contacts(
            db, store.now_iso(now - identity.DAY), store.now_iso(now - policy.verified)
        )
    return counts


def purge(db: store.Db, tracker_db, policy: Optional[Policy] = None, now: Optional[datetime] = None) -> Dict[str, int]:
    """The whole policy, once: {"conversations": n, "otp_outbox": n, ...}."""
    policy = policy or policy_from_env()
    counts = {"conversations": purge_conversations(tracker_db, policy, now)}
    counts.update(purge_records(db, policy, now))
    return counts


def describe(counts: Dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def default_tracker_db():
    """MUSAED_TRACKER_DB (a file or a postgresql:// URL), else var/trackers.db."""
    return settings.TRACKER_DB.get()


# How often `make run` and `make cluster` apply the policy.
EVERY_S = 3600


def timer_command(python: str, tracker_db=None, every: float = EVERY_S) -> List[str]:
    """The process `make run` and `make cluster` keep beside the servers: the purge, hourly."""
    command = [python, "-m", "musaed.retention", "--every", str(every)]
    return command + (["--tracker-db", str(tracker_db)] if tracker_db else [])


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m musaed.retention [--every SECONDS]`: the purge, once or on a timer."""
    parser = argparse.ArgumentParser(prog="python -m musaed.retention", description=__doc__.splitlines()[0])
    parser.add_argument("--tracker-db", default=None, help="default: MUSAED_TRACKER_DB or var/trackers.db")
    parser.add_argument("--every", type=float, default=0, help="repeat every this many seconds (0: once)")
    parser.add_argument(
        "--protect-existing",
        action="store_true",
        help="once, on upgrading: rewrite conversations stored by an earlier version as they are now kept",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    policy = policy_from_env()  # a wrong setting stops here, at start-up
    tracker_db = args.tracker_db or default_tracker_db()
    if args.protect_existing:
        log.info("rows rewritten: %d", protect_existing(tracker_db))
        return 0
    while True:
        try:
            log.info("purged: %s", describe(purge(store.open_db(), tracker_db, policy)))
        except Exception:  # noqa: BLE001 - the next round tries again; the servers go on
            log.exception("purge failed")
        if not args.every:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
