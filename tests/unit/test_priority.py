"""Priority, Enhanced Rights and the decision's flags (triage-policy.md, "Priority and
Enhanced Rights"), area resolution (areas.md) and the no-contact and safe-window cases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from triage.domain.decision import Decision

Decide = Callable[..., Decision]

RECEIVED = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # Wednesday, GMT
DA = {"offence.category": "domestic_abuse"}


def address(postcode: str) -> dict[str, Any]:
    return {"victim.address": {"line1": "1 High Street", "postcode": postcode}}


# --- Enhanced Rights groups ---------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"offence.category": "sexual"},
        {"offence.category": "domestic_abuse"},
        {"offence.category": "homicide"},
        {"offence.category": "exploitation"},
        {"offence.hate_motivations": ["other"]},
        {"flags": ["domestic_abuse"]},
        {"flags": ["serious_crime"]},
        {"flags": ["bereaved_by_homicide"]},
        {"flags": ["bereaved_by_da_death"]},
    ],
)
def test_most_serious_crime(decide: Decide, overrides: dict[str, Any]) -> None:
    decision = decide(overrides)
    assert "most_serious_crime" in decision.enhanced_rights
    assert decision.priority == "P2"
    assert decision.explanation["enhanced_rights.most_serious_crime"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"offence.category": "violence"},
        {"offence.category": "robbery", "flags": ["repeat_victim"]},
        {"offence.category": "fraud", "flags": ["attending_court", "low_income"]},
    ],
)
def test_not_most_serious_crime(decide: Decide, overrides: dict[str, Any]) -> None:
    assert "most_serious_crime" not in decide(overrides).enhanced_rights


@pytest.mark.parametrize(
    "overrides",
    [
        {"flags": ["persistently_targeted"]},
        {"flags": ["repeat_victim"]},
        {"offence.category": "stalking_harassment"},
    ],
)
def test_persistently_targeted(decide: Decide, overrides: dict[str, Any]) -> None:
    decision = decide(overrides)
    assert "persistently_targeted" in decision.enhanced_rights
    assert decision.priority == "P2"


def test_not_persistently_targeted(decide: Decide) -> None:
    decision = decide({"offence.category": "antisocial_behaviour", "flags": ["intimidated"]})
    assert "persistently_targeted" not in decision.enhanced_rights


@pytest.mark.parametrize(
    "overrides",
    [
        {"victim.age": 17},
        {"victim.date_of_birth": "2009-01-01"},
        {"victim.vulnerabilities": ["learning_disability"]},
        {"victim.vulnerabilities": ["autism"]},
        {"victim.vulnerabilities": ["mental_health"]},
        {"victim.vulnerabilities": ["physical_disability"]},
        {"victim.vulnerabilities": ["sensory_impairment"]},
        {"flags": ["vulnerable"]},
    ],
)
def test_vulnerable(decide: Decide, overrides: dict[str, Any]) -> None:
    decision = decide(overrides)
    assert decision.enhanced_rights == ["vulnerable"]
    assert decision.priority == "P2"


@pytest.mark.parametrize(
    "overrides",
    [
        {"victim.age": 18},
        {},  # age unknown
        {"victim.vulnerabilities": ["older_person", "substance_use", "other"]},
    ],
)
def test_not_vulnerable(decide: Decide, overrides: dict[str, Any]) -> None:
    decision = decide(overrides)
    assert "vulnerable" not in decision.enhanced_rights
    assert decision.priority == "P3"


def test_vulnerable_when_under_18_at_the_offence_though_18_now(decide: Decide) -> None:
    # Born 1 June 2008: 17 on 1 May 2026 (the offence), 18 on 18 November 2026 (received).
    decision = decide({"victim.date_of_birth": "2008-06-01", "offence.occurred_on": "2026-05-01"})
    assert "vulnerable" in decision.enhanced_rights
    assert decision.priority == "P2"


def test_not_vulnerable_when_18_at_the_offence(decide: Decide) -> None:
    decision = decide({"victim.date_of_birth": "2008-06-01", "offence.occurred_on": "2026-06-01"})
    assert "vulnerable" not in decision.enhanced_rights
    assert decision.priority == "P3"


def test_age_at_offence_from_given_age_counts_whole_years_elapsed(decide: Decide) -> None:
    # Only an age: 18 when received, offence 7 weeks earlier across New Year. Whole years
    # elapsed: none, so 18 at the offence (the age alone cannot say the birthday passed).
    received = datetime(2027, 1, 5, 10, 0, tzinfo=UTC)
    decision = decide({"victim.age": 18, "offence.occurred_on": "2026-11-20"}, received_at=received)
    assert "vulnerable" not in decision.enhanced_rights
    # Two full years before: 16 at the offence.
    older = decide({"victim.age": 18, "offence.occurred_on": "2024-11-20"}, received_at=received)
    assert "vulnerable" in older.enhanced_rights


@pytest.mark.parametrize(
    "overrides",
    [
        {"flags": ["intimidated"]},
        {"offence.category": "sexual"},
        {"offence.category": "exploitation"},
    ],
)
def test_intimidated(decide: Decide, overrides: dict[str, Any]) -> None:
    assert "intimidated" in decide(overrides).enhanced_rights


def test_not_intimidated(decide: Decide) -> None:
    decision = decide({"offence.category": "homicide", "flags": ["repeat_victim"]})
    assert "intimidated" not in decision.enhanced_rights


def test_every_group_recorded_once_in_order(decide: Decide) -> None:
    decision = decide(
        {
            "offence.category": "sexual",
            "victim.age": 16,
            "flags": ["repeat_victim", "intimidated", "vulnerable"],
        }
    )
    assert decision.enhanced_rights == [
        "most_serious_crime",
        "persistently_targeted",
        "vulnerable",
        "intimidated",
    ]


# --- P1, P2, P3 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"risk.level": "high"},
        {**DA, "risk.dash_score": 14},
        {**DA, "risk.dash_score": 27},
        {"flags": ["immediate_danger"]},
    ],
)
def test_p1_triggers(decide: Decide, overrides: dict[str, Any]) -> None:
    decision = decide(overrides)
    assert decision.priority == "P1"
    assert decision.contact_due_by == RECEIVED + timedelta(hours=24)
    assert decision.explanation["priority"]


def test_dash_13_is_not_p1(decide: Decide) -> None:
    decision = decide({**DA, "risk.dash_score": 13, "risk.level": "medium"})
    assert decision.priority == "P2"
    assert "marac_required" not in decision.flags


@pytest.mark.parametrize("level", ["standard", "medium"])
def test_risk_below_high_is_not_p1(decide: Decide, level: str) -> None:
    assert decide({"risk.level": level}).priority == "P3"


def test_p1_even_without_enhanced_rights(decide: Decide) -> None:
    decision = decide({"offence.category": "burglary", "risk.level": "high"})
    assert decision.priority == "P1"
    assert decision.enhanced_rights == []


def test_p2_when_a_group_applies(decide: Decide) -> None:
    decision = decide({"offence.category": "burglary", "flags": ["serious_crime"]})
    assert decision.priority == "P2"
    # Wednesday -> end of Thursday.
    assert decision.contact_due_by == datetime(2026, 11, 19, 17, 0, tzinfo=UTC)


def test_p3_otherwise(decide: Decide) -> None:
    decision = decide({"offence.category": "burglary"})
    assert decision.priority == "P3"
    assert decision.enhanced_rights == []
    # Wednesday -> end of Friday.
    assert decision.contact_due_by == datetime(2026, 11, 20, 17, 0, tzinfo=UTC)


# --- flags --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {**DA, "risk.dash_score": 14},
        {**DA, "risk.level": "high"},
        {"offence.category": "violence", "flags": ["domestic_abuse"], "risk.dash_score": 20},
    ],
)
def test_marac_required(decide: Decide, overrides: dict[str, Any]) -> None:
    decision = decide(overrides)
    assert "marac_required" in decision.flags
    assert decision.priority == "P1"
    assert decision.explanation["flags.marac_required"]


def test_no_marac_when_already_referred(decide: Decide) -> None:
    decision = decide({**DA, "risk.dash_score": 18, "risk.marac_referred": True})
    assert "marac_required" not in decision.flags
    assert decision.priority == "P1"


@pytest.mark.parametrize(
    "overrides",
    [
        {"offence.category": "violence", "risk.level": "high"},
        {"offence.category": "stalking_harassment", "risk.dash_score": 16},
        {"offence.category": "robbery", "flags": ["immediate_danger"]},
    ],
)
def test_no_marac_for_high_risk_that_is_not_domestic_abuse(
    decide: Decide, overrides: dict[str, Any]
) -> None:
    decision = decide(overrides)
    assert decision.priority == "P1"
    assert "marac_required" not in decision.flags


def test_no_marac_for_domestic_abuse_below_threshold(decide: Decide) -> None:
    decision = decide({**DA, "risk.level": "medium", "risk.dash_score": 10})
    assert "marac_required" not in decision.flags


@pytest.mark.parametrize(
    "overrides",
    [
        {**DA, "needs": ["restorative_justice"]},
        {
            "offence.category": "burglary",
            "flags": ["domestic_abuse"],
            "needs": ["restorative_justice"],
        },
        {"offence.category": "sexual", "needs": ["restorative_justice"]},
    ],
)
def test_rj_risk_assessment_required(decide: Decide, overrides: dict[str, Any]) -> None:
    decision = decide(overrides)
    assert "rj" in [s.code for s in decision.services]
    assert "rj_risk_assessment_required" in decision.flags


@pytest.mark.parametrize(
    "overrides",
    [
        {"offence.category": "burglary", "needs": ["restorative_justice"]},
        {**DA, "needs": ["emotional"]},
        {"offence.category": "sexual"},
    ],
)
def test_no_rj_risk_assessment(decide: Decide, overrides: dict[str, Any]) -> None:
    assert "rj_risk_assessment_required" not in decide(overrides).flags


def test_interpreter_needed(decide: Decide) -> None:
    decision = decide({"victim.interpreter_needed": True, "victim.language": "pl"})
    assert "interpreter_needed" in decision.flags
    plain = decide({"victim.interpreter_needed": False, "victim.language": "pl"})
    assert "interpreter_needed" not in plain.flags


# --- area -------------------------------------------------------------------------------------


def test_area_inside_kent(decide: Decide) -> None:
    decision = decide(address("ct1 2ab"))
    assert decision.to_api()["area"] == {
        "code": "east-kent",
        "local_authority": "Canterbury",
        "district": "CT1",
    }
    assert "area_check" not in decision.flags


@pytest.mark.parametrize(
    ("postcode", "area", "authority"),
    [
        ("CT3 4AA", "east-kent", "Canterbury"),
        ("ME5 7AA", "medway", "Medway"),
        ("DA3 8AA", "west-kent", "Sevenoaks"),
        ("ME13 8AA", "north-kent", "Swale"),
    ],
)
def test_straddling_district_takes_majority_and_flags_area_check(
    decide: Decide, postcode: str, area: str, authority: str
) -> None:
    decision = decide(address(postcode))
    assert decision.area.code == area
    assert decision.area.local_authority == authority
    assert decision.area.district == postcode.split()[0]
    assert "area_check" in decision.flags
    assert decision.flags.count("area_check") == 1


def test_outside_kent(decide: Decide) -> None:
    decision = decide(address("SW1A 1AA"))
    assert decision.to_api()["area"] == {
        "code": "outside",
        "local_authority": None,
        "district": "SW1A",
    }
    assert "area_check" in decision.flags
    assert [s.code for s in decision.services] == ["core"]


def test_outside_domestic_abuse_is_triaged_as_usual(decide: Decide) -> None:
    decision = decide({**DA, **address("TN6 1AA")})
    assert decision.area.code == "outside"
    assert decision.primary == "domestic-abuse"
    assert "area_check" in decision.flags


def test_no_postcode_is_unknown(decide: Decide) -> None:
    decision = decide()
    assert decision.to_api()["area"] == {
        "code": "unknown",
        "local_authority": None,
        "district": None,
    }
    assert "area_check" in decision.flags
    addressless = decide({"victim.address": {"line1": "1 High Street", "town": "Canterbury"}})
    assert addressless.area.code == "unknown"


# --- no contact consent, safe window after deadline ------------------------------------------


def test_no_contact_consent(decide: Decide) -> None:
    decision = decide(
        {**DA, "consent.to_contact": False, "contact.channels": []},
        drop=["victim.phone"],
    )
    assert "no_contact_consent" in decision.flags
    assert decision.contact_due_by is None
    assert decision.first_contact_step is None
    api = decision.to_api()
    assert api["contact_due_by"] is None
    assert api["first_contact_step"] is None
    # The cases still open, and the priority is still worked out.
    assert decision.primary == "domestic-abuse"
    assert decision.priority == "P2"


def test_contact_consent_plans_first_contact(decide: Decide) -> None:
    decision = decide()
    assert "no_contact_consent" not in decision.flags
    assert decision.contact_due_by is not None
    assert decision.first_contact_step is not None
    assert decision.first_contact_step.kind == "call"
    assert decision.first_contact_step.channel == "phone"


def test_safe_window_after_deadline(decide: Decide) -> None:
    # P1 received Wednesday 10:00, due Thursday 10:00; the victim is safe only on Saturdays.
    decision = decide(
        {
            "risk.level": "high",
            "contact.safe_times": [{"days": ["sat"], "from": "10:00", "to": "12:00"}],
        }
    )
    assert decision.priority == "P1"
    assert decision.contact_due_by == datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
    assert decision.first_contact_step is not None
    assert decision.first_contact_step.due_at == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert "safe_window_after_deadline" in decision.flags


def test_no_safe_window_flag_when_safe_before_deadline(decide: Decide) -> None:
    decision = decide({"risk.level": "high"})
    assert decision.priority == "P1"
    assert decision.first_contact_step is not None
    # Default safe times 08:00 to 20:00: safe now, so at once.
    assert decision.first_contact_step.due_at == RECEIVED
    assert "safe_window_after_deadline" not in decision.flags


def test_p1_first_call_at_the_next_safe_moment_before_the_deadline(decide: Decide) -> None:
    received = datetime(2026, 11, 18, 21, 30, tzinfo=UTC)  # after the default 20:00
    decision = decide({"flags": ["immediate_danger"]}, received_at=received)
    assert decision.first_contact_step is not None
    assert decision.first_contact_step.due_at == datetime(2026, 11, 19, 8, 0, tzinfo=UTC)
    assert "safe_window_after_deadline" not in decision.flags


def test_catalogue_version_on_decision(decide: Decide, catalogue: Any) -> None:
    decision = decide()
    assert decision.catalogue_version == catalogue.version
    assert decision.catalogue_version.startswith("sha256:")
