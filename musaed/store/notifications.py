"""Notifications' rows (migration 009): the outbox, reminder subscriptions and messenger contacts.

A sender (a notify worker, or the Rasa server a widget is connected to) takes a row
with one conditional UPDATE that sets its lease (`claim`): two senders racing for a
row cannot both win, and a sender that dies holding one frees it when the lease runs
out. Every later change of the row (sent, to try again, failed) is conditional on
still holding it, so a sender whose lease ran out cannot undo another's work.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence

from musaed.store.connection import Db, _one, transaction

_FREE = "(lease_until IS NULL OR lease_until < ?)"


def enqueue(db: Db, row: Dict[str, Any]) -> bool:
    """Add a notification inside the caller's transaction (or on its own); False when its
    dedupe_key was queued before (the same change or window: announced once)."""
    row = {**row, "payload": json.dumps(row["payload"], ensure_ascii=False, sort_keys=True)}
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    cur = db.execute(
        f"INSERT INTO notifications ({columns}) VALUES ({marks}) ON CONFLICT (dedupe_key) DO NOTHING",
        list(row.values()),
    )
    return cur.rowcount == 1


def get(db: Db, notification_id: int) -> Optional[dict]:
    return _one(db, "SELECT * FROM notifications WHERE id = ?", [notification_id])


def due(db: Db, now: str, limit: int = 20) -> List[dict]:
    """Queued rows whose time has come and that no sender holds, oldest first."""
    return list(
        db.query(
            f"SELECT * FROM notifications WHERE state = 'queued' AND next_attempt_at <= ? AND {_FREE} "
            "ORDER BY next_attempt_at, id LIMIT ?",
            [now, now, limit],
        )
    )


def queued_on(db: Db, channel: str, now: str, limit: int = 200) -> List[dict]:
    """Queued rows of `channel` that no sender holds, whatever their time (a widget open now
    gets its row at once, and in quiet hours too), newest first: rows held back for an SMS in
    quiet hours pile up, and the newest are the ones whose widget is likely open."""
    return list(
        db.query(
            f"SELECT * FROM notifications WHERE channel = ? AND state = 'queued' AND {_FREE} ORDER BY id DESC LIMIT ?",
            [channel, now, limit],
        )
    )


def claim(db: Db, notification_id: int, by: str, now: str, lease_until: str) -> bool:
    """Take the row for `by` until `lease_until`, counting an attempt; False when another holds it
    or it is no longer queued."""
    cur = db.execute(
        "UPDATE notifications SET leased_by = ?, lease_until = ?, attempts = attempts + 1 "
        f"WHERE id = ? AND state = 'queued' AND {_FREE}",
        [by, lease_until, notification_id, now],
    )
    return cur.rowcount == 1


def _held(db: Db, notification_id: int, by: str, sets: Dict[str, Any]) -> bool:
    assignments = ", ".join(f"{k} = ?" for k in sets)
    cur = db.execute(
        f"UPDATE notifications SET {assignments}, lease_until = NULL, leased_by = NULL "
        "WHERE id = ? AND leased_by = ? AND state = 'queued'",
        [*sets.values(), notification_id, by],
    )
    return cur.rowcount == 1


def mark_sent(db: Db, notification_id: int, by: str, route: str, at: str) -> bool:
    """Sent by `by` (False: its lease had run out and another sender has the row)."""
    return _held(db, notification_id, by, {"state": "sent", "route": route, "sent_at": at, "last_error": None})


def retry_at(db: Db, notification_id: int, by: str, when: str, error: Optional[str], route: Optional[str]) -> bool:
    """Let go of the row, to be tried again at `when`."""
    return _held(db, notification_id, by, {"next_attempt_at": when, "last_error": error, "route": route})


def mark_failed(db: Db, notification_id: int, by: str, error: str, route: Optional[str]) -> bool:
    return _held(db, notification_id, by, {"state": "failed", "last_error": error, "route": route})


def postpone(db: Db, notification_id: int, when: str, now: str) -> bool:
    """Not now (quiet hours): the row waits until `when`, no attempt counted."""
    cur = db.execute(
        f"UPDATE notifications SET next_attempt_at = ? WHERE id = ? AND state = 'queued' AND {_FREE}",
        [when, notification_id, now],
    )
    return cur.rowcount == 1


def counts(db: Db) -> List[dict]:
    """{channel, state, n} for every channel and state there are rows of."""
    return list(
        db.query(
            "SELECT channel, state, COUNT(*) AS n FROM notifications GROUP BY channel, state ORDER BY channel, state"
        )
    )


def failed(db: Db, limit: int = 50) -> List[dict]:
    """The failed rows, newest first."""
    return list(db.query("SELECT * FROM notifications WHERE state = 'failed' ORDER BY id DESC LIMIT ?", [limit]))


def of_person(db: Db, national_id: str) -> List[dict]:
    return list(db.query("SELECT * FROM notifications WHERE national_id = ? ORDER BY id", [national_id]))


def drop_queued_reminders(db: Db, national_ids: Sequence[str], now: str) -> int:
    """Reminders not yet sent to these people are dropped (they opted out); one a sender holds
    at `now` is under way and left to it."""
    if not national_ids:
        return 0
    marks = ", ".join("?" for _ in national_ids)
    cur = db.execute(
        f"DELETE FROM notifications WHERE kind = 'reminder' AND state = 'queued' AND {_FREE} "
        f"AND national_id IN ({marks})",
        [now, *national_ids],
    )
    return cur.rowcount


def purge(db: Db, before: str) -> int:
    """Retention: sent and failed rows created before `before` (queued ones are still owed)."""
    with transaction(db):
        return db.execute(
            "DELETE FROM notifications WHERE state IN ('sent', 'failed') AND created_at < ?", [before]
        ).rowcount


# -- reminder subscriptions ------------------------------------------------------------


def subscribe(db: Db, national_id: str, conversation: str, channel: str, language: str, at: str) -> None:
    """Opt in (again: the reminders then go where they last said yes)."""
    db.execute(
        "INSERT INTO reminder_subscriptions (national_id, conversation, channel, language, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (national_id) DO UPDATE SET conversation = excluded.conversation, "
        "channel = excluded.channel, language = excluded.language, updated_at = excluded.updated_at",
        [national_id, conversation, channel, language, at, at],
    )


def subscription(db: Db, national_id: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM reminder_subscriptions WHERE national_id = ?", [national_id])


def subscriptions(db: Db) -> List[dict]:
    return list(db.query("SELECT * FROM reminder_subscriptions ORDER BY national_id"))


def unsubscribe(db: Db, now: str, conversation: Optional[str] = None, national_id: Optional[str] = None) -> List[str]:
    """Opt out: the subscriptions whose reminders go to `conversation`, and `national_id`'s; their
    reminders not yet sent go too. The people whose subscription ended."""
    with transaction(db):
        found = [
            r["national_id"]
            for r in db.query(
                "SELECT national_id FROM reminder_subscriptions WHERE conversation = ? OR national_id = ?",
                [conversation or "", national_id or ""],
            )
        ]
        if found:
            marks = ", ".join("?" for _ in found)
            db.execute(f"DELETE FROM reminder_subscriptions WHERE national_id IN ({marks})", found)
            drop_queued_reminders(db, found, now)
        return found


# -- messenger contacts (channels/contacts.py) --------------------------------------------


def record_inbound(db: Db, conversation: str, at: str) -> None:
    """The person wrote (at `at`): WhatsApp's window opens again, and a chat that blocked us no longer does."""
    db.execute(
        "INSERT INTO messenger_contacts (conversation, last_inbound_at) VALUES (?, ?) "
        "ON CONFLICT (conversation) DO UPDATE SET last_inbound_at = excluded.last_inbound_at, blocked_at = NULL",
        [conversation, at],
    )


def mark_blocked(db: Db, conversation: str, at: str) -> None:
    db.execute(
        "INSERT INTO messenger_contacts (conversation, blocked_at) VALUES (?, ?) "
        "ON CONFLICT (conversation) DO UPDATE SET blocked_at = excluded.blocked_at",
        [conversation, at],
    )


def contact(db: Db, conversation: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM messenger_contacts WHERE conversation = ?", [conversation])


def purge_contacts(db: Db, inbound_before: str, blocked_before: str) -> int:
    """Retention: a last message older than WhatsApp's window tells nothing (unless the chat is
    blocked, kept until `blocked_before`)."""
    with transaction(db):
        return db.execute(
            "DELETE FROM messenger_contacts WHERE (blocked_at IS NULL AND (last_inbound_at IS NULL "
            "OR last_inbound_at < ?)) OR (blocked_at IS NOT NULL AND blocked_at < ?)",
            [inbound_before, blocked_before],
        ).rowcount
