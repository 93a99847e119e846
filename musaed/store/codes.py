"""One-time codes: who asked for which, the codes (hashed), the development outbox, and verification locks."""

from __future__ import annotations

from typing import Dict, List, Optional

from musaed.store.connection import Db, _insert, _one

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
