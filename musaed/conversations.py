"""Reading Rasa's conversations for customer care: transcripts, handovers, fallbacks.

The one module that reads Rasa's SQL tracker store (table `events`, as
Rasa's SQLTrackerStore writes it: one row per event, the event's JSON in
`data`, its name in `action_name`), opened read-only: the bot's own store
is never written here. A SQLite file on one machine, the same table on
PostgreSQL (a ``postgresql://`` URL) beyond it. Plain functions, no Rasa imports.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

# The intent Rasa's FallbackClassifier puts on a message it did not understand.
FALLBACK_INTENT = "nlu_fallback"


def _connect_ro(tracker_db) -> Optional[sqlite3.Connection]:
    """The tracker store opened read-only; None when there is none yet."""
    path = Path(tracker_db)
    if not path.exists():
        return None
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _rows(tracker_db, sql: str, params: Iterable = ()) -> List[Any]:
    """Rows of a query on the tracker store: a SQLite file, or a postgresql:// URL (the cluster)."""
    if is_url(tracker_db):
        return _postgres_rows(str(tracker_db), sql, params)
    conn = _connect_ro(tracker_db)
    if conn is None:
        return []
    with closing(conn):
        try:
            return conn.execute(sql, list(params)).fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):  # Rasa has not stored a conversation yet
                return []
            raise


def is_url(tracker_db) -> bool:
    return str(tracker_db).startswith(("postgresql://", "postgres://"))


def _postgres_rows(url: str, sql: str, params: Iterable) -> List[Any]:
    """The PostgreSQL twin: the same query on Rasa's `events` table, in a read-only session."""
    import psycopg2
    import psycopg2.errors
    import psycopg2.extras

    from musaed.store.postgres import translate

    with closing(psycopg2.connect(url)) as conn:
        conn.set_session(readonly=True, autocommit=True)
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            try:
                cur.execute(translate(sql), list(params))
            except psycopg2.errors.UndefinedTable:  # Rasa has not stored a conversation yet
                return []
            return cur.fetchall()


def _time(timestamp) -> Optional[str]:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(float(timestamp), timezone.utc).isoformat(timespec="seconds")


def _data(row) -> dict:
    try:
        return json.loads(row["data"] or "{}")
    except ValueError:
        return {}


def _original_intent(parse_data: dict) -> Optional[dict]:
    """The top intent behind nlu_fallback (the classifier's own first choice)."""
    for r in parse_data.get("intent_ranking") or []:
        if r.get("name") and r["name"] != FALLBACK_INTENT:
            return {"name": r["name"], "confidence": round(float(r.get("confidence") or 0.0), 4)}
    return None


def _user_message(row, data: dict) -> dict:
    parse = data.get("parse_data") or {}
    intent = parse.get("intent") or {}
    message = {
        "role": "user",
        "time": _time(row["timestamp"]),
        "text": data.get("text"),
        "intent": intent.get("name") or row["intent_name"],
        "confidence": round(float(intent.get("confidence") or 0.0), 4),
        "entities": [{"entity": e.get("entity"), "value": e.get("value")} for e in parse.get("entities") or []],
    }
    if message["intent"] == FALLBACK_INTENT:
        message["original_intent"] = _original_intent(parse)
    return message


# Where a channel puts the title of the button the person tapped (channels/handover_gate.py,
# not imported here: it brings Rasa with it).
TITLE_KEY = "musaed_title"


def transcript(tracker_db, sender_id: str) -> List[dict]:
    """The conversation of `sender_id`, every session: the person's messages with
    intent and confidence, the bot's replies, and where it was handed over.

    A message that was a button's payload ("/affirm") has the button's `title`,
    what the person saw and tapped: the channel's own word first (the widget,
    Telegram and WhatsApp send it in the metadata), else the title the bot
    last offered for that payload (any channel, REST too)."""
    messages: List[dict] = []
    offered: dict = {}  # payload -> title, of the bot's latest offers
    for row in _rows(
        tracker_db,
        "SELECT * FROM events WHERE sender_id = ? "
        "AND type_name IN ('user', 'bot', 'slot', 'session_started') "
        "ORDER BY id",
        [sender_id],
    ):
        data = _data(row)
        kind = row["type_name"]
        if (data.get("metadata") or {}).get("checkpoint"):
            continue  # the tracker store's checkpoint of a long conversation repeats slots already shown
        if kind == "user":
            message = _user_message(row, data)
            title = (data.get("metadata") or {}).get(TITLE_KEY)
            if not (isinstance(title, str) and title.strip()) and isinstance(message["text"], str):
                title = offered.get(message["text"].strip())
            if isinstance(title, str) and title.strip():
                message["title"] = title.strip()
            messages.append(message)
        elif kind == "bot":
            extra = data.get("data") or {}
            for b in extra.get("buttons") or []:
                if isinstance(b, dict) and isinstance(b.get("payload"), str) and isinstance(b.get("title"), str):
                    offered[b["payload"].strip()] = b["title"].strip()
            messages.append(
                {
                    "role": "bot",
                    "time": _time(row["timestamp"]),
                    "text": data.get("text"),
                    "buttons": [b.get("title") for b in extra.get("buttons") or []],
                }
            )
        elif kind == "slot" and data.get("name") == "handed_over" and data.get("value"):
            messages.append({"role": "handover", "time": _time(row["timestamp"])})
        elif kind == "session_started" and messages:
            messages.append({"role": "session", "time": _time(row["timestamp"])})
    return messages


def handovers(tracker_db, limit: int = 100) -> List[dict]:
    """Conversations whose `handed_over` slot was last set true: newest first,
    with the message that asked for a person."""
    latest: Dict[str, sqlite3.Row] = {}
    # A slot event's name is in action_name (Rasa's SQLTrackerStore stores `name` there).
    for row in _rows(
        tracker_db, "SELECT * FROM events WHERE type_name = 'slot' AND action_name = 'handed_over' ORDER BY id"
    ):
        if not (_data(row).get("metadata") or {}).get("checkpoint"):  # a checkpoint repeats the value
            latest[row["sender_id"]] = row
    found = []
    for sender, row in latest.items():
        if not _data(row).get("value"):
            continue
        asked = _rows(
            tracker_db,
            "SELECT * FROM events WHERE sender_id = ? AND type_name = 'user' AND id < ? ORDER BY id DESC LIMIT 1",
            [sender, row["id"]],
        )
        entry: Dict[str, Any] = {
            "sender_id": sender,
            "time": _time(row["timestamp"]),
            "text": None,
            "intent": None,
            "_order": (row["timestamp"] or 0, row["id"]),
        }
        if asked:
            message = _user_message(asked[0], _data(asked[0]))
            entry.update(text=message["text"], intent=message["intent"])
        found.append(entry)
    found.sort(key=lambda e: e.pop("_order"), reverse=True)
    return found[:limit]


def fallbacks(tracker_db, limit: int = 100) -> List[dict]:
    """Messages the bot did not understand (intent nlu_fallback), newest first,
    with the intent the classifier would otherwise have picked."""
    rows = _rows(
        tracker_db,
        "SELECT * FROM events WHERE type_name = 'user' AND intent_name = ? ORDER BY timestamp DESC, id DESC LIMIT ?",
        [FALLBACK_INTENT, int(limit)],
    )
    found = []
    for row in rows:
        message = _user_message(row, _data(row))
        found.append(
            {
                "sender_id": row["sender_id"],
                "time": message["time"],
                "text": message["text"],
                "confidence": message["confidence"],
                "original_intent": message.get("original_intent"),
            }
        )
    return found


def verified_people(tracker_db, sender_id: str) -> List[str]:
    """The national ids this conversation verified (its `verified_id` slot), oldest first, each once.

    The tracker store keeps the slot encrypted (musaed/privacy.py): it is decrypted
    here with the same key; a value that no longer decrypts is left out."""
    try:
        from musaed import privacy

        decrypt: Any = privacy.decrypt_value
    except ImportError:  # a store that keeps the slot as it was set
        decrypt = None
    people: List[str] = []
    for row in _rows(
        tracker_db,
        "SELECT * FROM events WHERE sender_id = ? AND type_name = 'slot' AND action_name = 'verified_id' ORDER BY id",
        [sender_id],
    ):
        value = _data(row).get("value")
        if value and decrypt is not None:
            value = decrypt(value)
        if isinstance(value, str) and value and value not in people:
            people.append(value)
    return people
