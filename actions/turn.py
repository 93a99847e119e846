"""What the latest turn says, read the same way by every action."""

from __future__ import annotations

from rasa_sdk import Tracker

from musaed import catalogue, language


def latest_intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def language_of(tracker: Tracker) -> str:
    """The language of the person's latest message that told one (slot `language`)."""
    return language.of(tracker.get_slot("language"))


def catalogue_for(tracker: Tracker) -> catalogue.Catalogue:
    """The catalogue in the person's language."""
    return catalogue.load(language_of(tracker))


def service_in_context(tracker: Tracker):
    """The service the conversation is about: the one last explained or requested, or
    tracking while the tracking form asks its steps («كم يوم توصل البطاقة؟» at its id step)."""
    if (tracker.active_loop or {}).get("name") == "track_request_form":
        return "track_request"
    return tracker.get_slot("service")


# The key a form's validation puts on a message that already asks for the slot
# again ("رقم الهوية يتكون من 10 أرقام… اكتبه مرة أخرى"), so that the form's own
# question does not follow it and say the same thing twice.
ASKS = "asks"


def asked_this_turn(tracker: Tracker, slot: str) -> bool:
    """Whether a message since the person's latest one already asked for `slot`."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "bot" and (event.get("metadata") or {}).get(ASKS) == slot:
            return True
    return False


# Below this, a yes at a confirmation (which submits a request, or erases) is asked again.
SURE_AFFIRM = 0.9


def clear_yes(tracker: Tracker) -> bool:
    """A button's yes, or a yes the model is sure of with no word of no in it («ابداً» is not one)."""
    text = tracker.latest_message.get("text") or ""
    if text.strip().startswith("/affirm"):
        return True
    intent = tracker.latest_message.get("intent") or {}
    sure = intent.get("name") == "affirm" and (intent.get("confidence") or 0.0) >= SURE_AFFIRM
    return sure and not negated(tracker)


# Under this, the model's reading of a message is unsure: a fact that clearly answers may win.
SURE = 0.7


def read_unsure(tracker: Tracker) -> bool:
    """Whether the model read the latest message without certainty (under SURE)."""
    return float((tracker.latest_message.get("intent") or {}).get("confidence") or 0.0) < SURE


def sure_of(tracker: Tracker, intents: set) -> bool:
    """Whether the model gives `intents` together at least SURE_AFFIRM for the latest message."""
    ranking = tracker.latest_message.get("intent_ranking") or []
    return sum(float(r.get("confidence") or 0.0) for r in ranking if r.get("name") in intents) >= SURE_AFFIRM


def negated(tracker: Tracker) -> bool:
    """Whether the latest message holds a word of no or never."""
    return catalogue_for(tracker).negated(tracker.latest_message.get("text") or "")
