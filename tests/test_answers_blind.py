"""The question asked, answered, on five splits written blind from the articles (bench/answers.py).

Through the contract: each question goes to the running bot over REST, in a
new conversation (after the service's button when it is asked in context),
and the reply is read as a person reads it. The goals are 90 % answered with
the right fact and 90 % of unknowns declined; they are not met yet, and the
floors below sit a few points under today's figures on each split
(bench/README.md), so that a change that answers fewer questions, declines
fewer unknowns or states more facts that do not answer fails here. The first
two splits' misses have been read by the team (the figure rule in
musaed/answers.py came after reading the second's); the third, written
blind on 2026-12-06 by someone who read only the articles, was measured
before anyone read its misses, and read after; the fourth, written the same
way later that day, was measured once on commit 4ef4430 before its misses
were read (and read on 2026-12-06, fourth session); the fifth, written the
same way, was measured once at the end of that session, before its misses
were read.
"""

import pytest

from bench import answers as blind

pytestmark = pytest.mark.e2e

NAMES = ("questions", "questions_2", "questions_3", "questions_4", "questions_5")
SPLITS = {name: blind.SPLIT.with_name(f"{name}.yml") for name in NAMES}
# Per split: answered right, declined, and unknowns given a fact anyway (a fact that does
# not answer the question; a ceiling). Today (2026-12-06, fourth session): 78 % / 69 % / 8 %,
# 67 % / 80 % / 10 %, 72 % / 67 % / 15 %, 68 % / 79 % / 11 % and, on the fifth, measured
# once before its misses were read, 67 % / 73 % / 8 %. The bar moved from 0.7 to 0.5 when
# the matcher learnt what the sources do not answer (bench/NOTES.md): more answered and
# declined on four splits and in cross-validation, but the third declines 3 fewer (its
# floor went from 69 % to 62 %, its ceiling from 14 % to 19 %).
ANSWERED_FLOOR = {"questions": 0.73, "questions_2": 0.62, "questions_3": 0.67, "questions_4": 0.63, "questions_5": 0.62}
DECLINED_FLOOR = {"questions": 0.64, "questions_2": 0.75, "questions_3": 0.62, "questions_4": 0.74, "questions_5": 0.68}
WRONG_FACT_CEILING = {
    "questions": 0.12,
    "questions_2": 0.14,
    "questions_3": 0.19,
    "questions_4": 0.15,
    "questions_5": 0.12,
}


@pytest.fixture(scope="module", params=sorted(SPLITS))
def measured(request, servers):
    return request.param, blind.evaluate(servers.url, blind.load_split(SPLITS[request.param]))


@pytest.mark.parametrize("split", sorted(SPLITS))
def test_every_answerable_question_cites_a_sentence_of_the_articles(split):
    questions = blind.load_split(SPLITS[split])
    assert len(questions) >= 120 and {q["lang"] for q in questions} == {"ar", "en"}
    for q in (q for q in questions if q["answerable"]):
        article = " ".join((blind.ROOT / "docs" / "sources" / q["source"]).read_text(encoding="utf-8").split())
        assert " ".join(q["sentence"].split()) in article, q["q"]


def test_questions_the_articles_answer_get_the_fact(measured):
    split, figures = measured
    assert figures["answered_right"] >= ANSWERED_FLOOR[split], figures["misses"][:20]


def test_questions_they_do_not_answer_are_declined(measured):
    split, figures = measured
    assert figures["declined"] >= DECLINED_FLOOR[split]
    assert figures["unknown_given_a_fact"] <= WRONG_FACT_CEILING[split]


# Other domains that share our words (tests/ood/, 802 messages in three splits written
# blind): at most this share may be told one of our facts, end to end (0.6 % on 2026-12-06:
# five messages, such as a parenting question about a 12-year-old given the minors' age range).
FACTS_TO_OTHER_DOMAINS_CEILING = 0.01


def test_other_domains_are_not_told_our_facts(servers):
    from bench import nlu

    texts = [t for split in sorted(nlu.OUT_OF_DOMAIN.parent.glob("*.yml")) for _, t in nlu.out_of_domain_texts(split)]
    figures = blind.facts_to_other_domains(servers.url, texts)
    assert figures["messages"] >= 800
    assert figures["given_a_fact"] <= FACTS_TO_OTHER_DOMAINS_CEILING, figures["examples"]
