"""What Musaed tells people without being asked, and the rules of when and how.

Plain Python, no Rasa imports. Two kinds of notification, each a row of the
store's outbox (musaed/store/notifications.py, migration 009):

- **A request's status change**: an agent moves a request (musaed/help_desk.py);
  `status_notice` makes the row, which the store queues in the transaction of the
  change, keyed by the change's event (one change, announced once). It goes to the
  request's applicant, on the channel of the conversation that made the request,
  in the language it was made in.
- **An expiry reminder**: only for a verified person who said yes (`subscribe`).
  Once a day the notify worker runs `scan_reminders`: each subscriber's own and
  their dependents' identity documents expiring within a window of the catalogue
  (`reminders.windows_days`) get one reminder per document and window (its key).

What a notification says (`render`) is made when it is sent, from the catalogue,
in the row's language: the service and its new state, or the document, the days
left and its date; never an id, a name or a code. The channel rules (`route`):

- a widget open at that moment gets it from the Rasa server its socket is on
  (channels/care_delivery.py), in quiet hours too; the worker waits WEB_GRACE
  for that before sending an SMS instead;
- Telegram by the Bot API, unless the chat blocked the bot (a 403): then a status
  change goes by SMS and a reminder is not sent (blocking ends the subscription);
- WhatsApp as a message within WHATSAPP_WINDOW of the person's last message, else
  as the approved template (`WHATSAPP_TEMPLATE`, `WHATSAPP_TEMPLATE_LANGUAGE`);
- anything else (REST, a channel not configured) by SMS to the mobile on file.

Quiet hours (`MUSAED_QUIET_HOURS`, 22:00-08:00 Asia/Riyadh) hold back whatever
goes to a phone until they end. A failed attempt is tried again after a wait
that doubles (`MUSAED_NOTIFY_RETRY`), and after the last it is `failed` with
why (the API's status and code: never personal data).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple

from musaed import catalogue, language, settings, store
from musaed import office_hours as hours
from musaed.store import notifications as outbox

RIYADH = hours.RIYADH
# How long a web notification waits for a widget open at that moment before the worker sends an SMS.
WEB_GRACE = timedelta(seconds=10)
# WhatsApp takes a message other than an approved template only this long after the person's last one.
WHATSAPP_WINDOW = timedelta(hours=24)
# A last message this close to the window's end counts as outside it (the send takes time too).
WINDOW_MARGIN = timedelta(minutes=10)
PHONE_ROUTES = ("telegram", "whatsapp", "whatsapp_template", "sms", "sms_outbox")
RENEW_PAYLOAD = "/{service}"
TRACK_PAYLOAD = "/track_request"


def _now(now: Optional[datetime]) -> datetime:
    return now or datetime.now(timezone.utc)


# -- quiet hours ------------------------------------------------------------------------

_SPAN = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class QuietHours:
    """A daily span in Asia/Riyadh time (it may run past midnight); None: never quiet."""

    start: Optional[time] = None
    end: Optional[time] = None

    def until(self, now: Optional[datetime] = None) -> Optional[datetime]:
        """When the quiet span `now` is in ends (UTC), or None when `now` is not quiet."""
        if self.start is None or self.end is None:
            return None
        local = _now(now).astimezone(RIYADH)
        t = local.time()
        if self.start <= self.end:
            quiet = self.start <= t < self.end
            ends_on = local.date()
        else:  # 22:00-08:00: from the evening to the next morning
            quiet = t >= self.start or t < self.end
            ends_on = local.date() + timedelta(days=1) if t >= self.start else local.date()
        if not quiet:
            return None
        return datetime.combine(ends_on, self.end, tzinfo=RIYADH).astimezone(timezone.utc)


def parse_quiet(spec: Optional[str]) -> QuietHours:
    text = (spec or settings.QUIET_HOURS.default).strip().lower()
    if text in ("none", "off"):
        return QuietHours()
    match = _SPAN.match(text)
    if not match:
        raise ValueError(f"{settings.QUIET_HOURS.name}: expected e.g. '22:00-08:00' or 'none', got {spec!r}")
    h1, m1, h2, m2 = (int(x) for x in match.groups())
    start, end = time(h1 % 24, m1), time(h2 % 24, m2)
    if start == end:
        raise ValueError(f"{settings.QUIET_HOURS.name}: {spec!r} starts and ends at the same time")
    return QuietHours(start, end)


def quiet_from_env() -> QuietHours:
    return parse_quiet(settings.QUIET_HOURS.get())


# -- trying again -----------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
_PART = re.compile(r"^\s*(attempts|first|max)\s*=\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first: timedelta = timedelta(seconds=30)
    longest: timedelta = timedelta(hours=1)

    def wait_after(self, attempts: int) -> Optional[timedelta]:
        """The wait after the `attempts`-th failed attempt, or None: that was the last."""
        if attempts >= self.attempts:
            return None
        return min(self.first * (2 ** (attempts - 1)), self.longest)


def parse_retry(spec: Optional[str]) -> RetryPolicy:
    """`attempts=5,first=30s,max=1h` (any of the three; the rest keep their default)."""
    values: Dict[str, Any] = {}
    for part in filter(str.strip, (spec or "").split(",")):
        match = _PART.match(part)
        if not match:
            raise ValueError(f"{settings.NOTIFY_RETRY.name}: cannot read {part.strip()!r}")
        name, number, unit = match.groups()
        if name == "attempts":
            if unit or int(float(number)) < 1:
                raise ValueError(f"{settings.NOTIFY_RETRY.name}: attempts is a number of 1 or more")
            values["attempts"] = int(float(number))
        else:
            values["first" if name == "first" else "longest"] = timedelta(seconds=float(number) * _UNITS[unit or "s"])
    return RetryPolicy(**values)


def retry_from_env() -> RetryPolicy:
    return parse_retry(settings.NOTIFY_RETRY.get())


# -- what a notification says -------------------------------------------------------------


def render(row: dict) -> Dict[str, Any]:
    """{"text", "buttons"} of a notification row, in its language (buttons: for a chat)."""
    cat = catalogue.load(language.of(row.get("language")))
    payload = row["payload"] if isinstance(row["payload"], dict) else json.loads(row["payload"])
    if row["kind"] == "status":
        service = cat.service(payload["service"])
        text = cat.labels["notify_status"].format(
            service=service.name if service else payload["service"], status=cat.status_text(payload["status"])
        )
        return {"text": text, "buttons": [{"title": cat.labels["button_track"], "payload": TRACK_PAYLOAD}]}
    relation = payload.get("relation")
    holder = "family" if relation else "self"
    document = cat.labels[f"reminder_document_{payload['document']}_{holder}"].format(
        relation=cat.relations[relation]["label"] if relation in cat.relations else ""
    )
    text = cat.labels["reminder"].format(document=document, days=payload["days"], date=payload["expiry"])
    if not payload.get("service"):  # no service here renews it for this person
        return {"text": text, "buttons": []}
    # The button starts the renewal in the chat (the person verifies as usual); for a dependent,
    # the relative is named as the person would name them, so the form picks them after verifying.
    start = RENEW_PAYLOAD.format(service=payload["service"])
    if relation:
        start += json.dumps({"family_member": relation})
    return {"text": text, "buttons": [{"title": cat.labels["button_renew_now"], "payload": start}]}


# -- status changes -----------------------------------------------------------------------


def channel_of(conversation: str) -> str:
    """The channel a conversation id names (channels/ids.py's prefix), else "rest"."""
    head, sep, _ = conversation.partition(":")
    return head if sep and head else "rest"


def _first_attempt(channel: str, now: datetime) -> str:
    """A web notification is the widget's first (the Rasa server takes it at once); the worker's after WEB_GRACE."""
    return store.now_iso(now + WEB_GRACE if channel == "web" else now)


def status_notice(request: dict, status: str, event_id: int, now: Optional[datetime] = None) -> dict:
    """The row that announces `request`'s move to `status` (event `event_id`) to its applicant."""
    now = _now(now)
    channel = channel_of(request["conversation_id"])
    return {
        "dedupe_key": f"status:{request['tracking_number']}:{event_id}",
        "kind": "status",
        "national_id": request["applicant_id"],
        "conversation": request["conversation_id"],
        "channel": channel,
        "language": language.of(request.get("language")),
        "tracking_number": request["tracking_number"],
        "payload": {"service": request["service_id"], "status": status},
        "next_attempt_at": _first_attempt(channel, now),
        "created_at": store.now_iso(now),
    }


# -- expiry reminders --------------------------------------------------------------------


def today_in_riyadh(now: Optional[datetime] = None) -> date:
    return _now(now).astimezone(RIYADH).date()


def window_for(days_left: int, windows: List[int]) -> Optional[int]:
    """The tightest window (days before expiry) `days_left` falls in, or None (none, or expired)."""
    holding = [w for w in windows if 0 <= days_left <= w]
    return min(holding) if holding else None


def _renewing_service(cat: catalogue.Catalogue, holder: dict, relation: Optional[str]) -> Optional[str]:
    """The service here that renews `holder`'s document for the subscriber (self, or a dependent)."""
    for sid in cat.reminders.get("services") or ():
        s = cat.service(sid)
        if s is None or not s.requestable:
            continue
        if relation is None and s.beneficiary == "self" and s.audience in (holder["kind"], "both"):
            return sid
        if (
            relation is not None
            and s.beneficiary == "dependent"
            and (not s.dependent_kinds or holder["kind"] in s.dependent_kinds)
            and (not s.dependent_relations or relation in s.dependent_relations)
        ):
            return sid
    return None


def documents_of(db: store.Db, national_id: str) -> List[Tuple[dict, Optional[str]]]:
    """(person, relation) of each identity document the subscriber is reminded of: their own
    (relation None) and their dependents'."""
    person = store.get_person(db, national_id)
    if person is None:
        return []
    return [(person, None)] + [(d, d["relation"]) for d in store.dependents(db, national_id)]


def reminder_notices(
    db: store.Db, subscription: dict, today: date, now: Optional[datetime] = None
) -> List[Dict[str, Any]]:
    """The reminders due `today` for one subscriber: one per document in its window."""
    now = _now(now)
    cat = catalogue.load()
    windows = [int(w) for w in cat.reminders.get("windows_days") or ()]
    found = []
    for holder, relation in documents_of(db, subscription["national_id"]):
        if not holder.get("id_expiry"):
            continue
        expiry = date.fromisoformat(holder["id_expiry"])
        days_left = (expiry - today).days
        window = window_for(days_left, windows)
        if window is None:
            continue
        document = "national_id" if holder["kind"] == "citizen" else "iqama"
        found.append(
            {
                # One reminder per document, window and subscriber; a renewed document (a new
                # expiry) is a new document.
                "dedupe_key": f"reminder:{subscription['national_id']}:{holder['national_id']}:{expiry}:{window}",
                "kind": "reminder",
                "national_id": subscription["national_id"],
                "conversation": subscription["conversation"],
                "channel": subscription["channel"],
                "language": subscription["language"],
                "tracking_number": None,
                "payload": {
                    "document": document,
                    "relation": relation,
                    "days": days_left,
                    "expiry": expiry.isoformat(),
                    "window": window,
                    "service": _renewing_service(cat, holder, relation),
                },
                "next_attempt_at": _first_attempt(subscription["channel"], now),
                "created_at": store.now_iso(now),
            }
        )
    return found


def scan_reminders(
    db: store.Db, today: Optional[date] = None, now: Optional[datetime] = None, national_id: Optional[str] = None
) -> int:
    """Queue the reminders due `today` (Asia/Riyadh) for every subscriber, or one; how many
    were new (a document's window already announced is not announced again)."""
    now = _now(now)
    today = today or today_in_riyadh(now)
    subs = [outbox.subscription(db, national_id)] if national_id else outbox.subscriptions(db)
    queued = 0
    for sub in filter(None, subs):
        if store.get_person(db, sub["national_id"]) is None:  # a person no longer on file
            outbox.unsubscribe(db, store.now_iso(now), national_id=sub["national_id"])
            continue
        with store.transaction(db):
            queued += sum(outbox.enqueue(db, row) for row in reminder_notices(db, sub, today, now))
    return queued


def subscribe(
    db: store.Db,
    national_id: str,
    conversation: str,
    lang: str,
    now: Optional[datetime] = None,
    today: Optional[date] = None,
) -> int:
    """Opt in (a verified person's yes): reminders go to `conversation`; the reminders already due
    are queued now (how many), the rest by the daily scan."""
    now = _now(now)
    with store.transaction(db):
        outbox.subscribe(db, national_id, conversation, channel_of(conversation), language.of(lang), store.now_iso(now))
    return scan_reminders(db, today=today, now=now, national_id=national_id)


def unsubscribe(
    db: store.Db, conversation: str, national_id: Optional[str] = None, now: Optional[datetime] = None
) -> bool:
    """Opt out at once: the reminders that go to `conversation`, and the verified person's (with
    those queued and not under way); whether there were any."""
    return bool(outbox.unsubscribe(db, store.now_iso(_now(now)), conversation=conversation, national_id=national_id))


def subscribed(db: store.Db, national_id: str) -> bool:
    return outbox.subscription(db, national_id) is not None


def reminder_days() -> int:
    """The first reminder's days before expiry (what the person is told when they opt in)."""
    windows = catalogue.load().reminders.get("windows_days") or [0]
    return max(int(w) for w in windows)


# -- the channel rules ---------------------------------------------------------------------


def window_open(contact: Optional[dict], now: Optional[datetime] = None) -> bool:
    """Whether WhatsApp takes a free-form message: the person wrote within the last 24 hours."""
    last = (contact or {}).get("last_inbound_at")
    if not last:
        return False
    return _now(now) - datetime.fromisoformat(last) < WHATSAPP_WINDOW - WINDOW_MARGIN


def route(row: dict, contact: Optional[dict], configured: Tuple[str, ...], now: Optional[datetime] = None) -> str:
    """How the worker sends `row`: telegram, whatsapp, whatsapp_template, sms; or "blocked" (a
    reminder to a chat that blocked the bot: not sent). The widget's is the Rasa server's."""
    channel = row["channel"]
    if channel == "telegram" and "telegram" in configured:
        if (contact or {}).get("blocked_at"):
            return "blocked" if row["kind"] == "reminder" else "sms"
        return "telegram"
    if channel == "whatsapp" and "whatsapp" in configured:
        return "whatsapp" if window_open(contact, now) else "whatsapp_template"
    return "sms"
