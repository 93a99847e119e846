"""The service catalogue: every word Musaed says about a service.

`catalogue.yml` beside this file holds each service's name, menu path, steps,
requirements, fees, delivery and notes, plus the few phrases that frame an
answer.  The bot, the requirement checks and the customer-care lookup all
render their answers here, so a service's text exists exactly once.

Every text is written in Arabic and English side by side (`{ar: …, en: …}`);
`load(language)` gives the catalogue in one of them, the same renderers
working on either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from musaed.arabic import normalize
from musaed.language import ARABIC, LANGUAGES

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yml")

# The follow-up questions answered for the service in context.
FOLLOWUPS = ("requirements", "fees", "delivery")
# Kinds whose words are also matched by their labels, in every language: a
# button's payload is its label, and the person may have switched languages.
_WORDED = ("relations", "record_kinds", "other_services")


@dataclass(frozen=True)
class Requirement:
    check: str
    text: str
    # One of those that most often stop people: shown in the first answer.
    key: bool = False


@dataclass(frozen=True)
class Fact:
    """One thing a source article states about a service, written once: the
    answer's text, its source (seed file and the sentence), and ways people
    ask for it (each with the yes/no it answers, if it is such a question)."""

    service: str
    id: str
    text: str
    source_file: str
    source_sentence: str
    questions: Tuple[Tuple[str, Optional[str]], ...] = ()
    # Other sentences that state the same (a path told step by step): (file, sentence).
    also: Tuple[Tuple[str, str], ...] = ()

    def sources(self) -> List[Tuple[str, str]]:
        return [(self.source_file, self.source_sentence), *self.also]


@dataclass(frozen=True)
class Document:
    """A document a request needs uploaded (issue 31): asked for by `name`, one at a time, with
    `ask` ({limit} filled in); `missing` is what «ما عندي» is told; `check` is the requirement it meets."""

    id: str
    check: str
    name: str
    ask: str
    missing: str


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    summary: str
    audience: str
    path: Tuple[str, ...]
    steps: Tuple[str, ...]
    requirements: Tuple[Requirement, ...]
    # What the sources say about its fees and delivery, and what else to know: the
    # texts of the facts the catalogue lists for each (or that the sources don't say).
    fees: str
    delivery: str
    notes: Tuple[str, ...]
    # Whether Musaed can check eligibility and create this request for the
    # person (digital_id and track_request are guidance/lookup only).
    requestable: bool
    # "self", or "dependent" when the request is for a family member.
    beneficiary: str = "self"
    # Which family members it can be for (empty: any): relations and kinds.
    dependent_relations: Tuple[str, ...] = ()
    dependent_kinds: Tuple[str, ...] = ()
    # The request form's own steps after identity and beneficiary (slot names).
    form_steps: Tuple[str, ...] = ()
    first_status: str = "submitted"
    # Whether the result is a card posted to the applicant's national address.
    posted: bool = False
    # Labels said once the request is made ({name}: the beneficiary).
    after_created: Tuple[str, ...] = ()
    # The service's numbers (renewal window, age range): read by the checks
    # and filled into its text, so each is written once.
    numbers: Mapping[str, int] = field(default_factory=dict)
    # The form its intent starts instead of a guide (track_request), if any.
    flow: Optional[str] = None
    # What the sources state about it, fact by fact (musaed/answers.py answers from these).
    facts: Tuple[Fact, ...] = ()
    # The ids of the facts each aspect's block is made of ("delivery" → delivery_time, …).
    aspect_facts: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    # The documents the request needs uploaded, in the order they are asked for (the form step `documents`).
    documents: Tuple[Document, ...] = ()

    def document(self, document_id: Optional[str]) -> Optional[Document]:
        return next((d for d in self.documents if d.id == document_id), None)

    def in_document_order(self, rows: Sequence[Mapping]) -> List[Mapping]:
        """Rows of documents (each with its `kind`) in the order the service asks for them."""
        order = {d.id: n for n, d in enumerate(self.documents)}
        return sorted(rows, key=lambda row: order.get(row["kind"], len(order)))


@dataclass(frozen=True)
class Check:
    id: str
    label: str
    remedy: str


class Catalogue:
    """Read-only view of catalogue.yml with the answer renderers."""

    def __init__(self, data: dict, language: str = ARABIC) -> None:
        data = _in_language(_with_label_words(data), language)
        self.language = language
        self.labels: Dict[str, str] = data["labels"]
        self.call_centre: Dict[str, str] = data["call_centre"]
        self.statuses: Dict[str, str] = data["statuses"]
        self.relations: Dict[str, dict] = data["relations"]
        self.record_kinds: Dict[str, dict] = data["record_kinds"]
        self.other_services: Dict[str, dict] = data.get("other_services") or {}
        # Words that ask about one aspect of a service ("كم رسوم", "how long").
        self.aspects: Dict[str, dict] = data.get("aspects") or {}
        self.covered: dict = data.get("covered") or {"words": []}
        self.negations: dict = data.get("negations") or {"words": []}
        # «ما عندي»: the document asked for is not at hand (the documents step).
        self.no_document: dict = data.get("no_document") or {"words": []}
        # Words of other domains that share ours (a parcel's delivery, a bank card's renewal).
        self.other_domains: dict = data.get("other_domains") or {"words": [], "senses": []}
        # Expiry reminders: the windows (days before expiry) and the services that renew a document.
        self.reminders: dict = data.get("reminders") or {"windows_days": [], "services": []}
        self.checks: Dict[str, Check] = {cid: Check(cid, c["label"], c["remedy"]) for cid, c in data["checks"].items()}
        # Fees and delivery the sources do not state: said so, with where to ask.
        unstated = {
            aspect: self.labels[f"{aspect}_unstated"].format(**self.call_centre) for aspect in ("fees", "delivery")
        }
        self.services: Dict[str, Service] = {sid: _service(sid, s, unstated) for sid, s in data["services"].items()}
        for service in self.services.values():
            unknown = [r.check for r in service.requirements if r.check not in self.checks]
            if unknown:
                raise ValueError(f"{service.id}: requirements name unknown checks {unknown}")
            unmet = [d.id for d in service.documents if d.check not in {r.check for r in service.requirements}]
            if unmet:
                raise ValueError(f"{service.id}: documents {unmet} meet none of its requirements")
            if service.documents and "documents" not in service.form_steps:
                raise ValueError(f"{service.id}: it has documents but no `documents` form step")

    # -- lookups -------------------------------------------------------------

    def service(self, service_id: Optional[str]) -> Optional[Service]:
        return self.services.get(service_id or "")

    def facts(self) -> List[Fact]:
        """Every service's facts, in catalogue order."""
        return [f for s in self.services.values() for f in s.facts]

    def fact(self, service_id: str, fact_id: str) -> Optional[Fact]:
        service = self.service(service_id)
        return next((f for f in service.facts if f.id == fact_id), None) if service else None

    def menu(self) -> List[Tuple[str, str]]:
        """(service id, Arabic name) for every service, in catalogue order."""
        return [(s.id, s.name) for s in self.services.values()]

    # -- answers -------------------------------------------------------------

    def howto(self, service_id: str) -> str:
        """A how-to answer that fits a phone screen: path, numbered steps and the
        requirements that most often stop people; all of them, with the notes, are
        one tap away (`requirements`)."""
        s = self.services[service_id]
        parts = [
            f"{s.name}: {s.summary}",
            self.labels["path"] + " " + self.labels.get("path_separator", " ← ").join(s.path),
            self.labels["steps"] + "\n" + _numbered(s.steps),
        ]
        key = [r.text for r in s.requirements if r.key]
        if key:
            parts.append(self.labels["key_requirements"] + "\n" + _bulleted(key))
        # One newline, not a blank line: Rasa's channels split a message at
        # blank lines, and the answer should arrive as one message.
        return "\n".join(parts)

    def requirements(self, service_id: str) -> str:
        """Every requirement of the service, then its notes (what else to know before starting)."""
        s = self.services[service_id]
        if not s.requirements:
            text = self.labels["no_requirements"].format(name=s.name)
        else:
            text = self.labels["requirements"].format(name=s.name) + "\n" + _numbered(r.text for r in s.requirements)
        if s.notes:
            text += "\n" + self.labels["notes"] + "\n" + _bulleted(s.notes)
        return text

    def fees(self, service_id: str) -> str:
        s = self.services[service_id]
        return self.labels["fees"].format(name=s.name) + " " + s.fees

    def delivery(self, service_id: str) -> str:
        s = self.services[service_id]
        return self.labels["delivery"].format(name=s.name) + " " + s.delivery

    def followup(self, service_id: str, question: str) -> str:
        """Answer one of FOLLOWUPS for a service."""
        if question not in FOLLOWUPS:
            raise ValueError(f"unknown follow-up {question!r}")
        return getattr(self, question)(service_id)

    def offer(self, service_id: str) -> Optional[str]:
        """The closing offer after a how-to answer, if the service has one."""
        s = self.services[service_id]
        return self.labels["offer"] if s.requestable else self.labels["offer_more"]

    def call_centre_text(self) -> str:
        return self.labels["human"].format(**self.call_centre)

    # -- words people use ----------------------------------------------------

    def relation_in(self, text: str) -> Optional[str]:
        """The relation named in `text` ("لزوجتي" → "wife"), if exactly one is."""
        return _one_kind_in(text, self.relations)

    def record_kind_in(self, text: str) -> Optional[str]:
        """ "damaged" or "lost" when `text` says which ("تبلل السجل" → "damaged")."""
        return _one_kind_in(text, self.record_kinds)

    def aspects_in(self, text: str) -> List[str]:
        """The FOLLOWUPS that `text` asks about ("كم رسوم تجديد الاقامة" → ["fees"]), in catalogue order."""
        return [kind for kind in FOLLOWUPS if kind in self.aspects and _one_kind_in(text, {kind: self.aspects[kind]})]

    def says_no_document(self, text: str) -> bool:
        """Whether `text` says the document asked for is not at hand («ما عندي», "I don't have it")."""
        return _one_kind_in(text, {"no": self.no_document}) == "no"

    def negated(self, text: str) -> bool:
        """Whether `text` holds a word of no or never («ابداً», "not really")."""
        return _one_kind_in(text, {"no": self.negations}) == "no"

    def asks_figure(self, text: str) -> bool:
        """Whether `text` asks for a figure ("كم يوم", "how much", "what size")."""
        return _one_kind_in(text, {"figure": self.aspects.get("figure") or {"words": []}}) == "figure"

    def asks_how(self, text: str) -> bool:
        """Whether `text` asks how to do something ("كيف", "how do I"): the steps are wanted too."""
        return _one_kind_in(text, {"how": self.aspects.get("how") or {"words": []}}) == "how"

    def other_service_in(self, text: str) -> Optional[str]:
        """The uncovered government service `text` names ("ابي اجدد جوازي" → "passport"), first match first."""
        for kind, spec in self.other_services.items():
            if _one_kind_in(text, {kind: spec}) == kind:
                return kind
        return None

    def uncovered_service_in(self, text: str) -> Optional[str]:
        """The other government service `text` is about, if it names one and nothing Musaed covers
        ("ضاع جوازي" → "passport"; "جوازي وهويتي" → None)."""
        kind = self.other_service_in(text)
        if kind is None or _one_kind_in(text, {"covered": self.covered}) == "covered":
            return None
        return kind

    def other_domain_in(self, text: str) -> bool:
        """Whether `text` is about another domain that shares our words («وين وصلت شحنتي من
        نون؟», "my bank card renewal", «الهوية البصرية للشركة») and about nothing Musaed covers."""
        norm = normalize(text).lower()
        # Our words in another sense ("brand identity") are not ours: dropped before looking.
        senses = [_normal_word(w) for w in self.other_domains.get("senses") or ()]
        for sense in senses:
            norm = norm.replace(sense, " ")
        changed = norm != normalize(text).lower()
        named = changed or _one_kind_in(norm, {"other": {"words": self.other_domains.get("words") or []}}) == "other"
        return named and _one_kind_in(norm, {"covered": self.covered}) != "covered"

    def other_service_text(self, text: str) -> str:
        """What Musaed says of a service it does not cover: which one it understood, and where to go."""
        kind = self.other_service_in(text)
        if kind is None:
            return self.labels["other_service_unnamed"].format(**self.call_centre_fields())
        return self.labels["other_service"].format(name=self.other_services[kind]["label"], **self.call_centre_fields())

    def call_centre_fields(self) -> Dict[str, str]:
        return {"call_centre": self.call_centre["name"], "phone": self.call_centre["phone"]}

    def status_text(self, status: str) -> str:
        return self.statuses.get(status, status)

    # -- requests --------------------------------------------------------------

    def check_text(self, check_id: str, service_id: str) -> Check:
        """A check's label and remedy with the service's numbers filled in."""
        c, numbers = self.checks[check_id], self.services[service_id].numbers
        return Check(c.id, c.label.format(**numbers), c.remedy.format(**numbers))

    def eligibility_report(self, service_id: str, results) -> str:
        """Passed checks, then every failing one with what to do about it."""
        failed = [r for r in results if not r.passed]
        if not failed:
            return (
                self.labels["checks_passed"]
                + "\n"
                + "\n".join(
                    self.labels["check_passed_line"].format(label=self.check_text(r.check, service_id).label)
                    for r in results
                )
            )
        lines = [self.labels["checks_failed"]]
        for r in failed:
            check = self.check_text(r.check, service_id)
            lines.append(self.labels["check_failed_line"].format(label=check.label, remedy=check.remedy))
        lines.append(self.labels["retry_after_fix"])
        return "\n".join(lines)

    def request_summary(self, service_id: str, beneficiary: str, address: Optional[str]) -> str:
        s = self.services[service_id]
        if address:
            return self.labels["summary"].format(service=s.name, beneficiary=beneficiary, address=address, fees=s.fees)
        return self.labels["summary_no_address"].format(service=s.name, beneficiary=beneficiary, fees=s.fees)


def _service(sid: str, s: dict, unstated: Dict[str, str]) -> Service:
    numbers = dict(s.get("numbers") or {})

    def text(value: str) -> str:
        return value.format(**numbers)  # "{renewal_window_days} يومًا" → "180 يومًا"

    facts = tuple(
        Fact(
            service=sid,
            id=f["id"],
            text=text(f["text"]),
            source_file=f["source"]["file"],
            source_sentence=f["source"]["sentence"],
            questions=tuple((q["q"], _yes_no(q.get("a"))) for q in f.get("questions") or ()),
            also=tuple((a["file"], a["sentence"]) for a in f["source"].get("also") or ()),
        )
        for f in s.get("facts") or ()
    )
    by_id = {f.id: f.text for f in facts}

    def of_facts(key: str) -> Tuple[str, ...]:
        """The texts of the facts a block is made of: each is written once, in `facts:`."""
        missing = [i for i in s.get(key) or () if i not in by_id]
        if missing:
            raise ValueError(f"{sid}: {key} names unknown facts {missing}")
        return tuple(by_id[i] for i in s.get(key) or ())

    dependents = s.get("dependents") or {}
    return Service(
        id=sid,
        name=s["name"],
        summary=text(s["summary"]),
        audience=s["audience"],
        path=tuple(s["path"]),
        steps=tuple(text(t) for t in s["steps"]),
        requirements=tuple(Requirement(r["check"], text(r["text"]), bool(r.get("key"))) for r in s["requirements"]),
        fees=" ".join(of_facts("fees")) or unstated["fees"],
        delivery=" ".join(of_facts("delivery")) or unstated["delivery"],
        notes=of_facts("notes"),
        aspect_facts={aspect: tuple(s.get(aspect) or ()) for aspect in ("fees", "delivery")},
        requestable=bool(s.get("requestable", False)),
        beneficiary=s.get("beneficiary", "self"),
        dependent_relations=tuple(dependents.get("relations") or ()),
        dependent_kinds=tuple(dependents.get("kinds") or ()),
        form_steps=tuple(s.get("form_steps") or ()),
        first_status=s.get("first_status", "submitted"),
        posted=bool(s.get("posted", False)),
        after_created=tuple(s.get("after_created") or ()),
        numbers=numbers,
        flow=s.get("flow"),
        facts=facts,
        documents=tuple(
            Document(d["id"], d["check"], d["name"], d["ask"], d["missing"]) for d in s.get("documents") or ()
        ),
    )


def _yes_no(value) -> Optional[str]:
    """A question's answer as written in the YAML (`a: yes` reads as True there)."""
    if value is None:
        return None
    return {True: "yes", False: "no"}.get(value, str(value).lower())


def _one_kind_in(text: str, kinds: Dict[str, dict]) -> Optional[str]:
    """Which of `kinds` the words of `text` name; None if none or several.

    Words are compared normalised, also without a leading clitic (ل، و، ب، ف),
    so "لزوجتي" and "وزوجتي" still name the wife; ل before ال is written لل,
    so "للزوجة" is "الزوجة".
    """
    norm = normalize(text)
    tokens = set(re.findall(r"\w+", norm))  # "الرسوم؟" and "fees?" are words too
    tokens |= {t[1:] for t in tokens if len(t) > 3 and t[0] in "لوبف"}
    tokens |= {"ال" + t[2:] for t in tokens if len(t) > 3 and t.startswith("لل")}
    found = {
        kind
        for kind, spec in kinds.items()
        for word in spec["words"]
        if (_normal_word(word) in tokens if " " not in word else _normal_word(word) in norm)
    }
    return found.pop() if len(found) == 1 else None


@lru_cache(maxsize=None)
def _normal_word(word: str) -> str:
    # The catalogue's own words, normalised once: every message is compared with all of them.
    return normalize(word)


def _numbered(lines) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, start=1))


def _bulleted(lines) -> str:
    return "\n".join(f"• {line}" for line in lines)


def _is_text(node) -> bool:
    """A text written in several languages: {ar: …, en: …}."""
    return isinstance(node, dict) and ARABIC in node and set(node) <= set(LANGUAGES)


def _in_language(node, language: str):
    """`node` with every {ar: …, en: …} text replaced by its `language` version (Arabic if missing)."""
    if _is_text(node):
        return node.get(language) or node[ARABIC]
    if isinstance(node, dict):
        return {key: _in_language(value, language) for key, value in node.items()}
    if isinstance(node, list):
        return [_in_language(value, language) for value in node]
    return node


def _with_label_words(data: dict) -> dict:
    """`data` with each relation's, record kind's and other service's labels among its words."""
    data = dict(data)
    for section in _WORDED:
        kinds = {}
        for kind, spec in (data.get(section) or {}).items():
            label = spec.get("label")
            labels = list(label.values()) if _is_text(label) else [label]
            kinds[kind] = {**spec, "words": [*spec.get("words", []), *(x for x in labels if x)]}
        data[section] = kinds
    return data


def load(language: str = ARABIC, path: Optional[Path] = None) -> Catalogue:
    """The catalogue at `path` (default CATALOGUE_PATH) in `language`, parsed once per process (read-only data)."""
    return _parsed(Path(path or CATALOGUE_PATH), language if language in LANGUAGES else ARABIC)


@lru_cache(maxsize=None)
def _parsed(path: Path, language: str) -> Catalogue:
    with open(path, encoding="utf-8") as f:
        return Catalogue(yaml.safe_load(f), language)
