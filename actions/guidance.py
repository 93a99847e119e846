"""How-to answers, follow-ups and the service menu, all rendered by the catalogue."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.documents import no_document_said
from actions.turn import catalogue_for, latest_intent, read_unsure, service_in_context
from musaed import answers, catalogue

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
        else:
            service_id = context_service(cat, tracker, service_id)
        if cat.service(service_id) is None:
            dispatcher.utter_message(text=cat.labels["which_service"], buttons=service_buttons(cat))
            return []

        text = tracker.latest_message.get("text") or ""
        pending = tracker.get_slot("pending_followup")
        # "كم الرسوم؟" came first and the person has now picked the service.
        answer = (
            answers.Answer("aspects", aspects=[pending])
            if pending in catalogue.FOLLOWUPS
            else answers.decide(cat, text, service_id, facts_of(tracker), read_as_service(tracker, service_id))
        )
        asked = list(answer.aspects)
        if answer.kind in ("fact", "unknown"):
            say_answer(dispatcher, cat, service_id, answer)
        elif not asked:
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


def context_service(cat: catalogue.Catalogue, tracker: Tracker, service_id: str) -> str:
    """The service a question is about: the one the model read in it, or, when only the
    service in context has a fact that answers it («وتشتغل بدون نت؟» after the digital
    ID's guide, read as another service), that one."""
    in_context = tracker.get_slot("service")
    text = tracker.latest_message.get("text") or ""
    if not in_context or in_context == service_id or cat.service(in_context) is None:
        return service_id
    read = answers.decide(cat, text, service_id, facts_of(tracker), read_as_service(tracker, service_id))
    kept = answers.decide(cat, text, in_context, facts_of(tracker))
    return in_context if read.kind != "fact" and kept.kind == "fact" else service_id


def read_as_service(tracker: Tracker, service_id: str) -> float:
    """How sure the model is that the latest message asks for `service_id` itself (0 when read as another intent)."""
    intent = tracker.latest_message.get("intent") or {}
    return float(intent.get("confidence") or 0.0) if intent.get("name") == service_id else 0.0


def requestable(cat: catalogue.Catalogue, service_id: str) -> List[Dict[Text, Any]]:
    """Whether the offer's yes may start this service's request form."""
    return [SlotSet("requestable", cat.services[service_id].requestable)]


def facts_of(tracker: Tracker) -> List[dict]:
    """The model's ranking of the catalogue's facts for the latest message (components/fact_matcher.py)."""
    return tracker.latest_message.get("facts") or []


def say_answer(
    dispatcher: CollectingDispatcher, cat: catalogue.Catalogue, service_id: str, answer: answers.Answer
) -> None:
    """A fact of the sources (yes or no first), or "I don't have that detail"; then the guide's buttons."""
    dispatcher.utter_message(
        text=answers.reply_text(cat, service_id, answer), buttons=rest_buttons(cat, service_id, [])
    )


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
        if no_document_said(dispatcher, tracker):  # «ما عندي التقرير، وش أسوي؟» at the documents step
            return []
        cat = catalogue_for(tracker)
        question = FOLLOWUP_INTENTS.get(latest_intent(tracker), "requirements")
        service_id = service_in_context(tracker)
        text = tracker.latest_message.get("text") or ""
        if cat.service(service_id) is None and cat.uncovered_service_in(text):
            # "متى يوصل الجواز؟" with no service of ours in context: about that other service.
            dispatcher.utter_message(text=cat.other_service_text(text), buttons=service_buttons(cat))
            return []
        if cat.service(service_id) is None:
            # "متى توصل الهوية الجديدة؟": the service is in the question, if a fact of it answers.
            answer = answers.decide_any(cat, text, facts_of(tracker))
            if answer is not None:
                say_answer(dispatcher, cat, answer.fact.service, answer)
                return [SlotSet("service", answer.fact.service), *requestable(cat, answer.fact.service)]
            # Remember the question; action_explain_service answers it once
            # the person picks a service from the buttons.
            dispatcher.utter_message(text=cat.labels["which_service"], buttons=service_buttons(cat))
            return [SlotSet("pending_followup", question)]
        answer = answers.decide(cat, text, service_id, facts_of(tracker))
        if answer.kind in ("fact", "unknown") and not text.startswith("/"):  # a button asks for the aspect itself
            in_form = bool((tracker.active_loop or {}).get("name"))
            if in_form:  # the form asks its step next: the answer alone
                dispatcher.utter_message(text=answers.reply_text(cat, service_id, answer))
            else:
                say_answer(dispatcher, cat, service_id, answer)
            return []
        dispatcher.utter_message(text=cat.followup(service_id, question))
        # Keep the offer within reach, unless a request is already under way (the form asks its step next).
        if cat.services[service_id].requestable and not (tracker.active_loop or {}).get("name"):
            dispatcher.utter_message(text=cat.offer(service_id), buttons=offer_buttons(cat, service_id))
        return []


# Intents whose reading, below actions.turn.SURE, gives way to a fact of the sources that clearly answers.
UNSURE_INTENTS = {"out_of_scope", "other_service"}
# A service intent this likely, though under the fallback's threshold, is the best reading of a
# message not understood («وين ألقى تجديد الهوية في أبشر؟ من أي قائمة أبدأ بعد ما أسجل دخول»).
LIKELY_SERVICE = 0.2


def fact_for_unsure(cat: catalogue.Catalogue, tracker: Tracker) -> Optional[answers.Answer]:
    """A question read without certainty as something else (a person asked for, tracking,
    not understood) that a fact of the sources clearly answers: that fact. About the service
    in context when there is one («after I confirm, how will I know it's approved?» after the
    iqama's guide); else, for a message not understood, about the service the model found
    likeliest, at the higher unsure bar (not for one read as out of scope: other domains share
    our words)."""
    text = tracker.latest_message.get("text") or ""
    if not answers.is_question(text) or not read_unsure(tracker) or text.startswith("/"):
        return None
    in_context = service_in_context(tracker)
    if cat.service(in_context) is not None:
        answer = answers.decide(cat, text, in_context, facts_of(tracker))
        return answer if answer.kind == "fact" else None
    return answers.decide_any(cat, text, facts_of(tracker), least=answers.ANSWER_SCORE_UNSURE) or fact_of_likeliest(
        cat, tracker
    )


def fact_of_likeliest(cat: catalogue.Catalogue, tracker: Tracker) -> Optional[answers.Answer]:
    """Not understood, with no service in context: a fact of the service intent ranked first
    (≥ LIKELY_SERVICE), at the unsure bar; not for one read as out of scope (other domains
    share our words)."""
    text = tracker.latest_message.get("text") or ""
    likeliest = likeliest_service(cat, tracker) if latest_intent(tracker) == "nlu_fallback" else None
    if likeliest is None or not answers.is_question(text) or cat.other_domain_in(text):
        return None
    best = answers.best_fact(facts_of(tracker), likeliest)
    if best is None or best["in_service"] < answers.ANSWER_SCORE_UNSURE:
        return None
    answer = answers.decide(cat, text, likeliest, facts_of(tracker))
    return answer if answer.kind == "fact" else None


def likeliest_service(cat: catalogue.Catalogue, tracker: Tracker) -> Optional[str]:
    """The service intent ranked highest for the latest message, if at least LIKELY_SERVICE."""
    for entry in tracker.latest_message.get("intent_ranking") or ():
        if cat.service(entry.get("name")) is not None:
            return entry["name"] if float(entry.get("confidence") or 0.0) >= LIKELY_SERVICE else None
    return None


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
        # A question about the service in context that the model did not read as one
        # («وتشتغل بدون نت؟» after the digital ID's guide): its fact, if the sources state it.
        in_context = service_in_context(tracker)
        if intent in ("nlu_fallback", "out_of_scope") and cat.service(in_context) is not None:
            answer = answers.decide(cat, message, in_context, facts_of(tracker))
            # Not understood but asked about it: what the sources say, or that they don't say.
            if answer.kind == "fact" or (answer.kind == "unknown" and intent == "nlu_fallback"):
                say_answer(dispatcher, cat, in_context, answer)
                return []
        # Not understood, or read without certainty as out of scope or another government
        # service («عليها مخالفات مرور، لازم أسددها قبل أجدد إقامتها؟»), with no service in
        # context: a fact that answers it names the service (a higher bar for the unsure).
        unsure = intent in UNSURE_INTENTS and read_unsure(tracker)
        if (intent == "nlu_fallback" or unsure) and cat.service(in_context) is None:
            least = answers.ANSWER_SCORE_UNSURE if unsure else answers.ANSWER_SCORE_ANY
            found = answers.decide_any(cat, message, facts_of(tracker), least=least) or fact_of_likeliest(cat, tracker)
            if found is not None:
                say_answer(dispatcher, cat, found.fact.service, found)
                return [SlotSet("service", found.fact.service), *requestable(cat, found.fact.service)]
        # A government service we do not cover, said or understood without certainty
        # ("متى يوصل الجواز؟"): name it, say where to go.
        if intent == "other_service" or (intent == "nlu_fallback" and cat.uncovered_service_in(message)):
            text = cat.other_service_text(message)
        else:
            text = cat.labels[
                {"out_of_scope": "out_of_scope", "nlu_fallback": "not_understood"}.get(intent, "capabilities")
            ]
        # Not what the person wanted: a person is one tap away too.
        human = {"title": cat.labels["button_human"], "payload": "/request_human"}
        dispatcher.utter_message(text=text, buttons=[*service_buttons(cat), human])
        return []
