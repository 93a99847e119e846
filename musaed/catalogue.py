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


def _numbered(lines) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, start=1))


def _bulleted(lines) -> str:
    return "\n".join(f"• {line}" for line in lines)


@lru_cache(maxsize=None)
def load(path: Path = CATALOGUE_PATH) -> Catalogue:
    """The catalogue, parsed once per process (it is read-only data)."""
    with open(path, encoding="utf-8") as f:
        return Catalogue(yaml.safe_load(f))
