"""End to end with the real servers: what the tracker store keeps of a whole request flow,
a verified person's copy of their data, and their conversations erased («احذف محادثاتي»)."""

import sqlite3

import pytest
from test_fuzz_conversations import walker  # noqa: F401 - the fuzzer's fixture
from test_request_flows import ID, TRACKING, joined, latest_code, start, verify

from musaed import catalogue, conversations, store

from conftest import Conversation

pytestmark = pytest.mark.e2e


def rows(servers, sender=None) -> list:
    """The raw `data` of the tracker store's rows (of one conversation, or all)."""
    with sqlite3.connect(servers.tracker_db) as db:
        if sender is None:
            return [r[0] for r in db.execute("SELECT data FROM events")]
        return [r[0] for r in db.execute("SELECT data FROM events WHERE sender_id = ?", [sender])]


def senders(servers) -> set:
    with sqlite3.connect(servers.tracker_db) as db:
        return {r[0] for r in db.execute("SELECT DISTINCT sender_id FROM events")}


def test_a_whole_request_flow_leaves_no_code_id_or_phone_in_the_tracker_store(chat, servers):
    start(chat, "ابي اجدد اقامة زوجتي")
    chat.say(ID["khalid"])
    code = latest_code(servers, ID["khalid"])
    summary = joined(chat.say(code))
    assert "ملخص الطلب" in summary and "أمل حسين" in summary
    number = TRACKING.search(joined(chat.say("نعم"))).group()
    # The next turns are read back from the store: verification held (the slot decrypts).
    tracking = joined(chat.say(f"وين وصل طلبي {number}"))
    assert number in tracking and "رقم هويتك" not in tracking
    stored = "\n".join(rows(servers, chat.conversation_id))
    person = store.get_person(store.open_db(servers.db_file), ID["khalid"])
    for secret in (code, ID["khalid"], ID["amal"], person["mobile"], person["mobile"][1:]):
        assert secret not in stored, secret
    assert number in stored  # what tracking needs stays
    # Customer care reads the transcript, masked.
    said = [
        m["text"] for m in conversations.transcript(servers.tracker_db, chat.conversation_id) if m["role"] == "user"
    ]
    assert said[2:4] == [ID["khalid"][0] + "******" + ID["khalid"][-3:], "******"]


def make_request(servers, who: str) -> str:
    db = store.open_db(servers.db_file)
    request, _ = store.create_request(
        db,
        service_id="report_lost_id",
        applicant_id=ID[who],
        beneficiary_id=ID[who],
        conversation_id="rest:earlier",
    )
    store.set_request_status(db, request["tracking_number"], "approved", actor="agent:huda")
    return request["tracking_number"]


def test_a_verified_person_gets_a_copy_of_their_requests_and_history_in_their_language(chat, servers):
    number = make_request(servers, "sara")
    asks = joined(chat.say("ابي نسخة من بياناتي"))
    assert "رقم هويتك" in asks  # identity first
    copy = verify(chat, servers, "sara")
    ar = catalogue.load("ar")
    assert number in copy and "نسخة من بياناتك" in copy
    assert ar.status_text("submitted") in copy and ar.status_text("approved") in copy  # the history, both steps
    assert "1. " in copy and "2. " in copy
    # In English, to someone who asks in English (already verified: no questions).
    english = joined(chat.say("send me a copy of my data"))
    en = catalogue.load("en")
    assert number in english and en.status_text("approved") in english and "A copy of your data" in english


def test_no_requests_is_said_so(chat, servers):
    chat.say("ابي نسخة من بياناتي")
    assert "لا توجد لديك طلبات" in verify(chat, servers, "noura")


def verified_conversation(servers, who: str) -> Conversation:
    """A conversation in which `who` verified (tracking their requests)."""
    chat = Conversation(servers.url)
    chat.say("طلباتي")
    chat.say(ID[who])
    listed = joined(chat.say(latest_code(servers, ID[who])))
    assert catalogue.load().labels["no_requests"] in listed or catalogue.load().labels["your_requests"] in listed
    return chat


def test_erasing_my_conversations_asks_first_then_deletes_every_one_that_verified_as_me(servers):
    earlier = verified_conversation(servers, "khalid")
    someone_else = verified_conversation(servers, "sara")
    unverified = Conversation(servers.url)
    unverified.say("ضاعت هويتي")
    chat = verified_conversation(servers, "khalid")

    question = chat.say("احذف محادثاتي")
    assert "هل تريد الحذف" in joined(question)
    assert [b["payload"] for b in question[-1]["buttons"]] == ["/affirm", "/deny"]
    assert "لم يُحذف شيء" in joined(chat.say("لا"))
    assert {earlier.conversation_id, chat.conversation_id} <= senders(servers)

    assert "هل تريد الحذف" in joined(chat.say("امسح محادثاتي"))  # verified already: only the question
    again = chat.say("اممم")  # not a yes: the question once more, nothing deleted
    assert len(again) == 1 and "هل تريد الحذف" in joined(again)
    assert chat.conversation_id in senders(servers)
    assert "تم حذف محادثاتك" in joined(chat.say("اكيد احذفها"))
    left = senders(servers)
    assert chat.conversation_id not in left and earlier.conversation_id not in left
    assert {someone_else.conversation_id, unverified.conversation_id} <= left
    # Nothing of theirs is left anywhere in the store; their requests stay.
    assert not [r for r in rows(servers) if ID["khalid"] in r]
    # The next message starts afresh: not verified any more.
    assert "رقم هويتك" in joined(chat.say("طلباتي"))


def test_erasure_in_english_and_a_stranger_must_verify_first(servers):
    chat = Conversation(servers.url)
    asks = joined(chat.say("delete my conversations"))
    assert "ID number" in asks
    chat.say(ID["fahd"])
    question = joined(chat.say(latest_code(servers, ID["fahd"])))
    assert "Delete them?" in question
    assert "have been deleted" in joined(chat.say("yes"))
    assert chat.conversation_id not in senders(servers)


# Off the path: the conversation fuzzer's walks (tests/test_fuzz_conversations.py) from each step
# of the privacy flows, with the privacy requests among what is typed.
PRIVACY_PREFIXES = {
    "data_copy": ["ابي نسخة من بياناتي", "@id", "@code"],
    "data_erase": ["احذف محادثاتي", "@id", "@code"],
}
PRIVACY_SAID = ["ابي نسخة من بياناتي", "احذف محادثاتي", "delete my conversations", "send me a copy of my data"]


@pytest.mark.parametrize("flow", sorted(PRIVACY_PREFIXES))
def test_random_messages_at_every_step_of_the_privacy_flows(walker, servers, flow):  # noqa: F811 - the fixture
    from test_fuzz_conversations import breaker_trips, lost_id_still_answered, step

    trips = breaker_trips(servers)
    prefix = PRIVACY_PREFIXES[flow]
    for depth in range(1, len(prefix) + 1):
        for n in range(3):
            walk = walker(7100 + depth * 10 + n)
            for text in prefix[:depth]:
                step(walk, text)
            for _ in range(4):
                step(walk, walk.rng.choice(PRIVACY_SAID) if walk.rng.random() < 0.25 else walk.random_message())
            lost_id_still_answered(walk)
    assert breaker_trips(servers) == trips
