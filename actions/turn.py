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
