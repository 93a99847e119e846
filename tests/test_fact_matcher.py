"""The fact matcher of the trained model (components/fact_matcher.py): its served sums are the regression's."""

import json
import tarfile

import numpy as np
import pytest

from components.fact_matcher import FactMatcher, _features
from components.sentence_encoder import encoder
from musaed import answers, catalogue

MESSAGES = ["هل تنفع الهوية الرقمية في البنك؟", "how long does delivery take?", "وش الشروط", "كم سعر الذهب اليوم"]


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    from scripts.servers import MODEL  # scripts/servers.py (on the path through conftest)

    where = tmp_path_factory.mktemp("model")
    with tarfile.open(MODEL) as archive:
        members = [m for m in archive.getmembers() if "fact_matcher" in m.name]
        archive.extractall(where, members=members)
    [arrays] = where.rglob("fact_matcher.npz")
    with np.load(arrays) as z:
        state = {k: z[k] for k in z.files}
    state.update(json.loads(arrays.with_name("fact_matcher.json").read_text(encoding="utf-8")))
    m = FactMatcher({**FactMatcher.get_default_config()}, None, None, state)
    m._state["grams"] = m._vectorizer.transform(state["texts"])
    m._state["example_grams"] = m._vectorizer.transform([t for t, _ in state["examples"]])
    m._prepare()
    return m


def test_the_served_ranking_is_the_regressions_softmax(matcher):
    state, config = matcher._state, matcher._config
    for text, vector in zip(MESSAGES, np.atleast_2d(encoder(1).query(MESSAGES)), strict=True):
        ranking = matcher.rank(text, vector)
        centred = vector - state["mean"]
        centred /= np.linalg.norm(centred)
        grams = matcher._vectorizer.transform([text])
        logits = np.asarray(_features(grams, centred.reshape(1, -1), config["dense_weight"]) @ state["coef"].T)
        logits = logits.reshape(-1) + state["intercept"]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        # The best fact: the classes of questions the sources do not answer are never ranked.
        facts = np.array([f[1] != answers.NOT_IN_SOURCES for f in (state["facts"][int(c)] for c in state["classes"])])
        best = int(np.argmax(np.where(facts, p, -1.0)))
        assert [ranking[0]["service"], ranking[0]["fact"]] == state["facts"][int(state["classes"][best])]
        assert ranking[0]["score"] == pytest.approx(p[best], abs=1e-4)
        assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
        assert all(r["fact"] != answers.NOT_IN_SOURCES for r in ranking)
        # Each service's best fact is there, with its chance among that service's facts.
        services = [state["facts"][int(c)][0] for c in state["classes"]]
        assert {r["service"] for r in ranking} == set(services)
        named = [state["facts"][int(c)] for c in state["classes"]]
        for r in ranking:  # the sum over the service's classes counts its not-in-the-sources class too
            mine = sum(q for q, s in zip(p, services, strict=True) if s == r["service"])
            assert r["in_service"] == pytest.approx(p[named.index([r["service"], r["fact"]])] / mine, abs=1e-3)
        # And its statement's: the facts of every service written from the same source sentence.
        sentence = {(f.service, f.id): " ".join(f.source_sentence.split()) for f in catalogue.load().facts()}
        for r in ranking:
            mine = sentence[(r["service"], r["fact"])]
            same = [q for q, f in zip(p, named, strict=True) if sentence.get(tuple(f)) == mine]
            assert r["statement"] == pytest.approx(sum(same), abs=1e-3) and r["statement"] >= r["score"] - 1e-4


def test_every_fact_of_the_catalogue_is_in_the_model(matcher):
    trained = {tuple(f) for f in matcher._state["facts"]}
    assert {f for f in trained if f[1] != answers.NOT_IN_SOURCES} == {
        (f.service, f.id) for f in catalogue.load().facts()
    }
    # And each service's questions that the sources do not answer, as one class of it.
    assert {s for s, f in trained if f == answers.NOT_IN_SOURCES} == set(catalogue.load().services)


def test_questions_the_sources_do_not_answer_take_their_services_probability(matcher):
    # The class's own training questions (in the model): their service's best fact stays under the bar.
    rows = [r for r in answers.fact_rows(catalogue.load()) if r.fact == answers.NOT_IN_SOURCES]
    assert len(rows) >= 300
    texts = [r.text for r in rows]
    under = [
        answers.best_fact(matcher.rank(t, v), r.service)["in_service"] < answers.ANSWER_SCORE
        for t, v, r in zip(texts, np.atleast_2d(encoder(1).query(texts)), rows, strict=True)
    ]
    assert np.mean(under) >= 0.9


def test_how_do_i_is_nearer_the_services_examples_or_the_facts_questions(matcher):
    def best(text, service):
        return answers.best_fact(matcher.rank(text, np.atleast_2d(encoder(1).query([text]))[0]), service)

    plain = best("كيف اجدد الهوية الوطنية؟", "renew_national_id")
    assert plain["near_service"] > plain["near_fact"]
    printing = best("how do I print the digital ID on paper?", "digital_id")
    assert printing["fact"] == "printing" and printing["near_fact"] > printing["near_service"]


def test_a_messages_n_grams_and_their_products_are_sklearns(matcher):
    # The per-message path (components/fact_matcher.py, _grams and _Columns) skips building sparse
    # matrices; it must give TfidfVectorizer.transform's numbers and scipy's products exactly.
    grams = matcher._state["grams"].tocsc()
    for text in [*MESSAGES, "", "!!!", "kif ajadid hawiyati?", "الهوية الرقمية الهوية الرقمية"]:
        expected = matcher._vectorizer.transform([text])
        mine = matcher._grams(text)
        dense = np.zeros(expected.shape[1])
        dense[mine.indices] = mine.data
        assert np.allclose(dense, expected.toarray().reshape(-1))
        product = grams[:, expected.indices] @ expected.data if expected.nnz else np.zeros(grams.shape[0])
        assert np.allclose(matcher._row_grams.dot(mine.indices, mine.data), np.asarray(product).reshape(-1))


def test_an_id_a_code_or_a_bare_yes_is_not_ranked():
    from components.fact_matcher import _may_ask

    assert not any(_may_ask(t) for t in ("1012345678", "4821", "نعم", "ok", "/affirm", ""))
    assert all(_may_ask(t) for t in ("متى؟", "وش الشروط", "how much?", "طباعة الهوية الرقمية"))
