"""Hand the conversation over to a person at the unified call centre."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.form_slots import clear_form_slots
from actions.turn import catalogue_for


class ActionHandOver(Action):
    """Say how to reach the call centre and mark the conversation as handed over.

    The `handed_over` slot lives in the tracker store, where customer care
    lists the conversations waiting for a person.
    """

    def name(self) -> Text:
        return "action_hand_over"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=catalogue_for(tracker).call_centre_text())
        events = [SlotSet("handed_over", True)]
        if (tracker.active_loop or {}).get("name"):  # in the middle of a form, which stops: keep nothing of it
            events += clear_form_slots()
        return events
