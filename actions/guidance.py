"""How-to answers, follow-ups and the service menu, all rendered by the catalogue."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.turn import catalogue_for, latest_intent
from musaed import catalogue

# Follow-up intents and the catalogue answer each one asks for.
FOLLOWUP_INTENTS = {
    "ask_requirements": "requirements",
    "ask_fees": "fees",
    "ask_delivery": "delivery",
}


def service_buttons(cat: catalogue.Catalogue) -> List[Dict[str, str]]:
    return [{"title": name, "payload": f"/{sid}"} for sid, name in cat.menu()]


class ActionExplainService(Action):
    """Answer a service intent: the how-to, or what the message asks of the service
    ("كم رسوم تجديد الاقامة؟": its fees), or the follow-up that was waiting for it."""

    def name(self) -> Text:
        return "action_explain_service"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        cat = catalogue_for(tracker)
        service_id = latest_intent(tracker)
        if cat.service(service_id) is None:
            service_id = tracker.get_slot("service")
        if cat.service(service_id) is None:
            dispatcher.utter_message(text=cat.labels["which_service"], buttons=service_buttons(cat))
            return []

        text = tracker.latest_message.get("text") or ""
        pending = tracker.get_slot("pending_followup")
        # "كم الرسوم؟" came first and the person has now picked the service.
        asked = [pending] if pending in catalogue.FOLLOWUPS else cat.aspects_in(text)
        if not asked:
            dispatcher.utter_message(text=cat.howto(service_id))
            dispatcher.utter_message(text=cat.offer(service_id), buttons=offer_buttons(cat, service_id))
        else:
            if cat.asks_how(text):  # "كيف أجدد وكم الرسوم؟": the steps, which list the requirements too
                dispatcher.utter_message(text=cat.howto(service_id))
                asked = [a for a in asked if a != "requirements"]
            for aspect in asked:
                dispatcher.utter_message(text=cat.followup(service_id, aspect))
            dispatcher.utter_message(text=cat.offer(service_id), buttons=rest_buttons(cat, service_id, asked))
        named = next(
            (
                e.get("value")
                for e in tracker.latest_message.get("entities") or []
                if e.get("entity") == "family_member"
            ),
            None,
        )
        return [
            # The relative this question names, if any: not one named for an earlier service.
            SlotSet("family_member", named),
            SlotSet("service", service_id),
            SlotSet("pending_followup", None),
            SlotSet("requestable", cat.services[service_id].requestable),
        ]


def offer_buttons(cat: catalogue.Catalogue, service_id: str) -> List[Dict[str, str]]:
    """After a guide: start the request (when Musaed can make it), then every requirement, fees, delivery."""
    labels = cat.labels
    start = [{"title": labels["button_start"], "payload": "/affirm"}] if cat.services[service_id].requestable else []
    return start + [
        {"title": labels["button_requirements"], "payload": "/ask_requirements"},
        {"title": labels["button_fees"], "payload": "/ask_fees"},
        {"title": labels["button_delivery"], "payload": "/ask_delivery"},
    ]


def rest_buttons(cat: catalogue.Catalogue, service_id: str, answered: List[str]) -> List[Dict[str, str]]:
    """After one aspect of a service: start the request, its whole guide, or its other aspects."""
    labels = cat.labels
    buttons = [{"title": labels["button_start"], "payload": "/affirm"}] if cat.services[service_id].requestable else []
    buttons.append({"title": labels["button_steps"], "payload": f"/{service_id}"})
    buttons += [
        {"title": labels[f"button_{aspect}"], "payload": f"/ask_{aspect}"}
        for aspect in catalogue.FOLLOWUPS
        if aspect not in answered
    ]
    return buttons


class ActionAnswerFollowup(Action):
    """Answer "وش الشروط؟ / كم الرسوم؟ / كم ياخذ التوصيل؟" for the service in context."""

    def name(self) -> Text:
        return "action_answer_followup"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        cat = catalogue_for(tracker)
        question = FOLLOWUP_INTENTS.get(latest_intent(tracker), "requirements")
        service_id = tracker.get_slot("service")
        text = tracker.latest_message.get("text") or ""
        if cat.service(service_id) is None and cat.uncovered_service_in(text):
            # "متى يوصل الجواز؟" with no service of ours in context: about that other service.
            dispatcher.utter_message(text=cat.other_service_text(text), buttons=service_buttons(cat))
            return []
        if cat.service(service_id) is None:
            # Remember the question; action_explain_service answers it once
            # the person picks a service from the buttons.
            dispatcher.utter_message(text=cat.labels["which_service"], buttons=service_buttons(cat))
            return [SlotSet("pending_followup", question)]
        dispatcher.utter_message(text=cat.followup(service_id, question))
        # Keep the offer within reach, unless a request is already under way (the form asks its step next).
        if cat.services[service_id].requestable and not (tracker.active_loop or {}).get("name"):
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
        cat = catalogue_for(tracker)
        intent, message = latest_intent(tracker), tracker.latest_message.get("text") or ""
        # A government service we do not cover, said or understood without certainty
        # ("متى يوصل الجواز؟"): name it, say where to go.
        if intent == "other_service" or (intent == "nlu_fallback" and cat.uncovered_service_in(message)):
            text = cat.other_service_text(message)
        else:
            text = cat.labels[
                {"out_of_scope": "out_of_scope", "nlu_fallback": "not_understood"}.get(intent, "capabilities")
            ]
        dispatcher.utter_message(text=text, buttons=service_buttons(cat))
        return []
