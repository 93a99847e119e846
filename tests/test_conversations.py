"""End-to-end conversations over REST with the trained model and both servers."""

import re

import pytest

from musaed import catalogue

pytestmark = pytest.mark.e2e
CAT, EN = catalogue.load(), catalogue.load("en")
ARABIC = re.compile(r"[\u0600-\u06FF]")

# Unseen, realistic phrasings for each service (dialect and MSA).
SERVICE_MESSAGES = {
    "renew_national_id": "هويتي الوطنية باقي عليها شهر وتنتهي ابي اجددها",
    "renew_resident_id": "ابغى اجدد اقامة زوجتي",
    "report_lost_id": "ضاعت هويتي وش اسوي",
    "replace_family_record": "كيف استخرج سجل اسرة بدل تالف",
    "digital_id": "وش هي الهوية الرقمية وهل تنفع بدون انترنت",
    "activate_national_id": "كيف افعّل الهوية الجديدة بعد ما استلمتها",
    "minor_national_id": "بنتي عمرها 11 سنة كيف اسوي لها هوية وطنية",
}


def test_every_service_the_catalogue_guides_has_a_message_here():
    assert set(SERVICE_MESSAGES) == {sid for sid, s in CAT.services.items() if s.flow is None}


def texts(replies):
    return [r.get("text", "") for r in replies]


@pytest.mark.parametrize("service_id", list(SERVICE_MESSAGES))
def test_each_service_question_gets_its_numbered_steps(chat, service_id):
    replies = chat.say(SERVICE_MESSAGES[service_id])
    s = CAT.services[service_id]
    answer = texts(replies)[0]
    assert answer.startswith(s.name)
    assert f"1. {s.steps[0]}" in answer
    assert [r.text for r in s.requirements if r.key][0] in answer  # what most often stops people
    assert replies[-1].get("buttons"), "the answer ends with an offer"


@pytest.mark.parametrize("message", ["ابي اتابع حالة طلبي", "وين وصل طلبي؟", "متى يوصل طلبي؟", "where is my request?"])
def test_tracking_starts_by_asking_who_you_are(servers, message):
    # Tracking shows personal records, so it begins with identity (see test_request_flows.py);
    # asked as a question, it is still tracking: no fact and no «I don't have that detail» first.
    from conftest import Conversation

    replies = texts(Conversation(servers.url).say(message))
    assert len(replies) == 1 and ("رقم هويتك" in replies[0] or "national ID" in replies[0]), replies


@pytest.mark.parametrize(
    "message, fact",
    [
        ("اقدر اشوف حالة طلبي في ابشر بعد ما اقدمه؟", "track_after_submitting"),
        ("will I get a notification when my request moves?", "notifications"),
    ],
)
def test_a_yes_no_question_about_tracking_gets_the_sources_answer_then_the_id_step(servers, message, fact):
    from conftest import Conversation

    cat = EN if message.isascii() else CAT
    replies = texts(Conversation(servers.url).say(message))
    assert replies[0] == cat.fact("track_request", fact).text, replies  # no «نعم» first: it may be about their request
    assert "رقم هويتك" in replies[-1] or "national ID" in replies[-1]


@pytest.mark.parametrize("message", ["وين ألقى متابعة طلباتي في أبشر؟", "how do I track my request in Absher?"])
def test_a_question_about_tracking_in_absher_gets_the_sources_answer_then_the_id_step(servers, message):
    # Absher's own tracking, which the sources describe; then ours, which starts with who you are.
    from conftest import Conversation

    cat = EN if message.isascii() else CAT
    replies = texts(Conversation(servers.url).say(message))
    tracking = {f.text for f in cat.facts() if f.service == "track_request"}
    assert len(replies) == 2 and replies[0] in tracking, replies
    assert "رقم هويتك" in replies[-1] or "national ID" in replies[-1]


def test_followups_answer_for_the_service_in_context(chat):
    chat.say("ابي اجدد هوية مقيم لامي")
    s = CAT.services["renew_resident_id"]
    assert s.fees in texts(chat.say("وش الرسوم؟"))[0]
    # "How much" of fees whose amount the sources do not give: declined, then what they say.
    amount = texts(chat.say("كم الرسوم؟"))[0]
    paid = CAT.fact("renew_resident_id", s.aspect_facts["fees"][0]).text
    assert amount.startswith(CAT.labels["no_detail"].split("«")[0]) and amount.endswith(paid), amount
    assert s.delivery in texts(chat.say("كم ياخذ التوصيل؟"))[0]
    assert s.requirements[0].text in texts(chat.say("وش الشروط؟"))[0]


def test_followup_without_context_asks_which_service_then_answers_it(chat):
    replies = chat.say("كم الرسوم؟")
    assert replies[0]["text"] == CAT.labels["which_service"]
    assert {b["payload"] for b in replies[0]["buttons"]} == {f"/{sid}" for sid in CAT.services}
    replies = chat.say("/report_lost_id")  # the button's payload
    assert texts(replies)[0] == CAT.fees("report_lost_id")


def test_small_talk(chat):
    assert "مساعد" in texts(chat.say("السلام عليكم"))[0]
    assert "آلي" in texts(chat.say("انت بوت؟"))[0]
    menu = chat.say("وش تقدر تسوي")
    assert len(menu[0]["buttons"]) == len(CAT.services) + 1
    assert menu[0]["buttons"][-1]["payload"] == "/request_human"  # a person, one tap away
    assert CAT.call_centre["phone"] in texts(chat.say("ابي اكلم موظف"))[0]
    assert texts(chat.say("مشكور ما قصرت"))[0]
    assert texts(chat.say("مع السلامة"))[0]


def test_out_of_scope_says_what_musaed_does(chat):
    replies = chat.say("وش اخبار الطقس بكرة في الرياض")
    assert replies[0]["text"] in (CAT.labels["out_of_scope"], CAT.labels["not_understood"])
    assert len(replies[0]["buttons"]) == len(CAT.services) + 1


@pytest.mark.parametrize(
    "message, language",
    [
        ("", "ar"),
        ("   ", "ar"),
        ("😀😀😀", "ar"),
        ("<script>alert('x')</script>", "en"),  # English words, so an English reply
        ("'; DROP TABLE requests; --", "en"),
        ("هوية " * 4000, "ar"),  # 20,000 characters
        ("/nonexistent_intent", "ar"),
        ('/greet{"handed_over": "x"}', "ar"),
    ],
    ids=["empty", "spaces", "emoji", "script", "sql", "20k-chars", "unknown-intent", "slot-injection"],
)
def test_any_message_gets_a_reply_in_the_persons_language(chat, message, language):
    replies = [t for t in texts(chat.say(message)) if t]
    assert replies, "the bot must answer"
    if language == "ar":
        assert all(ARABIC.search(t) for t in replies)
    else:
        assert not any(ARABIC.search(t) for t in replies)


def test_a_service_musaed_does_not_cover_is_named_and_sent_to_absher(chat):
    reply = "\n".join(m.get("text", "") for m in chat.say("ابي اجدد جواز السفر حقي"))
    assert "«جواز السفر»" in reply and "992" in reply
    assert "1. " not in reply  # no steps of another service


def test_the_menu_has_a_person_one_tap_away(chat):
    human = chat.say("وش تقدر تسوي")[0]["buttons"][-1]
    assert human["title"] == CAT.labels["button_human"]
    assert CAT.call_centre["phone"] in texts(chat.say(human["payload"]))[0]
