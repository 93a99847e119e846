"""Every service's facts come from the source articles: written in Arabic and English,
each with the seed file and the sentence it was copied from (issue 26, item 1)."""

import re
from pathlib import Path

import pytest
import yaml

from musaed import catalogue

ROOT = Path(__file__).resolve().parent.parent
# The source articles, copied from ../shared/seeds/ so that a clone holds what its facts cite.
SEEDS = ROOT / "docs" / "sources"
ARABIC = re.compile(r"[\u0600-\u06FF]")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
PLACEHOLDER = re.compile(r"\{(\w+)\}")

DATA = yaml.safe_load(catalogue.CATALOGUE_PATH.read_text(encoding="utf-8"))
SERVICES = DATA["services"]
FACTS = [(sid, fact) for sid, s in SERVICES.items() for fact in s.get("facts") or []]


def _collapsed(text: str) -> str:
    return " ".join(text.split())


def _seed(name: str) -> str:
    path = SEEDS / name
    assert path.is_file(), f"no seed file {name}"
    return _collapsed(path.read_text(encoding="utf-8"))


def _label(item):
    sid, fact = item
    return f"{sid}.{fact.get('id')}"


@pytest.mark.parametrize("sid", list(SERVICES))
def test_every_service_has_facts_with_unique_ids(sid):
    facts = SERVICES[sid].get("facts") or []
    assert facts, f"{sid} has no facts"
    ids = [f.get("id") for f in facts]
    assert all(isinstance(i, str) and SNAKE.match(i) for i in ids), ids
    assert len(ids) == len(set(ids)), f"{sid}: repeated fact ids"


@pytest.mark.parametrize("item", FACTS, ids=_label)
def test_a_fact_has_arabic_and_english_text(item):
    sid, fact = item
    text = fact["text"]
    assert set(text) == {"ar", "en"}, text
    assert ARABIC.search(text["ar"]), text["ar"]
    assert text["en"].strip() and not ARABIC.search(text["en"]), text["en"]
    # Only the service's own numbers are filled in (written once, in `numbers:`).
    numbers = SERVICES[sid].get("numbers") or {}
    for lang in ("ar", "en"):
        assert set(PLACEHOLDER.findall(text[lang])) <= set(numbers), text[lang]


@pytest.mark.parametrize("item", FACTS, ids=_label)
def test_a_fact_is_stated_by_its_source(item):
    _, fact = item
    source = fact["source"]
    sentence = _collapsed(source["sentence"])
    assert len(sentence) >= 10, sentence
    assert sentence in _seed(source["file"]), f"not in {source['file']}: {sentence}"
    # Other sentences that state the same are in their articles too.
    for also in source.get("also") or ():
        assert _collapsed(also["sentence"]) in _seed(also["file"]), f"not in {also['file']}: {also['sentence']}"
    # No figure of our own: a number in the answer is one the source sentence states.
    for lang in ("ar", "en"):
        for number in re.findall(r"\d+", PLACEHOLDER.sub("", fact["text"][lang])):
            assert number in sentence, (lang, number)


@pytest.mark.parametrize("item", FACTS, ids=_label)
def test_a_fact_has_questions_people_ask(item):
    _, fact = item
    questions = fact["questions"]
    assert len(questions) >= 6, len(questions)
    for q in questions:
        assert set(q) <= {"q", "a"} and isinstance(q["q"], str) and q["q"].strip(), q
        # `a: yes` / `a: no` are YAML booleans.
        assert q.get("a", True) in (True, False), q
    assert any(ARABIC.search(q["q"]) for q in questions)
    assert any(not ARABIC.search(q["q"]) for q in questions)


@pytest.mark.parametrize("sid", list(SERVICES))
def test_a_question_points_to_one_fact_of_its_service(sid):
    seen = {}
    for fact in SERVICES[sid].get("facts") or []:
        for q in fact["questions"]:
            key = _collapsed(q["q"].lower())
            assert seen.setdefault(key, fact["id"]) == fact["id"], (q["q"], seen[key], fact["id"])


def test_the_catalogue_with_its_facts_still_loads():
    catalogue.Catalogue(DATA, "ar")
    catalogue.Catalogue(DATA, "en")
