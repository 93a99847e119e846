"""Hand the conversation over to a person: the live-chat queue (musaed/handover.py)."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.documents import stop_request
from actions.guidance import fact_for_unsure, requestable, rest_buttons
from actions.turn import catalogue_for, language_of
from channels.ids import channel_of
from musaed import answers, handover, store


class ActionHandOver(Action):
    """Queue the conversation for an agent and tell the person their place (or, out of hours,
    when agents are back: their next message is kept for the next agent).

    The person's identity goes with it only once they verified in the bot's flow
    (`verified_id`); the `handed_over` slot still marks the conversation for `/care/handovers`.
    """

    def name(self) -> Text:
        return "action_hand_over"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        cat = catalogue_for(tracker)
        # "If it goes wrong halfway, who do I contact?", read without certainty as asking for a
        # person: what the sources say (the call centre), and a person still one tap away.
        found = None if (tracker.active_loop or {}).get("name") else fact_for_unsure(cat, tracker)
        if found is not None and found.fact is not None:
            human = {"title": cat.labels["button_human"], "payload": "/request_human"}
            dispatcher.utter_message(
                text=answers.reply_text(cat, found.fact.service, found),
                buttons=[*rest_buttons(cat, found.fact.service, []), human],
            )
            return [SlotSet("service", found.fact.service), *requestable(cat, found.fact.service)]
        lang = language_of(tracker)
        outcome = handover.request(
            store.open_db(),
            tracker.sender_id,
            channel_of(tracker.sender_id) or "rest",
            lang,
            national_id=tracker.get_slot("verified_id"),
        )
        reply = handover.request_reply(lang, outcome)
        dispatcher.utter_message(text=reply["text"], buttons=reply["buttons"])
        events = [SlotSet("handed_over", True)]
        if (tracker.active_loop or {}).get("name"):  # in the middle of a form, which stops: keep nothing of it
            events += stop_request(tracker)
        return events
