"""FallbackClassifier that also falls back on messages with nothing to read.

An empty, emoji-only or punctuation-only message has no features, and a
classifier then answers with its prior (DIET read "😀" as "affirm" at ~0.6,
above the threshold).  Reading "😀" as "yes" could confirm a request nobody asked
for, so such a message is always `nlu_fallback`.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message


def has_content(text: str) -> bool:
    return any(ch.isalnum() for ch in text or "")


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ContentFallbackClassifier(FallbackClassifier):
    def _should_fallback(self, message: Message) -> bool:
        return not has_content(message.get(TEXT)) or super()._should_fallback(message)
