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
"""

from __future__ import annotations

from typing import List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.stateless import Stateless
from musaed import catalogue

OTHER_SERVICE = "other_service"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class OtherServiceGuard(Stateless):
    def process(self, messages: List[Message]) -> List[Message]:
        cat = catalogue.load()
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get("name") in cat.services and cat.uncovered_service_in(message.get(TEXT) or ""):
                # The classifier's confidence that this is a service question stands for this one.
                confidence = intent.get("confidence", 1.0)
                ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r["name"] != OTHER_SERVICE]
                message.set(INTENT, {"name": OTHER_SERVICE, "confidence": confidence}, add_to_output=True)
                message.set(
                    INTENT_RANKING_KEY,
                    [{"name": OTHER_SERVICE, "confidence": confidence}, *ranking],
                    add_to_output=True,
                )
        return messages
