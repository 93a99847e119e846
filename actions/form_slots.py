"""The slots a request form fills: cleared together when it stops, whichever way it stops
(done, cancelled, switched to another service, handed over to a person)."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk.events import SlotSet

from musaed import catalogue


def form_slots() -> List[str]:
    """Slots a request form fills; cleared when it ends, whichever way it ends.

    verified_id stays: verification lasts for the conversation session. family_member goes:
    the relative named for one request is not the next request's.
    """
    steps = dict.fromkeys(step for s in catalogue.load().services.values() for step in s.form_steps)
    return ["national_id", "otp", "beneficiary", "family_member", *steps, "confirm", "switch_to", "requested_slot"]


def clear_form_slots() -> List[Dict[Text, Any]]:
    return [SlotSet(slot, None) for slot in form_slots()]
