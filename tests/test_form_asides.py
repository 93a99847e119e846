"""Every form step takes free text and questions (issue 18): a question or a word
aside is answered, then the step is asked again with nothing lost, on every
request of a conversation; a person asked for stops the form at any step.
"""

import pytest
from test_request_flows import ID, TRACKING, joined, latest_code

from musaed import catalogue

pytestmark = pytest.mark.e2e
CAT = catalogue.load()

# What the step's question (or its reason for asking again) says.
ASKS = {
    "national_id": ("رقم هوي", "رقم الهوية"),
    "otp": ("رمز",),
    "beneficiary": ("لمن الطلب", "أفراد أسرتك"),
    "record_kind": ("تالف أم مفقود",),
    # Asked for by name: «أرسل صورة من هويتك الوطنية…», or what is awaited: «أنتظر منك صورة الهوية الوطنية…».
    "documents": ("هويتك الوطنية", "صورة الهوية الوطنية"),
    "terms_accepted": ("الشروط", "«نعم»"),
    "confirm": ("هل تؤكد", "«نعم»"),
}
# Asides: a question about the service, small talk, and text that is no answer.
QUESTIONS = ["كم الرسوم؟", "وش الشروط؟", "كم ياخذ التوصيل؟", "السلام عليكم", "انت بوت؟", "شكرا"]
FREE_TEXT = ["😀", "123", "ولدي سعود", "بكرة"]


def asks(replies, step) -> bool:
    last = replies[-1].get("text") or ""
    return any(words in last for words in ASKS[step])


def each_aside_is_answered_and_the_step_asked_again(chat, step, asides):
    for aside in asides:
        replies = chat.say(aside)
        assert replies and all(r.get("text") or r.get("image") for r in replies), aside
        assert asks(replies, step), (step, aside, joined(replies))


def test_identity_steps_take_asides(chat, servers):
    chat.say("ابي اجدد هويتي الوطنية")
    chat.say("نعم")
    fees = chat.say("كم الرسوم؟")
    assert CAT.fees("renew_national_id") in joined(fees)  # answered, not read as an id
    each_aside_is_answered_and_the_step_asked_again(chat, "national_id", QUESTIONS + FREE_TEXT)
    chat.say(ID["khalid"])
    each_aside_is_answered_and_the_step_asked_again(chat, "otp", QUESTIONS + FREE_TEXT)
    summary = joined(chat.say(latest_code(servers, ID["khalid"])))
    assert "ملخص الطلب" in summary
    each_aside_is_answered_and_the_step_asked_again(chat, "confirm", QUESTIONS + FREE_TEXT)
    assert TRACKING.search(joined(chat.say("نعم")))


def test_a_second_and_third_request_take_asides_and_typed_relatives(chat, servers):
    # A first request, then two more for relatives in the same conversation.
    chat.say("ضاعت هويتي")
    chat.say("نعم")
    chat.say(ID["khalid"])
    chat.say(latest_code(servers, ID["khalid"]))
    assert TRACKING.search(joined(chat.say("نعم")))

    chat.say("ابغى اجدد اقامة زوجتي")
    second = joined(chat.say("نعم"))
    assert "أمل" in second  # the relative named in this request's first message
    each_aside_is_answered_and_the_step_asked_again(chat, "confirm", QUESTIONS + FREE_TEXT)
    assert TRACKING.search(joined(chat.say("نعم")))

    chat.say("سجل الاسرة تالف ابي بدل")
    kind = chat.say("نعم")
    assert asks(kind, "record_kind")
    each_aside_is_answered_and_the_step_asked_again(chat, "record_kind", QUESTIONS + ["😀", "123", "بكرة"])
    docs = chat.say("تالف")
    assert asks(docs, "documents")
    each_aside_is_answered_and_the_step_asked_again(chat, "documents", QUESTIONS + FREE_TEXT)


def test_a_dependent_typed_as_a_word_or_a_name_on_a_later_request(chat, servers):
    chat.say("ابي اجدد هوية مقيم لافراد اسرتي")
    chat.say("نعم")
    chat.say(ID["ahmed"])
    assert asks(chat.say(latest_code(servers, ID["ahmed"])), "beneficiary")
    each_aside_is_answered_and_the_step_asked_again(chat, "beneficiary", QUESTIONS + ["😀", "123", "عبدالرحمن"])
    summary = joined(chat.say("ليلى"))  # a dependent's first name
    assert "ليلى أحمد" in summary


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_a_person_asked_for_at_any_step_hands_over_and_stops_the_form(chat, servers, steps):
    chat.say("ابي اجدد هويتي الوطنية")
    chat.say("نعم")
    if steps >= 2:
        chat.say(ID["fahd"])
    if steps >= 3:
        chat.say(latest_code(servers, ID["fahd"]))
    handed = joined(chat.say("ابي اكلم موظف"))
    assert CAT.call_centre["phone"] in handed
    # The form is over: «نعم» is no confirmation now, and nothing was made.
    after = joined(chat.say("نعم"))
    assert not TRACKING.search(after)


def test_another_service_in_the_middle_of_a_request_is_offered_kept_if_declined_and_switched_by_its_button(
    chat, servers
):
    chat.say("ابي اجدد هويتي الوطنية")
    chat.say("نعم")
    offer = chat.say("ابي اجدد اقامة زوجتي")
    first = CAT.labels["switch_offer"].split("«")[0]
    assert first in joined(offer) and CAT.services["renew_resident_id"].name in joined(offer)
    assert any(b["payload"] == "/renew_resident_id" for r in offer for b in r.get("buttons") or [])
    assert asks(offer, "national_id")  # the current step, asked again
    declined = chat.say("لا")
    assert CAT.labels["switch_declined"].split("«")[0] in joined(declined) and asks(declined, "national_id")

    chat.say("كيف ابلغ عن فقدان هويتي")
    switched = chat.say("/report_lost_id")  # the offer's button
    assert f"1. {CAT.services['report_lost_id'].steps[0]}" in joined(switched)
    assert "رقم هويتك" in joined(chat.say("نعم"))
    chat.say(ID["khalid"])
    summary = joined(chat.say(latest_code(servers, ID["khalid"])))
    assert CAT.services["report_lost_id"].name in summary and CAT.services["renew_national_id"].name not in summary
