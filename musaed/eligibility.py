"""Checking a service's requirements against the person's records.

Each requirement in the catalogue names a check; this module says how each
check is decided from the records.  The flow's own steps satisfy a few
checks (the terms accepted for a family record, the appointment that a
minor's request books), so those read the answers the person gave; a
requirement one of the service's documents meets (the copy of the ID) passes
once that document is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Callable, Dict, List, Optional, Sequence

from musaed import catalogue, store
from musaed.store import Db


@dataclass
class Case:
    """What a check looks at: who applies, for whom, and the answers given."""

    db: Db
    service: catalogue.Service
    applicant: dict
    beneficiary: dict
    today: date
    answers: Dict[str, object] = field(default_factory=dict)
    # The service's documents received for this request (their ids in the catalogue).
    documents: Sequence[str] = ()

    def number(self, name: str) -> int:
        """One of the service's numbers in the catalogue (renewal window, ages)."""
        return self.service.numbers[name]


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool


def _date(value: Optional[str]) -> Optional[date]:
    return date.fromisoformat(value[:10]) if value else None


def age_on(birth_date: str, today: date) -> int:
    born = date.fromisoformat(birth_date)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _valid_until(value: Optional[str], today: date) -> bool:
    d = _date(value)
    return d is not None and d >= today


def _fines_paid(c: Case) -> bool:
    ids = {c.applicant["national_id"], c.beneficiary["national_id"]}
    return not any(store.unpaid_fines(c.db, nid) for nid in ids)


def _passport_valid(c: Case) -> bool:
    p = store.passport(c.db, c.beneficiary["national_id"])
    return p is not None and _valid_until(p["expiry"], c.today)


def _insurance_valid(c: Case) -> bool:
    i = store.insurance(c.db, c.beneficiary["national_id"])
    return i is not None and _valid_until(i["expiry"], c.today)


def _id_expiring_soon(c: Case) -> bool:
    expiry = _date(c.beneficiary["id_expiry"])
    return expiry is None or (expiry - c.today).days <= c.number("renewal_window_days")


def _parent_attends(c: Case) -> bool:
    # The applicant must be the child's father or mother: their link is son/daughter.
    rel = store.relation(c.db, c.applicant["national_id"], c.beneficiary["national_id"])
    return rel in ("son", "daughter")


def _age_in_range(c: Case) -> bool:
    return c.number("min_age") <= age_on(c.beneficiary["birth_date"], c.today) <= c.number("max_age")


def _terms_accepted(c: Case) -> bool:
    return c.answers.get("terms_accepted") == "yes"


CHECKS: Dict[str, Callable[[Case], bool]] = {
    "data_valid": lambda c: bool(c.beneficiary["data_verified"]),
    "photo_valid": lambda c: _valid_until(c.beneficiary["photo_valid_until"], c.today),
    # The card is posted to the applicant's national address.
    "national_address": lambda c: bool(c.applicant["national_address"]),
    "id_expiring_soon": _id_expiring_soon,
    "fines_paid": _fines_paid,
    "passport_valid": _passport_valid,
    "health_insurance_valid": _insurance_valid,
    "medical_exam": lambda c: bool(c.beneficiary["medical_exam_ok"]),
    "contact_valid": lambda c: bool(c.applicant["mobile"]),
    # Met by the service's documents (catalogue `documents:`), not by the records: see evaluate.
    "id_copy_uploaded": lambda c: False,
    "record_report": lambda c: False,
    "terms_accepted": _terms_accepted,
    "card_received": lambda c: bool(c.beneficiary["card_pending_activation"]),
    "age_in_range": _age_in_range,
    # An Absher account is opened on the mobile number on file, which the
    # person has just proven with a code.
    "absher_account": lambda c: bool(c.applicant["mobile"]),
    # Tracking needs a request the person may see.
    "request_exists": lambda c: bool(store.requests_visible_to(c.db, c.applicant["national_id"])),
    # The request Musaed creates for a minor is the appointment booking itself.
    "appointment_booked": lambda c: True,
    "parent_attends": _parent_attends,
}


def evaluate(case: Case) -> List[CheckResult]:
    """Every requirement of the service, in catalogue order, passed or not.

    A requirement one of the service's documents meets passes when that document
    was received. A citizens-only service first checks that it is for a citizen.
    """
    service = case.service
    by_document = {d.check: d.id for d in service.documents}

    def passed(check: str) -> bool:
        return by_document[check] in case.documents if check in by_document else CHECKS[check](case)

    results = [CheckResult(r.check, passed(r.check)) for r in service.requirements]
    if service.audience == "citizen":
        results.insert(0, CheckResult("citizen", case.beneficiary["kind"] == "citizen"))
    return results


def failing(results: List[CheckResult]) -> List[str]:
    return [r.check for r in results if not r.passed]
