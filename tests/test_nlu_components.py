"""The custom NLU components the model is trained and served with (no trained model needed)."""

import numpy as np
import pytest
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from components.arabic_normalizer import ArabicNormalizer


def tokens_of(text):
    tokenizer = ArabicNormalizer(ArabicNormalizer.get_default_config())
    return tokenizer.tokenize(Message(data={TEXT: text}), TEXT)


def test_tokens_keep_their_place_and_carry_the_normalised_reading():
    text = "ابغى أجدد هويتي 2923760926"
    tokens = tokens_of(text)
    assert [text[t.start : t.end] for t in tokens] == [t.text for t in tokens]
    assert [t.lemma for t in tokens] == ["ابغي", "اجدد", "هويتي", "2923760926"]


def test_arabizi_tokens_are_read_in_arabic_letters():
    tokens = tokens_of("shukran 3ndi")
    assert [t.text for t in tokens] == ["shukran", "3ndi"]
    assert [t.lemma for t in tokens] == ["شكرا", "عندي"]


def test_a_long_message_is_cut_to_max_tokens():
    assert len(tokens_of("كلمة " * 500)) == ArabicNormalizer.get_default_config()["max_tokens"]


def sentence_vector(text):
    from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE

    from components.sentence_encoder import SentenceEncoderFeaturizer

    featurizer = SentenceEncoderFeaturizer(SentenceEncoderFeaturizer.get_default_config(), "encoder")
    message = Message(data={TEXT: text})
    ArabicNormalizer(ArabicNormalizer.get_default_config()).process([message])
    featurizer.process([message])
    features = [f for f in message.features if f.attribute == TEXT]
    assert all(f.type == FEATURE_TYPE_SENTENCE for f in features)
    return features[0].features[0] if features else None


def test_the_sentence_vector_puts_one_request_near_its_paraphrases():
    import numpy as np

    renew = sentence_vector("أريد تجديد بطاقة الهوية الوطنية")
    assert renew.shape == (384,)
    near = [sentence_vector("ابي اجدد هويتي"), sentence_vector("I want to renew my national ID card")]
    far = [sentence_vector("كم سعر البيتكوين اليوم"), sentence_vector("اكتب لي قصيدة عن البحر")]
    # e5's vectors all lie within a narrow cone, so compare distances, not
    # absolute cosines: each paraphrase is nearer than each other subject.
    assert min(np.dot(renew, v) for v in near) > max(np.dot(renew, v) for v in far)


def test_an_empty_message_gets_no_sentence_vector():
    assert sentence_vector("   ") is None


TOY_EXAMPLES = {
    "thank": ["شكرا", "شكرا جزيلا", "يعطيك العافية", "thanks a lot", "مشكور"],
    "report_lost_id": ["ضاعت هويتي", "فقدت بطاقة الهوية", "هويتي ضايعة", "I lost my ID card", "انسرقت الهوية"],
    "ask_fees": ["كم الرسوم", "بكم التجديد", "كم السعر", "how much does it cost", "كم تكلف"],
}


def toy_parser(tmp_path, other_texts=()):
    """Train the pipeline's head and the classifier on TOY_EXAMPLES; return a parse function.

    `other_texts` join the n-gram vocabulary without an intent, as the bot's
    responses do in a full `rasa train`.
    """
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from components.intent_classifier import LinearIntentClassifier
    from components.sentence_encoder import SentenceEncoderFeaturizer

    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    tokenizer = ArabicNormalizer(ArabicNormalizer.get_default_config())
    ngrams = CountVectorsFeaturizer.create(
        {**CountVectorsFeaturizer.get_default_config(), "analyzer": "char_wb", "min_ngram": 2, "max_ngram": 4},
        storage,
        Resource("ngrams"),
        context,
    )
    encoder = SentenceEncoderFeaturizer(SentenceEncoderFeaturizer.get_default_config(), "encoder")
    data = TrainingData(
        [Message(data={TEXT: t, "intent": i}) for i, ts in TOY_EXAMPLES.items() for t in ts]
        + [Message(data={TEXT: t}) for t in other_texts]
    )
    tokenizer.process_training_data(data)
    ngrams.train(data)
    ngrams.process_training_data(data)
    encoder.process_training_data(data)
    resource = Resource("classifier")
    config = LinearIntentClassifier.get_default_config()
    LinearIntentClassifier.create(config, storage, resource, context).train(data)
    classifier = LinearIntentClassifier.load(config, storage, resource, context)

    def parse(text):
        message = Message(data={TEXT: text})
        tokenizer.process([message])
        ngrams.process([message])
        encoder.process([message])
        classifier.process([message])
        return message

    parse.classifier = classifier
    return parse


def test_the_intent_classifier_learns_reads_back_and_leaves_empty_messages_alone(tmp_path):
    parse = toy_parser(tmp_path)
    lost = parse("ضيعت بطاقتي الوطنية")
    assert lost.get("intent")["name"] == "report_lost_id"
    ranking = lost.get("intent_ranking")
    assert [r["name"] for r in ranking][0] == "report_lost_id" and len(ranking) == 3
    assert abs(sum(r["confidence"] for r in ranking) - 1) < 1e-6
    # No word of it is in the examples: the sentence vector carries it.
    assert parse("what is the price").get("intent")["name"] == "ask_fees"
    assert parse("🙂").get("intent") == {"name": None, "confidence": 0.0}


def test_each_intent_s_nearest_examples_are_features(tmp_path):
    classifier = toy_parser(tmp_path).classifier
    weights = classifier._weights
    # n-grams, the sentence vector, then one similarity per intent for each.
    assert weights["coef"].shape[1] == len(weights["idf"]) + 384 + 2 * len(TOY_EXAMPLES)
    assert weights["example_vectors"].shape == (sum(map(len, TOY_EXAMPLES.values())), 384)


def test_the_served_scores_are_the_training_matrix_s(tmp_path):
    # Served, the classifier sums each block's part without building the
    # matrix it was trained on (for speed); the scores must be the same.
    parse = toy_parser(tmp_path)
    classifier = parse.classifier
    w = classifier._weights
    texts = ["ضيعت بطاقتي الوطنية", "كم الرسوم", "what is the price", "ابي اجدد", "1012345678", "بطاقتي بطاقتي بطاقتي"]
    for text in texts:
        message = parse(text)
        sparse, dense = classifier._features(message)
        matrix = classifier._matrix(*classifier._rows([sparse], [dense]))
        expected = (matrix @ w["coef"].T).ravel() + w["intercept"]
        # The same sums in another order: equal up to float rounding.
        assert classifier._scores(sparse, dense) == pytest.approx(expected, abs=1e-5)


def test_a_loaded_classifier_keeps_blas_to_one_thread(tmp_path):
    # Spinning BLAS threads would take the CPU the sentence encoder needs.
    from threadpoolctl import threadpool_info

    toy_parser(tmp_path)
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)


def test_nearest_is_the_mean_of_each_intent_s_closest_examples():
    from components.intent_classifier import LinearIntentClassifier

    config = {**LinearIntentClassifier.get_default_config(), "neighbours": 2}
    classifier = LinearIntentClassifier(config, None, None)
    classifier._weights = {"classes": np.array(["a", "b"]), "example_intents": np.array([0, 0, 0, 1])}
    similarity = np.array([[0.9, 0.1, 0.5, 0.4]])
    # a: the two closest of three (0.9, 0.5); b has one example only.
    assert classifier._nearest(similarity) == pytest.approx(np.array([[0.7, 0.4]]))


def test_ngrams_of_no_intent_example_do_not_change_the_answer(tmp_path):
    # A response the bot says adds the letter n-grams of «الوطنية» to the
    # vocabulary.  No intent example has them, so they must not weaken the
    # n-grams of «ضيعت بطاقتي» that the examples do have.
    text = "ضيعت بطاقتي الوطنية"
    (tmp_path / "plain").mkdir()
    (tmp_path / "wider").mkdir()
    plain = toy_parser(tmp_path / "plain")(text).get("intent_ranking")
    response = "تجديد الهوية الوطنية يتم عبر أبشر"
    wider = toy_parser(tmp_path / "wider", other_texts=[response])(text).get("intent_ranking")
    assert [r["name"] for r in wider] == [r["name"] for r in plain]
    assert [r["confidence"] for r in wider] == pytest.approx([r["confidence"] for r in plain])


def test_a_number_on_its_own_is_encoded_by_its_shape_once_and_words_as_they_are():
    import numpy as np

    from components.sentence_encoder import SentenceEncoderFeaturizer, encoder, number_shape

    e5 = encoder(1)
    # Two ids, in two scripts, read as one ten-digit number; a code as six digits.
    assert np.allclose(sentence_vector("1098765439"), e5.query("0000000000"), atol=1e-6)
    assert np.allclose(sentence_vector("١٠١٢٣٤٥٦٧٢"), sentence_vector("1098765439"), atol=1e-6)
    assert not np.allclose(sentence_vector("482913"), sentence_vector("1098765439"), atol=1e-3)
    # Anything with a letter is the sentence it is, digits included.
    assert number_shape("رقم هويتي 1098765439") is None and number_shape("MSD-20261234") is None
    assert np.allclose(sentence_vector("رقم هويتي 1098765439"), e5.query("رقم هويتي 1098765439"), atol=1e-6)
    assert number_shape("👍") is None and number_shape("؟؟") is None
    # Each shape is encoded once per featurizer, in training as when served.
    featurizer = SentenceEncoderFeaturizer(SentenceEncoderFeaturizer.get_default_config(), "encoder")
    messages = [Message(data={TEXT: t}) for t in ("1098765439", "2012345670", "كم الرسوم", "482913")]
    featurizer.process(messages)
    assert sorted(featurizer._shapes) == ["000000", "0000000000"]
    vectors = [m.get_dense_features(TEXT)[1].features.reshape(-1) for m in messages]
    assert np.array_equal(vectors[0], vectors[1])
    assert np.allclose(vectors[2], e5.query("كم الرسوم"), atol=1e-6)


def test_a_wall_of_text_is_encoded_only_up_to_max_chars():
    import numpy as np

    from components.sentence_encoder import SentenceEncoderFeaturizer

    limit = SentenceEncoderFeaturizer.get_default_config()["max_chars"]
    kept = ("ضاعت هويتي " * limit)[:limit]
    assert np.allclose(sentence_vector(kept + " كم سعر البيتكوين" * 300), sentence_vector(kept))


# -- the language entity and the other-service guard --------------------------------


def _message(text, intent=None, ranking=()):
    m = Message(data={TEXT: text})
    if intent:
        m.set("intent", {"name": intent, "confidence": 0.9})
        m.set("intent_ranking", [{"name": n, "confidence": c} for n, c in ranking])
    return m


@pytest.mark.parametrize(
    "text, language",
    [("how do I renew my iqama?", "en"), ("ابي اجدد اقامتي", "ar"), ("shukran", "ar"), ("1010000014", None)],
)
def test_each_message_carries_its_language_as_an_entity_or_none(text, language):
    from components.language_detector import LanguageDetector

    [m] = LanguageDetector().process([_message(text)])
    found = [e["value"] for e in m.get("entities") or [] if e["entity"] == "language"]
    assert found == ([language] if language else [])


def test_a_message_about_another_government_service_is_other_service_not_ours():
    from components.other_service_guard import OtherServiceGuard

    lost_passport = _message("ضاع جوازي كيف أطلع بدل فاقد؟", "report_lost_id", [("report_lost_id", 0.9)])
    lost_id = _message("ضاعت هويتي كيف أطلع بدل فاقد؟", "report_lost_id", [("report_lost_id", 0.9)])
    both = _message("ابي اجدد جوازي وهويتي", "renew_national_id", [("renew_national_id", 0.8)])
    followup = _message("متى يوصل الجواز؟", "ask_delivery", [("ask_delivery", 0.7)])
    OtherServiceGuard().process([lost_passport, lost_id, both, followup])
    assert lost_passport.get("intent") == {"name": "other_service", "confidence": 0.9}
    assert lost_passport.get("intent_ranking")[0]["name"] == "other_service"
    assert lost_id.get("intent")["name"] == "report_lost_id"  # ours
    assert both.get("intent")["name"] == "renew_national_id"  # names ours too: the classifier decides
    assert followup.get("intent")["name"] == "ask_delivery"  # follow-ups: the action knows the context
