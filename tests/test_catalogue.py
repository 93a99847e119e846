"""The catalogue is the single source of service text: check it is whole and renders."""

import re
from pathlib import Path

import pytest
import yaml

from actions.requests import ValidateServiceRequestForm
from musaed import catalogue, eligibility
from scripts import rasa_files

ROOT = Path(__file__).resolve().parent.parent
ARABIC = re.compile(r"[\u0600-\u06FF]")
SERVICE_IDS = list(catalogue.load().services)
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


def cat_yaml() -> dict:
    return yaml.safe_load(catalogue.CATALOGUE_PATH.read_text(encoding="utf-8"))


def _rules():
    for path in (ROOT / "data" / "rules").glob("*.yml"):
        yield from yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]


def _nlu_intents():
    found = set()
    for path in (ROOT / "data" / "nlu").glob("*.yml"):
        found |= {
            b["intent"] for b in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or [] if "intent" in b
        }
    return found


@pytest.fixture(scope="module")
def cat():
    return catalogue.load()


# -- the catalogue and the Rasa data agree -------------------------------------------


@pytest.mark.parametrize("sid", SERVICE_IDS)
def test_every_service_is_an_intent_with_examples(sid):
    assert sid in DOMAIN["intents"]
    assert sid in _nlu_intents()


def test_every_requirement_names_a_check_the_code_decides(cat):
    used = {r.check for s in cat.services.values() for r in s.requirements}
    assert used <= set(eligibility.CHECKS), used - set(eligibility.CHECKS)
    assert set(cat.checks) - {"citizen"} <= set(eligibility.CHECKS)


@pytest.mark.parametrize("path", sorted(rasa_files.made(), key=str), ids=lambda p: p.name)
def test_what_rasa_knows_of_the_services_is_what_the_catalogue_makes(path):
    # The guide and follow-up rules, the switch rule, the domain's service intents and asides' list.
    assert path.read_text(encoding="utf-8") == rasa_files.made()[path], "run `make rules`"


def test_a_service_is_in_every_list_rasa_keeps_of_them():
    services = list(catalogue.load().services)
    asides = next(m for m in DOMAIN["slots"]["national_id"]["mappings"] if m["type"] == "from_text")["not_intent"]
    assert set(services) <= set(asides) and set(services) <= set(DOMAIN["intents"])
    [switch] = yaml.safe_load((ROOT / "data" / "rules" / "switch.yml").read_text(encoding="utf-8"))["rules"]
    assert [step["intent"] for step in switch["steps"][0]["or"]] == services


@pytest.mark.parametrize("sid", SERVICE_IDS)
def test_every_service_intent_has_its_rule(cat, sid):
    flow = cat.services[sid].flow or "action_explain_service"
    assert any(r["steps"][0] == {"intent": sid} and {"action": flow} in r["steps"] for r in _rules()), sid


def test_every_form_step_is_a_slot_the_form_asks_and_validates(cat):
    steps = {step for s in cat.services.values() for step in s.form_steps}
    form = DOMAIN["forms"]["service_request_form"]["required_slots"]
    for step in steps:
        assert step in DOMAIN["slots"] and step in form, step
        assert f"action_ask_{step}" in DOMAIN["actions"] or f"utter_ask_{step}" in DOMAIN["responses"], step
        assert callable(getattr(ValidateServiceRequestForm, f"validate_{step}", None)), step


def test_every_label_a_service_says_after_creation_exists(cat):
    for s in cat.services.values():
        for label in s.after_created:
            assert "{name}" in cat.labels[label], (s.id, label)


def test_a_requirement_naming_an_unknown_check_is_refused():
    import copy

    data = yaml.safe_load(catalogue.CATALOGUE_PATH.read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    broken["services"]["digital_id"]["requirements"].append({"check": "no_such_check", "text": "x"})
    with pytest.raises(ValueError, match="no_such_check"):
        catalogue.Catalogue(broken)


def test_numbers_are_written_once_and_filled_into_the_text(cat):
    renew, minor = cat.services["renew_national_id"], cat.services["minor_national_id"]
    days = renew.numbers["renewal_window_days"]
    assert any(f"{days} يومًا" in r.text for r in renew.requirements)
    assert f"{days} يومًا" in cat.check_text("id_expiring_soon", "renew_national_id").remedy
    ages = (minor.numbers["min_age"], minor.numbers["max_age"])
    assert f"{ages[0]} و{ages[1]}" in cat.check_text("age_in_range", "minor_national_id").label
    raw = catalogue.CATALOGUE_PATH.read_text(encoding="utf-8")
    assert raw.count(str(days)) == 1  # in `numbers:` only
    assert "{" not in cat.howto("renew_national_id") + cat.howto("minor_national_id")


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
def test_howto_lists_numbered_steps_then_the_key_requirements_only(cat, sid):
    s = cat.services[sid]
    text = cat.howto(sid)
    for i, step in enumerate(s.steps, start=1):
        assert f"{i}. {step}" in text
    key = [r for r in s.requirements if r.key]
    for r in s.requirements:
        assert (r.text in text) == r.key, r.check
    if key:
        assert text.index(s.steps[-1]) < text.index(key[0].text)
    # All of them, and the notes, are one tap away.
    for r in s.requirements:
        assert r.text in cat.requirements(sid)
    for note in s.notes:
        assert note in cat.requirements(sid) and note not in text
    # About one phone screen.
    assert len(text) < 800 and text.count("\n") < 16


def test_every_requestable_service_names_what_most_often_stops_people(cat):
    for s in cat.services.values():
        if s.requestable:
            assert any(r.key for r in s.requirements), s.id
    renewal = {r.check for r in cat.services["renew_national_id"].requirements if r.key}
    assert renewal == {"national_address", "photo_valid"}


def test_followups_render_each_service_text(cat):
    s = cat.services["report_lost_id"]
    assert s.fees in cat.followup("report_lost_id", "fees")
    assert s.delivery in cat.followup("report_lost_id", "delivery")
    assert s.requirements[0].text in cat.followup("report_lost_id", "requirements")
    with pytest.raises(ValueError):
        cat.followup("report_lost_id", "colour")


def test_delivery_promise_matches_design_and_the_sources(cat):
    # DESIGN (tracking) and the lost-ID article: 5–7 working days to the national address, and a
    # card that cannot be delivered goes back to the nearest branch. The renewal articles say only
    # that the card is posted to the national address: no days are promised there.
    for sid in ("track_request", "report_lost_id"):
        assert "5 إلى 7 أيام عمل" in cat.services[sid].delivery and "أقرب فرع" in cat.services[sid].delivery
    assert "عنوانك الوطني" in cat.services["renew_national_id"].delivery
    assert "أيام" not in cat.services["renew_national_id"].delivery


def test_digital_id_warns_about_airports(cat):
    assert any("المطار" in n for n in cat.services["digital_id"].notes)


def test_minor_id_says_parent_must_attend(cat):
    text = cat.howto("minor_national_id")
    numbers = cat.services["minor_national_id"].numbers
    assert str(numbers["min_age"]) in text and str(numbers["max_age"]) in text and "الأب أو الأم" in text


def test_labels_used_by_actions_exist(cat):
    for key in (
        "which_service",
        "capabilities",
        "out_of_scope",
        "not_understood",
        "offer",
        "offer_more",
        "button_start",
        "button_requirements",
        "button_fees",
        "button_delivery",
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


# -- both languages ------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _texts(node, where=""):
    """(where, {ar, en}) for every bilingual text in the catalogue."""
    if isinstance(node, dict) and "ar" in node:
        yield where, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _texts(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _texts(value, f"{where}[{i}]")


# People's own words and the sources' sentences are quoted as written, not translated:
# a `words` list, a fact's `questions` and its `source.sentence`.
QUOTED = ("words", "senses", "questions", "sentence")


def _plain_strings(node, where=""):
    """Strings that are not inside a bilingual text or quoted (QUOTED): they must carry no Arabic."""
    if isinstance(node, dict) and "ar" in node:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in QUOTED:
                yield from _plain_strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _plain_strings(value, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where, node


RAW = yaml.safe_load(catalogue.CATALOGUE_PATH.read_text(encoding="utf-8"))


def test_every_text_is_written_in_arabic_and_english_with_the_same_placeholders():
    texts = list(_texts(RAW))
    assert len(texts) > 250
    for where, text in texts:
        assert set(text) == {"ar", "en"}, where
        assert text["ar"].strip() and text["en"].strip(), where
        assert not ARABIC.search(text["en"]), where
        assert sorted(PLACEHOLDER.findall(text["ar"])) == sorted(PLACEHOLDER.findall(text["en"])), where
        assert text["ar"].count("\n") == text["en"].count("\n"), where


def test_no_arabic_text_is_left_outside_a_bilingual_entry():
    assert [where for where, s in _plain_strings(RAW) if ARABIC.search(s)] == []


@pytest.mark.parametrize("sid", SERVICE_IDS)
def test_the_english_catalogue_renders_every_answer_in_english(sid):
    en = catalogue.load("en")
    answers = [en.howto(sid), *(en.followup(sid, q) for q in catalogue.FOLLOWUPS), en.offer(sid)]
    for answer in answers:
        assert not ARABIC.search(answer), answer
    assert " → " in en.howto(sid) and " ← " in catalogue.load("ar").howto(sid)
    assert en.services[sid].steps and len(en.services[sid].steps) == len(catalogue.load().services[sid].steps)


def test_an_unknown_language_gets_the_arabic_catalogue():
    assert catalogue.load("fr").labels == catalogue.load("ar").labels


@pytest.mark.parametrize(
    "text, aspects",
    [
        ("كم رسوم تجديد الاقامة؟", ["fees"]),
        ("وش شروط تجديد الهوية الوطنية؟", ["requirements"]),
        ("بعد ما ابلغ عن فقدان هويتي كم يوم توصلني الجديدة؟", ["delivery"]),
        ("وش الشروط والرسوم لسجل الاسرة", ["requirements", "fees"]),
        ("how much does it cost to renew my iqama", ["fees"]),
        ("what documents do i need for the digital id", ["requirements"]),
        ("ابي اجدد هويتي", []),
    ],
)
def test_aspects_a_message_asks_about(cat, text, aspects):
    assert cat.aspects_in(text) == aspects


def test_how_asks_for_the_steps_but_how_much_and_how_long_do_not(cat):
    assert cat.asks_how("كيف اجدد هويتي وكم الرسوم") and cat.asks_how("how do i renew my id, and the fees?")
    assert not cat.asks_how("how much to renew my iqama") and not cat.asks_how("how long does delivery take")


@pytest.mark.parametrize(
    "text, kind",
    [
        ("ضاع جوازي كيف أطلع بدل فاقد؟", "passport"),
        ("how do i renew my passport", "passport"),
        ("كم رسوم تجديد الاستمارة", "vehicle"),
        ("ابي اجدد جوازي وهويتي", None),  # names ours too: the classifier decides
        ("لازم جواز ساري عشان اجدد الاقامة؟", None),  # a requirement of renewing an iqama
        ("ابي اجدد هويتي", None),
    ],
)
def test_a_message_about_another_government_service_and_none_of_ours(cat, text, kind):
    assert cat.uncovered_service_in(text) == kind


@pytest.mark.parametrize(
    "text, other",
    [
        ("وين وصلت الشحنة حقتي من ارامكس", True),
        ("البطاقة الجديدة من البنك وصلت كيف افعلها", True),
        ("how much is the gym membership renewal", True),
        ("نبي نجدد الهوية البصرية للشركة", True),  # "identity" in another sense
        ("our brand identity needs a refresh", True),
        ("وش الرسوم؟", False),  # a bare follow-up: the service in context decides
        ("ضاعت هويتي والمندوب ما لقاني", False),  # names ours
        ("can I show my digital ID at the bank?", False),  # names ours: the digital ID at a bank
    ],
)
def test_a_message_of_another_domain_that_shares_our_words(cat, text, other):
    assert cat.other_domain_in(text) is other


def test_fees_and_delivery_are_the_facts_they_list_or_say_the_sources_do_not_state_them(cat):
    for service in cat.services.values():
        for aspect in ("fees", "delivery"):
            listed = cat_yaml()["services"][service.id].get(aspect) or []
            text = getattr(service, aspect)
            if listed:
                assert text == " ".join(cat.fact(service.id, f).text for f in listed)
            else:
                assert text == cat.labels[f"{aspect}_unstated"].format(**cat.call_centre)
        assert all(any(n == f.text for f in service.facts) for n in service.notes)


def test_relations_and_record_kinds_are_read_in_either_language(cat):
    en = catalogue.load("en")
    assert cat.relation_in("my wife") == en.relation_in("زوجتي") == "wife"
    # A button's payload is its label, in whichever language it was shown.
    for kind, spec in en.record_kinds.items():
        assert cat.record_kind_in(spec["label"]) == kind
        assert en.record_kind_in(catalogue.load().record_kinds[kind]["label"]) == kind


@pytest.mark.parametrize("name", sorted(DOMAIN["responses"]))
def test_every_response_has_an_english_variation_chosen_by_the_language_slot(name):
    variations = DOMAIN["responses"][name]
    plain = [v for v in variations if not v.get("condition")]
    english = [v for v in variations if v.get("condition") == [{"type": "slot", "name": "language", "value": "en"}]]
    assert len(plain) == 1 and len(english) == 1, name
    assert ARABIC.search(plain[0]["text"]) and not ARABIC.search(english[0]["text"])
    assert sorted(PLACEHOLDER.findall(plain[0]["text"])) == sorted(PLACEHOLDER.findall(english[0]["text"]))


def test_the_language_slot_is_filled_by_the_language_entity_and_decides_nothing():
    slot = DOMAIN["slots"]["language"]
    assert slot["mappings"] == [{"type": "from_entity", "entity": "language"}]
    assert slot["influence_conversation"] is False
    assert {"language": {"influence_conversation": False}} in DOMAIN["entities"]
