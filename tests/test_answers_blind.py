"""The question asked, answered, on a split written blind from the articles (bench/answers.py).

Through the contract: each question goes to the running bot over REST, in a
new conversation (after the service's button when it is asked in context),
and the reply is read as a person reads it. The goals of issue 26 are 90 %
answered with the right fact and 90 % of unknowns declined; they are not met
yet, and the figures below are today's (README, Figures), held as floors so
that a change that answers fewer questions, declines fewer unknowns or states
more facts that do not answer fails here.
"""

import pytest

from bench import answers as blind

pytestmark = pytest.mark.e2e

ANSWERED_FLOOR = 0.50
DECLINED_FLOOR = 0.45
# Unknowns given a fact anyway: a fact that does not answer the question.
WRONG_FACT_CEILING = 0.20


@pytest.fixture(scope="module")
def measured(servers):
    return blind.evaluate(servers.url, blind.load_split())


def test_every_answerable_question_cites_a_sentence_of_the_articles():
    questions = blind.load_split()
    assert len(questions) >= 180 and {q["lang"] for q in questions} == {"ar", "en"}
    for q in (q for q in questions if q["answerable"]):
        article = " ".join((blind.ROOT / "docs" / "sources" / q["source"]).read_text(encoding="utf-8").split())
        assert " ".join(q["sentence"].split()) in article, q["q"]


def test_questions_the_articles_answer_get_the_fact(measured):
    assert measured["answered_right"] >= ANSWERED_FLOOR, measured["misses"][:20]


def test_questions_they_do_not_answer_are_declined(measured):
    assert measured["declined"] >= DECLINED_FLOOR
    assert measured["unknown_given_a_fact"] <= WRONG_FACT_CEILING
