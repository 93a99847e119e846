"""What the tracker store keeps: no typed codes, ids and phone numbers masked or encrypted,
and the conversation still read back whole (musaed/privacy.py, stores/tracker_store.py)."""

import json
import sqlite3

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from musaed import conversations, privacy, settings
from stores.tracker_store import SQLiteTrackerStore

DOMAIN = Domain.load("domain.yml")
NID = "1010000014"
CODE = "482913"
PHONE = "0551234567"


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv(settings.TRACKER_KEY.name, "a test key, not the deployment's")


def test_masking_hides_codes_ids_and_phones_in_any_script_and_spacing_but_keeps_tracking_numbers():
    assert privacy.mask_text(f"رقمي {NID} والرمز {CODE}") == "رقمي 1******014 والرمز ******"
    assert privacy.mask_text("١٠١٠٠٠٠٠١٤") == "1******014"
    assert privacy.mask_text("1010 000 014 و 482-913") == "1******014 و ******"
    assert privacy.mask_text("+966 55 123 4567") == "+9********567"
    assert privacy.mask_text("وين وصل MSD-12345678 و 87654321") == "وين وصل MSD-12345678 و 87654321"


def test_a_slot_is_encrypted_and_tagged_and_comes_back_and_a_changed_key_reads_as_empty(monkeypatch):
    stored = privacy.protect_event({"event": "slot", "name": "verified_id", "value": NID})
    assert NID not in json.dumps(stored) and stored["value"].startswith("enc:")
    assert stored[privacy.PERSON] == privacy.person_tag(NID) != privacy.person_tag("1010000022")
    assert privacy.restore_event(stored) == {"event": "slot", "name": "verified_id", "value": NID}
    monkeypatch.setenv(settings.TRACKER_KEY.name, "another key")
    assert privacy.restore_event(stored)["value"] is None  # the person verifies again


def code_step_conversation() -> DialogueStateTracker:
    """A request form through the id and code steps, as Rasa's events have it."""
    events = [
        ActionExecuted("action_session_start"),
        SlotSet("session_started_metadata", {"whatsapp": {"profile_name": "خالد العتيبي"}}),
        ActionExecuted("action_listen"),
        UserUttered("ضاعت هويتي", {"name": "report_lost_id", "confidence": 0.9}),
        ActionExecuted("service_request_form"),
        ActiveLoop("service_request_form"),
        SlotSet("requested_slot", "national_id"),
        BotUttered("اكتب رقم هويتك"),
        ActionExecuted("action_listen"),
        UserUttered(
            f"هويتي {NID} وجوالي {PHONE}",
            {"name": "inform", "confidence": 0.9},
            [{"entity": "national_id", "value": NID, "start": 6, "end": 16}],
            metadata={"whatsapp": {"profile_name": "خالد العتيبي", "message_id": "wamid.1"}},
        ),
        SlotSet("national_id", f"هويتي {NID} وجوالي {PHONE}"),
        SlotSet("national_id", NID),
        BotUttered("أرسلنا رمز تحقق"),
        SlotSet("requested_slot", "otp"),
        ActionExecuted("action_listen"),
        # The code, spaced: no pattern is needed to drop a message typed at the code step.
        UserUttered("وش الرسوم", {"name": "ask_fees", "confidence": 0.9}),  # an aside: kept, it has no digits
        UserUttered("482 9 13", {"name": "inform", "confidence": 0.9}),
        SlotSet("otp", "482 9 13"),
        SlotSet("otp", "verified"),
        SlotSet("verified_id", NID),
        SlotSet("beneficiary", "1010000022"),
        BotUttered("اختر", data={"buttons": [{"title": "أمل", "payload": "1010000022"}]}),
        ActionExecuted("action_listen"),
    ]
    return DialogueStateTracker.from_events("whatsapp:966551234567", events, DOMAIN.slots)


@pytest.fixture(params=["sqlite", "postgresql"])
def trackers(request, tmp_path):
    """(Rasa's store as the servers run it, a function giving the raw `data` of every row)."""
    if request.param == "sqlite":
        path = tmp_path / "trackers.db"

        def raw():
            with sqlite3.connect(path) as db:
                return [r[0] for r in db.execute("SELECT data FROM events ORDER BY id")]

        return SQLiteTrackerStore(domain=DOMAIN, db=str(path)), raw, path
    import psycopg2

    from conftest import pg_tracker_store

    store, url = pg_tracker_store(request.getfixturevalue("pg_server"), DOMAIN)

    def raw():
        with psycopg2.connect(url) as db, db.cursor() as cur:
            cur.execute("SELECT data FROM events ORDER BY id")
            return [r[0] for r in cur.fetchall()]

    return store, raw, url


async def test_the_store_keeps_no_code_and_no_readable_id_or_phone_yet_the_slots_come_back(trackers):
    store, raw, where = trackers
    tracker = code_step_conversation()
    await store.save(tracker)
    rows = "\n".join(raw())
    for secret in (NID, "1010000022", PHONE, "551234567", CODE, "482 9 13", "خالد العتيبي"):
        assert secret not in rows, secret
    assert privacy.CODE_TEXT in rows and "1******014" in rows  # what was typed, masked
    # Rasa reads the conversation back with the slots the next turn needs.
    again = await store.retrieve(tracker.sender_id)
    assert again.get_slot("verified_id") == NID
    assert again.get_slot("national_id") == NID
    assert again.get_slot("beneficiary") == "1010000022"
    assert again.get_slot("otp") == "verified"
    # Customer care still reads the transcript, masked.
    users = [m["text"] for m in conversations.transcript(where, tracker.sender_id) if m["role"] == "user"]
    assert users == ["ضاعت هويتي", "هويتي 1******014 وجوالي 0******567", "وش الرسوم", privacy.CODE_TEXT]


def verified(sender: str, national_id: str) -> DialogueStateTracker:
    events = [
        ActionExecuted("action_session_start"),
        ActionExecuted("action_listen"),
        UserUttered("طلباتي", {"name": "track_request", "confidence": 0.9}),
        SlotSet("verified_id", national_id),
        ActionExecuted("action_listen"),
    ]
    return DialogueStateTracker.from_events(sender, events, DOMAIN.slots)


async def test_an_erasure_deletes_every_conversation_verified_as_the_person_and_no_other(trackers):
    store, raw, _ = trackers
    for sender, person in (("web:a", NID), ("telegram:b", NID), ("rest:c", "1010000022")):
        await store.save(verified(sender, person))
    await store.save(DialogueStateTracker.from_events("rest:unverified", [ActionExecuted("action_listen")]))
    tracker = verified("whatsapp:966551234567", NID)
    await store.save(tracker)
    tracker = await store.retrieve("whatsapp:966551234567")
    tracker.update(UserUttered("نعم", {"name": "affirm", "confidence": 0.99}))
    tracker.update(SlotSet("erase_conversations", True))
    await store.save(tracker)
    assert set(await store.keys()) == {"rest:c", "rest:unverified"}
    assert len(raw()) == len(verified("x", "y").events) + 1


async def test_rows_an_earlier_version_stored_are_rewritten_and_still_read(trackers, monkeypatch):
    from musaed import retention

    store, raw, where = trackers
    with monkeypatch.context() as earlier:  # the store before this change: events as Rasa gives them
        earlier.setattr(privacy, "protect_event", lambda data, **_: data)
        await store.save(code_step_conversation())
    assert NID in "\n".join(raw()) and CODE[:3] in "\n".join(raw())
    assert retention.protect_existing(where) > 0
    rows = "\n".join(raw())
    for secret in (NID, "1010000022", PHONE, "482 9 13", "خالد العتيبي"):
        assert secret not in rows, secret
    again = await store.retrieve("whatsapp:966551234567")
    assert again.get_slot("verified_id") == NID and again.get_slot("beneficiary") == "1010000022"
    assert retention.protect_existing(where) == 0  # nothing left to do
