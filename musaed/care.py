"""Customer care: answer lookup, the request desk and conversation review.

Plain functions, no Rasa imports: the HTTP API (care/server.py) and the
command line (care/cli.py) are thin layers over these.

- `answer(ranking)` turns an NLU intent ranking into the matched services and
  the catalogue's answer for the best one: the same text the bot gives.
- `find_requests` and `change_status` read and move requests in the
  application database (musaed/store.py); every change is an event with the
  agent and the time, so the person sees it at once when tracking.
- `transcript`, `handovers` and `fallbacks` read Rasa's SQL tracker store
  (table `events`), opened read-only.
"""
from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from musaed import catalogue, store
from musaed.arabic import to_ascii_digits

# Below this, the best service is only a guess: say so and list the nearest.
THRESHOLD = 0.5
NEAREST = 3
FALLBACK_INTENT = "nlu_fallback"
# The statuses an agent may move a request to, in their usual order.
AGENT_STATUSES = ("approved", "printed", "out_for_delivery", "delivered",
                  "returned_to_branch", "rejected")
REASON_REQUIRED = ("rejected",)


class CareError(ValueError):
    """A refused desk action: `code` for machines, `message` in Arabic for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _percent(confidence: float) -> str:
    return f"{confidence:.0%}"


# -- answer lookup -------------------------------------------------------------

def answer(ranking: Sequence[dict], threshold: float = THRESHOLD, nearest: int = NEAREST,
           cat: Optional[catalogue.Catalogue] = None) -> dict:
    """The services an intent ranking matches and the catalogue's answer for the best one.

    `ranking` is Rasa's `intent_ranking`: [{"name", "confidence"}, ...].  A
    question matches when a service intent is on top with at least
    `threshold`; a non-service intent on top (small talk, out_of_scope, or
    `nlu_fallback`, which the bot answers with "not understood") does not
    match, and the nearest services are listed instead.
    """
    cat = cat or catalogue.load()
    ranked = sorted(({"name": r["name"], "confidence": float(r.get("confidence") or 0.0)}
                     for r in ranking if r.get("name")),
                    key=lambda r: -r["confidence"])
    top = ranked[0] if ranked else {"name": None, "confidence": 0.0}
    services = [
        {"id": r["name"], "name": cat.services[r["name"]].name, "confidence": round(r["confidence"], 4)}
        for r in ranked if r["name"] in cat.services
    ]
    matched = bool(services) and top["name"] in cat.services and top["confidence"] >= threshold
    result = {
        "matched": matched,
        "service": None,
        "confidence": None,
        "top_intent": {"name": top["name"], "confidence": round(top["confidence"], 4)},
        "services": services,
        "nearest": [],
        "answer": None,
        "text": "",
    }
    if matched:
        sid = top["name"]
        result.update(service=sid, confidence=round(top["confidence"], 4), answer={
            "name": cat.services[sid].name,
            "howto": cat.howto(sid),
            "requirements": cat.requirements(sid),
            "fees": cat.fees(sid),
            "delivery": cat.delivery(sid),
        })
        # The bot's how-to answer (path, steps, requirements, notes), then its
        # answers to the fees and delivery follow-ups.
        result["text"] = "\n".join([
            cat.labels["care_best"].format(name=cat.services[sid].name,
                                           confidence=_percent(top["confidence"])),
            cat.howto(sid), cat.fees(sid), cat.delivery(sid),
        ])
        return result
    result["nearest"] = services[:nearest]
    # The intent that beat the services; under nlu_fallback, the one it replaced.
    shown = next((r for r in ranked if r["name"] != FALLBACK_INTENT), top)
    result["text"] = "\n".join(
        [cat.labels["care_not_matched"].format(intent=shown["name"] or "-",
                                               confidence=_percent(shown["confidence"]))]
        + [cat.labels["care_service_line"].format(name=s["name"], service_id=s["id"],
                                                  confidence=_percent(s["confidence"]))
           for s in result["nearest"]])
    return result


# -- request desk --------------------------------------------------------------

def _describe(db, cat: catalogue.Catalogue, request: dict) -> dict:
    applicant = store.get_person(db, request["applicant_id"]) or {}
    beneficiary = store.get_person(db, request["beneficiary_id"]) or {}
    service = cat.service(request["service_id"])
    try:
        details = json.loads(request.get("details") or "{}")
    except ValueError:
        details = {}
    return {
        "tracking_number": request["tracking_number"],
        "service_id": request["service_id"],
        "service": service.name if service else request["service_id"],
        "status": request["status"],
        "status_text": cat.status_text(request["status"]),
        "applicant_id": request["applicant_id"],
        "applicant_name": applicant.get("name"),
        "beneficiary_id": request["beneficiary_id"],
        "beneficiary_name": beneficiary.get("name"),
        "delivery_address": request.get("delivery_address"),
        "details": details,
        "conversation_id": request["conversation_id"],
        "created_at": request["created_at"],
        "updated_at": request["updated_at"],
        "history": [
            {"status": e["status"], "status_text": cat.status_text(e["status"]),
             "at": e["at"], "actor": e["actor"], "note": e["note"]}
            for e in store.request_events(db, request["tracking_number"])
        ],
    }


def _tracking_number(text: str) -> Optional[str]:
    number, _ = store.parse_tracking_number(text or "")
    return number


def find_requests(db, tracking_number: Optional[str] = None,
                  national_id: Optional[str] = None) -> List[dict]:
    """Requests by tracking number and/or national id (applicant, beneficiary or
    head of the beneficiary's family), each with its status history; newest first."""
    if not (tracking_number or national_id):
        raise ValueError("a tracking number or a national id is needed")
    cat = catalogue.load()
    nid = re.sub(r"\D", "", to_ascii_digits(national_id or "")) or None
    if tracking_number:
        number = _tracking_number(tracking_number)
        request = store.get_request(db, number) if number else None
        if request is None or (nid and not store.can_see_request(db, nid, request)):
            return []
        rows = [request]
    else:
        rows = store.requests_visible_to(db, nid)
    return [_describe(db, cat, r) for r in rows]


def change_status(db, tracking_number: str, status: str, agent: str,
                  reason: Optional[str] = None) -> dict:
    """Move a request to `status` as `agent`: one event with the agent and the time.

    Raises CareError: unknown_status, reason_required (for rejected), not_found.
    """
    cat = catalogue.load()
    reason = (reason or "").strip() or None
    if status not in AGENT_STATUSES:
        raise CareError("unknown_status", cat.labels["care_unknown_status"].format(
            status=status, allowed="، ".join(f"{s} ({cat.status_text(s)})" for s in AGENT_STATUSES)))
    if status in REASON_REQUIRED and not reason:
        raise CareError("reason_required", cat.labels["care_reason_required"])
    if not agent:
        raise ValueError("the agent's name is needed")
    number = _tracking_number(tracking_number)
    try:
        if number is None:
            raise KeyError(tracking_number)
        request = store.set_request_status(db, number, status, actor=f"agent:{agent}", note=reason)
    except KeyError:
        raise CareError("not_found", cat.labels["care_request_not_found"].format(
            tracking_number=tracking_number)) from None
    return _describe(db, cat, request)


def agent_statuses() -> List[Dict[str, str]]:
    """The statuses an agent may set, with their Arabic text (for forms)."""
    cat = catalogue.load()
    return [{"id": s, "text": cat.status_text(s), "reason_required": s in REASON_REQUIRED}
            for s in AGENT_STATUSES]


# -- conversation review (Rasa's tracker store) ---------------------------------

def _connect_ro(tracker_db) -> Optional[sqlite3.Connection]:
    """The tracker store opened read-only; None when there is none yet."""
    path = Path(tracker_db)
    if not path.exists():
        return None
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _rows(tracker_db, sql: str, params: Iterable = ()) -> List[sqlite3.Row]:
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
        "role": "user", "time": _time(row["timestamp"]), "text": data.get("text"),
        "intent": intent.get("name") or row["intent_name"],
        "confidence": round(float(intent.get("confidence") or 0.0), 4),
        "entities": [{"entity": e.get("entity"), "value": e.get("value")}
                     for e in parse.get("entities") or []],
    }
    if message["intent"] == FALLBACK_INTENT:
        message["original_intent"] = _original_intent(parse)
    return message


def transcript(tracker_db, sender_id: str) -> List[dict]:
    """The conversation of `sender_id`, every session: the person's messages with
    intent and confidence, the bot's replies, and where it was handed over."""
    messages: List[dict] = []
    for row in _rows(tracker_db, "SELECT * FROM events WHERE sender_id = ? "
                                 "AND type_name IN ('user', 'bot', 'slot', 'session_started') "
                                 "ORDER BY id", [sender_id]):
        data = _data(row)
        kind = row["type_name"]
        if kind == "user":
            messages.append(_user_message(row, data))
        elif kind == "bot":
            extra = data.get("data") or {}
            messages.append({
                "role": "bot", "time": _time(row["timestamp"]), "text": data.get("text"),
                "buttons": [b.get("title") for b in extra.get("buttons") or []],
            })
        elif kind == "slot" and data.get("name") == "handed_over" and data.get("value"):
            messages.append({"role": "handover", "time": _time(row["timestamp"])})
        elif kind == "session_started" and messages:
            messages.append({"role": "session", "time": _time(row["timestamp"])})
    return messages


def handovers(tracker_db, limit: int = 100) -> List[dict]:
    """Conversations whose `handed_over` slot was last set true: newest first,
    with the message that asked for a person."""
    latest: Dict[str, sqlite3.Row] = {}
    for row in _rows(tracker_db, "SELECT * FROM events WHERE type_name = 'slot' "
                                 "AND data LIKE '%\"handed_over\"%' ORDER BY id"):
        if _data(row).get("name") == "handed_over":
            latest[row["sender_id"]] = row
    found = []
    for sender, row in latest.items():
        if not _data(row).get("value"):
            continue
        asked = _rows(tracker_db, "SELECT * FROM events WHERE sender_id = ? AND type_name = 'user' "
                                  "AND id < ? ORDER BY id DESC LIMIT 1", [sender, row["id"]])
        entry = {"sender_id": sender, "time": _time(row["timestamp"]), "text": None,
                 "intent": None, "_order": (row["timestamp"] or 0, row["id"])}
        if asked:
            message = _user_message(asked[0], _data(asked[0]))
            entry.update(text=message["text"], intent=message["intent"])
        found.append(entry)
    found.sort(key=lambda e: e.pop("_order"), reverse=True)
    return found[:limit]


def fallbacks(tracker_db, limit: int = 100) -> List[dict]:
    """Messages the bot did not understand (intent nlu_fallback), newest first,
    with the intent the classifier would otherwise have picked."""
    rows = _rows(tracker_db, "SELECT * FROM events WHERE type_name = 'user' "
                             "AND intent_name = ? ORDER BY timestamp DESC, id DESC LIMIT ?",
                 [FALLBACK_INTENT, int(limit)])
    found = []
    for row in rows:
        message = _user_message(row, _data(row))
        found.append({"sender_id": row["sender_id"], "time": message["time"], "text": message["text"],
                      "confidence": message["confidence"],
                      "original_intent": message.get("original_intent")})
    return found
