"""Which fact of the sources a message asks about: a ranking in its parse data.

Every fact the source articles state is written once in the catalogue, with
ways people ask for it (musaed/catalogue.yml, `facts:`). This component
ranks them for each message with a logistic regression over the two spaces
the pipeline already has: the e5 sentence vector (read from the message's
features, computed once by SentenceEncoderFeaturizer) and letter n-grams of
the normalised text, trained on those questions and the facts' own texts,
and on each service's questions that the sources do not answer
(musaed/not_in_sources.yml: one more class of the service, which takes its
share of the service's probability and is never ranked).
Its output, `facts` in the parse data (service, fact id, probability, the
probability among that service's classes, that of its statement over all
services, the yes/no of the nearest question of that fact, and how near the
message is to that fact's questions and to its service's own intent
examples: the best few facts and each service's best), is read by the
actions and by customer care through musaed/answers.py, which decides
whether it answers.

Rasa's ResponseSelector would need a retrieval intent per fact and a
TensorFlow model trained and run beside ours; this is the same kind of
linear model as our intent classifier, trained in seconds, about 1 ms of CPU
a question (0.75 ms a message of a request's flow: an id, a code or «نعم» is
not ranked; bench/NOTES.md). Nearest neighbours alone found the right fact
for 36 % of the catalogue's questions, each left out in turn; the
regression, in five-fold cross-validation, for 63 % then, 85 % today.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any, Dict, List, NamedTuple, Optional, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.sentence_encoder import encoder
from musaed import answers, catalogue
from musaed.arabic import normalize

logger = logging.getLogger(__name__)

FACTS = "facts"  # the key in the parse data
_ARRAYS = "fact_matcher.npz"
_META = "fact_matcher.json"


def _tfidf(vocabulary: Optional[Dict[str, int]] = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, preprocessor=normalize, vocabulary=vocabulary
    )


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class FactMatcher(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # How many facts the ranking keeps.
            "ranking_length": 5,
            # The regression's inverse regularisation, and the sentence vector's weight beside
            # the n-grams: chosen by five-fold cross-validation on the catalogue's questions.
            "C": 3.0,
            "dense_weight": 2.0,
        }

    def __init__(self, config, model_storage: ModelStorage, resource: Resource, state: Optional[dict] = None) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._state = state
        self._vectorizer = None
        if state is not None:
            self._vectorizer = _tfidf(state["vocabulary"])
            self._vectorizer.idf_ = state["idf"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        # The facts come from the catalogue, not the training data: a changed catalogue retrains.
        digest = hashlib.sha256(catalogue.CATALOGUE_PATH.read_bytes())
        if answers.NOT_IN_SOURCES_PATH.exists():
            digest.update(answers.NOT_IN_SOURCES_PATH.read_bytes())
        return digest.hexdigest()

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "FactMatcher":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        from sklearn.linear_model import LogisticRegression

        rows = answers.fact_rows(catalogue.load())
        if not rows:
            return self._resource
        texts = [r.text for r in rows]
        vectorizer = _tfidf()
        grams = vectorizer.fit_transform(texts)
        vectors = np.atleast_2d(encoder(1).query(texts)).astype(np.float32)
        mean = vectors.mean(axis=0)
        centred = _unit(vectors - mean)
        facts = sorted({(r.service, r.fact) for r in rows})
        y = np.array([facts.index((r.service, r.fact)) for r in rows])
        clf = LogisticRegression(C=self._config["C"], max_iter=3000)
        clf.fit(_features(grams, centred, self._config["dense_weight"]), y)
        # The services' own examples ("كيف أجدد هويتي؟"): a "how do I" message nearer to them
        # than to any question of the fact asks for the service's guide, not the fact.
        services = set(catalogue.load().services)
        examples = [(m.get(TEXT), m.get(INTENT)) for m in training_data.intent_examples if m.get(INTENT) in services]
        example_vectors = (
            _unit(np.atleast_2d(encoder(1).query([t for t, _ in examples])).astype(np.float32) - mean)
            if examples
            else np.zeros((0, mean.shape[0]), dtype=np.float32)
        )
        state = {
            "vocabulary": {k: int(v) for k, v in vectorizer.vocabulary_.items()},
            "rows": [[r.service, r.fact, r.answer] for r in rows],
            "facts": [list(f) for f in facts],
            "texts": texts,
            "examples": [list(e) for e in examples],
        }
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(
                directory / _ARRAYS,
                idf=vectorizer.idf_,
                mean=mean,
                vectors=centred,
                example_vectors=example_vectors,
                coef=clf.coef_.astype(np.float32),
                intercept=clf.intercept_,
                classes=clf.classes_,
            )
            (directory / _META).write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "FactMatcher":
        try:
            with model_storage.read_from(resource) as directory:
                with np.load(directory / _ARRAYS, allow_pickle=False) as z:
                    state: dict = {k: z[k] for k in z.files}
                state.update(json.loads((directory / _META).read_text(encoding="utf-8")))
        except (ValueError, FileNotFoundError):
            logger.debug("No trained fact matcher: messages get no fact ranking.")
            return cls(config, model_storage, resource)
        matcher = cls(config, model_storage, resource, state)
        # The rows in n-gram space, rebuilt from their texts (no pickles in the model).
        matcher._state["grams"] = matcher._vectorizer.transform(state["texts"]) if state["texts"] else None
        examples = [text for text, _ in state.get("examples") or ()]
        matcher._state["example_grams"] = matcher._vectorizer.transform(examples) if examples else None
        matcher._prepare()
        return matcher

    def _prepare(self) -> None:
        """What each message multiplies, laid out once: the regression's two blocks, and
        each fact's yes/no questions in both spaces (a message is compared with those alone)."""
        state = self._state
        width = len(state["vocabulary"])
        self._coef_grams = np.ascontiguousarray(state["coef"][:, :width].T)
        self._coef_dense = np.ascontiguousarray(state["coef"][:, width:])
        # Every row in one matrix (columns first: a message has a few dozen of the n-grams);
        # per fact, its rows, and which of them are questions with a yes/no answer.
        self._row_grams = _Columns(state["grams"])
        self._analyze = self._vectorizer.build_analyzer()
        self._vocabulary = state["vocabulary"]
        rows_of: Dict[tuple, List[int]] = {}
        for i, (service, fact, _) in enumerate(state["rows"]):
            rows_of.setdefault((service, fact), []).append(i)
        self._rows_of = {key: np.array(rows) for key, rows in rows_of.items()}
        self._yes_no_of = {
            key: np.array([n for n, row in enumerate(rows) if state["rows"][row][2] is not None], dtype=np.int64)
            for key, rows in rows_of.items()
        }
        # The services' own examples, the same way; per service, their positions.
        examples = state.get("examples") or []
        self._example_grams = _Columns(state["example_grams"]) if state.get("example_grams") is not None else None
        self._examples_of: Dict[str, List[int]] = {}
        for i, (_, service) in enumerate(examples):
            self._examples_of.setdefault(service, []).append(i)
        # Each of the regression's classes' service, as an index (for the per-service sums).
        self._services = sorted({service for service, _ in state["facts"]})
        self._service_of = np.array(
            [self._services.index(state["facts"][int(c)][0]) for c in state["classes"]], dtype=np.int64
        )
        # The classes of questions the sources do not answer: counted in their service's
        # probability, never ranked as a fact.
        self._is_fact = np.array([state["facts"][int(c)][1] != answers.NOT_IN_SOURCES for c in state["classes"]])
        # Each class's statement: facts of several services from one source sentence («يصلك على
        # عنوانك الوطني») are one statement when no service is known, and do not split its score.
        sentences = {(f.service, f.id): " ".join(f.source_sentence.split()) for f in catalogue.load().facts()}
        keys = [sentences.get(tuple(state["facts"][int(c)]), f"{c}") for c in state["classes"]]
        distinct = sorted(set(keys))
        self._statement_of = np.array([distinct.index(k) for k in keys], dtype=np.int64)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        if self._state is None or self._state.get("grams") is None:
            return messages
        for message in messages:
            text = message.get(TEXT) or ""
            # An id, a code, «نعم»: nothing a fact answers, and half of a request's messages.
            if not _may_ask(text):
                continue
            dense = message.get_dense_features(TEXT)[1]
            vector = dense.features.reshape(-1) if dense is not None else None
            message.set(FACTS, self.rank(text, vector), add_to_output=True)
        return messages

    def rank(self, text: str, vector: Optional[np.ndarray]) -> List[dict]:
        """The facts most likely asked about, best first: {service, fact, score, answer}."""
        state = self._state
        grams = self._grams(text)
        if vector is None:  # no sentence vector (never in our pipeline): the n-grams alone
            centred = np.zeros(state["mean"].shape[0], dtype=np.float32)
        else:
            # In the rows' own float32: a float64 message would make numpy copy each matrix it meets.
            centred = _unit((vector - state["mean"]).reshape(1, -1)).reshape(-1).astype(np.float32)
        # The regression's sum in its two blocks, without stacking them into one matrix; the
        # n-gram block over the message's own n-grams only (a few dozen of the vocabulary).
        logits = grams.data @ self._coef_grams[grams.indices]
        logits += self._coef_dense @ (centred * self._config["dense_weight"]) + state["intercept"]
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        # How near the message is to the rows (their n-grams: all at once, a few dozen columns;
        # their vectors: only the ranked facts' rows, below), and to the services' own examples.
        row_grams = self._row_grams.dot(grams.indices, grams.data)
        near_example = (
            answers.blend(self._example_grams.dot(grams.indices, grams.data), state["example_vectors"] @ centred)
            if self._example_grams is not None
            else None
        )
        # With the service known, a fact's chance among that service's facts: the same
        # statement in several services («فعّلها عند الاستلام») no longer splits its score.
        of_service = self._service_of
        mass = np.bincount(of_service, weights=probabilities, minlength=len(self._services))
        said = np.bincount(self._statement_of, weights=probabilities)
        order = [k for k in np.argsort(-probabilities) if self._is_fact[k]]
        # The best overall, and the best of each service (an answer for the service in context).
        keep = order[: self._config["ranking_length"]]
        keep += [k for k in (order[i] for i in self._first_of_each(order)) if k not in keep]
        keys = [tuple(state["facts"][int(state["classes"][k])]) for k in keep]
        spans = [self._rows_of[key] for key in keys]
        rows = np.concatenate(spans)
        nearness = np.split(
            answers.blend(row_grams[rows], state["vectors"][rows] @ centred), np.cumsum([len(s) for s in spans])[:-1]
        )
        ranking = []
        for k, (service, fact), rows, similarity in zip(keep, keys, spans, nearness, strict=True):
            # The yes/no a fact gives is that of its question nearest the message.
            asked = self._yes_no_of[(service, fact)]
            answer = state["rows"][rows[asked[np.argmax(similarity[asked])]]][2] if len(asked) else None
            examples = self._examples_of.get(service)
            ranking.append(
                {
                    "service": service,
                    "fact": fact,
                    "score": round(float(probabilities[k]), 4),
                    "in_service": round(float(probabilities[k] / max(mass[of_service[k]], 1e-12)), 4),
                    # The probability of its statement, whichever service's fact says it.
                    "statement": round(float(said[self._statement_of[k]]), 4),
                    "answer": answer,
                    # The message's nearness to the fact's nearest row, and to its service's
                    # nearest own example: which of the two it asks (answers.asks_the_service).
                    "near_fact": round(float(similarity.max()), 4),
                    "near_service": round(float(near_example[examples].max()), 4)
                    if near_example is not None and examples
                    else 0.0,
                }
            )
        return ranking

    def _grams(self, text: str) -> "_Grams":
        """The message's tf-idf n-grams, as TfidfVectorizer.transform gives them (sublinear tf, idf,
        unit length), without building a sparse matrix: half of this component's time otherwise."""
        counts: Dict[int, int] = {}
        for gram in self._analyze(text):
            index = self._vocabulary.get(gram)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        indices = np.fromiter(counts, dtype=np.int64, count=len(counts))
        data = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * self._state["idf"][
            indices
        ]
        norm = np.linalg.norm(data)
        return _Grams(indices, data / norm if norm > 0 else data)

    def _first_of_each(self, order: List[int]) -> List[int]:
        """Positions in `order` of each service's first (best) fact."""
        seen: set = set()
        firsts = []
        for i, k in enumerate(order):
            if self._service_of[k] not in seen:
                seen.add(self._service_of[k])
                firsts.append(i)
        return firsts


def _may_ask(text: str) -> bool:
    """Whether a message may ask something a fact answers: not a number alone, not one word
    that is no question («نعم», "ok"; «متى؟» is)."""
    words = re.findall(r"[^\W\d_]+", text)
    return bool(words) and (len(text.split()) > 1 or answers.is_question(text))


class _Grams(NamedTuple):
    indices: np.ndarray
    data: np.ndarray


class _Columns:
    """A sparse matrix of rows × n-grams, multiplied by a message's few dozen n-grams in a few
    numpy calls (scipy's column indexing builds three sparse matrices a call)."""

    def __init__(self, matrix) -> None:
        csc = matrix.tocsc()
        self._indptr, self._rows, self._values, self._height = csc.indptr, csc.indices, csc.data, csc.shape[0]

    def dot(self, columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
        starts, ends = self._indptr[columns], self._indptr[columns + 1]
        lengths = ends - starts
        # The positions of every entry of the chosen columns, in one array.
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        return np.bincount(
            self._rows[offsets], weights=self._values[offsets] * np.repeat(weights, lengths), minlength=self._height
        )


def _features(grams, centred: np.ndarray, dense_weight: float):
    import scipy.sparse

    return scipy.sparse.hstack([grams, scipy.sparse.csr_matrix(centred * dense_weight)]).tocsr()


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
