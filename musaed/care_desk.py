"""What an agent does with live chats: the queue, claim, reply, pass, note, release, close.

Plain Python over musaed/store/handover.py; the care server and `musaed-care`
are thin layers over it. Every action writes a row of the care audit (the agent,
the action, the conversation, whose record once the person verified, when),
never the message's text: that is in the conversation, under its retention.
Only the agent holding a conversation may write in it, pass it, release it or
close it: each is a conditional UPDATE on (state, agent), so a race has one winner.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence

from musaed import catalogue, handover, language, store
from musaed.identity import mask_id
from musaed.office_hours import RIYADH
from musaed.store import handover as rows

HandoverError = handover.HandoverError


def _refused(code: str, **values: str) -> HandoverError:
    """A refusal in the agents' language (the console is Arabic), its text from the catalogue."""
    return HandoverError(code, catalogue.load().labels[f"care_live_{code}"].format(**values))


def _now(now: Optional[datetime]) -> datetime:
    return now or datetime.now(timezone.utc)


def _seconds(since: Optional[str], until: Optional[str]) -> Optional[int]:
    if not since or not until:
        return None
    return int((datetime.fromisoformat(until) - datetime.fromisoformat(since)).total_seconds())


def _person(db: store.Db, national_id: Optional[str]) -> Optional[Dict[str, str]]:
    """Who the person is, only once they verified in the bot's flow: name and masked id."""
    if not national_id:
        return None
    found = store.get_person(db, national_id) or {}
    return {"name": found.get("name") or "", "masked_id": mask_id(national_id)}


def _audit(db: store.Db, agent: str, action: str, h: Optional[dict], conversation: str, detail: str = "") -> None:
    store.add_care_audit(
        db,
        agent=agent,
        action=f"handover_{action}",
        national_id=(h or {}).get("national_id"),
        subject=conversation,
        detail=detail or None,
    )


def seen(db: store.Db, agent: str, now: Optional[datetime] = None) -> None:
    """The agent is on duty (their console or a care call just now)."""
    rows.mark_agent_seen(db, agent, store.now_iso(_now(now)))


def _summary(db: store.Db, h: dict, now: datetime) -> Dict[str, Any]:
    return {
        "conversation_id": h["conversation"],
        "channel": h["channel"],
        "language": h["language"],
        "state": h["state"],
        "agent": h["agent"],
        "out_of_hours": bool(h["out_of_hours"]),
        "requested_at": h["requested_at"],
        "waiting_seconds": _seconds(h["requested_at"], store.now_iso(now)) if h["state"] == "waiting" else None,
        "person": _person(db, h["national_id"]),
    }


def queue(db: store.Db, agent: str, now: Optional[datetime] = None, audit: bool = True) -> Dict[str, Any]:
    """The waiting conversations in order (with their place), and the ones agents hold."""
    now = _now(now)
    waiting = [{**_summary(db, h, now), "position": i + 1} for i, h in enumerate(rows.waiting(db))]
    held = [_summary(db, h, now) for h in rows.held(db)]
    if audit:
        _audit(
            db, agent, "queue", None, ", ".join(w["conversation_id"] for w in waiting)[:2000], f"{len(waiting)} waiting"
        )
    return {"waiting": waiting, "held": held, "cursor": rows.last_message_id(db)}


def _message(m: dict) -> Dict[str, Any]:
    return {
        "id": m["id"],
        "side": m["side"],
        "agent": m["agent"],
        "text": m["text"],
        "buttons": [b.get("title", "") for b in json.loads(m["buttons"])] if m["buttons"] else [],
        "at": m["at"],
    }


def conversation(db: store.Db, agent: str, conversation_id: str, now: Optional[datetime] = None) -> Dict[str, Any]:
    """The conversation's state and both sides' messages (and the agents' notes and events)."""
    latest = rows.latest_handover(db, conversation_id)
    messages = [_message(m) for m in rows.messages_of(db, conversation_id)]
    _audit(db, agent, "read", latest, conversation_id, f"{len(messages)} messages")
    return {
        "conversation_id": conversation_id,
        "state": handover.state_of(db, conversation_id),
        "handover": _summary(db, latest, _now(now)) if latest else None,
        "rating": latest["rating"] if latest else None,
        "rating_comment": latest["rating_comment"] if latest else None,
        "messages": messages,
    }


def _label(h: dict, key: str, **values: str) -> str:
    return catalogue.load(language.of(h["language"])).labels[key].format(**values)


def _open(db: store.Db, conversation_id: str) -> dict:
    h = rows.open_handover(db, conversation_id)
    if h is None:
        raise _refused("not_found")
    return h


def _held_by(db: store.Db, agent: str, conversation_id: str, action: str) -> dict:
    h = _open(db, conversation_id)
    if h["state"] != "agent" or h["agent"] != agent:
        _audit(db, agent, f"{action}_refused", h, conversation_id, "not held by this agent")
        raise _refused("not_yours")
    return h


def claim(db: store.Db, agent: str, conversation_id: str, now: Optional[datetime] = None) -> Dict[str, Any]:
    at = store.now_iso(_now(now))
    h = _open(db, conversation_id)
    won = rows.change(
        db,
        h["id"],
        set_={"state": "agent", "agent": agent, "claimed_at": at, "awaiting": None},
        where={"state": "waiting"},
        event=f"استلمها {agent}",
        agent=agent,
        at=at,
        messages=[{"side": "system", "text": _label(h, "handover_joined", agent=agent)}],
    )
    if won is None:
        holder = (rows.get_handover(db, h["id"]) or {}).get("agent")
        _audit(db, agent, "claim_refused", h, conversation_id, f"held by {holder}")
        raise _refused("already_claimed", agent=holder or "-")
    _audit(db, agent, "claim", won, conversation_id)
    return conversation(db, agent, conversation_id, now)


def send(db: store.Db, agent: str, conversation_id: str, text: Any, now: Optional[datetime] = None) -> Dict[str, Any]:
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        raise _refused("text_required")
    if len(text) > handover.MAX_TEXT:
        raise _refused("too_long", limit=str(handover.MAX_TEXT))
    h = _held_by(db, agent, conversation_id, "message")
    rows.add_message(db, h, "agent", text, agent=agent, at=store.now_iso(_now(now)))
    _audit(db, agent, "message", h, conversation_id, f"{len(text)} characters")
    return {"sent": True, "cursor": rows.last_message_id(db)}


def note(db: store.Db, agent: str, conversation_id: str, text: Any, now: Optional[datetime] = None) -> Dict[str, Any]:
    """An internal note: agents read it, the person never does (it is never delivered)."""
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        raise _refused("text_required")
    h = rows.latest_handover(db, conversation_id)
    if h is None:
        raise _refused("not_found")
    rows.add_message(db, h, "note", text[: handover.MAX_TEXT], agent=agent, at=store.now_iso(_now(now)))
    _audit(db, agent, "note", h, conversation_id, f"{len(text)} characters")
    return {"noted": True}


def release(db: store.Db, agent: str, conversation_id: str, now: Optional[datetime] = None) -> Dict[str, Any]:
    """Back to the queue, in its first place (the queue orders by when the person asked)."""
    at = store.now_iso(_now(now))
    h = _held_by(db, agent, conversation_id, "release")
    done = rows.change(
        db,
        h["id"],
        set_={"state": "waiting", "agent": None, "claimed_at": None},
        where={"state": "agent", "agent": agent},
        event=f"أعادها {agent} إلى الانتظار",
        agent=agent,
        at=at,
        messages=[{"side": "system", "text": _label(h, "handover_requeued")}],
    )
    if done is None:
        raise _refused("not_yours")
    _audit(db, agent, "release", h, conversation_id)
    return conversation(db, agent, conversation_id, now)


def pass_to(
    db: store.Db, agent: str, conversation_id: str, to: Any, agents: Sequence[str], now: Optional[datetime] = None
) -> Dict[str, Any]:
    if not isinstance(to, str) or to not in agents or to == agent:
        raise _refused("unknown_agent")
    at = store.now_iso(_now(now))
    h = _held_by(db, agent, conversation_id, "pass")
    done = rows.change(
        db,
        h["id"],
        set_={"agent": to},
        where={"state": "agent", "agent": agent},
        event=f"حوّلها {agent} إلى {to}",
        agent=agent,
        at=at,
        messages=[{"side": "system", "text": _label(h, "handover_joined", agent=to)}],
    )
    if done is None:
        raise _refused("not_yours")
    _audit(db, agent, "pass", h, conversation_id, f"to {to}")
    return conversation(db, agent, conversation_id, now)


def close(db: store.Db, agent: str, conversation_id: str, now: Optional[datetime] = None) -> Dict[str, Any]:
    """The person is told the agent left and the bot is back, and asked for a rating."""
    at = store.now_iso(_now(now))
    h = _held_by(db, agent, conversation_id, "close")
    cat = catalogue.load(language.of(h["language"]))
    done = rows.change(
        db,
        h["id"],
        set_={"state": "closed", "closed_at": at, "closed_by": agent},
        where={"state": "agent", "agent": agent},
        event=f"أنهاها {agent}",
        agent=agent,
        at=at,
        messages=[{"side": "system", "text": cat.labels["handover_closed"], "buttons": handover.rating_buttons()}],
    )
    if done is None:
        raise _refused("not_yours")
    _audit(db, agent, "close", h, conversation_id)
    return conversation(db, agent, conversation_id, now)


# -- statistics -------------------------------------------------------------------


def _mean(values: List[int]) -> Optional[float]:
    return round(sum(values) / len(values), 1) if values else None


def stats(db: store.Db, days: int = 7, now: Optional[datetime] = None) -> Dict[str, List[Dict[str, Any]]]:
    """Per day (Asia/Riyadh) and per agent: handovers asked, handled, mean wait and handling
    times (seconds), ratings and their mean, over the last `days` days."""
    now = _now(now)
    found = rows.closed_between(
        db, store.now_iso(now - timedelta(days=days)), store.now_iso(now + timedelta(seconds=1))
    )
    groups: Dict[str, Dict[str, Dict[str, list]]] = {"per_day": {}, "per_agent": {}}
    for h in found:
        day = datetime.fromisoformat(h["requested_at"]).astimezone(RIYADH).date().isoformat()
        for kind, key in (("per_day", day), ("per_agent", h["agent"] or h["closed_by"] or "-")):
            if kind == "per_agent" and not h["claimed_at"]:
                continue  # never with an agent: no agent to count it for
            g = groups[kind].setdefault(key, {"asked": [], "handled": [], "wait": [], "handling": [], "ratings": []})
            g["asked"].append(1)
            if h["claimed_at"]:
                g["handled"].append(1)
                g["wait"].append(_seconds(h["requested_at"], h["claimed_at"]))
            if h["claimed_at"] and h["closed_at"]:
                g["handling"].append(_seconds(h["claimed_at"], h["closed_at"]))
            if h["rating"]:
                g["ratings"].append(h["rating"])
    return {
        kind: [
            {
                ("day" if kind == "per_day" else "agent"): key,
                "asked": len(g["asked"]),
                "handled": len(g["handled"]),
                "mean_wait_seconds": _mean(g["wait"]),
                "mean_handling_seconds": _mean(g["handling"]),
                "ratings": len(g["ratings"]),
                "mean_rating": _mean(g["ratings"]),
            }
            for key, g in sorted(groups[kind].items())
        ]
        for kind in groups
    }
