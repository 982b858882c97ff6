"""Appropriate Adult requests (triage-policy.md, "Appropriate Adult requests"; api.md)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from triage.domain.appropriate_adult import (
    AppropriateAdultDecision,
    decide_aa,
    validate_aa_request,
)
from triage.domain.catalogue import Catalogue
from triage.domain.problems import InvalidInput

IN_HOURS = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # Wednesday 10:00 GMT
OUT_OF_HOURS = datetime(2026, 11, 18, 20, 0, tzinfo=UTC)  # Wednesday 20:00 GMT
WEEKEND = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)  # Saturday
CHRISTMAS = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)  # Friday, bank holiday

ADULT_DOB = "1990-05-01"
JUVENILE_DOB = "2010-03-01"  # 16 in November 2026

KCC_SUITES = ["Canterbury", "Folkestone", "Maidstone", "Margate", "North Kent", "Tonbridge"]


def request_body(
    suite: str = "Maidstone", *, person: dict[str, Any] | None = None, **top: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_ref": "KC/MA/26/000101",
        "custody_suite": suite,
        "person": {"first_name": "Alex", "vulnerabilities": ["learning_disability"]},
        "reason": "voluntary interview",
    }
    if person is not None:
        body["person"] = {"first_name": "Alex", **person}
    body.update(copy.deepcopy(top))
    return body


def decide(
    catalogue: Catalogue, body: dict[str, Any], received_at: datetime
) -> AppropriateAdultDecision:
    request = validate_aa_request(body, received_at, catalogue)
    return decide_aa(request, received_at, catalogue)


def problems(catalogue: Catalogue, body: Any, received_at: datetime = IN_HOURS) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        validate_aa_request(body, received_at, catalogue)
    return {p.path: p.message for p in caught.value.problems}


# --- vulnerable adults --------------------------------------------------------------------


@pytest.mark.parametrize("suite", KCC_SUITES)
@pytest.mark.parametrize("when", [IN_HOURS, OUT_OF_HOURS, WEEKEND, CHRISTMAS])
def test_vulnerable_adult_in_kcc_area_allocated_at_any_time(
    catalogue: Catalogue, suite: str, when: datetime
) -> None:
    decision = decide(catalogue, request_body(suite), when)
    assert decision.status == "allocated"
    assert decision.signpost_to is None
    assert decision.attend_by == when + timedelta(hours=2)
    assert decision.flags == []


def test_vulnerable_adult_in_medway_in_office_hours_signposted(catalogue: Catalogue) -> None:
    decision = decide(catalogue, request_body("Medway"), IN_HOURS)
    assert decision.status == "signposted"
    assert decision.signpost_to == "medway-adult-aa"
    assert decision.attend_by is None
    assert decision.to_api()["attend_by"] is None


@pytest.mark.parametrize("when", [OUT_OF_HOURS, WEEKEND, CHRISTMAS])
def test_vulnerable_adult_in_medway_outside_office_hours_allocated(
    catalogue: Catalogue, when: datetime
) -> None:
    decision = decide(catalogue, request_body("Medway"), when)
    assert decision.status == "allocated"
    assert decision.signpost_to is None


def test_vulnerable_flag_alone_makes_a_vulnerable_adult(catalogue: Catalogue) -> None:
    body = request_body(person={"date_of_birth": ADULT_DOB, "vulnerable": True})
    decision = decide(catalogue, body, IN_HOURS)
    assert decision.status == "allocated"
    assert "eligibility_check" not in decision.flags


def test_adult_with_no_vulnerability_is_never_refused(catalogue: Catalogue) -> None:
    body = request_body(person={"date_of_birth": ADULT_DOB})
    decision = decide(catalogue, body, IN_HOURS)
    assert decision.status == "allocated"
    assert decision.flags == ["eligibility_check"]
    assert any("vulnerable adult" in r for r in decision.reasons)


def test_adult_with_no_vulnerability_in_medway_in_hours_follows_adult_rules(
    catalogue: Catalogue,
) -> None:
    body = request_body("Medway", person={})
    decision = decide(catalogue, body, IN_HOURS)
    assert decision.status == "signposted"
    assert decision.signpost_to == "medway-adult-aa"
    assert decision.flags == ["eligibility_check"]


# --- juveniles ----------------------------------------------------------------------------


@pytest.mark.parametrize("suite", KCC_SUITES)
def test_juvenile_in_kcc_area_in_hours_signposted_to_kcc_youth_justice(
    catalogue: Catalogue, suite: str
) -> None:
    decision = decide(catalogue, request_body(suite, juvenile=True), IN_HOURS)
    assert decision.status == "signposted"
    assert decision.signpost_to == "kcc-youth-justice"
    assert decision.attend_by is None


def test_juvenile_in_medway_in_hours_signposted_to_medway_youth_justice(
    catalogue: Catalogue,
) -> None:
    decision = decide(catalogue, request_body("Medway", juvenile=True), IN_HOURS)
    assert decision.status == "signposted"
    assert decision.signpost_to == "medway-youth-justice"


@pytest.mark.parametrize("suite", ["Medway", "Canterbury"])
@pytest.mark.parametrize("when", [OUT_OF_HOURS, WEEKEND])
def test_juvenile_outside_office_hours_allocated(
    catalogue: Catalogue, suite: str, when: datetime
) -> None:
    decision = decide(catalogue, request_body(suite, juvenile=True), when)
    assert decision.status == "allocated"
    assert decision.attend_by == when + timedelta(hours=2)


def test_bank_holiday_is_outside_office_hours(catalogue: Catalogue) -> None:
    # Christmas Day 2026 is a Friday: 10:00 would be office hours on an ordinary Friday.
    decision = decide(catalogue, request_body(juvenile=True), CHRISTMAS)
    assert decision.status == "allocated"
    assert any("outside office hours" in r for r in decision.reasons)
    ordinary_friday = decide(
        catalogue, request_body(juvenile=True), datetime(2026, 12, 18, 10, 0, tzinfo=UTC)
    )
    assert ordinary_friday.status == "signposted"


def test_juvenile_true_overrides_an_adult_date_of_birth(catalogue: Catalogue) -> None:
    body = request_body(person={"date_of_birth": ADULT_DOB}, juvenile=True)
    decision = decide(catalogue, body, IN_HOURS)
    assert decision.signpost_to == "kcc-youth-justice"
    assert "age_check" in decision.flags


def test_juvenile_true_with_a_juvenile_date_of_birth_needs_no_age_check(
    catalogue: Catalogue,
) -> None:
    body = request_body(person={"date_of_birth": JUVENILE_DOB}, juvenile=True)
    decision = decide(catalogue, body, IN_HOURS)
    assert decision.signpost_to == "kcc-youth-justice"
    assert "age_check" not in decision.flags


@pytest.mark.parametrize("juvenile", [None, False])
def test_date_of_birth_under_18_makes_a_juvenile(
    catalogue: Catalogue, juvenile: bool | None
) -> None:
    extra = {} if juvenile is None else {"juvenile": juvenile}
    body = request_body("Medway", person={"date_of_birth": JUVENILE_DOB}, **extra)
    decision = decide(catalogue, body, IN_HOURS)
    assert decision.status == "signposted"
    assert decision.signpost_to == "medway-youth-justice"
    assert decision.flags == []


def test_juvenile_with_vulnerabilities_follows_juvenile_rules(catalogue: Catalogue) -> None:
    body = request_body(
        "Medway",
        person={"date_of_birth": JUVENILE_DOB, "vulnerabilities": ["autism"], "vulnerable": True},
    )
    decision = decide(catalogue, body, IN_HOURS)
    assert decision.signpost_to == "medway-youth-justice"


def test_eighteen_today_is_an_adult(catalogue: Catalogue) -> None:
    body = request_body("Medway", person={"date_of_birth": "2008-11-18", "vulnerable": True})
    decision = decide(catalogue, body, IN_HOURS)
    assert decision.signpost_to == "medway-adult-aa"


def test_exactly_ten_is_accepted(catalogue: Catalogue) -> None:
    body = request_body(person={"date_of_birth": "2016-11-18"})
    decision = decide(catalogue, body, OUT_OF_HOURS)
    assert decision.status == "allocated"


# --- refusals -----------------------------------------------------------------------------


def test_under_ten_is_refused(catalogue: Catalogue) -> None:
    found = problems(catalogue, request_body(person={"date_of_birth": "2016-11-19"}))
    assert list(found) == ["person.date_of_birth"]
    assert "2016" not in found["person.date_of_birth"]


def test_under_ten_refused_even_when_juvenile_is_claimed(catalogue: Catalogue) -> None:
    body = request_body(person={"date_of_birth": "2019-01-01"}, juvenile=True)
    assert "person.date_of_birth" in problems(catalogue, body)


def test_unknown_custody_suite_is_refused_listing_the_known_ones(catalogue: Catalogue) -> None:
    found = problems(catalogue, request_body("Dover"))
    assert list(found) == ["custody_suite"]
    for suite in [*KCC_SUITES, "Medway"]:
        assert suite in found["custody_suite"]


def test_required_fields(catalogue: Catalogue) -> None:
    found = problems(catalogue, {"person": {}})
    assert {"external_ref", "custody_suite", "person.first_name"} <= set(found)


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        (None, ["person"]),
        ("Alex", ["person"]),
        ({}, ["person.first_name"]),
        ({"last_name": "Smith"}, []),
    ],
)
def test_person_reported_once(catalogue: Catalogue, person: Any, expected: list[str]) -> None:
    body = request_body()
    if person is None:
        del body["person"]
    else:
        body["person"] = person
    if not expected:
        validate_aa_request(body, IN_HOURS, catalogue)
        return
    found = problems(catalogue, body)
    assert list(found) == expected


def test_naive_needed_at_is_refused(catalogue: Catalogue) -> None:
    found = problems(catalogue, request_body(needed_at="2026-11-18T22:00:00"))
    assert "needed_at" in found


def test_unknown_vulnerability_is_refused(catalogue: Catalogue) -> None:
    found = problems(catalogue, request_body(person={"vulnerabilities": ["tired"]}))
    assert "person.vulnerabilities[0]" in found


# --- attend_by and office hours -----------------------------------------------------------


def test_attend_by_is_needed_at_when_given(catalogue: Catalogue) -> None:
    body = request_body(needed_at="2026-11-19T02:30:00Z")
    decision = decide(catalogue, body, OUT_OF_HOURS)
    assert decision.status == "allocated"
    assert decision.attend_by == datetime(2026, 11, 19, 2, 30, tzinfo=UTC)
    assert decision.to_api()["attend_by"] == "2026-11-19T02:30:00Z"


def test_attend_by_is_two_hours_after_receipt_without_needed_at(catalogue: Catalogue) -> None:
    decision = decide(catalogue, request_body(), OUT_OF_HOURS)
    assert decision.to_api()["attend_by"] == "2026-11-18T22:00:00Z"


def test_office_hours_judged_at_needed_at(catalogue: Catalogue) -> None:
    # Received in office hours, needed at night: outside office hours, so allocated.
    body = request_body("Medway", juvenile=True, needed_at="2026-11-18T22:00:00Z")
    decision = decide(catalogue, body, IN_HOURS)
    assert decision.status == "allocated"
    # Received at night, needed next morning in office hours: signposted.
    body = request_body("Medway", juvenile=True, needed_at="2026-11-19T10:00:00Z")
    assert decide(catalogue, body, OUT_OF_HOURS).signpost_to == "medway-youth-justice"


@pytest.mark.parametrize(
    ("when", "office"),
    [
        ("2026-11-18T08:59:00Z", False),
        ("2026-11-18T09:00:00Z", True),  # 09:00 inclusive
        ("2026-11-18T16:59:00Z", True),
        ("2026-11-18T17:00:00Z", False),  # 17:00 exclusive
        # Summer: 09:00 BST is 08:00Z, 17:00 BST is 16:00Z.
        ("2026-07-15T07:59:00Z", False),
        ("2026-07-15T08:00:00Z", True),
        ("2026-07-15T15:59:00Z", True),
        ("2026-07-15T16:00:00Z", False),
        ("2026-11-22T12:00:00Z", False),  # Sunday
    ],
)
def test_office_hours_boundaries(catalogue: Catalogue, when: str, office: bool) -> None:
    received = datetime.fromisoformat(when)
    decision = decide(catalogue, request_body("Medway", juvenile=True), received)
    assert (decision.status == "signposted") is office
    if not office:
        assert decision.attend_by == received + timedelta(hours=2)


def test_reasons_explain_the_decision(catalogue: Catalogue) -> None:
    decision = decide(catalogue, request_body("Medway", juvenile=True), IN_HOURS)
    assert decision.reasons
    assert any("juvenile" in r for r in decision.reasons)
    assert any("in office hours" in r for r in decision.reasons)
    api = decision.to_api()
    assert set(api) == {"status", "attend_by", "signpost_to", "reasons", "flags"}
