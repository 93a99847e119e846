"""Answering the question asked (musaed/answers.py): the decision, without a model."""

import pytest

from musaed import answers, catalogue, help_desk

AR, EN = catalogue.load("ar"), catalogue.load("en")
DIGITAL = AR.services["digital_id"]
OFFLINE = next(f for f in DIGITAL.facts if any(a == "yes" for _, a in f.questions))


def ranking(fact=OFFLINE, score=0.9, answer="yes", in_service=0.95):
    # `in_service`: the fact's chance among its service's facts (never below `score`).
    return [{"service": fact.service, "fact": fact.id, "score": score, "in_service": in_service, "answer": answer}]


@pytest.mark.parametrize(
    "text, question, yes_no",
    [
        ("هل تنفع الهوية الرقمية في البنك؟", True, True),
        ("لازم موعد لهوية ولدي ولا نروح على طول", True, True),
        ("وتشتغل بدون نت؟", True, False),
        ("do I have to visit a branch to report my lost ID?", True, True),
        ("what are the requirements for the iqama?", True, False),
        ("ابي اعرف هل لازم احضر", True, True),
        ("قدمت طلب في ابشر، اقدر اتابعه؟", True, True),  # the yes/no word opens the second clause
        ("ضاعت هويتي، وش اسوي؟", True, False),
        ("بيجيني اشعار اذا انقبل؟", True, True),  # a Gulf future verb: "will I get…?"
        ("بكم الرسوم؟", True, False),
        ("ابي اجدد هويتي", False, False),
        ("الهوية الرقمية", False, False),
        ("I lost my ID card", False, False),
    ],
)
def test_what_is_a_question_and_what_a_yes_no_one(text, question, yes_no):
    assert answers.is_question(text) is question
    assert answers.is_yes_no_question(text) is yes_no


def test_a_question_a_fact_answers_gets_that_fact_yes_first():
    got = answers.decide(AR, "هل تقدر تستخدمها؟", "digital_id", ranking())
    assert (got.kind, got.fact.id, got.yes_no) == ("fact", OFFLINE.id, "yes")
    text = answers.fact_text(AR, got)
    assert text.startswith(AR.labels["answer_yes"]) and text.endswith(OFFLINE.text)
    # In English, the same fact in English.
    assert answers.fact_text(EN, got).endswith(EN.fact("digital_id", OFFLINE.id).text)


def test_an_open_question_gets_no_yes_or_no():
    got = answers.decide(AR, "وين اقدر استخدمها؟", "digital_id", ranking())
    assert got.kind == "fact" and got.yes_no is None


def test_below_the_bar_a_question_is_declined_never_answered_with_the_guide():
    low = ranking(score=0.9, in_service=answers.ANSWER_SCORE - 0.01)
    assert answers.decide(AR, "هل تشتغل على ساعة ابل؟", "digital_id", low).kind == "unknown"
    declined = answers.unknown_text(AR, "digital_id")
    assert DIGITAL.name in declined and AR.call_centre["phone"] in declined


def test_a_figure_the_fact_does_not_give_is_declined_with_what_the_sources_say():
    fines = AR.fact("renew_national_id", "late_fines")
    near = ranking(fines, answer=None)
    got = answers.decide(AR, "كم الغرامة بالضبط لو تأخرت؟", "renew_national_id", near)
    assert got.kind == "unknown" and got.related == fines
    said = answers.reply_text(AR, "renew_national_id", got)
    assert said.startswith(answers.unknown_text(AR, "renew_national_id")) and said.endswith(fines.text)
    # Asked without a figure, the same fact answers; and a fact with the figure answers "how many days".
    assert answers.decide(AR, "فيه غرامة لو تأخرت؟", "renew_national_id", near).kind == "fact"
    days = AR.fact("report_lost_id", "delivery_time")
    near = ranking(days, answer=None)
    asked = "how many days does the card take to reach Jeddah?"
    assert answers.decide(EN, asked, "report_lost_id", near).kind == "fact"


def test_a_fact_of_another_service_does_not_answer():
    other = next(iter(AR.services["report_lost_id"].facts))
    assert answers.decide(AR, "هل يصير؟", "digital_id", ranking(fact=other)).kind == "unknown"


def test_how_do_i_gets_the_guide_and_a_bare_aspect_its_block():
    assert answers.decide(AR, "كيف اجدد هويتي؟", "renew_national_id", ranking()).kind == "guide"
    assert answers.decide(AR, "ابي اجدد هويتي", "renew_national_id", []).kind == "guide"
    fees = answers.decide(AR, "وش رسوم تجديد الاقامة؟", "renew_resident_id", [])
    assert (fees.kind, list(fees.aspects)) == ("aspects", ["fees"])
    # "How much" where the sources give no amount: declined, with what they do say.
    amount = answers.decide(AR, "كم رسوم تجديد الاقامة؟", "renew_resident_id", [])
    assert amount.kind == "unknown" and amount.related.id in AR.services["renew_resident_id"].aspect_facts["fees"]
    # And where the sources state no fees at all, the block says so itself.
    assert answers.decide(AR, "كم رسوم تجديد الهوية؟", "renew_national_id", []).kind == "aspects"
    # A fees question that asks more than the sources say is declined, not given the fees block.
    assert answers.decide(AR, "أقدر أدفع الرسوم بالتقسيط؟", "renew_resident_id", []).kind == "unknown"


def test_how_do_i_a_step_the_guide_does_not_spell_out_gets_its_fact_if_one_clearly_answers():
    printing = AR.fact("digital_id", "printing")
    clear = ranking(fact=printing, in_service=answers.ANSWER_SCORE, answer=None)
    assert answers.decide(EN, "how do i print it?", "digital_id", clear).fact.id == "printing"
    # Under the bar, or asked of the service as such, the guide as before: never a decline.
    under = ranking(fact=printing, in_service=answers.ANSWER_SCORE - 0.01, answer=None)
    assert answers.decide(EN, "how do i print it?", "digital_id", under).kind == "guide"
    assert (
        answers.decide(EN, "how do i get the digital id?", "digital_id", clear).kind == "guide"
    )  # names only the service
    sure = answers.SURE_OF_SERVICE
    assert answers.decide(EN, "how do i print it?", "digital_id", clear, read_as_service=sure).kind == "guide"


def test_with_no_service_one_statement_of_several_services_is_scored_whole():
    # «توصلني على عنواني الوطني؟»: the same sentence is a fact of several services; together it clears.
    split = [{**ranking(score=0.3)[0], "statement": answers.ANSWER_SCORE_ANY}]
    assert answers.decide_any(AR, "هل تنفع؟", split).fact.id == OFFLINE.id
    assert answers.decide_any(AR, "هل تنفع؟", [{**split[0], "statement": 0.3}]) is None
    # Never for a question of another domain that shares our words.
    assert answers.decide_any(AR, "كم يوم تاخذ الحوالة توصل؟", split) is None


def test_read_unsure_as_out_of_scope_a_fact_needs_the_highest_bar():
    bar = answers.ANSWER_SCORE_UNSURE
    assert answers.decide_any(AR, "هل تنفع؟", ranking(score=bar), least=bar).fact.id == OFFLINE.id
    assert answers.decide_any(AR, "هل تنفع؟", ranking(score=bar - 0.01), least=bar) is None


def test_with_no_service_a_fact_must_clear_a_higher_bar_and_names_the_service():
    assert answers.decide_any(AR, "هل تنفع؟", ranking(score=answers.ANSWER_SCORE_ANY)).fact.id == OFFLINE.id
    assert answers.decide_any(AR, "هل تنفع؟", ranking(score=answers.ANSWER_SCORE_ANY - 0.01)) is None
    assert answers.decide_any(AR, "ابي اجدد", ranking()) is None  # not a question


def test_customer_care_sees_the_facts_with_their_sources_and_the_bots_words():
    found = help_desk.answer(
        [{"name": "digital_id", "confidence": 0.95}], question="هل تقدر تستخدمها؟", facts=ranking()
    )
    [fact] = found["facts"]
    assert fact["id"] == OFFLINE.id and fact["source"] == {
        "file": OFFLINE.source_file,
        "sentence": OFFLINE.source_sentence,
    }
    assert found["reply"] == answers.fact_text(AR, answers.decide(AR, "هل تقدر تستخدمها؟", "digital_id", ranking()))
    assert found["reply"] in found["text"] and OFFLINE.source_file in found["text"]
