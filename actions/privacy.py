"""A verified person's rights over their data: a copy of it, and their conversations erased.

«ابي نسخة من بياناتي» (data_copy) and «احذف محادثاتي» (data_erase) start
privacy_form: the identity steps (skipped once verified), then for an erasure
a yes. action_privacy then sends the copy, or sets `erase_conversations`, on
which the tracker store deletes this conversation and every other that
verified as the same person, instead of saving the turn
(stores/tracker_store.py), and their expiry reminders stop. Requests stay: they
are records of the service.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.documents import NoDocumentHere, documents_line
from actions.identity import IdentitySlots
from actions.tracking import describe
from actions.turn import catalogue_for, clear_yes, latest_intent, negated, sure_of
from musaed import documents, notifications, store

ERASE_SLOT = "erase_conversations"  # stores/tracker_store.py reads it


def privacy_resets() -> List[Dict[Text, Any]]:
    return [
        SlotSet("privacy_request", None),
        SlotSet("erase_confirm", None),
        SlotSet("national_id", None),
        SlotSet("otp", None),
        SlotSet("requested_slot", None),
    ]


class ValidatePrivacyForm(NoDocumentHere, IdentitySlots, FormValidationAction):
    def name(self) -> Text:
        return "validate_privacy_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        slots = self.identity_slots(tracker)
        if tracker.get_slot("privacy_request") == "erase":
            slots.append("erase_confirm")
        return slots

    def validate_erase_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict
    ) -> Dict[Text, Any]:
        """A yes («نعم», or «احذفها» said again) erases; anything but "لا" (which cancels)
        gets the question again (the form asks it)."""
        # «احذفها» says what it wants whatever the model's certainty; «لا تحذفها» does not. And
        # «اكيد احذفها» is read half yes, half "erase": both mean erase here, so they count together.
        said_erase = latest_intent(tracker) == "data_erase" and not negated(tracker)
        if clear_yes(tracker) or said_erase or (sure_of(tracker, {"affirm", "data_erase"}) and not negated(tracker)):
            return {"erase_confirm": "yes"}
        return {"erase_confirm": None}


class ActionPrivacy(Action):
    """What the verified person asked for: the copy, or the erasure once confirmed."""

    def name(self) -> Text:
        return "action_privacy"

    async def run(self, dispatcher, tracker, domain):
        person = tracker.get_slot("verified_id")
        asked = tracker.get_slot("privacy_request")
        if not person:
            return privacy_resets()
        if asked == "erase" and tracker.get_slot("erase_confirm") == "yes":
            # Documents sent here for a request not made go with the conversation (a request's stay with it).
            documents.discard_staged(store.open_db(), tracker.sender_id)
            # Their expiry reminders go too: they name the conversation they go to.
            notifications.unsubscribe(store.open_db(), tracker.sender_id, person)
            dispatcher.utter_message(response="utter_conversations_erased")
            return [*privacy_resets(), SlotSet(ERASE_SLOT, True)]
        if asked == "copy":
            dispatcher.utter_message(**data_copy(tracker, person))
        return privacy_resets()


def data_copy(tracker: Tracker, person: str) -> Dict[str, Any]:
    """The person's requests and each one's history, in their language: the message's arguments."""
    db = store.open_db()
    cat = catalogue_for(tracker)
    found = store.requests_of_person(db, person)
    if not found:
        return {"response": "utter_data_copy_empty"}
    return {
        "response": "utter_data_copy",
        "requests": "\n\n".join(with_documents(db, cat, r, describe(db, cat, r, "request_detail")) for r in found),
    }


def with_documents(db, cat, request: dict, text: str) -> str:
    """A request in the copy, with the documents sent for it (by name, type and size)."""
    service = cat.service(request["service_id"])
    line = documents_line(cat, service, store.request_documents(db, request["tracking_number"])) if service else None
    return text + "\n" + line if line else text


class ActionPrivacyCancel(Action):
    """ "لا" or "إلغاء" in the privacy form: nothing sent, nothing deleted."""

    def name(self) -> Text:
        return "action_privacy_cancel"

    async def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(response="utter_erase_cancelled")
        return [ActiveLoop(None), *privacy_resets()]
