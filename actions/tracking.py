"""Tracking requests: only the verified owner, or their head of family, sees one."""

from __future__ import annotations

from typing import List, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import reminders
from actions.documents import NoDocumentHere
from actions.identity import IdentitySlots
from actions.turn import catalogue_for
from musaed import catalogue, store


class ValidateTrackRequestForm(NoDocumentHere, IdentitySlots, FormValidationAction):
    def name(self) -> Text:
        return "validate_track_request_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        return self.identity_slots(tracker)


def describe(db, cat: catalogue.Catalogue, request: dict, template: str) -> str:
    beneficiary = store.get_person(db, request["beneficiary_id"])
    history = "\n".join(
        cat.labels["history_line"].format(n=n, status=cat.status_text(e["status"]), at=e["at"][:16].replace("T", " "))
        for n, e in enumerate(store.request_events(db, request["tracking_number"]), start=1)
    )
    return cat.labels[template].format(
        tracking_number=request["tracking_number"],
        service=cat.services[request["service_id"]].name,
        beneficiary=beneficiary["name"],
        status=cat.status_text(request["status"]),
        history=history,
    )


class ActionShowTracking(Action):
    def name(self) -> Text:
        return "action_show_tracking"

    async def run(self, dispatcher, tracker, domain):
        cat = catalogue_for(tracker)
        viewer = tracker.get_slot("verified_id")
        reset = [
            SlotSet("tracking_query", None),
            SlotSet("national_id", None),
            SlotSet("otp", None),
            SlotSet("requested_slot", None),
        ]
        if not viewer:
            return reset + [SlotSet(reminders.OFFERED, False)]
        self.show(dispatcher, tracker, cat, viewer)
        # After the look-up, expiry reminders are offered once (actions/reminders.py).
        return reset + reminders.offer(dispatcher, tracker, cat)

    @staticmethod
    def show(dispatcher: CollectingDispatcher, tracker: Tracker, cat: catalogue.Catalogue, viewer: str) -> None:
        db = store.open_db()
        number, malformed = store.parse_tracking_number(tracker.get_slot("tracking_query") or "")
        if malformed:
            dispatcher.utter_message(text=cat.labels["tracking_format"])
        if number:
            request = store.get_request(db, number)
            # Someone else's request gets the same reply as a number that does not exist.
            if request is None or not store.can_see_request(db, viewer, request):
                dispatcher.utter_message(text=cat.labels["request_not_found"])
            else:
                dispatcher.utter_message(text=describe(db, cat, request, "request_detail"))
            return
        requests = store.requests_visible_to(db, viewer)
        if not requests:
            dispatcher.utter_message(text=cat.labels["no_requests"])
        else:
            dispatcher.utter_message(
                text="\n".join(
                    [cat.labels["your_requests"]] + [describe(db, cat, r, "request_line") for r in requests[:10]]
                )
            )
