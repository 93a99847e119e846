"""A message about a government service Musaed does not cover is `other_service`.

"ضاع جوازي كيف أطلع بدل فاقد؟" shares "ضاع" and "بدل فاقد" with reporting a
lost national id, and the classifier, which has seen many more lost-id
examples than lost-passport ones, reads it as that service: the person
would get the wrong steps.  When the classifier picks one of Musaed's
services, but the message names another government service (the
catalogue's `other_services` words) and nothing Musaed covers (its
`covered` words: هوية, إقامة, سجل الأسرة, …), the intent becomes
`other_service`, which names that service and says where to go.

Follow-ups ("متى يوصل الجواز؟") are left to the action, which knows whether
a service of ours is in context (a passport is a requirement of renewing an
iqama).

Likewise a message of another domain that shares our words — a parcel's
delivery, a bank card's renewal or fees, a SIM card, a job application's
status, a brand's "identity" (the catalogue's `other_domains`) — and names
nothing Musaed covers is `out_of_scope`, also when it was read as a
follow-up: with a service in context, the action still answers it from that
service's facts if one does.
"""

from __future__ import annotations

from typing import List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.stateless import Stateless
from musaed import catalogue

OTHER_SERVICE = "other_service"
OUT_OF_SCOPE = "out_of_scope"
# What another domain's message is read as besides a service: the follow-ups.
FOLLOWUPS = {"ask_fees", "ask_delivery", "ask_requirements"}


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class OtherServiceGuard(Stateless):
    def process(self, messages: List[Message]) -> List[Message]:
        cat = catalogue.load()
        for message in messages:
            intent = (message.get(INTENT) or {}).get("name")
            text = message.get(TEXT) or ""
            if intent in cat.services and cat.uncovered_service_in(text):
                _read_as(message, OTHER_SERVICE)
            elif (intent in cat.services or intent in FOLLOWUPS) and cat.other_domain_in(text):
                _read_as(message, OUT_OF_SCOPE)
        return messages


def _read_as(message: Message, name: str) -> None:
    # The classifier's confidence that this is a service question stands for this one.
    confidence = (message.get(INTENT) or {}).get("confidence", 1.0)
    ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r["name"] != name]
    message.set(INTENT, {"name": name, "confidence": confidence}, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [{"name": name, "confidence": confidence}, *ranking], add_to_output=True)
