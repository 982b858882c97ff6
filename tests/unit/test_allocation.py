"""Allocation rules (triage-policy.md, "Allocation rules"): each one matches, and a near miss
does not; exactly one primary, chosen by the catalogue's order; reasons name the facts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from triage.domain.decision import Decision

Decide = Callable[..., Decision]

SEXUAL = {"offence.category": "sexual"}
DA = {"offence.category": "domestic_abuse"}


def services(decision: Decision) -> list[str]:
    return [s.code for s in decision.services]


def reasons_for(decision: Decision, code: str) -> list[str]:
    return next(s.reasons for s in decision.services if s.code == code)


def assert_one_primary(decision: Decision) -> None:
    primaries = [s.code for s in decision.services if s.role == "primary"]
    assert len(primaries) == 1, primaries
    assert decision.services[0].role == "primary"
    assert all(s.role == "additional" for s in decision.services[1:])
    assert len(services(decision)) == len(set(services(decision)))


# --- cisva / isva ------------------------------------------------------------------------


@pytest.mark.parametrize("age", [10, 17, 18])
def test_cisva_for_sexual_offence_aged_18_or_under(decide: Decide, age: int) -> None:
    decision = decide({**SEXUAL, "victim.age": age})
    assert decision.primary == "cisva"
    assert "isva" not in services(decision)


@pytest.mark.parametrize("age", [19, 20, 64])
def test_isva_for_sexual_offence_aged_19_or_over(decide: Decide, age: int) -> None:
    decision = decide({**SEXUAL, "victim.age": age})
    assert decision.primary == "isva"
    assert "cisva" not in services(decision)


def test_isva_when_age_unknown(decide: Decide) -> None:
    decision = decide(SEXUAL)
    assert decision.primary == "isva"
    assert "cisva" not in services(decision)
    assert any("age unknown" in r for r in reasons_for(decision, "isva"))


def test_cisva_isva_boundary_by_date_of_birth_on_day_received(decide: Decide) -> None:
    # Received 18 November 2026: born 19 November 2007 is still 18, born 18 November is 19.
    still_18 = decide({**SEXUAL, "victim.date_of_birth": "2007-11-19"})
    turns_19 = decide({**SEXUAL, "victim.date_of_birth": "2007-11-18"})
    assert still_18.primary == "cisva"
    assert turns_19.primary == "isva"
    assert "cisva" not in services(turns_19)


@pytest.mark.parametrize("age", [15, 30])
def test_no_isva_or_cisva_without_a_sexual_offence(decide: Decide, age: int) -> None:
    decision = decide({"offence.category": "violence", "victim.age": age})
    assert not {"isva", "cisva"} & set(services(decision))


# --- sv-counselling and male-sv --------------------------------------------------------


@pytest.mark.parametrize("need", ["counselling", "therapy"])
def test_sv_counselling_for_sexual_offence_wanting_counselling(decide: Decide, need: str) -> None:
    decision = decide({**SEXUAL, "victim.age": 30, "needs": [need]})
    assert services(decision) == ["isva", "sv-counselling"]
    assert any(need in r for r in reasons_for(decision, "sv-counselling"))


def test_no_sv_counselling_without_the_need(decide: Decide) -> None:
    decision = decide({**SEXUAL, "victim.age": 30, "needs": ["emotional", "practical"]})
    assert "sv-counselling" not in services(decision)


def test_no_sv_counselling_for_counselling_after_another_crime(decide: Decide) -> None:
    decision = decide({"offence.category": "robbery", "needs": ["counselling"]})
    assert "sv-counselling" not in services(decision)
    assert services(decision) == ["core"]


def test_male_sv_for_sexual_offence_and_male_victim(decide: Decide) -> None:
    decision = decide({**SEXUAL, "victim.age": 40, "victim.gender": "male"})
    assert services(decision) == ["isva", "male-sv"]
    assert any("gender is male" in r for r in reasons_for(decision, "male-sv"))


@pytest.mark.parametrize("gender", ["female", "non_binary", "not_known"])
def test_no_male_sv_for_other_genders(decide: Decide, gender: str) -> None:
    decision = decide({**SEXUAL, "victim.age": 40, "victim.gender": gender})
    assert "male-sv" not in services(decision)


def test_no_male_sv_for_male_victim_of_another_crime(decide: Decide) -> None:
    decision = decide({**DA, "victim.gender": "male"})
    assert "male-sv" not in services(decision)


# --- domestic abuse, stalking, hate crime -----------------------------------------------


def test_domestic_abuse_by_category(decide: Decide) -> None:
    decision = decide(DA)
    assert services(decision) == ["domestic-abuse"]
    assert any(
        "offence.category is domestic_abuse" in r for r in reasons_for(decision, "domestic-abuse")
    )


def test_domestic_abuse_by_flag(decide: Decide) -> None:
    decision = decide({"offence.category": "criminal_damage", "flags": ["domestic_abuse"]})
    assert services(decision) == ["domestic-abuse"]
    assert any("flags include domestic_abuse" in r for r in reasons_for(decision, "domestic-abuse"))


def test_no_domestic_abuse_for_violence_without_the_flag(decide: Decide) -> None:
    decision = decide({"offence.category": "violence", "flags": ["repeat_victim"]})
    assert "domestic-abuse" not in services(decision)


def test_stalking_by_category(decide: Decide) -> None:
    decision = decide({"offence.category": "stalking_harassment"})
    assert services(decision) == ["stalking"]
    assert any("stalking_harassment" in r for r in reasons_for(decision, "stalking"))


def test_no_stalking_for_persistent_targeting_of_another_crime(decide: Decide) -> None:
    decision = decide({"offence.category": "criminal_damage", "flags": ["persistently_targeted"]})
    assert "stalking" not in services(decision)


@pytest.mark.parametrize(
    "motivation", ["race", "religion", "disability", "sexual_orientation", "transgender", "other"]
)
def test_hate_crime_for_any_hate_motivation(decide: Decide, motivation: str) -> None:
    decision = decide({"offence.category": "violence", "offence.hate_motivations": [motivation]})
    assert services(decision) == ["hate-crime"]
    assert any(motivation in r for r in reasons_for(decision, "hate-crime"))


def test_no_hate_crime_with_an_empty_motivation_list(decide: Decide) -> None:
    decision = decide({"offence.category": "violence", "offence.hate_motivations": []})
    assert services(decision) == ["core"]


# --- family welfare, APVC, restorative justice ------------------------------------------


def test_family_welfare_for_major_investigation(decide: Decide) -> None:
    decision = decide({"offence.category": "homicide", "flags": ["major_investigation"]})
    assert services(decision) == ["family-welfare"]
    assert any("major_investigation" in r for r in reasons_for(decision, "family-welfare"))


def test_no_family_welfare_for_serious_crime_without_an_investigation(decide: Decide) -> None:
    decision = decide({"offence.category": "homicide", "flags": ["serious_crime"]})
    assert "family-welfare" not in services(decision)
    assert services(decision) == ["core"]


def test_apvc_for_adolescent_to_parent_violence(decide: Decide) -> None:
    decision = decide({"offence.category": "violence", "flags": ["adolescent_to_parent_violence"]})
    assert services(decision) == ["apvc"]
    assert any("adolescent_to_parent_violence" in r for r in reasons_for(decision, "apvc"))


def test_no_apvc_for_children_in_household(decide: Decide) -> None:
    decision = decide({"offence.category": "violence", "flags": ["children_in_household"]})
    assert "apvc" not in services(decision)


def test_rj_for_restorative_justice_need(decide: Decide) -> None:
    decision = decide({"offence.category": "burglary", "needs": ["restorative_justice"]})
    assert services(decision) == ["rj"]
    assert decision.primary == "rj"
    assert any("restorative_justice" in r for r in reasons_for(decision, "rj"))


def test_no_rj_without_the_need(decide: Decide) -> None:
    decision = decide({"offence.category": "burglary", "needs": ["emotional", "practical"]})
    assert "rj" not in services(decision)


# --- core fallback ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "category", ["burglary", "theft", "robbery", "fraud", "violence", "antisocial_behaviour"]
)
def test_core_when_nothing_else_matches(decide: Decide, category: str) -> None:
    decision = decide({"offence.category": category})
    assert services(decision) == ["core"]
    assert decision.services[0].role == "primary"
    assert decision.services[0].reasons and decision.services[0].reasons[0]


@pytest.mark.parametrize(
    "overrides",
    [
        DA,
        SEXUAL,
        {"offence.category": "stalking_harassment"},
        {"offence.hate_motivations": ["race"]},
        {"needs": ["restorative_justice"]},
    ],
)
def test_no_core_when_a_specialist_service_matches(
    decide: Decide, overrides: dict[str, Any]
) -> None:
    assert "core" not in services(decide(overrides))


# --- primary order ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # cisva/isva before domestic abuse
        ({**SEXUAL, "victim.age": 16, "flags": ["domestic_abuse"]}, ["cisva", "domestic-abuse"]),
        ({**SEXUAL, "victim.age": 30, "flags": ["domestic_abuse"]}, ["isva", "domestic-abuse"]),
        # domestic abuse before stalking (api.md's example)
        (
            {"offence.category": "stalking_harassment", "flags": ["domestic_abuse"]},
            ["domestic-abuse", "stalking"],
        ),
        # stalking before hate crime
        (
            {"offence.category": "stalking_harassment", "offence.hate_motivations": ["religion"]},
            ["stalking", "hate-crime"],
        ),
        # hate crime before family welfare
        (
            {"offence.hate_motivations": ["race"], "flags": ["major_investigation"]},
            ["hate-crime", "family-welfare"],
        ),
        # family welfare before apvc
        (
            {"flags": ["adolescent_to_parent_violence", "major_investigation"]},
            ["family-welfare", "apvc"],
        ),
        # apvc before rj
        (
            {"flags": ["adolescent_to_parent_violence"], "needs": ["restorative_justice"]},
            ["apvc", "rj"],
        ),
        # male-sv before sv-counselling before rj (after the ISVA)
        (
            {
                **SEXUAL,
                "victim.age": 30,
                "victim.gender": "male",
                "needs": ["restorative_justice", "therapy"],
            },
            ["isva", "male-sv", "sv-counselling", "rj"],
        ),
    ],
)
def test_primary_is_first_match_in_catalogue_order(
    decide: Decide, overrides: dict[str, Any], expected: list[str]
) -> None:
    decision = decide(overrides)
    assert services(decision) == expected
    assert decision.primary == expected[0]
    assert_one_primary(decision)


def test_everything_at_once_gives_exactly_one_primary(decide: Decide) -> None:
    decision = decide(
        {
            **SEXUAL,
            "victim.age": 17,
            "victim.gender": "male",
            "offence.hate_motivations": ["sexual_orientation"],
            "flags": ["domestic_abuse", "major_investigation", "adolescent_to_parent_violence"],
            "needs": ["counselling", "restorative_justice"],
        }
    )
    assert services(decision) == [
        "cisva",
        "domestic-abuse",
        "hate-crime",
        "family-welfare",
        "apvc",
        "male-sv",
        "sv-counselling",
        "rj",
    ]
    assert_one_primary(decision)
    assert decision.primary == "cisva"


def test_every_service_has_reasons_naming_the_fact(decide: Decide) -> None:
    decision = decide(
        {
            **SEXUAL,
            "victim.age": 18,
            "victim.gender": "male",
            "needs": ["therapy"],
            "flags": ["domestic_abuse"],
        }
    )
    for service in decision.services:
        assert service.reasons, service.code
        assert all(isinstance(r, str) and r.strip() for r in service.reasons)
    assert any("offence.category is sexual" in r for r in reasons_for(decision, "cisva"))
    assert any("age 18" in r for r in reasons_for(decision, "cisva"))
    assert any("needs include therapy" in r for r in reasons_for(decision, "sv-counselling"))


def test_all_allocated_services_open_in_catalogue(decide: Decide, catalogue: Any) -> None:
    decision = decide({**DA, "needs": ["restorative_justice"]})
    for code in services(decision):
        assert catalogue.services[code].mode == "allocate"
