"""Live handover: a conversation is with the bot, waiting for an agent, with an agent, or closed.

Plain Python, no Rasa imports. The state is the store's (musaed/store/handover.py),
so every replica, the action server and the care server agree and it survives
restarts. Three callers:

- the action for `request_human` (actions/handover.py) queues the conversation:
  `request`, then `request_reply` for what the person is told;
- every input channel, before Rasa sees a message (channels/handover_gate.py):
  `on_person_message` says whether the bot may answer (it may not while an agent
  holds the conversation) and what the person is told instead;
- the care server and `musaed-care` for the agents (musaed/care_desk.py): claim,
  reply, pass, note, release, close; each writes a row of the care audit.

A conversation's state: the open handover's (`waiting`, `agent`), else `closed`
from the close until the person's next message, else `bot`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from musaed import catalogue, language, store
from musaed import office_hours as hours
from musaed.store import handover as rows

# An agent whose console (or any care call) was seen this recently is on duty.
ON_DUTY = timedelta(minutes=2)
RATE_PAYLOAD = "/rate_agent"
COMMENT_PAYLOAD = "/rate_comment"
CANCEL_PAYLOAD = "/handover_cancel"
MAX_TEXT = 2000
_RATE = re.compile(r'^/rate_agent\{"score":\s*"?(\d+)"?\}$')


class HandoverError(ValueError):
    """A refused agent action: `code` for machines (and the HTTP status), `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _now(now: Optional[datetime]) -> datetime:
    return now or datetime.now(timezone.utc)


def _cat(lang: Optional[str]) -> catalogue.Catalogue:
    return catalogue.load(language.of(lang))


def state_of(db: store.Db, conversation: str) -> str:
    latest = rows.latest_handover(db, conversation)
    if latest is None:
        return "bot"
    if latest["state"] in rows.OPEN_STATES:
        return str(latest["state"])
    return "closed" if latest["returned_at"] is None and latest["closed_by"] != "person" else "bot"


def position(db: store.Db, handover_id: int) -> int:
    """1 for the first in the queue; 0 when not waiting."""
    queue = [h["id"] for h in rows.waiting(db)]
    return queue.index(handover_id) + 1 if handover_id in queue else 0


def on_duty(db: store.Db, now: Optional[datetime] = None) -> List[str]:
    return rows.agents_seen_since(db, store.now_iso(_now(now) - ON_DUTY))


# -- the person's side ----------------------------------------------------------


@dataclass
class Outcome:
    """What asking for a person did: `waiting` (in hours, with a place) or `out_of_hours`."""

    kind: str
    position: int = 0
    opens: Optional[datetime] = None


def request(
    db: store.Db,
    conversation: str,
    channel: str,
    lang: str,
    national_id: Optional[str] = None,
    office: Optional[hours.OfficeHours] = None,
    now: Optional[datetime] = None,
) -> Outcome:
    """Queue the conversation (once: asking again keeps its place)."""
    now = _now(now)
    office = office or hours.from_env()
    staffed = office.is_open(now) and bool(on_duty(db, now))
    handover = rows.create_handover(
        db,
        {
            "conversation": conversation,
            "channel": channel,
            "language": language.of(lang),
            "national_id": national_id,
            "out_of_hours": 0 if staffed else 1,
            "awaiting": None if staffed else "message",
            "requested_at": store.now_iso(now),
        },
        event="طلب موظفًا" if staffed else "طلب موظفًا خارج الدوام (أو ولا موظف متاح)",
    )
    if not staffed:  # asked again out of hours, or nobody on duty yet: when they are back
        return Outcome("out_of_hours", opens=office.next_opening(now))
    return Outcome("waiting", position=position(db, handover["id"]))


def when_text(cat: catalogue.Catalogue, opens: Optional[datetime]) -> str:
    if opens is None:
        return cat.labels["handover_when_unknown"]
    local = opens.astimezone(hours.RIYADH)
    day = cat.labels["handover_weekdays"].split(",")[local.weekday()]
    return cat.labels["handover_at"].format(day=day, date=local.date().isoformat(), time=local.strftime("%H:%M"))


def request_reply(lang: str, outcome: Outcome) -> Dict[str, Any]:
    """What the person is told, in their language: {"text", "buttons"}."""
    cat = _cat(lang)
    if outcome.kind == "out_of_hours":
        text = cat.labels["handover_out_of_hours"].format(when=when_text(cat, outcome.opens), **cat.call_centre)
    else:
        text = cat.labels["handover_waiting"].format(position=outcome.position, **cat.call_centre)
    return {"text": text, "buttons": [{"title": cat.labels["button_back_to_bot"], "payload": CANCEL_PAYLOAD}]}


@dataclass
class Decision:
    """For one message of the person: whether Rasa handles it, and what to send first or instead."""

    to_bot: bool
    replies: List[Dict[str, Any]] = field(default_factory=list)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@lru_cache(maxsize=1)
def _cancel_phrases() -> FrozenSet[str]:
    """The back-to-the-assistant button's titles and their usual spellings; once per process
    (parsing the catalogue in both languages costs a held message ~0.7 s the first time)."""
    titles = {_plain(catalogue.load(lang).labels["button_back_to_bot"]) for lang in language.LANGUAGES}
    return frozenset(titles | {"back to the assistant", "back to assistant", "ارجع للمساعد", "رجوع للمساعد"})


def warm() -> None:
    """Load what a person's message may need before the first one arrives (channels call it at start)."""
    _cancel_phrases()


def _is_cancel(text: str) -> bool:
    return text.strip() == CANCEL_PAYLOAD or _plain(text) in _cancel_phrases()


def rating_buttons() -> List[Dict[str, str]]:
    """1 to 5: the digits need no translation."""
    return [{"title": str(n), "payload": f'{RATE_PAYLOAD}{{"score": {n}}}'} for n in range(1, 6)]


def on_person_message(
    db: store.Db, conversation: str, text: str, title: Optional[str] = None, now: Optional[datetime] = None
) -> Decision:
    """Where the person's message goes. `title`: the button's title when they pressed one
    (the agent reads what the person saw, not the payload)."""
    at = store.now_iso(_now(now))
    text = (text or "").strip()
    said = (title or text)[:MAX_TEXT]
    latest = rows.latest_handover(db, conversation)
    if text.startswith(RATE_PAYLOAD) or text == COMMENT_PAYLOAD:
        return _rating(db, latest, text, at)
    if latest is None:
        return Decision(True)
    lang = language.detect(said) or latest["language"]
    cat = _cat(lang)
    if latest["state"] == "agent":  # the bot is silent: the message is the agent's to read
        if _is_cancel(text):  # the person may leave: the bot must not stay silent after them
            rows.change(
                db,
                latest["id"],
                set_={"state": "closed", "closed_at": at, "closed_by": "person"},
                where={"state": "agent"},
                event="غادر العميل المحادثة",
                at=at,
            )
            return Decision(False, [{"text": cat.labels["handover_left"]}])
        rows.add_message(db, latest, "person", said, at=at)
        return Decision(False)
    if latest["state"] == "waiting":
        if _is_cancel(text):
            rows.change(
                db,
                latest["id"],
                set_={"state": "closed", "closed_at": at, "closed_by": "person", "awaiting": None},
                where={"state": "waiting"},
                event="ألغى العميل الانتظار",
                at=at,
            )
            return Decision(False, [{"text": cat.labels["handover_cancelled"]}])
        if latest["awaiting"] == "message":  # out of hours: kept for the next agent, not the bot's
            rows.add_message(db, latest, "person", said, at=at)
            rows.change(db, latest["id"], set_={"awaiting": None}, where={"awaiting": "message"}, at=at)
            return Decision(False, [{"text": cat.labels["handover_kept"]}])
        rows.add_message(db, latest, "person", said, at=at, to_bot=True)  # the agent will read it too
        return Decision(True)
    if latest["awaiting"] == "comment":
        rows.change(
            db,
            latest["id"],
            set_={"awaiting": None, "rating_comment": said, "returned_at": latest["returned_at"] or at},
            where={"awaiting": "comment"},
            event="علّق العميل على التقييم",
            at=at,
        )
        return Decision(False, [{"text": cat.labels["handover_comment_thanks"]}])
    if latest["returned_at"] is None:  # closed: the bot answers from this message on
        rows.change(db, latest["id"], set_={"returned_at": at}, where={"returned_at": None}, at=at)
    return Decision(True)


def _rating(db: store.Db, latest: Optional[dict], text: str, at: str) -> Decision:
    cat = _cat(latest["language"] if latest else None)
    if latest is None or latest["state"] != "closed" or latest["closed_by"] == "person":
        return Decision(False, [{"text": cat.labels["handover_no_rating"]}])
    if text == COMMENT_PAYLOAD:
        rows.change(db, latest["id"], set_={"awaiting": "comment"}, where={"state": "closed"}, at=at)
        return Decision(False, [{"text": cat.labels["handover_comment_ask"]}])
    match = _RATE.match(text.replace(" ", ""))
    score = int(match[1]) if match else 0
    if not 1 <= score <= 5:
        return Decision(False, [{"text": cat.labels["handover_bad_rating"], "buttons": rating_buttons()}])
    rows.change(
        db,
        latest["id"],
        set_={"rating": score, "returned_at": latest["returned_at"] or at},
        where={"state": "closed"},
        event=f"قيّم العميل الخدمة: {score} من 5",
        at=at,
    )
    return Decision(
        False,
        [
            {
                "text": cat.labels["handover_rated"],
                "buttons": [{"title": cat.labels["button_comment"], "payload": COMMENT_PAYLOAD}],
            }
        ],
    )


def person_verified(db: store.Db, conversation: str, national_id: str, now: Optional[datetime] = None) -> None:
    """The person proved who they are in the bot's flow while waiting or with an agent: the
    agent may now see their name and masked id (never before)."""
    h = rows.open_handover(db, conversation)
    if h is not None:
        rows.change(
            db,
            h["id"],
            set_={"national_id": national_id},
            where={"national_id": None},
            event="تحقق العميل من هويته",
            at=store.now_iso(_now(now)),
        )


def pending_for(db: store.Db, conversation: str, channel: str, now: Optional[datetime] = None) -> List[Dict[str, Any]]:
    """The agent's messages not yet delivered to `conversation`, claimed for this caller
    (REST has no push: they go with its next request)."""
    at = store.now_iso(_now(now))
    sent = []
    for message in rows.to_deliver(db, channel, conversation):
        if rows.claim_delivery(db, message["id"], at):
            sent.append(as_reply(message))
    return sent


def history_entries(db: store.Db, conversation: str) -> List[Tuple[float, Dict[str, Any]]]:
    """The live chat's part of a widget's history, each with its time (epoch seconds): the
    person's messages the bot never saw and the agents' and the desk's delivered messages."""
    entries = []
    for m in rows.shown_to_person(db, conversation):
        buttons = json.loads(m["buttons"]) if m["buttons"] else []
        kind = {"person": "user", "agent": "agent"}.get(m["side"], "bot")
        entry = {"from": kind, "text": m["text"], "buttons": buttons, "agent": m["agent"] if kind == "agent" else None}
        entries.append((datetime.fromisoformat(m["at"]).timestamp(), entry))
    return entries


def as_reply(message: dict) -> Dict[str, Any]:
    """A stored agent's or system message as a channel's reply (the agent named in `custom`)."""
    reply: Dict[str, Any] = {"text": message["text"]}
    if message.get("buttons"):
        reply["buttons"] = json.loads(message["buttons"])
    if message["side"] == "agent":
        reply["custom"] = {"from": "agent", "agent": message["agent"]}
    return reply
