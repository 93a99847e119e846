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
