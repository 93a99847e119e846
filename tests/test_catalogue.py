"""The catalogue is the single source of service text: check it is whole and renders."""
import re
from pathlib import Path

import pytest
import yaml

from musaed import catalogue

SERVICE_IDS = [
    "renew_national_id", "renew_resident_id", "report_lost_id", "replace_family_record",
    "digital_id", "activate_national_id", "minor_national_id", "track_request",
]
ROOT = Path(__file__).resolve().parent.parent
ARABIC = re.compile(r"[\u0600-\u06FF]")


@pytest.fixture(scope="module")
def cat():
    return catalogue.load()


def test_every_contract_service_is_catalogued(cat):
    assert list(cat.services) == SERVICE_IDS


@pytest.mark.parametrize("sid", SERVICE_IDS)
def test_service_entries_are_complete_arabic(cat, sid):
    s = cat.services[sid]
    assert len(s.steps) >= 3
    assert s.path and all(ARABIC.search(p) for p in s.path)
    for text in (s.name, s.summary, s.fees, s.delivery, *s.steps, *(r.text for r in s.requirements)):
        assert ARABIC.search(text), text
    for r in s.requirements:
        assert r.check in cat.checks, f"{sid}: unknown check {r.check}"


@pytest.mark.parametrize("sid", SERVICE_IDS)
def test_howto_lists_numbered_steps_then_requirements(cat, sid):
    s = cat.services[sid]
    text = cat.howto(sid)
    for i, step in enumerate(s.steps, start=1):
        assert f"{i}. {step}" in text
    assert text.index(s.steps[-1]) < text.index(s.requirements[0].text)


def test_followups_render_each_service_text(cat):
    s = cat.services["report_lost_id"]
    assert s.fees in cat.followup("report_lost_id", "fees")
    assert s.delivery in cat.followup("report_lost_id", "delivery")
    assert s.requirements[0].text in cat.followup("report_lost_id", "requirements")
    with pytest.raises(ValueError):
        cat.followup("report_lost_id", "colour")


def test_delivery_promise_matches_design(cat):
    # DESIGN: cards reach the national address in 5–7 working days.
    for sid in ("renew_national_id", "renew_resident_id", "report_lost_id"):
        assert "5 إلى 7 أيام عمل" in cat.services[sid].delivery


def test_digital_id_warns_about_airports(cat):
    assert any("المطار" in n for n in cat.services["digital_id"].notes)


def test_minor_id_says_parent_must_attend(cat):
    text = cat.howto("minor_national_id")
    assert "10" in text and "15" in text and "الأب أو الأم" in text


def test_labels_used_by_actions_exist(cat):
    for key in (
        "which_service", "capabilities", "out_of_scope", "not_understood", "offer", "offer_more",
        "button_start", "button_no", "button_requirements", "button_fees", "button_delivery",
    ):
        assert ARABIC.search(cat.labels[key]), key
    assert cat.call_centre["phone"] in cat.call_centre_text()


def test_every_relative_word_the_nlu_knows_is_found_and_understood(cat):
    # The family_member regex in data/nlu/entities.yml is written out by hand
    # from its synonym lists; the form then reads the relative with the
    # catalogue. A word in one list but not the others would be lost.
    nlu = yaml.safe_load((ROOT / "data" / "nlu" / "entities.yml").read_text(encoding="utf-8"))["nlu"]
    regex = next(b for b in nlu if b.get("regex") == "family_member")["examples"].strip()[2:]
    for block in nlu:
        if block.get("synonym") not in cat.relations:
            continue
        for word in [w[2:] for w in block["examples"].strip().splitlines()]:
            assert re.fullmatch(regex, word), word
            assert cat.relation_in(word) == block["synonym"], word
