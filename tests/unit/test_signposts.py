"""Signpost rules (triage-policy.md, "Signpost rules"): each matches, a near miss does not;
area-based signposts never match a postcode outside Kent and Medway or no postcode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from triage.domain.decision import Decision

Decide = Callable[..., Decision]

DA = {"offence.category": "domestic_abuse"}
DA_FLAG = {"offence.category": "violence", "flags": ["domestic_abuse"]}
SEXUAL = {"offence.category": "sexual"}

# Postcodes by area (areas.md).
EAST_KENT = "CT1 2AB"  # Canterbury
WEST_KENT = "ME14 1XQ"  # Maidstone
NORTH_KENT = "DA12 1AA"  # Gravesham
SWALE = "ME10 3AA"  # Swale, North Kent
MEDWAY = "ME4 4AA"  # Medway
OUTSIDE = "SW1A 1AA"


def signposts(decision: Decision) -> list[str]:
    return [s.code for s in decision.signposts]


def postcode(code: str) -> dict[str, Any]:
    return {"victim.address": {"line1": "1 High Street", "postcode": code}}


MATCHES: list[tuple[str, dict[str, Any]]] = [
    (
        "jigsaw",
        {"offence.hate_motivations": ["disability"], "victim.vulnerabilities": ["autism"]},
    ),
    (
        "jigsaw",
        {
            "offence.hate_motivations": ["other"],
            "victim.vulnerabilities": ["learning_disability"],
        },
    ),
    ("jigsaw", {"offence.hate_motivations": ["race"], "victim.vulnerabilities": ["mental_health"]}),
    ("aafda", {"offence.category": "homicide", "flags": ["bereaved_by_da_death"]}),
    ("dads-unlimited", {**DA, "victim.gender": "male", "victim.age": 18}),
    ("dads-unlimited", {**DA_FLAG, "victim.gender": "male", "victim.age": 45}),
    ("dandelion-time", {**DA, "victim.age": 30, "flags": ["children_in_household"]}),
    ("dandelion-time", {**SEXUAL, "victim.age": 30, "flags": ["children_in_household"]}),
    ("dandelion-time", {**SEXUAL, "victim.age": 17}),
    ("dandelion-time", {**DA_FLAG, "victim.age": 12}),
    ("davss", {**DA, **postcode(WEST_KENT), "flags": ["attending_court"]}),
    ("davss", {**DA_FLAG, **postcode(WEST_KENT), "needs": ["court_support"]}),
    ("ekrcc", {**SEXUAL, **postcode(EAST_KENT), "needs": ["counselling"]}),
    ("ekrcc", {**SEXUAL, **postcode(EAST_KENT), "needs": ["therapy"]}),
    ("rubicon", {"offence.category": "robbery", "needs": ["counselling"]}),
    ("rubicon", {**DA, "needs": ["therapy"]}),
    ("daisy-chain", {**DA, "needs": ["legal_advice"]}),
    ("daisy-chain", {**SEXUAL, "needs": ["legal_advice"]}),
    ("health-action", {**DA, **postcode(NORTH_KENT), "victim.gender": "male"}),
    ("health-action", {**DA_FLAG, **postcode(SWALE), "victim.gender": "male"}),
    ("mary-dolly", {**DA, "needs": ["online_support"]}),
    ("mary-dolly", {**SEXUAL, "needs": ["online_support"]}),
    ("rising-sun", {**DA, "victim.gender": "female", "victim.age": 25}),
    ("rising-sun", {**DA, "victim.gender": "male", "victim.age": 17}),
    ("salus", {**DA, "victim.age": 17}),
    ("salus", {**DA_FLAG, "victim.age": 11}),
    ("innovating-minds", {**DA, "victim.age": 17}),
    ("innovating-minds", {**DA_FLAG, "victim.age": 11}),
    ("sateda", {**DA, **postcode(SWALE)}),
    ("sateda", {**DA_FLAG, **postcode("ME13 8AA")}),  # straddling, majority Swale
    ("bloomers", {**DA, "flags": ["low_income"]}),
    ("bloomers", {**DA, "needs": ["financial_hardship"]}),
    (
        "st-giles-vve",
        {"offence.category": "violence", "victim.age": 25, "flags": ["gangs_exploitation"]},
    ),
    ("st-giles-vve", {"offence.category": "exploitation", "victim.age": 16}),
    ("homicide-service", {"offence.category": "homicide", "flags": ["bereaved_by_homicide"]}),
]

NEAR_MISSES: list[tuple[str, dict[str, Any]]] = [
    # jigsaw: a vulnerability not on its list; or no hate motivation
    (
        "jigsaw",
        {
            "offence.hate_motivations": ["disability"],
            "victim.vulnerabilities": ["physical_disability"],
        },
    ),
    ("jigsaw", {"offence.category": "violence", "victim.vulnerabilities": ["autism"]}),
    ("aafda", {"offence.category": "homicide", "flags": ["bereaved_by_homicide"]}),
    ("dads-unlimited", {**DA, "victim.gender": "male", "victim.age": 17}),
    ("dads-unlimited", {**DA, "victim.gender": "female", "victim.age": 30}),
    ("dads-unlimited", {**DA, "victim.gender": "male"}),  # age unknown
    ("dads-unlimited", {"offence.category": "violence", "victim.gender": "male", "victim.age": 30}),
    ("dandelion-time", {**DA, "victim.age": 18}),
    ("dandelion-time", {"offence.category": "burglary", "flags": ["children_in_household"]}),
    ("davss", {**DA, **postcode(EAST_KENT), "flags": ["attending_court"]}),
    ("davss", {**DA, **postcode(WEST_KENT)}),
    ("davss", {"offence.category": "violence", **postcode(WEST_KENT), "needs": ["court_support"]}),
    ("ekrcc", {**SEXUAL, **postcode(WEST_KENT), "needs": ["counselling"]}),
    ("ekrcc", {**SEXUAL, **postcode(EAST_KENT), "needs": ["emotional"]}),
    ("rubicon", {**SEXUAL, "needs": ["counselling"]}),
    ("rubicon", {"offence.category": "robbery", "needs": ["emotional"]}),
    ("daisy-chain", {"offence.category": "fraud", "needs": ["legal_advice"]}),
    ("health-action", {**DA, **postcode(MEDWAY), "victim.gender": "male"}),
    ("health-action", {**DA, **postcode(NORTH_KENT), "victim.gender": "female"}),
    ("mary-dolly", {"offence.category": "theft", "needs": ["online_support"]}),
    ("rising-sun", {**DA, "victim.gender": "female", "victim.age": 26}),
    ("rising-sun", {**DA, "victim.gender": "male", "victim.age": 20}),
    ("rising-sun", {"offence.category": "violence", "victim.gender": "female", "victim.age": 20}),
    ("salus", {**DA, "victim.age": 18}),
    ("salus", {**DA}),  # age unknown
    ("innovating-minds", {**DA, "victim.age": 18}),
    ("innovating-minds", {"offence.category": "violence", "victim.age": 12}),
    ("sateda", {**DA, **postcode(MEDWAY)}),
    ("sateda", {**DA, **postcode(NORTH_KENT)}),
    ("bloomers", {"offence.category": "theft", "flags": ["low_income"]}),
    ("bloomers", {**DA, "needs": ["practical"]}),
    (
        "st-giles-vve",
        {"offence.category": "violence", "victim.age": 26, "flags": ["gangs_exploitation"]},
    ),
    ("st-giles-vve", {"offence.category": "exploitation"}),  # age unknown
    ("st-giles-vve", {"offence.category": "violence", "victim.age": 20}),
    ("homicide-service", {"offence.category": "homicide", "flags": ["bereaved_by_da_death"]}),
    ("homicide-service", {"offence.category": "homicide"}),
]


@pytest.mark.parametrize(("code", "overrides"), MATCHES)
def test_signpost_matches(decide: Decide, code: str, overrides: dict[str, Any]) -> None:
    decision = decide(overrides)
    assert code in signposts(decision)
    reasons = next(s.reasons for s in decision.signposts if s.code == code)
    assert reasons and all(r.strip() for r in reasons)


@pytest.mark.parametrize(("code", "overrides"), NEAR_MISSES)
def test_signpost_near_miss(decide: Decide, code: str, overrides: dict[str, Any]) -> None:
    assert code not in signposts(decide(overrides))


def test_every_signpost_rule_is_covered(catalogue: Any) -> None:
    rules = {rule.target for rule in catalogue.signpost_rules}
    assert rules == {code for code, _ in MATCHES}
    assert rules == {code for code, _ in NEAR_MISSES}


def test_signposts_open_no_case(decide: Decide, catalogue: Any) -> None:
    decision = decide({**DA, "victim.age": 16, "victim.gender": "male", "needs": ["therapy"]})
    assert {"salus", "innovating-minds", "rubicon"} <= set(signposts(decision))
    allocated = {s.code for s in decision.services}
    assert not allocated & set(signposts(decision))
    for code in signposts(decision):
        assert catalogue.services[code].mode == "signpost"


def test_burglary_gets_no_signposts(decide: Decide) -> None:
    assert decide({"offence.category": "burglary", "victim.age": 30}).signposts == []


def test_signpost_reasons_name_the_facts(decide: Decide) -> None:
    decision = decide({**DA, **postcode(SWALE), "victim.gender": "male", "victim.age": 40})
    reasons = {s.code: s.reasons for s in decision.signposts}
    assert any("local_authority is Swale" in r for r in reasons["sateda"])
    assert any("area is north-kent" in r for r in reasons["health-action"])
    assert any("age 40" in r for r in reasons["dads-unlimited"])


AREA_SIGNPOSTS: list[tuple[str, dict[str, Any]]] = [
    ("davss", {**DA, "flags": ["attending_court"]}),
    ("ekrcc", {**SEXUAL, "needs": ["counselling"]}),
    ("health-action", {**DA, "victim.gender": "male"}),
    ("sateda", DA),
]


@pytest.mark.parametrize(("code", "overrides"), AREA_SIGNPOSTS)
@pytest.mark.parametrize("where", [OUTSIDE, "TN5 6AA", "DA5 1AA", None])
def test_area_signposts_do_not_match_outside_or_unknown(
    decide: Decide, code: str, overrides: dict[str, Any], where: str | None
) -> None:
    place = postcode(where) if where else {}
    decision = decide({**overrides, **place})
    assert code not in signposts(decision)
    assert "area_check" in decision.flags


def test_area_signposts_need_their_own_area(decide: Decide) -> None:
    # The same facts inside the right area do match: the near misses above are about place.
    places = {"davss": WEST_KENT, "ekrcc": EAST_KENT, "health-action": NORTH_KENT, "sateda": SWALE}
    for code, overrides in AREA_SIGNPOSTS:
        assert code in signposts(decide({**overrides, **postcode(places[code])})), code
