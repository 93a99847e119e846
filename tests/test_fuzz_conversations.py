"""A seeded conversation fuzzer: random walks over what people really type, at every step of every flow.

Scripted paths pass; people go off them. Each walk mixes services, follow-ups,
tracking, yes/no, ids (right, wrong, in Arabic-Indic digits), codes (right
ones read from the development outbox as a person reads their SMS, and wrong
ones), relatives, button payloads, small talk, asks for a person and junk, in
Arabic and English, and every reply is held to the invariants of issue 25:

- never «الخدمة غير متاحة» while both servers are up, and no 5xx;
- at most 4 messages in a reply, and never the same message three times;
- at the end of each walk «ضاعت هويتي» still gets the lost-id guide, or the
  offer to switch to it.

Two kinds of walk: from a fresh conversation (`WALKS` of `TURNS` messages),
and from each step of each flow reached by a scripted prefix, then random
messages. Our own random walk rather than Hypothesis: each step is a real
HTTP round trip to a trained model, where shrinking would re-run hundreds of
conversations; a failure prints its seed and walk instead, and
`MUSAED_FUZZ_SEED=<n>` replays it.
"""

from __future__ import annotations

import random
from collections import Counter

import document_samples as samples
import pytest

from musaed import catalogue, seed, settings, store

pytestmark = pytest.mark.e2e
CAT_AR, CAT_EN = catalogue.load("ar"), catalogue.load("en")
ID = seed.ids()
WALKS = 40
TURNS = 12
SEED = settings.FUZZ_SEED.integer()
UNAVAILABLE = (CAT_AR.labels["unavailable"], CAT_EN.labels["unavailable"])

# What people type, by kind. A string starting with "@" is resolved per walk
# (an id of the demo records, the code just sent to one, ...).
UTTERANCES = {
    "service": [
        "ضاعت هويتي",
        "ابي اجدد هويتي",
        "ابي اجدد اقامة زوجتي",
        "كيف اطلع سجل اسرة بدل تالف",
        "الهوية الرقمية",
        "كيف افعل الهوية الجديدة",
        "هوية لولدي عمره 12",
        "I lost my ID card",
        "how do I renew my wife's iqama?",
        "renew my national id",
        "شلون اجدد الاقامة",
    ],
    "followup": [
        "كم الرسوم؟",
        "وش الشروط",
        "متى توصل البطاقة",
        "how much does it cost?",
        "what do I need?",
        "هل لازم اروح الفرع؟",
        "تشتغل بدون نت؟",
        "اقدر اقسط الرسوم؟",
        "does it work at the airport?",
    ],
    "tracking": ["وين وصل طلبي", "طلباتي", "track my request", "MSD-12345678", "ابي اتابع طلبي MSD-00000001"],
    "yes_no": ["نعم", "لا", "ايه", "yes", "no", "الغاء", "مدري", "cancel"],
    "id": ["@id", "@id", "@id_indic", "1234567890", "123", "@other_id", "٢٠١٠٠٠٠٠٢٠"],
    "code": ["@code", "@code", "000000", "123456", "12345", "@code_spaced"],
    "relative": ["زوجتي", "ولدي سعود", "بنتي", "my wife", "أمي"],
    "payload": [
        "/affirm",
        "/deny",
        "/report_lost_id",
        "/renew_resident_id",
        "/track_request",
        "/ask_fees",
        "/switch",
        '/inform{"national_id": "1010000014"}',
        '/inform{"otp": "123456"}',
        "/restart",
    ],
    "small_talk": ["مرحبا", "السلام عليكم", "شكرا", "thanks", "hello", "انت بوت؟", "وش تقدر تسوي", "مع السلامة"],
    "human": ["ابي اكلم موظف", "talk to a human"],
    # Files (issue 31), sent as REST takes them: a photo, a program renamed .jpg, a PDF with a script,
    # and a document reference typed by hand (another conversation's, or none).
    "file": ["@photo", "@program", "@pdf_script", '/inform{"document": "nosuchdocumentreference"}', "ما عندي"],
    "junk": ["😀", "؟؟؟", "asdf qwer", "ههههههه", "كم سعر الذهب اليوم", "اب  ي  ا ج د د", " ", "ابي اجدد جوازي"],
}
KINDS = list(UTTERANCES)
FILES = {"@photo": samples.photo, "@program": samples.program_renamed_jpg, "@pdf_script": samples.pdf_with_javascript}
# Where a scripted prefix leaves a walk: the offer, the id, the code, a dependent, the confirmation.
PREFIXES = {
    "report_lost_id": ["ضاعت هويتي", "نعم", "@id", "@code"],
    "renew_national_id": ["ابي اجدد هويتي", "نعم", "@id", "@code"],
    "renew_resident_id": ["كيف اجدد هوية مقيم لافراد اسرتي", "نعم", "@id", "@code"],
    "replace_family_record": ["ابي سجل اسرة بدل تالف", "نعم", "@id", "@code", "بدل تالف", "@photo"],
    "minor_national_id": ["هوية وطنية لولدي", "نعم", "@id", "@code"],
    "activate_national_id": ["كيف افعل هويتي الجديدة", "نعم", "@id", "@code"],
    "track_request": ["وين وصل طلبي", "@id", "@code"],
}


def test_every_service_with_a_form_in_the_catalogue_is_walked():
    assert set(PREFIXES) == {sid for sid, s in CAT_AR.services.items() if s.requestable or s.flow}


class Walk:
    """One conversation's random walk, with what it needs to resolve "@" utterances."""

    def __init__(self, chat, servers, rng: random.Random) -> None:
        self.chat, self.servers, self.rng = chat, servers, rng
        self.person = rng.choice(["khalid", "ahmed", "sara", "noura", "abdullah"])
        self.log: list = []

    def resolve(self, text: str) -> str:
        nid = ID[self.person]
        if text == "@id":
            return nid
        if text == "@id_indic":
            return nid.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
        if text == "@other_id":
            return ID[self.rng.choice(sorted(ID))]
        if text in ("@code", "@code_spaced"):
            row = store.latest_code(store.open_db(self.servers.db_file), nid)
            code = (row or {}).get("code") or "999999"
            return f"{code[:3]} {code[3:]}" if text == "@code_spaced" else code
        return text

    def say(self, text: str) -> list:
        if text in FILES:
            replies = self.chat.send_raw(FILES[text]())
            self.log.append((text, [r.get("text") or ("<image>" if r.get("image") else "") for r in replies]))
            return replies
        message = self.resolve(text)
        replies = self.chat.say_raw(message)
        self.log.append((message, [r.get("text") or ("<image>" if r.get("image") else "") for r in replies]))
        return replies

    def random_message(self) -> str:
        return self.rng.choice(UTTERANCES[self.rng.choice(KINDS)])

    def story(self) -> str:
        return "\n".join(f"> {m}\n" + "\n".join(f"    < {(t or '')[:90]!r}" for t in r) for m, r in self.log)


def check(walk: Walk, replies: list, status: int) -> None:
    where = f"seed {walk.rng_seed}:\n{walk.story()}"
    assert status < 500, where
    texts = [r.get("text") or "" for r in replies]
    assert not any(t in UNAVAILABLE for t in texts), f"«unavailable» with the servers up, {where}"
    assert 1 <= len(replies) <= 4, f"{len(replies)} messages in one reply, {where}"
    repeated = [t for t, n in Counter(texts).items() if t and n >= 3]
    assert not repeated, f"the same message three times, {where}"


def step(walk: Walk, text: str) -> None:
    replies = walk.say(text)
    check(walk, replies, walk.chat.last_status)


def lost_id_still_answered(walk: Walk) -> None:
    replies = walk.say("ضاعت هويتي")
    check(walk, replies, walk.chat.last_status)
    # Out of hours, the message right after asking for a person is kept for the next agent, by
    # design (musaed/handover.py); the conversation is not wedged: the next one is the bot's.
    kept = (CAT_AR.labels["handover_kept"], CAT_EN.labels["handover_kept"])
    if any((r.get("text") or "") in kept for r in replies):
        replies = walk.say("ضاعت هويتي")
        check(walk, replies, walk.chat.last_status)
    names = (CAT_AR.services["report_lost_id"].name, CAT_EN.services["report_lost_id"].name)
    assert any(name in (r.get("text") or "") for r in replies for name in names), (
        f"«ضاعت هويتي» no longer gets the lost-id guide, seed {walk.rng_seed}:\n{walk.story()}"
    )


@pytest.fixture
def walker(servers):
    from conftest import Conversation

    class Chat(Conversation):
        last_status = 200

        def say_raw(self, text: str) -> list:
            import requests

            r = requests.post(self.url, json={"sender": self.sender, "message": text}, timeout=60)
            self.last_status = r.status_code
            return r.json() if r.status_code < 500 else []

        def send_raw(self, data: bytes) -> list:
            import requests

            url = self.url.rsplit("/", 1)[0] + "/document"
            r = requests.post(url, params={"sender": self.sender}, data=data, timeout=60)
            self.last_status = r.status_code
            return r.json() if r.status_code < 500 else []

    def make(seed_value: int) -> Walk:
        w = Walk(Chat(servers.url), servers, random.Random(seed_value))
        w.rng_seed = seed_value
        return w

    return make


def breaker_trips(servers) -> int:
    """How often Rasa's circuit breaker has tripped so far: it must never be what stops a loop."""
    return (servers.log_dir / "rasa.log").read_text(errors="replace").count("Circuit breaker")


def test_random_walks_from_a_fresh_conversation(walker, servers):
    trips = breaker_trips(servers)
    for n in range(WALKS):
        walk = walker(SEED * 1000 + n)
        for _ in range(TURNS):
            step(walk, walk.random_message())
        lost_id_still_answered(walk)
    assert breaker_trips(servers) == trips


@pytest.mark.parametrize("flow", sorted(PREFIXES))
def test_random_messages_at_every_step_of_every_flow(walker, servers, flow):
    trips = breaker_trips(servers)
    prefix = PREFIXES[flow]
    for depth in range(1, len(prefix) + 1):
        for n in range(2):
            walk = walker(SEED * 1000 + depth * 10 + n)
            for text in prefix[:depth]:
                step(walk, text)
            for _ in range(4):
                step(walk, walk.random_message())
            lost_id_still_answered(walk)
    assert breaker_trips(servers) == trips
