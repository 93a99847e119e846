"""One message per prompt: no reply asks for the same thing twice in a turn (issue 18).

Every turn of several flows, wrong answers included, is checked against the
texts that ask the person for something: at most one of them per turn.
"""

import re
from pathlib import Path

import document_samples as samples
import pytest
import yaml
from test_request_flows import ID, latest_code

from musaed import catalogue

pytestmark = pytest.mark.e2e
CAT = catalogue.load()
DOMAIN_FILE = Path(__file__).resolve().parent.parent / "domain.yml"

# What asks for a value: the identity prompts and errors, and the request form's questions.
_RESPONSES = [
    "utter_ask_national_id",
    "utter_national_id_missing",
    "utter_national_id_length",
    "utter_national_id_prefix",
    "utter_national_id_check_digit",
    "utter_code_sent",
    "utter_ask_otp",
    "utter_otp_format",
    "utter_otp_expired",
    "utter_answer_yes_or_cancel",
]
_LABELS = [
    "choose_dependent",
    "not_a_dependent",
    "choose_record_kind",
    "record_kind_unclear",
    "document_waiting",
    "document_refused",
    "terms",
    "confirm",
]


def _prompts() -> list:
    domain = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))["responses"]
    texts = [v["text"] for name in _RESPONSES for v in domain[name] if not v.get("condition")]
    texts += [CAT.labels[name] for name in _LABELS]
    texts += [d.ask for s in CAT.services.values() for d in s.documents]  # each document, asked for by name
    # The fixed words before the first placeholder identify the prompt.
    return [re.split(r"\{", t)[0].strip() for t in texts]


PROMPTS = _prompts()


def prompts_in(replies) -> list:
    """The reply messages that ask for something."""
    return [r["text"] for r in replies if any(p and p in (r.get("text") or "") for p in PROMPTS)]


class Watched:
    """A conversation whose every turn is checked for a prompt said twice."""

    def __init__(self, chat):
        self.chat = chat

    def send_file(self, data):
        replies = self.chat.send_file(data)
        assert replies and len(prompts_in(replies)) <= 1, [r.get("text") for r in replies]
        return replies

    def say(self, text):
        replies = self.chat.say(text)
        assert replies, f"no reply to {text!r}"
        assert len(prompts_in(replies)) <= 1, (text, [r.get("text") for r in replies])
        return replies


def wrong_code(servers, who):
    return "000000" if latest_code(servers, ID[who]) != "000000" else "111111"


def test_identity_steps_ask_once_each_time_right_or_wrong(chat, servers):
    c = Watched(chat)
    c.say("ابي اجدد هويتي الوطنية")
    c.say("نعم")
    for bad in ("ما ادري", "12345", "3012345678", "1012345679"):  # missing, length, prefix, check digit
        c.say(bad)
    sent = c.say(ID["khalid"])
    assert len(sent) == 1  # «أرسلت رمز تحقق … اكتب الرمز هنا», not a second «اكتب رمز التحقق»
    c.say("abc")
    c.say(wrong_code(servers, "khalid"))
    c.say(latest_code(servers, ID["khalid"]))
    c.say("ممكن")  # not a clear yes: asked once again
    c.say("نعم")


def test_form_steps_ask_once_when_the_answer_is_unclear(chat, servers):
    c = Watched(chat)
    c.say("سجل الاسرة تمزق ابي بدل")
    c.say("نعم")
    c.say(ID["khalid"])
    c.say(latest_code(servers, ID["khalid"]))
    c.say("مدري والله")  # neither damaged nor lost
    c.say("بدل تالف")
    c.say("يمكن")  # documents: not a file
    c.send_file(samples.program_renamed_jpg())  # refused: asked for again, once
    c.send_file(samples.photo())  # received, and the next one asked for
    c.send_file(samples.scan_pdf())  # received, and the terms asked
    c.say("يمكن")  # the terms: not a clear yes
    c.say("نعم")


def test_choosing_a_dependent_asks_once_when_the_name_is_not_one(chat, servers):
    c = Watched(chat)
    c.say("ابي اجدد هوية مقيم لافراد اسرتي")
    c.say("نعم")
    c.say(ID["ahmed"])
    c.say(latest_code(servers, ID["ahmed"]))
    c.say("عبدالرحمن")  # no such dependent
    c.say(ID["layla"])
