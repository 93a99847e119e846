"""Where the fact matcher's bar goes (musaed.answers.ANSWER_SCORE), measured without the blind split.

    python -m bench.fact_bar [--folds 5]

Five-fold cross-validation on the catalogue's own fact questions (the model
trained on four fifths, as components/fact_matcher.py trains), against the
team's questions about the services that the sources do not answer
(tests/answers/dev_unknowns.yml). For each bar: the share of held-out
questions whose right fact clears it, and the share of unknowns that stay
under it. The bar with the most of both together is the one used; the blind
split (tests/answers/questions.yml) is only ever measured (bench/answers.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEV_UNKNOWNS = ROOT / "tests" / "answers" / "dev_unknowns.yml"
BARS = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def measure(folds: int = 5, not_in_sources: bool = True) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from components.fact_matcher import FactMatcher, _features, _tfidf, _unit
    from components.sentence_encoder import encoder
    from musaed import answers, catalogue

    config = FactMatcher.get_default_config()
    rows = answers.fact_rows(catalogue.load(), not_in_sources=not_in_sources)
    texts = [r.text for r in rows]
    labels = np.array([f"{r.service}.{r.fact}" for r in rows])
    services = np.array([r.service for r in rows])
    vectors = np.atleast_2d(encoder(1).query(texts)).astype(np.float32)
    unknowns = [(sid, q) for sid, qs in yaml.safe_load(DEV_UNKNOWNS.read_text(encoding="utf-8")).items() for q in qs]
    unknown_vectors = np.atleast_2d(encoder(1).query([q for _, q in unknowns])).astype(np.float32)
    found, unknown_scores, held_out_unknowns = [], [], []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(texts, labels):
        vectorizer = _tfidf()
        grams = vectorizer.fit_transform([texts[i] for i in train])
        mean = vectors[train].mean(axis=0)

        weight = config["dense_weight"]
        clf = LogisticRegression(C=config["C"], max_iter=3000)
        clf.fit(_features(grams, _unit(vectors[train] - mean), weight), labels[train])
        held_out = _features(vectorizer.transform([texts[i] for i in test]), _unit(vectors[test] - mean), weight)
        for p, i in zip(clf.predict_proba(held_out), test, strict=True):
            fact, score = _best(clf.classes_, p, services[i])
            if labels[i].endswith("." + answers.NOT_IN_SOURCES):  # a held-out question of that class
                held_out_unknowns.append(score)
            else:
                found.append((fact == labels[i], score))
        asked = _features(vectorizer.transform([q for _, q in unknowns]), _unit(unknown_vectors - mean), weight)
        for p, (sid, _) in zip(clf.predict_proba(asked), unknowns, strict=True):
            unknown_scores.append(_best(clf.classes_, p, sid)[1])
    right = np.array(found)
    scores = np.array(unknown_scores)
    written = np.array(held_out_unknowns)
    by_bar = {
        str(bar): {
            "found": round(float(np.mean((right[:, 0] == 1) & (right[:, 1] >= bar))), 3),
            "declined": round(float(np.mean(scores < bar)), 3),
            # Held-out questions of musaed/not_in_sources.yml (the kind the matcher trains on).
            "declined_not_in_sources": round(float(np.mean(written < bar)), 3) if len(written) else None,
        }
        for bar in BARS
    }
    return {
        "top_fact_right": round(float(right[:, 0].mean()), 3),
        "bars": by_bar,
        "best_bar": max(by_bar, key=lambda b: by_bar[b]["found"] + by_bar[b]["declined"]),
        "questions": len(right),
        "unknowns": len(unknowns),
        "not_in_sources_held_out": len(written),
    }


def _best(classes, probabilities, service: str):
    """The most likely fact of `service` ("service.fact" classes) and its probability
    among that service's facts (the score musaed.answers.decide reads: `in_service`)."""
    from musaed import answers

    of_service = np.array([c.split(".")[0] for c in classes])
    is_fact = np.array([c.split(".")[1] != answers.NOT_IN_SOURCES for c in classes])
    mine = np.where(of_service == service, probabilities, 0.0)
    # The best fact; the service's not-in-the-sources class counts in the sum only.
    j = int(np.argmax(np.where(is_fact, mine, -1.0)))
    return classes[j], mine[j] / max(mine.sum(), 1e-12)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--without-not-in-sources", action="store_true", help="train without musaed/not_in_sources.yml")
    args = p.parse_args(argv)
    json.dump(measure(args.folds, not_in_sources=not args.without_not_in_sources), sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
