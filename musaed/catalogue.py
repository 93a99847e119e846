"""The service catalogue: every word Musaed says about a service.

`catalogue.yml` beside this file holds each service's name, menu path, steps,
requirements, fees, delivery and notes, plus the few phrases that frame an
answer.  The bot, the requirement checks and the customer-care lookup all
render their answers here, so a service's text exists exactly once.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from musaed.arabic import normalize

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yml")

# The follow-up questions answered for the service in context.
FOLLOWUPS = ("requirements", "fees", "delivery")


@dataclass(frozen=True)
class Requirement:
    check: str
    text: str


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    summary: str
    audience: str
    path: Tuple[str, ...]
    steps: Tuple[str, ...]
    requirements: Tuple[Requirement, ...]
    fees: str
    delivery: str
    notes: Tuple[str, ...]
    # Whether Musaed can check eligibility and create this request for the
    # person (digital_id and track_request are guidance/lookup only).
    requestable: bool
    # "self", or "dependent" when the request is for a family member.
    beneficiary: str = "self"


@dataclass(frozen=True)
class Check:
    id: str
    label: str
    remedy: str


class Catalogue:
    """Read-only view of catalogue.yml with the answer renderers."""

    def __init__(self, data: dict) -> None:
        self.labels: Dict[str, str] = data["labels"]
        self.call_centre: Dict[str, str] = data["call_centre"]
        self.statuses: Dict[str, str] = data["statuses"]
        self.relations: Dict[str, dict] = data["relations"]
        self.record_kinds: Dict[str, dict] = data["record_kinds"]
        self.checks: Dict[str, Check] = {
            cid: Check(cid, c["label"], c["remedy"]) for cid, c in data["checks"].items()
        }
        self.services: Dict[str, Service] = {
            sid: Service(
                id=sid,
                name=s["name"],
                summary=s["summary"],
                audience=s["audience"],
                path=tuple(s["path"]),
                steps=tuple(s["steps"]),
                requirements=tuple(Requirement(r["check"], r["text"]) for r in s["requirements"]),
                fees=s["fees"],
                delivery=s["delivery"],
                notes=tuple(s.get("notes") or ()),
                requestable=bool(s.get("requestable", False)),
                beneficiary=s.get("beneficiary", "self"),
            )
            for sid, s in data["services"].items()
        }

    # -- lookups -------------------------------------------------------------

    def service(self, service_id: Optional[str]) -> Optional[Service]:
        return self.services.get(service_id or "")

    def menu(self) -> List[Tuple[str, str]]:
        """(service id, Arabic name) for every service, in catalogue order."""
        return [(s.id, s.name) for s in self.services.values()]

    # -- answers -------------------------------------------------------------

    def howto(self, service_id: str) -> str:
        """A how-to answer: path, numbered steps, key requirements, notes."""
        s = self.services[service_id]
        parts = [
            f"{s.name}: {s.summary}",
            self.labels["path"] + " " + " ← ".join(s.path),
            self.labels["steps"] + "\n" + _numbered(s.steps),
        ]
        if s.requirements:
            parts.append(self.requirements(service_id))
        if s.notes:
            parts.append(self.labels["notes"] + "\n" + _bulleted(s.notes))
        # One newline, not a blank line: Rasa's channels split a message at
        # blank lines, and the answer should arrive as one message.
        return "\n".join(parts)

    def requirements(self, service_id: str) -> str:
        s = self.services[service_id]
        if not s.requirements:
            return self.labels["no_requirements"].format(name=s.name)
        return self.labels["requirements"].format(name=s.name) + "\n" + _numbered(
            r.text for r in s.requirements
        )

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
        """"damaged" or "lost" when `text` says which ("تبلل السجل" → "damaged")."""
        return _one_kind_in(text, self.record_kinds)

    def status_text(self, status: str) -> str:
        return self.statuses.get(status, status)

    # -- requests --------------------------------------------------------------

    def eligibility_report(self, results) -> str:
        """Passed checks, then every failing one with what to do about it."""
        failed = [r for r in results if not r.passed]
        if not failed:
            return self.labels["checks_passed"] + "\n" + "\n".join(
                self.labels["check_passed_line"].format(label=self.checks[r.check].label)
                for r in results)
        lines = [self.labels["checks_failed"]]
        lines += [self.labels["check_failed_line"].format(
            label=self.checks[r.check].label, remedy=self.checks[r.check].remedy) for r in failed]
        lines.append(self.labels["retry_after_fix"])
        return "\n".join(lines)

    def request_summary(self, service_id: str, beneficiary: str, address: Optional[str]) -> str:
        s = self.services[service_id]
        if address:
            return self.labels["summary"].format(
                service=s.name, beneficiary=beneficiary, address=address, fees=s.fees)
        return self.labels["summary_no_address"].format(service=s.name, beneficiary=beneficiary, fees=s.fees)


def _one_kind_in(text: str, kinds: Dict[str, dict]) -> Optional[str]:
    """Which of `kinds` the words of `text` name; None if none or several.

    Words are compared normalised, also without a leading clitic (ل، و، ب، ف),
    so "لزوجتي" and "وزوجتي" still name the wife; ل before ال is written لل,
    so "للزوجة" is "الزوجة".
    """
    norm = normalize(text)
    tokens = set(norm.split())
    tokens |= {t[1:] for t in tokens if len(t) > 3 and t[0] in "لوبف"}
    tokens |= {"ال" + t[2:] for t in tokens if len(t) > 3 and t.startswith("لل")}
    found = {
        kind for kind, spec in kinds.items()
        for word in spec["words"]
        if (normalize(word) in tokens if " " not in word else normalize(word) in norm)
    }
    return found.pop() if len(found) == 1 else None


def _numbered(lines) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, start=1))


def _bulleted(lines) -> str:
    return "\n".join(f"• {line}" for line in lines)


@lru_cache(maxsize=None)
def load(path: Path = CATALOGUE_PATH) -> Catalogue:
    """The catalogue, parsed once per process (it is read-only data)."""
    with open(path, encoding="utf-8") as f:
        return Catalogue(yaml.safe_load(f))
