"""The request and tracking forms' validators, each run with an inline Tracker on a seeded
temporary database, asserting the exact slots returned and what the person is told.

The last test adds a throwaway service to a copy of the catalogue and walks its whole
request form through the real actions: a requestable service is a catalogue entry.
"""

import re
from datetime import date

import document_samples as samples
import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.form_slots import clear_form_slots, form_slots
from actions.requests import ActionAskConfirm, ActionSubmitRequest, ValidateServiceRequestForm
from actions.tracking import ValidateTrackRequestForm
from musaed import catalogue, documents, identity, seed, store

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


def tracker(service="renew_national_id", text="", intent="inform", confidence=0.99, entities=(), **slots) -> Tracker:
    base = {slot: None for slot in form_slots()}
    base.update(service=service, verified_id=None, family_member=None, requestable=True)
    base.update(slots)
    return Tracker(
        sender_id="rest:form-test",
        slots=base,
        latest_message={
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "entities": [dict(e) for e in entities],
        },
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


@pytest.mark.parametrize("slot", ["terms_accepted", "confirm"])
def test_only_a_clear_yes_fills_a_confirmation(db, slot):
    assert validate(slot, "نعم", tracker(intent="affirm"))[0] == {slot: "yes"}
    slots, d = validate(slot, "يمكن", tracker(intent="inform"))
    assert slots == {slot: None}
    assert said(d) == [("utter_answer_yes_or_cancel", {})]


@pytest.mark.parametrize("slot", ["confirm", "terms_accepted"])
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


@pytest.mark.parametrize("slot", ["confirm", "terms_accepted"])
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


# -- the documents step (issue 31) ----------------------------------------------------------

FAMILY = catalogue.load().services["replace_family_record"]
AT_DOCUMENTS = {"verified_id": KHALID, "record_kind": "damaged", "requested_slot": "documents"}


@pytest.fixture
def kept(db, tmp_path, monkeypatch):
    """Keeps a file as a channel does, for this test's conversation (or another's): its id."""
    monkeypatch.setenv("MUSAED_DOCUMENTS_DIR", str(tmp_path / "documents"))

    def keep(data, conversation="rest:form-test"):
        return documents.keep(db, conversation, documents.check(data))["id"]

    return keep


def file_message(document_id=None, refused=None, **slots):
    entity = {"entity": "document", "value": document_id}
    if not document_id:
        entity = {"entity": "document_refused", "value": refused}
    text = documents.message_text(document_id) if document_id else documents.refused_text(refused)
    return tracker("replace_family_record", text=text, entities=[entity], **{**AT_DOCUMENTS, **slots})


def test_the_documents_step_takes_each_document_by_name_one_at_a_time(db, kept):
    cat = catalogue.load()
    slots, d = validate("documents", "", file_message(kept(samples.photo())))
    assert slots == {"documents": None}
    received, asked = [m["text"] for m in d.messages]
    assert received.startswith("✅") and FAMILY.documents[0].name in received and "صورة JPEG" in received
    assert re.search(r"\d+ KB", received)
    assert asked == FAMILY.documents[1].ask.format(limit="5.0 MB")
    assert d.messages[1]["asks"] == "documents"
    buttons = [b["title"] for b in d.messages[1]["buttons"]]
    assert buttons == [cat.labels["button_no_document"], cat.labels["button_cancel"]]
    slots, d = validate("documents", "", file_message(kept(samples.scan_pdf())))
    assert slots == {"documents": "received"}
    assert FAMILY.documents[1].name in d.messages[0]["text"] and "ملف PDF" in d.messages[0]["text"]
    assert [r["kind"] for r in FAMILY.in_document_order(store.staged_documents(db, "rest:form-test", FAMILY.id))] == [
        "national_id_copy",
        "record_report",
    ]


@pytest.mark.parametrize("reason", ["too_large", "not_allowed", "pdf_active", "unreadable"])
def test_a_refused_file_says_why_and_the_same_document_is_asked_for(db, reason):
    cat = catalogue.load()
    slots, d = validate("documents", "", file_message(refused=reason))
    assert slots == {"documents": None}
    [text] = [m["text"] for m in d.messages]
    why = cat.labels[f"document_refused_{reason}"].format(limit="5.0 MB")
    assert text.startswith("❌") and why in text and FAMILY.documents[0].name in text
    assert store.staged_documents(db, "rest:form-test", FAMILY.id) == []


def test_i_dont_have_it_says_where_to_get_it_and_keeps_the_request(db, kept):
    cat = catalogue.load()
    validate("documents", "", file_message(kept(samples.photo())))
    t = tracker("replace_family_record", text="ما عندي التقرير", **AT_DOCUMENTS)
    slots, d = validate("documents", "ما عندي التقرير", t)
    assert slots == {"documents": None}
    [text] = [m["text"] for m in d.messages]
    assert FAMILY.documents[1].missing.format(**cat.call_centre_fields(), limit="") in text
    assert cat.labels["document_kept_open"].format(name=FAMILY.documents[1].name) in text
    # Still there, still the request's.
    assert len(store.staged_documents(db, "rest:form-test", FAMILY.id)) == 1
    # Other words: what is awaited, and how to send it.
    yes = tracker("replace_family_record", text="نعم", intent="affirm", **AT_DOCUMENTS)
    slots, d = validate("documents", "نعم", yes)
    assert slots == {"documents": None}
    assert d.messages[0]["text"] == cat.labels["document_waiting"].format(name=FAMILY.documents[1].name)


def test_a_reference_to_another_conversations_document_takes_nothing(db, kept):
    theirs = kept(samples.photo(), conversation="whatsapp:966500000009")
    slots, d = validate("documents", "", file_message(theirs))
    assert slots == {"documents": None}
    assert "✅" not in d.messages[0]["text"]
    assert store.get_document(db, theirs)["kind"] is None


async def test_a_file_at_another_step_is_answered_and_deleted_and_the_step_asked_again(db, kept):
    document_id = kept(samples.photo())
    path = documents.directory(db) / store.get_document(db, document_id)["stored_name"]
    t = file_message(document_id, verified_id=None, record_kind=None, requested_slot="national_id")
    t.slots["national_id"] = t.latest_message["text"]  # the step's mapping took the message as text
    d = CollectingDispatcher()
    events = await FORM.run(d, t, {"forms": {"service_request_form": {"required_slots": form_slots()[:-1]}}})
    assert [m["text"] for m in d.messages] == [catalogue.load().labels["document_not_now"]]
    assert events == [SlotSet("national_id", None), SlotSet("requested_slot", "national_id")]
    assert store.get_document(db, document_id) is None and not path.exists()


# -- which steps a service asks --------------------------------------------------------


async def test_steps_follow_the_catalogue(db):
    assert await required(tracker("renew_national_id")) == ["national_id", "otp", "confirm"]
    assert await required(tracker("renew_resident_id", verified_id=KHALID)) == ["beneficiary", "confirm"]
    assert await required(tracker("replace_family_record", verified_id=KHALID)) == [
        "record_kind",
        "documents",
        "terms_accepted",
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
    "form_steps": ["terms_accepted"],
    "first_status": "approved",
    "after_created": ["throwaway_note"],
    "numbers": {"renewal_window_days": 400},
    "path": ["أبشر أفراد", "خدماتي"],
    "steps": ["سجّل الدخول.", "اختر الخدمة.", "أكمل الطلب."],
    "requirements": [
        {"check": "id_expiring_soon", "text": "أن تنتهي الهوية خلال {renewal_window_days} يومًا."},
        {"check": "national_address", "text": "عنوان وطني."},
        {"check": "terms_accepted", "text": "الموافقة على الشروط."},
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

    assert await required(tracker(sid)) == ["national_id", "otp", "terms_accepted", "confirm"]
    assert validate("national_id", KHALID, tracker(sid))[0] == {"national_id": KHALID}
    slots, _ = validate("otp", code_of(db), tracker(sid, national_id=KHALID))
    assert slots == {"otp": "verified", "verified_id": KHALID}
    verified = {"national_id": KHALID, "otp": "verified", "verified_id": KHALID}
    assert await required(tracker(sid, **verified)) == ["terms_accepted", "confirm"]
    assert validate("terms_accepted", "نعم", tracker(sid, intent="affirm", **verified))[0] == {"terms_accepted": "yes"}
    done = {**verified, "terms_accepted": "yes"}
    # Every requirement passes, so the confirmation is asked (the form asks the first empty slot).
    assert await required(tracker(sid, **done)) == ["terms_accepted", "confirm"]

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
