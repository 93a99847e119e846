"""The customer-care help desk: answer lookup and the request desk.

Plain functions, no Rasa imports: the HTTP API (care/server.py) and the
command line (care/cli.py) are thin layers over these, and over
musaed/conversations.py for reading conversations.

- `answer(ranking)` turns an NLU intent ranking into the matched services and
  the catalogue's answer for the best one: the same text the bot gives.
- `find_requests` and `change_status` read and move requests in the
  application database (musaed/store/); every change is an event with the
  agent and the time, so the person sees it at once when tracking, and a
  notification to them is queued in the same transaction (musaed/notifications.py).
- `lookup_requests`, `change_status`, `read_conversation`, `list_conversations` and
  `download_document` are what an agent does: each writes one row of the care audit
  (`store.care_audit`: the agent, the action, whose record by national id, what, when).
  A request comes with its documents (name, type, size, hash); an agent downloads
  one by its id, the hash checked again.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Sequence

from musaed import answers, catalogue, conversations, documents, notifications, store
from musaed.arabic import to_ascii_digits
from musaed.conversations import FALLBACK_INTENT
from musaed.store import notifications as outbox

# Below this, the best service is only a guess: say so and list the nearest.
THRESHOLD = 0.5
NEAREST = 3
# The statuses an agent may move a request to, in their usual order.
AGENT_STATUSES = ("approved", "printed", "out_for_delivery", "delivered", "returned_to_branch", "rejected")
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


def answer(
    ranking: Sequence[dict],
    threshold: float = THRESHOLD,
    nearest: int = NEAREST,
    cat: Optional[catalogue.Catalogue] = None,
    question: str = "",
    facts: Sequence[dict] = (),
) -> dict:
    """The services an intent ranking matches and the catalogue's answer for the best one.

    `ranking` is Rasa's `intent_ranking`: [{"name", "confidence"}, ...].  A
    question matches when a service intent is on top with at least
    `threshold`; a non-service intent on top (small talk, out_of_scope, or
    `nlu_fallback`, which the bot answers with "not understood") does not
    match, and the nearest services are listed instead. With the `question`
    and the model's `facts` ranking, the facts of the sources that answer it
    come first, each with its source, in the words the bot says them
    (musaed/answers.py), or the bot's "I don't have that detail".
    """
    cat = cat or catalogue.load()
    ranked: List[Dict[str, Any]] = sorted(
        ({"name": r["name"], "confidence": float(r.get("confidence") or 0.0)} for r in ranking if r.get("name")),
        key=lambda r: -r["confidence"],
    )
    top: Dict[str, Any] = ranked[0] if ranked else {"name": None, "confidence": 0.0}
    services = [
        {"id": r["name"], "name": cat.services[r["name"]].name, "confidence": round(r["confidence"], 4)}
        for r in ranked
        if r["name"] in cat.services
    ]
    matched = bool(services) and top["name"] in cat.services and top["confidence"] >= threshold
    result: Dict[str, Any] = {
        "matched": matched,
        "service": None,
        "confidence": None,
        "top_intent": {"name": top["name"], "confidence": round(top["confidence"], 4)},
        "services": services,
        "nearest": [],
        "answer": None,
        "facts": [],
        "reply": None,
        "text": "",
    }
    if matched:
        sid = top["name"]
        # Read as the bot reads it: the service's own intent, this surely (a "how do I" gets the guide).
        decided = answers.decide(cat, question, sid, facts, top["confidence"]) if question else None
        result["facts"] = [
            {
                "service": f.service,
                "id": f.id,
                "score": entry["in_service"],
                "text": f.text,
                "source": {"file": f.source_file, "sentence": f.source_sentence},
                "also": [{"file": file, "sentence": sentence} for file, sentence in f.also],
            }
            for entry in facts
            if entry.get("service") == sid and entry["in_service"] >= answers.ANSWER_SCORE
            for f in [cat.fact(sid, entry["fact"])]
            if f is not None
        ][:nearest]
        if decided is not None and decided.kind in ("fact", "unknown"):
            result["reply"] = answers.reply_text(cat, sid, decided)
        result.update(
            service=sid,
            confidence=round(top["confidence"], 4),
            answer={
                "name": cat.services[sid].name,
                "howto": cat.howto(sid),
                "requirements": cat.requirements(sid),
                "fees": cat.fees(sid),
                "delivery": cat.delivery(sid),
            },
        )
        # The bot's how-to answer (path, steps, requirements, notes), then its
        # answers to the fees and delivery follow-ups.
        result["text"] = "\n".join(
            [
                cat.labels["care_best"].format(name=cat.services[sid].name, confidence=_percent(top["confidence"])),
                *([result["reply"]] if result["reply"] else []),
                *(
                    cat.labels["care_fact_source"].format(file=source["file"], sentence=source["sentence"])
                    for f in result["facts"][:1]
                    if result["reply"]
                    for source in [f["source"], *f["also"]]  # every sentence that states it
                ),
                cat.howto(sid),
                cat.fees(sid),
                cat.delivery(sid),
            ]
        )
        return result
    result["nearest"] = services[:nearest]
    # The intent that beat the services; under nlu_fallback, the one it replaced.
    shown = next((r for r in ranked if r["name"] != FALLBACK_INTENT), top)
    result["text"] = "\n".join(
        [cat.labels["care_not_matched"].format(intent=shown["name"] or "-", confidence=_percent(shown["confidence"]))]
        + [
            cat.labels["care_service_line"].format(
                name=s["name"], service_id=s["id"], confidence=_percent(s["confidence"])
            )
            for s in result["nearest"]
        ]
    )
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
        "documents": [
            _document(service, d) for d in _in_order(service, store.request_documents(db, request["tracking_number"]))
        ],
        "history": [
            {
                "status": e["status"],
                "status_text": cat.status_text(e["status"]),
                "at": e["at"],
                "actor": e["actor"],
                "note": e["note"],
            }
            for e in store.request_events(db, request["tracking_number"])
        ],
    }


def _in_order(service: Optional[catalogue.Service], rows: List[dict]) -> List[dict]:
    return [dict(row) for row in service.in_document_order(rows)] if service else rows


def _document(service: Optional[catalogue.Service], row: dict) -> dict:
    """What an agent sees of a document before downloading it: which one, its type, size and hash."""
    document = service.document(row["kind"]) if service else None
    return {
        "id": row["id"],
        "kind": row["kind"],
        "name": document.name if document else row["kind"],
        "file_type": row["file_type"],
        "size": row["size"],
        "sha256": row["sha256"],
        "received_at": row["received_at"],
        "file_name": document_file_name(row),
    }


def document_file_name(row: dict) -> str:
    """The name a download is saved under: the request, the document, its type (never the person's own name)."""
    return f"{row['tracking_number']}-{row['kind']}.{documents.EXTENSION.get(row['file_type'], 'bin')}"


def download_document(db, agent: str, tracking_number: str, document_id: str) -> tuple:
    """(the document's row, its bytes) for an agent, with its audit row; refused ones are audited too.

    Raises CareError: not_found (no such document of that request), document_changed (the
    file is gone, or is not what was received: its hash differs).
    """
    cat = catalogue.load()
    number = _tracking_number(tracking_number)
    request = store.get_request(db, number) if number else None
    row = store.get_document(db, document_id) if request else None
    whose = request["applicant_id"] if request else None

    def audit(action: str, detail: str) -> None:
        store.add_care_audit(db, agent=agent, action=action, national_id=whose, subject=number, detail=detail)

    if row is None or row["tracking_number"] != number:
        audit("download_document_refused", f"{document_id}: not_found")
        raise CareError("not_found", cat.labels["care_document_not_found"])
    try:
        data = documents.read(db, row)
    except documents.Changed:
        audit("download_document_refused", f"{row['kind']} {row['id']}: changed")
        raise CareError("document_changed", cat.labels["care_document_changed"]) from None
    audit("download_document", f"{row['kind']} {row['id']} ({documents.describe(row['file_type'], row['size'])})")
    return row, data


def _tracking_number(text: str) -> Optional[str]:
    number, _ = store.parse_tracking_number(text or "")
    return number


def find_requests(db, tracking_number: Optional[str] = None, national_id: Optional[str] = None) -> List[dict]:
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
    elif nid is None:
        return []
    else:
        rows = store.requests_visible_to(db, nid)
    return [_describe(db, cat, r) for r in rows]


def _national_id(text: Optional[str]) -> Optional[str]:
    return re.sub(r"\D", "", to_ascii_digits(text or "")) or None


def lookup_requests(
    db, agent: str, tracking_number: Optional[str] = None, national_id: Optional[str] = None
) -> List[dict]:
    """`find_requests` for an agent, with its audit row: whose requests (the id asked
    for, else the applicant of the request found) and which."""
    found = find_requests(db, tracking_number=tracking_number, national_id=national_id)
    whose = _national_id(national_id) or (found[0]["applicant_id"] if found else None)
    asked = _tracking_number(tracking_number or "") if tracking_number else None
    store.add_care_audit(
        db,
        agent=agent,
        action="read_requests",
        national_id=whose,
        subject=", ".join(r["tracking_number"] for r in found) or asked,
        detail=f"{len(found)} found",
    )
    return found


def change_status(db, tracking_number: str, status: str, agent: str, reason: Optional[str] = None) -> dict:
    """Move a request to `status` as `agent`: one event with the agent and the time, and
    its audit row, in one transaction. A refused change is audited too.

    Raises CareError: unknown_status, reason_required (for rejected), not_found,
    conflict (another request is open for the same service and beneficiary).
    """
    if not agent:
        raise ValueError("the agent's name is needed")
    number = _tracking_number(tracking_number)
    request = store.get_request(db, number) if number else None
    try:
        return _change_status(db, request, tracking_number, status, agent, reason)
    except CareError as refused:
        store.add_care_audit(
            db,
            agent=agent,
            action="change_status_refused",
            national_id=request["applicant_id"] if request else None,
            subject=number,
            detail=f"{status}: {refused.code}",
        )
        raise


def _change_status(
    db, request: Optional[dict], tracking_number: str, status: str, agent: str, reason: Optional[str]
) -> dict:
    cat = catalogue.load()
    reason = (reason or "").strip() or None
    if status not in AGENT_STATUSES:
        raise CareError(
            "unknown_status",
            cat.labels["care_unknown_status"].format(
                status=status, allowed="، ".join(f"{s} ({cat.status_text(s)})" for s in AGENT_STATUSES)
            ),
        )
    if status in REASON_REQUIRED and not reason:
        raise CareError("reason_required", cat.labels["care_reason_required"])
    not_found = CareError("not_found", cat.labels["care_request_not_found"].format(tracking_number=tracking_number))
    if request is None:
        raise not_found
    number = request["tracking_number"]
    audit = {
        "agent": agent,
        "action": "change_status",
        "national_id": request["applicant_id"],
        "subject": number,
        "detail": f"{request['status']} -> {status}",
    }
    try:
        # The person is told of the change (musaed/notifications.py), queued in its transaction.
        changed = store.set_request_status(
            db,
            number,
            status,
            actor=f"agent:{agent}",
            note=reason,
            audit=audit,
            notice=lambda request, event_id: notifications.status_notice(request, status, event_id),
        )
    except KeyError:
        raise not_found from None
    except store.RequestConflict as conflict:
        other = (conflict.open_request or {}).get("tracking_number") or "-"
        raise CareError(
            "conflict",
            cat.labels["care_status_conflict"].format(
                tracking_number=number, status=cat.status_text(status), open=other
            ),
        ) from None
    return _describe(db, cat, changed)


def read_conversation(tracker_db, db, agent: str, sender_id: str) -> List[dict]:
    """A conversation's transcript for an agent, with its audit row: whose (the person the
    conversation verified, if it did; the others it verified in the detail)."""
    messages = conversations.transcript(tracker_db, sender_id)
    people = conversations.verified_people(tracker_db, sender_id) if messages else []
    detail = f"{len(messages)} messages"
    if len(people) > 1:
        detail += "; also verified: " + ", ".join(people[:-1])
    store.add_care_audit(
        db,
        agent=agent,
        action="read_conversation",
        national_id=people[-1] if people else None,
        subject=sender_id,
        detail=detail,
    )
    return messages


def list_conversations(tracker_db, db, agent: str, which: str, limit: int = 100) -> List[dict]:
    """The handovers or the fallbacks list for an agent, with its audit row (the conversations listed)."""
    found = (conversations.handovers if which == "handovers" else conversations.fallbacks)(tracker_db, limit=limit)
    senders = list(dict.fromkeys(item["sender_id"] for item in found))
    store.add_care_audit(
        db,
        agent=agent,
        action=f"list_{which}",
        subject=", ".join(senders)[:2000] or None,
        detail=f"{len(found)} listed",
    )
    return found


def agent_statuses() -> List[Dict[str, Any]]:
    """The statuses an agent may set, with their Arabic text (for forms)."""
    cat = catalogue.load()
    return [{"id": s, "text": cat.status_text(s), "reason_required": s in REASON_REQUIRED} for s in AGENT_STATUSES]


def read_audit(
    db, agent: str, national_id: Optional[str] = None, of_agent: Optional[str] = None, limit: int = 100
) -> List[dict]:
    """The care audit for a supervisor, newest first; reading it is itself audited."""
    nid = _national_id(national_id)
    rows = store.care_audit(db, national_id=nid, agent=of_agent or None, limit=limit)
    store.add_care_audit(
        db, agent=agent, action="read_audit", national_id=nid, subject=of_agent or None, detail=f"{len(rows)} rows"
    )
    return rows


# -- notifications (musaed/notifications.py) --------------------------------------------

NOTIFICATION_STATES = ("queued", "sent", "failed")


def notification_overview(db, agent: str, limit: int = 50) -> Dict[str, Any]:
    """The outbox for an agent, with its audit row: per channel how many are queued, sent and
    failed, and the failed ones (newest first) with what each was and why it failed."""
    channels: Dict[str, Dict[str, int]] = {}
    for row in outbox.counts(db):
        channels.setdefault(row["channel"], dict.fromkeys(NOTIFICATION_STATES, 0))[row["state"]] = int(row["n"])
    failed = []
    for row in outbox.failed(db, limit=limit):
        payload = json.loads(row["payload"])
        failed.append(
            {
                "id": row["id"],
                "kind": row["kind"],
                "national_id": row["national_id"],
                "channel": row["channel"],
                "route": row["route"],
                "tracking_number": row["tracking_number"],
                # What it announced: the new status, or the document and its days left.
                "about": payload.get("status") or f"{payload.get('document')}: {payload.get('days')}",
                "attempts": row["attempts"],
                "last_error": row["last_error"],
                "created_at": row["created_at"],
            }
        )
    store.add_care_audit(
        db,
        agent=agent,
        action="read_notifications",
        subject=", ".join(f["tracking_number"] or f"#{f['id']}" for f in failed)[:2000] or None,
        detail=f"{len(failed)} failed listed",
    )
    return {
        "channels": [{"channel": name, **by_state} for name, by_state in sorted(channels.items())],
        "failed": failed,
    }
