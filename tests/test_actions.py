"""Each custom action run with a real rasa-sdk Tracker and CollectingDispatcher."""

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.guidance import ActionAnswerFollowup, ActionExplainService, ActionShowCapabilities
from actions.handover import ActionHandOver
from musaed import catalogue

CAT = catalogue.load()


def tracker(intent: str, text: str = "", **slots) -> Tracker:
    return Tracker(
        sender_id="test-user",
        slots={"service": None, "pending_followup": None, "handed_over": False, **slots},
        latest_message={"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def run(action, t: Tracker):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, {})
    return dispatcher.messages, events


async def test_service_intent_gets_howto_then_offer():
    messages, events = await run(ActionExplainService(), tracker("report_lost_id", "ضاعت هويتي"))
    assert messages[0]["text"] == CAT.howto("report_lost_id")
    assert messages[1]["text"] == CAT.labels["offer"]
    assert [b["payload"] for b in messages[1]["buttons"]] == [
        "/affirm",
        "/ask_requirements",
        "/ask_fees",
        "/ask_delivery",
    ]
    assert events == [
        SlotSet("family_member", None),  # the message names no relative
        SlotSet("service", "report_lost_id"),
        SlotSet("pending_followup", None),
        SlotSet("requestable", True),
    ]


async def test_guidance_only_service_offers_followups_not_a_request():
    messages, _ = await run(ActionExplainService(), tracker("digital_id"))
    assert [b["payload"] for b in messages[1]["buttons"]] == [
        "/ask_requirements",
        "/ask_fees",
        "/ask_delivery",
    ]


@pytest.mark.parametrize(
    "intent, question", [("ask_fees", "fees"), ("ask_delivery", "delivery"), ("ask_requirements", "requirements")]
)
async def test_followup_answers_for_service_in_context(intent, question):
    messages, events = await run(ActionAnswerFollowup(), tracker(intent, service="renew_resident_id"))
    assert messages[0]["text"] == CAT.followup("renew_resident_id", question)
    assert messages[1]["text"] == CAT.labels["offer"]  # the offer stays within reach
    assert events == []


async def test_followup_for_guidance_only_service_has_no_offer():
    messages, _ = await run(ActionAnswerFollowup(), tracker("ask_fees", service="digital_id"))
    assert [m["text"] for m in messages] == [CAT.fees("digital_id")]


async def test_followup_without_service_asks_which_and_remembers_question():
    messages, events = await run(ActionAnswerFollowup(), tracker("ask_fees", "كم الرسوم؟"))
    assert messages[0]["text"] == CAT.labels["which_service"]
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert payloads == [f"/{sid}" for sid in CAT.services]
    assert events == [SlotSet("pending_followup", "fees")]


async def test_picking_a_service_answers_the_waiting_followup():
    messages, events = await run(ActionExplainService(), tracker("renew_national_id", pending_followup="fees"))
    assert messages[0]["text"] == CAT.fees("renew_national_id")
    assert SlotSet("pending_followup", None) in events
    assert SlotSet("service", "renew_national_id") in events


@pytest.mark.parametrize(
    "intent, label",
    [("ask_capabilities", "capabilities"), ("out_of_scope", "out_of_scope"), ("nlu_fallback", "not_understood")],
)
async def test_menu_intro_says_why_it_is_shown(intent, label):
    messages, events = await run(ActionShowCapabilities(), tracker(intent))
    assert messages[0]["text"] == CAT.labels[label]
    assert len(messages[0]["buttons"]) == len(CAT.services) + 1  # the services, then a person
    assert messages[0]["buttons"][-1]["payload"] == "/request_human"
    assert events == []


async def test_hand_over_queues_the_conversation_and_marks_it(tmp_path, monkeypatch):
    from musaed import handover, store

    monkeypatch.setenv("MUSAED_DB", str(tmp_path / "musaed.db"))
    monkeypatch.setenv("MUSAED_OFFICE_HOURS", "always")
    # Nobody on duty: the person is told when agents are back, with the call centre for now.
    messages, events = await run(ActionHandOver(), tracker("request_human"))
    assert CAT.call_centre["phone"] in messages[0]["text"]
    assert messages[0]["buttons"][0]["payload"] == handover.CANCEL_PAYLOAD
    assert events == [SlotSet("handed_over", True)]
    assert handover.state_of(store.open_db(), "test-user") == "waiting"


@pytest.mark.parametrize("confidence, cancels", [(0.99, True), (0.9, True), (0.73, False)])
async def test_a_no_in_a_form_cancels_only_when_the_bot_is_sure_it_is_a_no(confidence, cancels):
    from rasa_sdk.events import ActiveLoop, FollowupAction

    from actions.requests import ActionCancelForm

    t = tracker("deny", "ما عندي فكرة", otp=None)
    t.latest_message["intent"]["confidence"] = confidence
    t.active_loop = {"name": "service_request_form"}
    messages, events = await run(ActionCancelForm(), t)
    if cancels:
        assert messages[0]["response"] == "utter_request_cancelled"
        assert events[0] == ActiveLoop(None)
    else:
        # "I have no idea" read as a weak no: the request is kept and its step asked again.
        assert messages[0]["text"] == CAT.labels["cancel_unsure"]
        assert events == [FollowupAction("service_request_form")]


@pytest.mark.parametrize(
    "text, name",
    [
        ("ابي اجدد جوازي", "جواز السفر"),
        ("كيف اطلع تأشيرة خروج وعودة للعامل", "تأشيرة الخروج والعودة"),
        ("how do I pay my traffic fines", "المخالفات المرورية"),
        ("ابغى اجدد رخصة القيادة", "رخصة القيادة"),
    ],
)
async def test_another_government_service_is_named_with_where_to_go_and_no_steps(text, name):
    messages, events = await run(ActionShowCapabilities(), tracker("other_service", text))
    reply = messages[0]["text"]
    assert f"«{name}»" in reply and CAT.call_centre["phone"] in reply and "أبشر" in reply
    assert not any(s.steps[0] in reply for s in CAT.services.values())  # never another service's steps
    assert len(messages[0]["buttons"]) == len(CAT.services) + 1  # the services, then a person
    assert messages[0]["buttons"][-1]["payload"] == "/request_human"
    assert events == []


async def test_a_government_service_not_in_the_list_is_still_sent_to_absher():
    messages, _ = await run(ActionShowCapabilities(), tracker("other_service", "ابي اطلع سجل تجاري"))
    assert messages[0]["text"].startswith(CAT.labels["other_service_unnamed"].split("،")[0])


# -- expiry reminders (actions/reminders.py, issue 30) ----------------------------------------


@pytest.fixture
def reminders_db(tmp_path, monkeypatch):
    from musaed import seed, store

    monkeypatch.setenv("MUSAED_DB", str(tmp_path / "musaed.db"))
    db = store.open_db(tmp_path / "musaed.db")
    seed.seed(db)
    return db


async def test_reminders_are_offered_once_to_a_verified_person_without_them(reminders_db):
    from actions.reminders import offer

    khalid = "1010000014"
    dispatcher = CollectingDispatcher()
    events = offer(dispatcher, tracker("affirm", verified_id=khalid), CAT)
    assert dispatcher.messages[0]["text"] == CAT.labels["reminder_offer"]
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/affirm", "/deny"]
    assert events == [SlotSet("reminder_offer", True), SlotSet("reminders_asked", True)]
    for slots in ({"verified_id": khalid, "reminders_asked": True}, {"verified_id": None}):
        dispatcher = CollectingDispatcher()
        assert offer(dispatcher, tracker("affirm", **slots), CAT) == [SlotSet("reminder_offer", False)]
        assert dispatcher.messages == []


async def test_yes_subscribes_and_stop_stops_at_once_without_a_code(reminders_db):
    from actions.reminders import ActionRemindersStop, ActionRemindersSubscribe, offer
    from musaed import notifications

    khalid = "1010000014"
    messages, events = await run(ActionRemindersSubscribe(), tracker("affirm", "نعم", verified_id=khalid))
    assert [m["text"] for m in messages] == [CAT.labels["reminders_on"].format(days=30)]
    assert events == [SlotSet("reminder_offer", False)]
    assert notifications.subscribed(reminders_db, khalid)
    assert offer(CollectingDispatcher(), tracker("affirm", verified_id=khalid), CAT) == [
        SlotSet("reminder_offer", False)
    ]
    # «أوقف التنبيهات» in the same conversation, no longer verified (a new session): stopped.
    messages, events = await run(ActionRemindersStop(), tracker("stop_reminders", "أوقف التنبيهات"))
    assert [m["text"] for m in messages] == [CAT.labels["reminders_off"]]
    assert not notifications.subscribed(reminders_db, khalid)
    messages, _ = await run(ActionRemindersStop(), tracker("stop_reminders", "أوقف التنبيهات"))
    assert [m["text"] for m in messages] == [CAT.labels["reminders_none"]]
    # Unverified, no yes is taken.
    messages, _ = await run(ActionRemindersSubscribe(), tracker("affirm", "نعم"))
    assert [m.get("response") for m in messages] == ["utter_anything_else"]
