"""How-to answers, follow-ups and the service menu, all rendered by the catalogue."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from musaed import catalogue

# Follow-up intents and the catalogue answer each one asks for.
FOLLOWUP_INTENTS = {
    "ask_requirements": "requirements",
    "ask_fees": "fees",
    "ask_delivery": "delivery",
}


def latest_intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def service_buttons(cat: catalogue.Catalogue) -> List[Dict[str, str]]:
    return [{"title": name, "payload": f"/{sid}"} for sid, name in cat.menu()]


class ActionExplainService(Action):
    """Answer a service intent: the how-to, or the follow-up that was waiting for it."""

    def name(self) -> Text:
        return "action_explain_service"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        cat = catalogue.load()
        service_id = latest_intent(tracker)
        if cat.service(service_id) is None:
            service_id = tracker.get_slot("service")
        if cat.service(service_id) is None:
            dispatcher.utter_message(text=cat.labels["which_service"], buttons=service_buttons(cat))
            return []

        pending = tracker.get_slot("pending_followup")
        if pending in catalogue.FOLLOWUPS:
            # "كم الرسوم؟" came first and the person has now picked the service.
            dispatcher.utter_message(text=cat.followup(service_id, pending))
        else:
            dispatcher.utter_message(text=cat.howto(service_id))
        dispatcher.utter_message(text=cat.offer(service_id), buttons=offer_buttons(cat, service_id))
        return [
            SlotSet("service", service_id),
            SlotSet("pending_followup", None),
            SlotSet("requestable", cat.services[service_id].requestable),
        ]


def offer_buttons(cat: catalogue.Catalogue, service_id: str) -> List[Dict[str, str]]:
    labels = cat.labels
    if cat.services[service_id].requestable:
        return [
            {"title": labels["button_start"], "payload": "/affirm"},
            {"title": labels["button_no"], "payload": "/deny"},
        ]
    return [
        {"title": labels["button_requirements"], "payload": "/ask_requirements"},
        {"title": labels["button_fees"], "payload": "/ask_fees"},
        {"title": labels["button_delivery"], "payload": "/ask_delivery"},
    ]


class ActionAnswerFollowup(Action):
    """Answer "وش الشروط؟ / كم الرسوم؟ / كم ياخذ التوصيل؟" for the service in context."""

    def name(self) -> Text:
        return "action_answer_followup"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        cat = catalogue.load()
        question = FOLLOWUP_INTENTS.get(latest_intent(tracker), "requirements")
        service_id = tracker.get_slot("service")
        if cat.service(service_id) is None:
            # Remember the question; action_explain_service answers it once
            # the person picks a service from the buttons.
            dispatcher.utter_message(text=cat.labels["which_service"], buttons=service_buttons(cat))
            return [SlotSet("pending_followup", question)]
        dispatcher.utter_message(text=cat.followup(service_id, question))
        if cat.services[service_id].requestable:
            # Keep the offer within reach: "نعم" after a follow-up starts the request.
            dispatcher.utter_message(text=cat.offer(service_id), buttons=offer_buttons(cat, service_id))
        return []


class ActionShowCapabilities(Action):
    """The service menu, introduced by why it is shown (asked, out of scope, another
    government service, not understood)."""

    def name(self) -> Text:
        return "action_show_capabilities"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        cat = catalogue.load()
        intent = latest_intent(tracker)
        if intent == "other_service":  # a government service we do not cover: name it, say where to go
            text = cat.other_service_text(tracker.latest_message.get("text") or "")
        else:
            text = cat.labels[
                {"out_of_scope": "out_of_scope", "nlu_fallback": "not_understood"}.get(intent, "capabilities")
            ]
        dispatcher.utter_message(text=text, buttons=service_buttons(cat))
        return []
