"""Intent classifier: logistic regression over letter n-grams and a sentence vector.

The two kinds of features know different things.  The letter n-grams
(CountVectorsFeaturizer on the normalised lemmas) know our own training
examples in every spelling; the sentence vector (components/sentence_encoder.py)
knows Arabic and English at large, dialect words our data lacks included.
A linear model over both, with tf-idf weights on the n-grams and the sentence
vectors centred on the training mean, did better on the held-out splits than
DIET on the same n-grams (bench/NOTES.md, round 4).  It is also
deterministic (no seed spread), trains in seconds and answers in a few
milliseconds.

Next to them, for each intent, how similar the message is to that intent's
three most similar examples (in n-grams, and in the sentence vector): a
nearest-neighbour view that lets one close example count where the linear
weights average it away (bench/NOTES.md, round 6).

Rasa's own LogisticRegressionClassifier reads the same features but neither
weights the counts nor centres the vectors, and fixes C=1; this one does the
three, with scikit-learn doing the fitting.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

_FILE = "linear_intent_classifier.npz"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # Chosen by 5-fold cross-validation on the training data, not on
            # the held-out splits (bench/NOTES.md, round 4).
            "C": 50.0,
            "dense_weight": 0.7,
            # How like a message is to each intent's nearest examples: the
            # mean similarity of its `neighbours` most similar examples of
            # each intent, in n-grams and in the sentence vector, as features
            # of that weight (0 leaves them out).
            "neighbours": 3,
            "neighbour_weight": 1.0,
            "max_iter": 5000,
            # Intents listed in `intent_ranking`; 0 lists all of them.
            "ranking_length": 10,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        weights: Optional[Dict[Text, np.ndarray]] = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._weights = None
        self._tfidf = None
        self._examples = None
        self._fast: Optional[Dict[Text, Any]] = None
        if weights is not None:
            self._set_weights(weights)

    def _set_weights(self, weights: Dict[Text, np.ndarray]) -> None:
        from sklearn.feature_extraction.text import TfidfTransformer

        # Sub-linear tf-idf, rows to unit length; idf from the training data.
        self._tfidf = TfidfTransformer(sublinear_tf=True)
        self._tfidf.idf_ = weights["idf"]
        self._weights = weights
        self._examples = None
        self._fast = None
        if "examples_data" in weights:
            self._examples = scipy.sparse.csr_matrix(
                (weights["examples_data"], weights["examples_indices"], weights["examples_indptr"]),
                shape=tuple(weights["examples_shape"]),
            )

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LinearIntentClassifier":
        return cls(config, model_storage, resource)

    @staticmethod
    def _features(message: Message) -> Tuple[Optional[scipy.sparse.spmatrix], Optional[np.ndarray]]:
        sparse = message.get_sparse_features(TEXT)[1]
        dense = message.get_dense_features(TEXT)[1]
        return (
            sparse.features if sparse is not None else None,
            dense.features.reshape(-1) if dense is not None else None,
        )

    def _rows(self, sparse_rows: List, dense_rows: List) -> Tuple[scipy.sparse.csr_matrix, Optional[np.ndarray]]:
        """Each message's tf-idf n-gram row and centred sentence vector, both of unit length."""
        weighted = self._tfidf.transform(scipy.sparse.vstack(sparse_rows).tocsr()).tocsr()
        if not dense_rows:
            return weighted, None
        # Sentence vectors of one encoder all point roughly the same way
        # (cosine ~0.8 between unrelated sentences); centring on the training
        # mean leaves the part that tells sentences apart.
        dense = np.vstack(dense_rows) - self._weights["mean"]
        dense /= np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-12)
        return weighted, dense

    def _nearest(self, similarity: np.ndarray) -> np.ndarray:
        """Per intent, the mean of each row's `neighbours` highest similarities to its examples."""
        labels = self._weights["example_intents"]
        k = self._config["neighbours"]
        out = np.zeros((similarity.shape[0], len(self._weights["classes"])))
        for i in range(out.shape[1]):
            block = similarity[:, labels == i]
            n = min(k, block.shape[1])
            if n:
                out[:, i] = np.partition(block, -n, axis=1)[:, -n:].mean(axis=1)
        return out

    def _matrix(
        self, weighted: scipy.sparse.csr_matrix, dense: Optional[np.ndarray], leave_out_self: bool = False
    ) -> scipy.sparse.csr_matrix:
        blocks = [weighted]
        if dense is not None:
            blocks.append(scipy.sparse.csr_matrix(dense * self._config["dense_weight"]))
        weight = self._config["neighbour_weight"]
        if weight and self._examples is not None:
            similarities = [(weighted @ self._examples.T).toarray()]
            if dense is not None and "example_vectors" in self._weights:
                similarities.append(dense @ self._weights["example_vectors"].T)
            for similarity in similarities:
                if leave_out_self:
                    # A training example is its own nearest neighbour; a new
                    # message never is.  Without this the model would learn
                    # to trust a similarity of 1 that it never sees again.
                    np.fill_diagonal(similarity, -1.0)
                blocks.append(scipy.sparse.csr_matrix(self._nearest(similarity) * weight))
        return scipy.sparse.hstack(blocks).tocsr()

    def train(self, training_data: TrainingData) -> Resource:
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.linear_model import LogisticRegression

        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        features = [self._features(e) for e in examples]
        kept = [(e, s, d) for e, (s, d) in zip(examples, features, strict=True) if s is not None]
        if not kept:
            logger.debug("No intent examples with features: nothing to train.")
            return self._resource
        sparse_rows = [s for _, s, _ in kept]
        dense_rows = [d for _, _, d in kept if d is not None]
        if dense_rows and len(dense_rows) != len(kept):
            raise ValueError("Every intent example needs the same features.")

        counts = scipy.sparse.vstack(sparse_rows).tocsc()
        idf = TfidfTransformer().fit(counts).idf_
        # The n-gram vocabulary also holds the bot's responses in a full
        # training.  An n-gram no intent example has is no evidence for any
        # intent; weighted 0, it cannot dilute the n-grams that are when a
        # message's row is scaled to unit length.
        idf[counts.getnnz(axis=0) == 0] = 0.0
        self._set_weights({"idf": idf})
        if dense_rows:
            self._weights["mean"] = np.vstack(dense_rows).mean(axis=0)
        weighted, dense = self._rows(sparse_rows, dense_rows)
        y = np.array([e.get(INTENT) for e, _, _ in kept])
        classes = np.unique(y)
        if self._config["neighbour_weight"]:
            self._weights.update(
                classes=classes,
                example_intents=np.searchsorted(classes, y),
                examples_data=weighted.data,
                examples_indices=weighted.indices,
                examples_indptr=weighted.indptr,
                examples_shape=np.array(weighted.shape),
            )
            self._examples = weighted
            if dense is not None:
                self._weights["example_vectors"] = dense
        X = self._matrix(weighted, dense, leave_out_self=True)
        clf = LogisticRegression(C=self._config["C"], max_iter=self._config["max_iter"])
        clf.fit(X, y)
        self._weights.update(coef=clf.coef_, intercept=clf.intercept_, classes=np.array(clf.classes_))
        self._fast = None
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(directory / _FILE, **self._weights)
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "LinearIntentClassifier":
        try:
            with model_storage.read_from(resource) as directory:
                with np.load(directory / _FILE, allow_pickle=False) as z:
                    weights = {k: z[k] for k in z.files}
        except (ValueError, FileNotFoundError):
            logger.debug("No trained intent classifier found: it will predict nothing.")
            weights = None
        # Served, the classifier multiplies one message's vector by the
        # examples'.  OpenBLAS runs that on a thread per core, and its threads
        # spin on after each product, taking the CPU the sentence encoder
        # needs for the next message (bench/NOTES.md, round 6).
        threadpool_limits(limits=1, user_api="blas")
        return cls(config, model_storage, resource, weights)

    def _scores(self, counts: scipy.sparse.spmatrix, dense: Optional[np.ndarray]) -> np.ndarray:
        """One message's score for each intent: `_matrix(...) @ coef.T + intercept`, term by term.

        The same sums as the training matrix, without building it: the matrix,
        its sparse products and scikit-learn's input checks cost more than a
        third of the Rasa server's time per message (bench/NOTES.md, round 9).
        tests/test_nlu_components.py checks both give the same scores.
        """
        fast = self._fast or self._prepare_fast()
        counts = scipy.sparse.csr_matrix(counts)
        counts.sum_duplicates()
        counts.eliminate_zeros()
        # Sub-linear tf-idf, unit length: TfidfTransformer(sublinear_tf=True).transform.
        columns = counts.indices
        values = (np.log(counts.data) + 1.0) * fast["idf"][columns]
        norm = np.sqrt(values @ values)
        if norm:
            values = values / norm
        scores = fast["coef_ngrams"][:, columns] @ values + fast["intercept"]
        weight = self._config["neighbour_weight"]
        similarities = []
        if "examples_by_ngram" in fast:
            rows = fast["examples_by_ngram"][columns]  # n-gram × example
            similarities.append(rows.T @ values)
        if dense is not None:
            vector = dense - self._weights["mean"]
            vector /= max(np.linalg.norm(vector), 1e-12)
            scores += fast["coef_dense"] @ vector * self._config["dense_weight"]
            if "example_vectors" in fast:
                similarities.append(fast["example_vectors"] @ vector)
        for coef, similarity in zip(fast["coef_nearest"], similarities, strict=True):
            # `_nearest` for one row: each intent's examples in a row of `groups`, padded
            # with an index whose similarity is -inf, so each row's top k are its own.
            table = np.append(similarity, -np.inf)[fast["groups"]]
            k = fast["k"]
            top = np.partition(table, -k, axis=1)[:, -k:] if k else table[:, :0]
            nearest = np.where(np.isfinite(top), top, 0.0).sum(axis=1) / fast["group_k"]
            scores += coef @ nearest * weight
        return scores

    def _prepare_fast(self) -> Dict[Text, Any]:
        """The trained weights split by the blocks of `_matrix`, the examples indexed by n-gram."""
        w = self._weights
        coef = w["coef"]
        vocabulary = len(w["idf"])
        fast: Dict[Text, Any] = {"idf": w["idf"], "intercept": w["intercept"], "coef_ngrams": coef[:, :vocabulary]}
        start = vocabulary
        if "mean" in w:
            fast["coef_dense"] = coef[:, start : start + len(w["mean"])]
            start += len(w["mean"])
        fast["coef_nearest"] = []
        if self._config["neighbour_weight"] and self._examples is not None:
            fast["examples_by_ngram"] = self._examples.T.tocsr()
            if "example_vectors" in w:
                fast["example_vectors"] = w["example_vectors"]
            classes = len(w["classes"])
            groups = [np.flatnonzero(w["example_intents"] == i) for i in range(classes)]
            width = max(map(len, groups))
            padding = len(w["example_intents"])  # the index of the appended -inf
            fast["groups"] = np.array([np.pad(g, (0, width - len(g)), constant_values=padding) for g in groups])
            fast["k"] = min(self._config["neighbours"], width)
            # What each intent's mean is over: an intent without examples gets 0.
            fast["group_k"] = np.maximum([min(self._config["neighbours"], len(g)) for g in groups], 1)
            for _ in range(1 + ("example_vectors" in w)):
                fast["coef_nearest"].append(coef[:, start : start + classes])
                start += classes
        if start != coef.shape[1]:
            raise ValueError("The classifier's weights do not match its configuration.")
        self._fast = fast
        return fast

    def rank_every_intent(self) -> None:
        """List every intent in `intent_ranking` (customer care's look-up)."""
        self._config["ranking_length"] = 0

    def process(self, messages: List[Message]) -> List[Message]:
        if self._weights is None:
            return messages
        w = self._weights
        for message in messages:
            sparse, dense = self._features(message)
            if sparse is None or not sparse.nnz:
                # Nothing to read (emoji, punctuation): no intent; the
                # fallback classifier after us answers it.
                message.set(INTENT, {"name": None, "confidence": 0.0}, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
                continue
            scores = self._scores(sparse, dense if "mean" in w else None)
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
            order = np.argsort(-probs)[: self._config["ranking_length"] or len(probs)]
            ranking = [{"name": str(w["classes"][i]), "confidence": float(probs[i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
