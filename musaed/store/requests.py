"""Service requests, their events and tracking numbers, and the care audit (append-only)."""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from musaed.arabic import to_ascii_digits
from musaed.store import notifications
from musaed.store.connection import TRACKING_PREFIX, Db, _insert, _one, now_iso, serialize, transaction
from musaed.store.documents import attach_documents
from musaed.store.people import relation
from musaed.store.schema import _CLOSED_SQL, CLOSED_STATUSES, integrity_errors

# -- requests ----------------------------------------------------------------


def _add_event(db: Db, tracking_number: str, status: str, *, actor: str, note: Optional[str], at: str) -> int:
    """The event's row, and its id (what a notification of it is keyed by)."""
    rows = db.execute(
        "INSERT INTO request_events (tracking_number, status, note, actor, at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        [tracking_number, status, note, actor, at],
    ).fetchall()
    return int(rows[0][0])


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
    documents: Sequence[str] = (),
    language: Optional[str] = None,
) -> Tuple[dict, bool]:
    """Create a request and its first event in one transaction, with `documents` (ids of
    documents `conversation_id` sent) attached: all of them, or no request.

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
                    # What its status changes are said in (musaed/notifications.py).
                    "language": language,
                },
            )
            _add_event(db, number, status, actor=applicant_id, note=None, at=at)
            attach_documents(db, number, conversation_id, documents, at)
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
    notice: Optional[Callable[[dict, int], Optional[dict]]] = None,
) -> dict:
    """Move a request to `status`, keeping the change as an event (and `audit`, a care_audit
    row, in the same transaction). `notice(request, event_id)` gives the notification that
    announces the change to the person (musaed/notifications.py), queued in that transaction
    too: the change and its announcement commit together, or neither does.

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
            event_id = _add_event(db, tracking_number, status, actor=actor, note=note, at=at)
            if audit is not None:
                _insert(db, "care_audit", {"at": at, **audit})
            row = notice(request, event_id) if notice is not None else None
            if row is not None:
                notifications.enqueue(db, row)
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
