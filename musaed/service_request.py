"""From a verified person and their answers to a created service request.

`assess` reads the records, checks the service's requirements and finds
the beneficiary's open request for the service, if any; `submit`
re-assesses (records may have changed since the summary) and, only when all
pass and none is open, creates the request in one transaction with the
documents the conversation sent for it (the store holds the one-open-request
rule even against a concurrent confirmation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Dict, List, Optional, Sequence

from musaed import catalogue, eligibility, store
from musaed.arabic import normalize
from musaed.identity import parse_national_id
from musaed.store import Db


@dataclass
class Assessment:
    service: catalogue.Service
    applicant: dict
    beneficiary: dict
    results: List[eligibility.CheckResult]
    # The beneficiary's open request for this service, from any conversation:
    # while there is one, no new request is made.
    open_request: Optional[dict] = None

    @property
    def eligible(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def can_request(self) -> bool:
        return self.eligible and self.open_request is None

    @property
    def delivery_address(self) -> Optional[str]:
        return self.applicant["national_address"] if self.service.posted else None


def assess(
    db: Db,
    service: catalogue.Service,
    applicant_id: str,
    beneficiary_id: Optional[str],
    answers: Optional[Dict] = None,
    today: Optional[date] = None,
    documents: Sequence[str] = (),
) -> Assessment:
    """The requirement checks for a request; `documents`: the service's documents received."""
    applicant = store.get_person(db, applicant_id)
    beneficiary = store.get_person(db, beneficiary_id or applicant_id)
    if applicant is None or beneficiary is None:
        raise LookupError("unknown person")
    if beneficiary_id and beneficiary_id != applicant_id and not store.relation(db, applicant_id, beneficiary_id):
        raise PermissionError("the beneficiary is not in the applicant's family")
    case = eligibility.Case(db, service, applicant, beneficiary, today or date.today(), answers or {}, documents)
    return Assessment(
        service,
        applicant,
        beneficiary,
        eligibility.evaluate(case),
        store.open_request(db, service.id, beneficiary["national_id"]),
    )


@dataclass
class Submission:
    assessment: Assessment
    request: Optional[dict] = None
    created: bool = False


def received_documents(db: Db, service: catalogue.Service, conversation_id: str) -> List[dict]:
    """The service's documents this conversation has sent for the request under way, one per
    document of the catalogue (the latest, should one have come twice), in the catalogue's order."""
    latest = {row["kind"]: row for row in store.staged_documents(db, conversation_id, service.id)}
    return [latest[d.id] for d in service.documents if d.id in latest]


def submit(
    db: Db,
    service: catalogue.Service,
    applicant_id: str,
    beneficiary_id: Optional[str],
    conversation_id: str,
    answers: Optional[Dict] = None,
    today: Optional[date] = None,
    language: Optional[str] = None,
) -> Submission:
    """Create the request when every requirement passes, its documents with it (those this
    conversation sent for it: the store attaches them in the request's own transaction).
    `language`: the conversation's, which the request's status changes will be told in."""
    documents = received_documents(db, service, conversation_id)
    a = assess(db, service, applicant_id, beneficiary_id, answers, today, [d["kind"] for d in documents])
    if a.open_request is not None:
        return Submission(a, a.open_request, created=False)
    if not a.eligible:
        return Submission(a)
    request, created = store.create_request(
        db,
        service_id=service.id,
        applicant_id=applicant_id,
        beneficiary_id=a.beneficiary["national_id"],
        conversation_id=conversation_id,
        delivery_address=a.delivery_address,
        details=answers,
        status=service.first_status,
        documents=[d["id"] for d in documents],
        language=language,
    )
    return Submission(a, request, created)


def eligible_dependents(db: Db, service: catalogue.Service, head_id: str) -> List[dict]:
    """The family members this service can be requested for."""
    return [
        d
        for d in store.dependents(db, head_id)
        if (not service.dependent_kinds or d["kind"] in service.dependent_kinds)
        and (not service.dependent_relations or d["relation"] in service.dependent_relations)
    ]


def match_dependent(text: str, dependents: List[dict]) -> Optional[dict]:
    """Which dependent the person means: by national id, relation word or first name."""
    parsed = parse_national_id(text)
    if parsed.national_id:
        return next((d for d in dependents if d["national_id"] == parsed.national_id), None)
    relation = catalogue.load().relation_in(text)
    if relation:
        same = [d for d in dependents if d["relation"] == relation]
        return same[0] if len(same) == 1 else None
    words = set(normalize(text).split())
    named = [d for d in dependents if normalize(d["name"]).split()[0] in words]
    return named[0] if len(named) == 1 else None
