"""Expiry reminders in the chat (musaed/notifications.py): offered, taken, and stopped at once.

After a request is made or tracked, a verified person who has no reminders yet is
asked once a conversation whether they want them (`offer`: the yes/no buttons, and
`reminder_offer`, which the rules in data/rules/reminders.yml read for the answer).
Their yes subscribes them (their own and their dependents' documents, reminded
here, on this conversation's channel); «أوقف التنبيهات» / "stop reminders"
(`stop_reminders`) stops them at once, with no code: the reminders that go to this
conversation, and the verified person's wherever they go.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.turn import catalogue_for
from musaed import catalogue, notifications, store
from musaed.identity import mask_id

log = logging.getLogger(__name__)

OFFERED = "reminder_offer"  # this turn's offer (the rules read it)
ASKED = "reminders_asked"  # asked once in this conversation


def offer(dispatcher: CollectingDispatcher, tracker: Tracker, cat: catalogue.Catalogue) -> List[Dict[Text, Any]]:
    """The offer, when the person is verified, has no reminders and was not asked yet here."""
    person = tracker.get_slot("verified_id")
    if not person or tracker.get_slot(ASKED) or notifications.subscribed(store.open_db(), person):
        return [SlotSet(OFFERED, False)]
    dispatcher.utter_message(
        text=cat.labels["reminder_offer"],
        buttons=[
            {"title": cat.labels["button_remind_me"], "payload": "/affirm"},
            {"title": cat.labels["button_no"], "payload": "/deny"},
        ],
    )
    return [SlotSet(OFFERED, True), SlotSet(ASKED, True)]


class ActionRemindersSubscribe(Action):
    """The yes to the offer: reminders for this verified person, here."""

    def name(self) -> Text:
        return "action_reminders_subscribe"

    async def run(self, dispatcher, tracker, domain):
        cat = catalogue_for(tracker)
        person = tracker.get_slot("verified_id")
        if not person:  # the offer is made to verified people only
            dispatcher.utter_message(response="utter_anything_else")
            return [SlotSet(OFFERED, False)]
        due = notifications.subscribe(store.open_db(), person, tracker.sender_id, cat.language)
        log.info("reminders on for %s (%d due now)", mask_id(person), due)
        dispatcher.utter_message(text=cat.labels["reminders_on"].format(days=notifications.reminder_days()))
        return [SlotSet(OFFERED, False)]


class ActionRemindersStop(Action):
    """«أوقف التنبيهات»: stopped at once, and said so."""

    def name(self) -> Text:
        return "action_reminders_stop"

    async def run(self, dispatcher, tracker, domain):
        cat = catalogue_for(tracker)
        person = tracker.get_slot("verified_id")
        stopped = notifications.unsubscribe(store.open_db(), tracker.sender_id, person)
        if stopped:
            log.info("reminders stopped in %s", "a verified conversation" if person else "an unverified conversation")
        dispatcher.utter_message(text=cat.labels["reminders_off" if stopped else "reminders_none"])
        return [SlotSet(OFFERED, False)]
