"""Tags each message with the language it is written in, as a `language` entity.

The `language` slot is filled from this entity by Rasa's own slot extraction,
before any action or response runs, so that every reply of the turn, the
domain's responses included (conditioned on the slot), is in the language of
the person's latest message.  A message that does not tell (an id, a code, a
button) carries no entity and the slot keeps its value.  The entity does not
influence the conversation (domain.yml).
"""

from __future__ import annotations

from typing import List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.stateless import Stateless
from musaed import language

ENTITY = "language"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class LanguageDetector(Stateless):
    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            found = language.detect(text)
            if found:
                entity = {
                    "entity": ENTITY,
                    "value": found,
                    "start": 0,
                    "end": len(text),
                    # `rasa test nlu` needs an extractor on every entity; it reports
                    # this one apart (LanguageDetector_report.json), never as an error
                    # of the entity extractors.
                    "extractor": "LanguageDetector",
                }
                message.set(ENTITIES, [*message.get(ENTITIES, []), entity], add_to_output=True)
        return messages
