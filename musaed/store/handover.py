"""Live handover's rows (migration 008): handovers, their messages, and agents seen on duty.

Every change of an agent's hold is one conditional UPDATE, so two agents (or two
replicas) racing for the same conversation cannot both win: the row changes for
the first, and the second's WHERE no longer matches (rowcount 0).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence

from musaed.store.connection import Db, _insert, _one, transaction

OPEN_STATES = ("waiting", "agent")


def open_handover(db: Db, conversation: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM handovers WHERE conversation = ? AND state IN ('waiting', 'agent')", [conversation])


def latest_handover(db: Db, conversation: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM handovers WHERE conversation = ? ORDER BY id DESC LIMIT 1", [conversation])


def get_handover(db: Db, handover_id: int) -> Optional[dict]:
    return _one(db, "SELECT * FROM handovers WHERE id = ?", [handover_id])


def create_handover(db: Db, row: Dict[str, Any], event: str) -> dict:
    """A waiting handover (or the one already open: asking twice queues once), with its event row."""
    with transaction(db):
        found = open_handover(db, row["conversation"])
        if found is not None:
            return found
        _insert(db, "handovers", {**row, "state": "waiting"})
        created = open_handover(db, row["conversation"])
        assert created is not None
        _add_message(db, created, "event", event, at=row["requested_at"])
        return created


def _add_message(
    db: Db,
    handover: dict,
    side: str,
    text: str,
    *,
    at: str,
    agent: Optional[str] = None,
    buttons: Optional[Sequence[dict]] = None,
    delivered_at: Optional[str] = None,
    to_bot: bool = False,
) -> None:
    _insert(
        db,
        "handover_messages",
        {
            "handover_id": handover["id"],
            "conversation": handover["conversation"],
            "channel": handover["channel"],
            "side": side,
            "agent": agent,
            "text": text,
            "buttons": json.dumps(list(buttons), ensure_ascii=False) if buttons else None,
            "to_bot": 1 if to_bot else 0,
            "at": at,
            "delivered_at": delivered_at,
        },
    )


def add_message(db: Db, handover: dict, side: str, text: str, *, at: str, **kwargs: Any) -> None:
    with transaction(db):
        _add_message(db, handover, side, text, at=at, **kwargs)


def change(
    db: Db,
    handover_id: int,
    *,
    set_: Dict[str, Any],
    where: Dict[str, Any],
    event: Optional[str] = None,
    at: str,
    agent: Optional[str] = None,
    messages: Sequence[Dict[str, Any]] = (),
) -> Optional[dict]:
    """SET `set_` on the handover WHERE its columns equal `where` (None: IS NULL), with its
    event and `messages`, in one transaction; the row changed, or None when `where` failed."""
    sets = ", ".join(f"{k} = ?" for k in set_)
    conds = " AND ".join(f"{k} IS NULL" if v is None else f"{k} = ?" for k, v in where.items())
    params = [*set_.values(), handover_id, *(v for v in where.values() if v is not None)]
    with transaction(db):
        cur = db.execute(f"UPDATE handovers SET {sets} WHERE id = ?" + (f" AND {conds}" if conds else ""), params)
        if cur.rowcount != 1:
            return None
        row = get_handover(db, handover_id)
        assert row is not None
        if event:
            _add_message(db, row, "event", event, at=at, agent=agent)
        for message in messages:
            _add_message(db, row, at=at, **message)
        return row


def waiting(db: Db) -> List[dict]:
    """The queue: waiting handovers, first asked first."""
    return list(db.query("SELECT * FROM handovers WHERE state = 'waiting' ORDER BY requested_at, id"))


def held(db: Db, agent: Optional[str] = None) -> List[dict]:
    if agent:
        return list(db.query("SELECT * FROM handovers WHERE state = 'agent' AND agent = ? ORDER BY id", [agent]))
    return list(db.query("SELECT * FROM handovers WHERE state = 'agent' ORDER BY id"))


def messages_of(db: Db, conversation: str, since_id: int = 0) -> List[dict]:
    return list(
        db.query(
            "SELECT * FROM handover_messages WHERE conversation = ? AND id > ? ORDER BY id", [conversation, since_id]
        )
    )


def shown_to_person(db: Db, conversation: str) -> List[dict]:
    """What the person's chat showed of live chats that the bot's transcript lacks: their
    messages the bot never saw, and the agents' and the desk's messages delivered."""
    return list(
        db.query(
            "SELECT * FROM handover_messages WHERE conversation = ? AND ("
            "(side = 'person' AND to_bot = 0) OR (side IN ('agent', 'system') AND delivered_at IS NOT NULL)"
            ") ORDER BY id",
            [conversation],
        )
    )


def last_message_id(db: Db) -> int:
    row = _one(db, "SELECT MAX(id) AS last FROM handover_messages", [])
    return int(row["last"] or 0) if row else 0


def to_deliver(db: Db, channel: str, conversation: Optional[str] = None, limit: int = 50) -> List[dict]:
    """The agent's and the system's messages not yet delivered on `channel`, oldest first."""
    sql = (
        "SELECT m.*, h.language, h.state AS handover_state FROM handover_messages m "
        "JOIN handovers h ON h.id = m.handover_id "
        "WHERE m.channel = ? AND m.delivered_at IS NULL AND m.side IN ('agent', 'system')"
    )
    params: List[Any] = [channel]
    if conversation is not None:
        sql += " AND m.conversation = ?"
        params.append(conversation)
    return list(db.query(sql + " ORDER BY m.id LIMIT ?", [*params, limit]))


def claim_delivery(db: Db, message_id: int, at: str) -> bool:
    """Whether this process is the one to deliver the message (exactly once across replicas)."""
    cur = db.execute(
        "UPDATE handover_messages SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL", [at, message_id]
    )
    return cur.rowcount == 1


def unclaim_delivery(db: Db, message_id: int) -> None:
    """The send failed: let the next poll try again."""
    db.execute("UPDATE handover_messages SET delivered_at = NULL WHERE id = ?", [message_id])


def mark_agent_seen(db: Db, agent: str, at: str) -> None:
    db.execute(
        "INSERT INTO care_agents_seen (agent, last_seen) VALUES (?, ?) "
        "ON CONFLICT (agent) DO UPDATE SET last_seen = excluded.last_seen",
        [agent, at],
    )


def agents_seen_since(db: Db, since: str) -> List[str]:
    return [r["agent"] for r in db.query("SELECT agent FROM care_agents_seen WHERE last_seen >= ?", [since])]


def closed_between(db: Db, since: str, until: str) -> List[dict]:
    """Handovers asked for in [since, until) (the statistics' rows)."""
    return list(
        db.query("SELECT * FROM handovers WHERE requested_at >= ? AND requested_at < ? ORDER BY id", [since, until])
    )


def purge_handovers(db: Db, unverified_before: str, verified_before: str) -> int:
    """Retention: closed handovers (and their messages) older than the policy's age for them."""
    with transaction(db):
        return db.execute(
            "DELETE FROM handovers WHERE state = 'closed' AND ("
            "(national_id IS NULL AND requested_at < ?) OR (national_id IS NOT NULL AND requested_at < ?))",
            [unverified_before, verified_before],
        ).rowcount
