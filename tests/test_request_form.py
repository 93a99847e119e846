"""The request and tracking forms' validators, each run with an inline Tracker on a seeded
temporary database, asserting the exact slots returned and what the person is told.

The last test adds a throwaway service to a copy of the catalogue and walks its whole
request form through the real actions: a requestable service is a catalogue entry.
"""

from datetime import date

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.form_slots import clear_form_slots, form_slots
from actions.requests import ActionAskConfirm, ActionSubmitRequest, ValidateServiceRequestForm
from actions.tracking import ValidateTrackRequestForm
from musaed import catalogue, identity, seed, store

ID = seed.ids()
KHALID, AHMED = ID["khalid"], ID["ahmed"]
UNKNOWN = seed.with_check_digit("109999999")


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "musaed.db"
    monkeypatch.setenv("MUSAED_DB", str(path))
    monkeypatch.setenv("MUSAED_RECEIPT_SECRET", "test-secret")
    d = store.open_db(path)
    seed.seed(d, today=date.today())
    return d


def tracker(service="renew_national_id", text="", intent="inform", confidence=0.99, **slots) -> Tracker:
    base = {slot: None for slot in form_slots()}
    base.update(service=service, verified_id=None, family_member=None, requestable=True)
    base.update(slots)
    return Tracker(
        sender_id="rest:form-test",
        slots=base,
        latest_message={"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": []},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={"name": "service_request_form"},
        latest_action_name="action_listen",
    )


def said(dispatcher: CollectingDispatcher) -> list:
    """(response name or text, its variables) of each message, in order."""
    return [
        (
            m.get("response") or m.get("text"),
            {
                k: v
                for k, v in m.items()
                if k
                not in (
                    "response",
                    "text",
                    "buttons",
                    "recipient_id",
                    "image",
                    "elements",
                    "quick_replies",
                    "custom",
                    "attachment",
                    "template",
                    "asks",  # which step a message asks again for (tests/test_prompts.py)
                )
            },
        )
        for m in dispatcher.messages
    ]


def code_of(db, nid=KHALID) -> str:
    return store.latest_code(db, nid)["code"]  # the development outbox: the SMS


FORM = ValidateServiceRequestForm()


def validate(slot, value, t):
    d = CollectingDispatcher()
    return getattr(FORM, f"validate_{slot}")(value, d, t, {}), d


async def required(t):
    return await FORM.required_slots([], CollectingDispatcher(), t, {})


# -- national id -------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, response",
    [
        ("12345", "utter_national_id_length"),
        ("1010000015", "utter_national_id_check_digit"),
        ("3010000010", "utter_national_id_prefix"),
        ("ما اعرف", "utter_national_id_missing"),
    ],
)
def test_a_malformed_id_says_why_and_sends_nothing(db, typed, response):
    slots, d = validate("national_id", typed, tracker())
    assert slots == {"national_id": None}
    assert said(d) == [(response, {})]
    assert store.latest_code(db, KHALID) is None


@pytest.mark.parametrize("nid", [KHALID, UNKNOWN])
def test_a_well_formed_id_gets_the_same_code_sent_reply_on_file_or_not(db, nid):
    slots, d = validate("national_id", f"رقمي {nid}", tracker())
    assert slots == {"national_id": nid}
    assert said(d) == [("utter_code_sent", {"minutes": identity.CODE_TTL_MINUTES})]


def test_a_code_past_the_limit_is_refused_with_the_wait(db):
    for _ in range(identity.CALLER_CODES):  # what one conversation may ask for one id in a window
        validate("national_id", KHALID, tracker())
    slots, d = validate("national_id", KHALID, tracker())
    assert slots == {"national_id": None}
    assert said(d) == [("utter_code_limit", {"minutes": 15})]


# -- one-time code -------------------------------------------------------------------


def test_the_right_code_verifies_and_is_not_kept(db):
    validate("national_id", KHALID, tracker())
    slots, d = validate("otp", code_of(db), tracker(national_id=KHALID))
    assert slots == {"otp": "verified", "verified_id": KHALID}
    assert said(d) == []


def test_the_right_code_picks_the_relative_named_before_verification(db):
    validate("national_id", KHALID, tracker("renew_resident_id"))
    slots, _ = validate("otp", code_of(db), tracker("renew_resident_id", national_id=KHALID, family_member="زوجتي"))
    assert slots == {"otp": "verified", "verified_id": KHALID, "beneficiary": ID["amal"]}


def test_a_wrong_code_counts_down_then_locks(db):
    validate("national_id", KHALID, tracker())
    wrong = "000000" if code_of(db) != "000000" else "111111"
    t = tracker(national_id=KHALID)
    first, d1 = validate("otp", wrong, t)
    second, d2 = validate("otp", wrong, t)
    third, d3 = validate("otp", wrong, t)
    assert [first, second, third] == [{"otp": None}, {"otp": None}, {"otp": None, "national_id": None}]
    assert said(d1) == [("utter_otp_wrong", {"attempts": 2})]
    assert said(d2) == [("utter_otp_wrong", {"attempts": 1})]
    assert said(d3) == [
        ("utter_identity_locked", {"attempts": identity.MAX_WRONG_CODES, "minutes": identity.LOCK_MINUTES})
    ]


def test_something_that_is_not_a_code_asks_for_the_six_digits(db):
    slots, d = validate("otp", "مدري", tracker(national_id=KHALID))
    assert slots == {"otp": None}
    assert said(d) == [("utter_otp_format", {})]


def test_an_expired_code_sends_a_new_one(db):
    from datetime import datetime, timedelta, timezone

    t = tracker(national_id=KHALID)
    identity.send_code(db, KHALID, identity.Caller(t.sender_id), now=datetime.now(timezone.utc) - timedelta(minutes=6))
    slots, d = validate("otp", "123456", t)
    assert slots == {"otp": None}
    assert said(d) == [("utter_otp_expired", {})]
    assert store.pending_code(db, KHALID, t.sender_id) is not None  # the new one


# -- beneficiary, record kind, documents, confirmation ---------------------------------


@pytest.mark.parametrize("typed, who", [("زوجتي", "amal"), ("أمل", "amal"), (ID["amal"], "amal")])
def test_the_family_member_is_read_by_relation_name_or_id(db, typed, who):
    slots, d = validate("beneficiary", typed, tracker("renew_resident_id", verified_id=KHALID))
    assert slots == {"beneficiary": ID[who]}
    assert said(d) == []


def test_someone_not_in_the_family_is_refused_with_the_family_as_buttons(db):
    t = tracker("renew_resident_id", verified_id=KHALID)
    slots, d = validate("beneficiary", ID["maryam"], t)
    assert slots == {"beneficiary": None}
    assert said(d) == [(catalogue.load().labels["not_a_dependent"], {})]
    assert [b["payload"] for b in d.messages[0]["buttons"]] == [ID["amal"]]  # residents only


@pytest.mark.parametrize("typed, kind", [("السجل تالف", "damaged"), ("ضاع السجل", "lost"), ("ما ادري", None)])
def test_record_kind(db, typed, kind):
    slots, d = validate("record_kind", typed, tracker("replace_family_record", verified_id=KHALID))
    assert slots == {"record_kind": kind}
    assert said(d) == ([] if kind else [(catalogue.load().labels["record_kind_unclear"], {})])


@pytest.mark.parametrize("slot", ["documents_confirmed", "confirm"])
def test_only_a_clear_yes_fills_a_confirmation(db, slot):
    assert validate(slot, "نعم", tracker(intent="affirm"))[0] == {slot: "yes"}
    slots, d = validate(slot, "يمكن", tracker(intent="inform"))
    assert slots == {slot: None}
    assert said(d) == [("utter_answer_yes_or_cancel", {})]


@pytest.mark.parametrize("slot", ["confirm", "documents_confirmed"])
@pytest.mark.parametrize(
    "text, confidence",
    [
        ("ابداً", 0.78),  # "never", read as affirm today: it would have submitted the request
        ("أبدًا", 0.95),
        ("ايه بس لا تكمل", 0.95),
        ("not really", 0.93),
        ("نعم", 0.6),  # a yes the model is unsure of
    ],
)
def test_a_no_or_an_unsure_yes_is_never_taken_for_a_confirmation(db, slot, text, confidence):
    slots, d = validate(slot, text, tracker(text=text, intent="affirm", confidence=confidence))
    assert slots == {slot: None}
    assert said(d) == [("utter_answer_yes_or_cancel", {})]


@pytest.mark.parametrize("slot", ["confirm", "documents_confirmed"])
def test_the_confirm_button_is_a_yes_whatever_the_score(db, slot):
    assert validate(slot, "/affirm", tracker(text="/affirm", intent="affirm", confidence=0.5))[0] == {slot: "yes"}
    assert validate(slot, "ايه اكيد", tracker(text="ايه اكيد", intent="affirm", confidence=0.97))[0] == {slot: "yes"}


@pytest.mark.parametrize(
    "text, intent, confidence, erased",
    [
        ("نعم", "affirm", 0.99, True),
        ("احذفها", "data_erase", 0.97, True),
        ("/affirm", "affirm", 0.5, True),
        ("ابداً", "affirm", 0.78, False),  # "never": erasure is no more undoable than a request
        ("لا تحذفها", "data_erase", 0.95, False),
        ("ايه", "affirm", 0.6, False),
    ],
)
def test_only_a_clear_yes_erases_a_persons_conversations(db, text, intent, confidence, erased):
    from actions.privacy import ValidatePrivacyForm

    t = tracker(text=text, intent=intent, confidence=confidence, privacy_request="erase")
    slots = ValidatePrivacyForm().validate_erase_confirm(text, CollectingDispatcher(), t, {})
    assert slots == {"erase_confirm": "yes" if erased else None}


# -- which steps a service asks --------------------------------------------------------


async def test_steps_follow_the_catalogue(db):
    assert await required(tracker("renew_national_id")) == ["national_id", "otp", "confirm"]
    assert await required(tracker("renew_resident_id", verified_id=KHALID)) == ["beneficiary", "confirm"]
    assert await required(tracker("replace_family_record", verified_id=KHALID)) == [
        "record_kind",
        "documents_confirmed",
        "confirm",
    ]
    # A failing requirement: no confirmation is asked, the form ends and says why.
    assert await required(tracker("renew_national_id", verified_id=ID["sara"])) == []


async def test_an_open_request_ends_the_form_before_any_confirmation(db):
    store.create_request(
        db,
        service_id="renew_national_id",
        applicant_id=KHALID,
        beneficiary_id=KHALID,
        conversation_id="whatsapp:966500000001",
    )
    t = tracker("renew_national_id", verified_id=KHALID)
    assert await required(t) == []
    d = CollectingDispatcher()
    events = await ActionSubmitRequest().run(d, t, {})
    assert "لديك طلب قائم" in d.messages[0]["text"]
    assert events == clear_form_slots() + [SlotSet("reminder_offer", False)]  # nothing made: no offer
    assert len(store.requests_visible_to(db, KHALID)) == 1


async def test_the_tracking_form_asks_identity_only_until_verified():
    form = ValidateTrackRequestForm()
    assert await form.required_slots([], CollectingDispatcher(), tracker(None), {}) == ["national_id", "otp"]
    assert await form.required_slots([], CollectingDispatcher(), tracker(None, verified_id=KHALID), {}) == []


# -- a new service is one catalogue entry -------------------------------------------------

THROWAWAY = {
    "name": "بدل تالف للهوية الوطنية",
    "summary": "إصدار بطاقة بدل التالفة، تُجدَّد خلال {renewal_window_days} يومًا من انتهائها.",
    "audience": "citizen",
    "requestable": True,
    "posted": True,
    "form_steps": ["documents_confirmed"],
    "first_status": "approved",
    "after_created": ["throwaway_note"],
    "numbers": {"renewal_window_days": 400},
    "path": ["أبشر أفراد", "خدماتي"],
    "steps": ["سجّل الدخول.", "اختر الخدمة.", "أكمل الطلب."],
    "requirements": [
        {"check": "id_expiring_soon", "text": "أن تنتهي الهوية خلال {renewal_window_days} يومًا."},
        {"check": "national_address", "text": "عنوان وطني."},
        {"check": "id_copy_uploaded", "text": "صورة الهوية."},
    ],
    # What the sources say of its fees and delivery: none of its facts (so "not stated").
    "fees": [],
    "delivery": [],
}


async def test_a_throwaway_service_walks_the_whole_request_form(db, tmp_path, monkeypatch):
    data = yaml.safe_load(catalogue.CATALOGUE_PATH.read_text(encoding="utf-8"))
    data["services"]["replace_damaged_id"] = THROWAWAY
    data["labels"]["throwaway_note"] = "احتفظ بالبطاقة التالفة يا {name}."
    copy = tmp_path / "catalogue.yml"
    copy.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(catalogue, "CATALOGUE_PATH", copy)
    cat = catalogue.load()
    assert "400 يومًا" in cat.services["replace_damaged_id"].summary
    sid = "replace_damaged_id"

    assert await required(tracker(sid)) == ["national_id", "otp", "documents_confirmed", "confirm"]
    assert validate("national_id", KHALID, tracker(sid))[0] == {"national_id": KHALID}
    slots, _ = validate("otp", code_of(db), tracker(sid, national_id=KHALID))
    assert slots == {"otp": "verified", "verified_id": KHALID}
    verified = {"national_id": KHALID, "otp": "verified", "verified_id": KHALID}
    assert await required(tracker(sid, **verified)) == ["documents_confirmed", "confirm"]
    assert validate("documents_confirmed", "نعم", tracker(sid, intent="affirm", **verified))[0] == {
        "documents_confirmed": "yes"
    }
    done = {**verified, "documents_confirmed": "yes"}
    # Every requirement passes, so the confirmation is asked (the form asks the first empty slot).
    assert await required(tracker(sid, **done)) == ["documents_confirmed", "confirm"]

    d = CollectingDispatcher()
    await ActionAskConfirm().run(d, tracker(sid, **done), {})
    summary = d.messages[0]["text"]
    assert cat.labels["checks_passed"] in summary and THROWAWAY["name"] in summary
    assert validate("confirm", "نعم", tracker(sid, intent="affirm", **done))[0] == {"confirm": "yes"}

    d = CollectingDispatcher()
    events = await ActionSubmitRequest().run(d, tracker(sid, confirm="yes", **done), {})
    # Made: expiry reminders are offered, last (actions/reminders.py).
    assert events == clear_form_slots() + [SlotSet("reminder_offer", True), SlotSet("reminders_asked", True)]
    assert d.messages[-1]["text"] == cat.labels["reminder_offer"]
    [request] = store.requests_visible_to(db, KHALID)
    assert (request["service_id"], request["status"]) == (sid, "approved")
    assert request["delivery_address"] == store.get_person(db, KHALID)["national_address"]
    assert request["tracking_number"] in d.messages[0]["text"]
    assert d.messages[-2]["text"] == "احتفظ بالبطاقة التالفة يا خالد العتيبي."  # the service's own, then the offer


async def test_a_form_turn_reads_the_records_once(db, monkeypatch):
    """rasa-sdk asks for the required slots three times a turn; the records are assessed once."""
    from musaed import service_request

    calls = []
    real = service_request.assess
    monkeypatch.setattr(service_request, "assess", lambda *a, **k: calls.append(a) or real(*a, **k))
    domain = {
        "forms": {"service_request_form": {"required_slots": form_slots()[:-1]}},
        "slots": {slot: {"type": "any", "mappings": [{"type": "custom"}]} for slot in form_slots()},
    }
    t = tracker("renew_national_id", intent="affirm", verified_id=KHALID, requested_slot="confirm")
    d = CollectingDispatcher()
    events = await FORM.run(d, t, domain)
    assert len(calls) == 1
    assert events == [SlotSet("requested_slot", "confirm")]


async def test_a_typed_relative_is_not_assessed_before_it_is_read(db):
    """The slot holds what was typed («زوجتي») until validate_beneficiary reads it: asking
    for the required slots then must not look it up as a national id (it raised LookupError)."""
    t = tracker("renew_resident_id", verified_id=KHALID, beneficiary="زوجتي", requested_slot="beneficiary")
    assert await required(t) == ["beneficiary", "confirm"]
