"""Requirement checks per service against the demo population, and submitting requests."""

from datetime import date

import pytest

from musaed import catalogue, seed, service_request, store

CAT = catalogue.load()

TODAY = date(2026, 11, 23)
TERMS = {"terms_accepted": "yes"}
BOTH = ("national_id_copy", "record_report")


@pytest.fixture
def db():
    db = store.open_db(":memory:")
    db.ids = seed.seed(db, today=TODAY)
    return db


def failing(db, service, applicant, beneficiary=None, answers=None, documents=()):
    ids = db.ids
    a = service_request.assess(
        db, CAT.services[service], ids[applicant], ids[beneficiary] if beneficiary else None, answers, TODAY, documents
    )
    assert a.results, "every requestable service has requirements"
    return [r.check for r in a.results if not r.passed]


@pytest.mark.parametrize(
    "service, applicant, beneficiary, expected_failing",
    [
        ("renew_national_id", "khalid", None, []),
        ("renew_national_id", "sara", None, ["id_expiring_soon"]),
        ("renew_national_id", "fahd", None, ["photo_valid"]),
        ("renew_national_id", "noura", None, ["national_address"]),
        ("report_lost_id", "noura", None, ["national_address"]),
        ("report_lost_id", "khalid", None, []),
        ("renew_resident_id", "khalid", "amal", []),
        ("renew_resident_id", "ahmed", "layla", []),
        ("renew_resident_id", "ahmed", "maryam", ["passport_valid"]),
        ("renew_resident_id", "ahmed", "yousef", ["health_insurance_valid"]),
        ("renew_resident_id", "ahmed", "fatima", ["fines_paid"]),
        ("minor_national_id", "khalid", "saud", []),
        ("minor_national_id", "khalid", "reem", ["age_in_range"]),
        ("activate_national_id", "abdullah", None, []),
        ("activate_national_id", "khalid", None, ["card_received"]),
        ("replace_family_record", "khalid", None, ["id_copy_uploaded", "record_report", "terms_accepted"]),
    ],
)
def test_demo_population(db, service, applicant, beneficiary, expected_failing):
    assert failing(db, service, applicant, beneficiary) == expected_failing


def test_replace_family_record_passes_once_both_documents_are_in_and_the_terms_accepted(db):
    assert failing(db, "replace_family_record", "khalid", answers=TERMS, documents=BOTH) == []
    # Each document meets its own requirement (the catalogue's `documents:`), nothing else does.
    assert failing(db, "replace_family_record", "khalid", answers=TERMS, documents=BOTH[:1]) == ["record_report"]
    assert failing(db, "replace_family_record", "khalid", answers=TERMS, documents=BOTH[1:]) == ["id_copy_uploaded"]
    assert failing(db, "replace_family_record", "khalid", documents=BOTH) == ["terms_accepted"]
    # A «نعم» once given for the documents is no document.
    assert failing(db, "replace_family_record", "khalid", answers={**TERMS, "documents": "received"}) == [
        "id_copy_uploaded",
        "record_report",
    ]


def test_paid_fine_does_not_block(db):
    # Khalid's only fine is paid.
    assert db.execute("SELECT paid FROM fines WHERE national_id = ?", [db.ids["khalid"]]).fetchall() == [(1,)]
    assert failing(db, "renew_resident_id", "khalid", "amal") == []


def test_a_beneficiary_outside_the_family_is_refused(db):
    # Ahmed is not Saud's father: the core refuses, whatever the actions offered.
    with pytest.raises(PermissionError):
        service_request.assess(db, CAT.services["minor_national_id"], db.ids["ahmed"], db.ids["saud"], None, TODAY)


def test_assess_unknown_person_raises(db):
    with pytest.raises(LookupError):
        service_request.assess(db, CAT.services["renew_national_id"], "1999999993", None, None, TODAY)


def test_delivery_address_only_for_posted_services(db):
    renew = service_request.assess(db, CAT.services["renew_national_id"], db.ids["khalid"], None, None, TODAY)
    minor = service_request.assess(db, CAT.services["minor_national_id"], db.ids["khalid"], db.ids["saud"], None, TODAY)
    assert renew.delivery_address == store.get_person(db, db.ids["khalid"])["national_address"]
    assert minor.delivery_address is None


def test_citizen_only_service_is_not_open_to_residents(db):
    assert failing(db, "minor_national_id", "ahmed", "layla") != []


# -- choosing the beneficiary ------------------------------------------------


def names(deps):
    return [d["name"].split()[0] for d in deps]


def test_eligible_dependents(db):
    ids = db.ids
    assert names(service_request.eligible_dependents(db, CAT.services["renew_resident_id"], ids["khalid"])) == ["أمل"]
    assert names(service_request.eligible_dependents(db, CAT.services["minor_national_id"], ids["khalid"])) == [
        "سعود",
        "ريم",
    ]
    offered = {
        d["national_id"]
        for d in service_request.eligible_dependents(db, CAT.services["minor_national_id"], ids["ahmed"])
    }
    assert not offered & {ids["maryam"], ids["fatima"]}  # only sons and daughters
    assert len(service_request.eligible_dependents(db, CAT.services["renew_resident_id"], ids["ahmed"])) == 4
    assert service_request.eligible_dependents(db, CAT.services["renew_resident_id"], ids["sara"]) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("لزوجتي", "amal"),
        ("ابي اجدد اقامة زوجتي", "amal"),
        ("ولدي", "saud"),
        ("بنتي", "reem"),
        ("2010000020", "amal"),
        ("١٠١٠٠٠٠٠٣٠", "saud"),
        ("أمل", "amal"),
        ("ريم", "reem"),
    ],
)
def test_match_dependent(db, text, expected):
    deps = service_request.eligible_dependents(db, CAT.services["renew_national_id"], db.ids["khalid"])
    match = service_request.match_dependent(text, deps)
    assert match is not None and match["national_id"] == db.ids[expected]


@pytest.mark.parametrize("text", ["1010000055", "امي", "فلان", "2010000111"])
def test_match_dependent_none_for_strangers(db, text):
    deps = service_request.eligible_dependents(db, CAT.services["renew_national_id"], db.ids["khalid"])
    assert service_request.match_dependent(text, deps) is None


def test_match_dependent_ambiguous_relation_is_none(db):
    # With two sons, "ولدي" must not guess which one.
    deps = service_request.eligible_dependents(db, CAT.services["minor_national_id"], db.ids["khalid"])
    twins = deps + [dict(deps[0], national_id="1010000000", name="فيصل العتيبي")]
    assert service_request.match_dependent("ولدي", twins) is None


# -- submitting ----------------------------------------------------------------


def count(db):
    return db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]


def test_submit_ineligible_creates_nothing(db):
    result = service_request.submit(db, CAT.services["renew_national_id"], db.ids["sara"], None, "conv-1", today=TODAY)
    assert not result.assessment.eligible
    assert (result.request, result.created) == (None, False)
    assert count(db) == 0


def test_submit_eligible_creates_one_submitted_request(db):
    result = service_request.submit(
        db, CAT.services["renew_national_id"], db.ids["khalid"], None, "conv-1", today=TODAY
    )
    assert result.created is True
    assert result.request["status"] == "submitted"
    assert result.request["beneficiary_id"] == db.ids["khalid"]
    assert count(db) == 1
    again = service_request.submit(db, CAT.services["renew_national_id"], db.ids["khalid"], None, "conv-1", today=TODAY)
    assert again.created is False
    assert again.request["tracking_number"] == result.request["tracking_number"]
    assert count(db) == 1


def test_submit_minor_starts_as_appointment(db):
    result = service_request.submit(
        db, CAT.services["minor_national_id"], db.ids["khalid"], db.ids["saud"], "conv-1", today=TODAY
    )
    assert result.created is True
    assert result.request["status"] == "appointment_requested"
    assert result.request["delivery_address"] is None
    assert [e["status"] for e in store.request_events(db, result.request["tracking_number"])] == [
        "appointment_requested"
    ]
