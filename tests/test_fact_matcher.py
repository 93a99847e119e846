"""The fact matcher of the trained model (components/fact_matcher.py): its served sums are the regression's."""

import json
import tarfile

import numpy as np
import pytest

from components.fact_matcher import FactMatcher, _features
from components.sentence_encoder import encoder
from musaed import catalogue

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
        best = int(np.argmax(p))
        assert [ranking[0]["service"], ranking[0]["fact"]] == state["facts"][int(state["classes"][best])]
        assert ranking[0]["score"] == pytest.approx(p[best], abs=1e-4)
        assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
        # Each service's best fact is there, with its chance among that service's facts.
        services = [state["facts"][int(c)][0] for c in state["classes"]]
        assert {r["service"] for r in ranking} == set(services)
        named = [state["facts"][int(c)] for c in state["classes"]]
        for r in ranking:
            mine = sum(q for q, s in zip(p, services, strict=True) if s == r["service"])
            assert r["in_service"] == pytest.approx(p[named.index([r["service"], r["fact"]])] / mine, abs=1e-3)
        # And its statement's: the facts of every service written from the same source sentence.
        sentence = {(f.service, f.id): " ".join(f.source_sentence.split()) for f in catalogue.load().facts()}
        for r in ranking:
            mine = sentence[(r["service"], r["fact"])]
            same = [q for q, f in zip(p, named, strict=True) if sentence[tuple(f)] == mine]
            assert r["statement"] == pytest.approx(sum(same), abs=1e-3) and r["statement"] >= r["score"] - 1e-4


def test_every_fact_of_the_catalogue_is_in_the_model(matcher):
    trained = {tuple(f) for f in matcher._state["facts"]}
    assert trained == {(f.service, f.id) for f in catalogue.load().facts()}
