"""What the channels keep: web chat sessions and webhook deliveries seen (replays)."""

from __future__ import annotations

from typing import Optional

from musaed.store.connection import Db, _one, transaction

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
