"""The head of the NLU pipeline: whitespace tokens carrying normalised Arabic.

Normalising by rewriting the message text would shift the character offsets
of annotated entities, and would have to be repeated identically at training
and at inference.  Instead each token keeps its place in the original text
and carries `musaed.arabic.lemma(token)` as its lemma, which is what
CountVectorsFeaturizer reads (`use_lemma`, on by default): the normalised
word, with Arabizi ("shukran") first written in Arabic letters.  Training
and inference run this same component, so the model always sees one
spelling.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from musaed.arabic import lemma


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class ArabicNormalizer(WhitespaceTokenizer):
    """WhitespaceTokenizer whose tokens carry normalised Arabic lemmas (Arabizi in Arabic letters)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **WhitespaceTokenizer.get_default_config(),
            # Past a few hundred words a message holds no more intent signal,
            # only more n-grams to count.
            "max_tokens": 200,
        }

    @staticmethod
    def supported_languages() -> List[Text]:
        return ["ar"]

    @staticmethod
    def not_supported_languages() -> None:
        return None

    def __init__(self, config: Dict[Text, Any]) -> None:
        super().__init__(config)
        # The first Arabizi word loads arabizikit, wordfreq's Arabic list and
        # its index by consonants (about a second): at start-up, not in the
        # answer to whoever writes one first.
        lemma("salam")

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        tokens = super().tokenize(message, attribute)
        if attribute == TEXT:
            tokens = tokens[: self._config["max_tokens"]]
        for token in tokens:
            # A token of only tatweel or diacritics normalises to nothing;
            # keep its text so featurizers never see an empty string.
            token.lemma = lemma(token.text) or token.text
        return tokens
