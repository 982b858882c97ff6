"""Validation of a referral body (api.md) and consent at intake (triage-policy.md): every
problem at once, with dotted paths, never echoing the personal data that was sent."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from triage.domain.problems import InvalidInput, Problem
from triage.domain.referral import Referral

Check = Callable[..., Referral]
MakeBody = Callable[..., dict[str, Any]]

RECEIVED = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data"
NO_ROUTE = "contact.channels"


def problems_of(check: Check, body: Any, source: str = "police") -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        check(body, source=source)
    assert caught.value.problems
    return caught.value.problems


def paths(check: Check, body: Any, source: str = "police") -> list[str]:
    return [p.path for p in problems_of(check, body, source)]


def test_minimal_body_is_valid(check: Check, make_body: MakeBody) -> None:
    referral = check(make_body())
    assert referral.external_ref == "46/000001/26"
    assert referral.victim.phone == "+447700900123"
    assert referral.offence.category == "burglary"


# --- required fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drop", "path"),
    [
        (["external_ref"], "external_ref"),
        (["victim"], "victim"),
        (["victim.first_name"], "victim.first_name"),
        (["offence"], "offence.category"),
        (["offence.category"], "offence.category"),
    ],
)
def test_required_fields(check: Check, make_body: MakeBody, drop: list[str], path: str) -> None:
    assert path in paths(check, make_body(drop=drop))


def test_last_name_alone_is_enough(check: Check, make_body: MakeBody) -> None:
    referral = check(make_body({"victim.last_name": "Taylor"}, drop=["victim.first_name"]))
    assert referral.victim.last_name == "Taylor"


@pytest.mark.parametrize("value", ["", "   ", None])
def test_empty_external_ref(check: Check, make_body: MakeBody, value: Any) -> None:
    assert "external_ref" in paths(check, make_body({"external_ref": value}))


def test_body_must_be_an_object(check: Check) -> None:
    assert paths(check, ["not", "an", "object"]) == [""]


def test_unknown_field_is_reported(check: Check, make_body: MakeBody) -> None:
    assert "victim.nickname" in paths(check, make_body({"victim.nickname": "S"}))


@pytest.mark.parametrize(
    ("overrides", "drop", "path", "not_also"),
    [
        ({"offence": "burglary"}, [], "offence", "offence.category"),
        ({"victim": "Sam"}, [], "victim", "victim.first_name"),
        ({"victim": None}, [], "victim", "victim.first_name"),
        ({}, ["victim"], "victim", "victim.first_name"),
        ({}, ["offence"], "offence.category", "offence"),
    ],
)
def test_missing_or_wrong_type_object_reported_once(
    check: Check,
    make_body: MakeBody,
    overrides: dict[str, Any],
    drop: list[str],
    path: str,
    not_also: str,
) -> None:
    found = paths(check, make_body(overrides, drop=drop))
    assert found.count(path) == 1
    assert not_also not in found


def test_missing_external_ref_does_not_hide_other_problems(
    check: Check, make_body: MakeBody
) -> None:
    body = make_body({"offence.category": "sexual"}, drop=["external_ref", "consent", "contact"])
    assert paths(check, body) == ["external_ref", "consent.to_referral", NO_ROUTE]


# --- enumerations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"flags": ["repeat_victim", "unlucky"]}, "flags[1]"),
        ({"flags": ["nope"]}, "flags[0]"),
        ({"needs": ["hugs"]}, "needs[0]"),
        ({"victim.gender": "f"}, "victim.gender"),
        ({"victim.vulnerabilities": ["autism", "shy"]}, "victim.vulnerabilities[1]"),
        ({"offence.category": "sexaul"}, "offence.category"),
        ({"offence.hate_motivations": ["colour"]}, "offence.hate_motivations[0]"),
        ({"risk.level": "very high"}, "risk.level"),
        ({"contact.channels": ["phone", "fax"]}, "contact.channels[1]"),
        (
            {"contact.safe_times": [{"days": ["monday"], "from": "09:00", "to": "12:00"}]},
            "contact.safe_times[0].days[0]",
        ),
        ({"victim.language": "xx"}, "victim.language"),
    ],
)
def test_unknown_enumeration_values(
    check: Check, make_body: MakeBody, overrides: dict[str, Any], path: str
) -> None:
    assert path in paths(check, make_body(overrides))


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"risk.dash_score": 28}, "risk.dash_score"),
        ({"risk.dash_score": -1}, "risk.dash_score"),
        ({"risk.dash_score": "14"}, "risk.dash_score"),
        ({"risk.dash_score": True}, "risk.dash_score"),
        ({"victim.interpreter_needed": "yes"}, "victim.interpreter_needed"),
        ({"flags": "domestic_abuse"}, "flags"),
        (
            {"contact.safe_times": [{"days": ["mon"], "from": "9am", "to": "12:00"}]},
            "contact.safe_times[0].from",
        ),
        (
            {"contact.safe_times": [{"days": ["mon"], "from": "09:00", "to": "24:00"}]},
            "contact.safe_times[0].to",
        ),
    ],
)
def test_bad_types_and_ranges(
    check: Check, make_body: MakeBody, overrides: dict[str, Any], path: str
) -> None:
    assert path in paths(check, make_body(overrides))


def test_duplicates_in_lists_are_dropped(check: Check, make_body: MakeBody) -> None:
    referral = check(make_body({"flags": ["repeat_victim", "repeat_victim"]}))
    assert referral.flags == ["repeat_victim"]


# --- times and dates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"referred_at": "2026-11-18T09:00:00"}, "referred_at"),
        ({"referred_at": "2026-11-18"}, "referred_at"),
        ({"referred_at": "yesterday"}, "referred_at"),
        ({"consent.recorded_at": "2026-11-18T09:00:00"}, "consent.recorded_at"),
    ],
)
def test_naive_or_malformed_times(
    check: Check, make_body: MakeBody, overrides: dict[str, Any], path: str
) -> None:
    found = problems_of(check, make_body(overrides))
    assert path in [p.path for p in found]


@pytest.mark.parametrize("value", ["2026-11-18T09:00:00Z", "2026-11-18T09:00:00+01:00"])
def test_times_with_offsets_are_accepted(check: Check, make_body: MakeBody, value: str) -> None:
    referral = check(make_body({"referred_at": value}))
    assert referral.referred_at is not None
    assert referral.referred_at.utcoffset() is not None


def test_date_of_birth_in_the_future(check: Check, make_body: MakeBody) -> None:
    found = problems_of(check, make_body({"victim.date_of_birth": "2026-11-19"}))
    assert [(p.path, p.message) for p in found] == [
        ("victim.date_of_birth", "must not be in the future")
    ]


def test_date_of_birth_today_is_allowed(check: Check, make_body: MakeBody) -> None:
    referral = check(make_body({"victim.date_of_birth": "2026-11-18"}))
    assert referral.victim.age == 0


@pytest.mark.parametrize(
    "overrides",
    [{"victim.age": 121}, {"victim.date_of_birth": "1905-11-17"}, {"victim.age": -1}],
)
def test_age_over_120_or_negative(
    check: Check, make_body: MakeBody, overrides: dict[str, Any]
) -> None:
    found = paths(check, make_body(overrides))
    assert found and all(p.startswith("victim.") for p in found)


def test_age_120_is_allowed(check: Check, make_body: MakeBody) -> None:
    assert check(make_body({"victim.age": 120})).victim.age == 120


def test_age_and_date_of_birth_disagree(check: Check, make_body: MakeBody) -> None:
    body = make_body({"victim.date_of_birth": "1991-04-02", "victim.age": 30})
    assert paths(check, body) == ["victim.age"]


def test_age_and_date_of_birth_agree(check: Check, make_body: MakeBody) -> None:
    referral = check(make_body({"victim.date_of_birth": "1991-04-02", "victim.age": 35}))
    assert referral.victim.age == 35
    assert referral.victim.date_of_birth == date(1991, 4, 2)


def test_age_from_date_of_birth_in_london_day(check: Check, make_body: MakeBody) -> None:
    # 23:30Z on 1 April 2026 in BST is 00:30 on 2 April in London: the birthday.
    body = make_body({"victim.date_of_birth": "1991-04-02"})
    referral = check(body, received_at=datetime(2026, 4, 1, 23, 30, tzinfo=UTC))
    assert referral.victim.age == 35


@pytest.mark.parametrize("value", ["2026-02-30", "18/11/2026", "2026-11-18T00:00:00Z"])
def test_bad_dates(check: Check, make_body: MakeBody, value: str) -> None:
    assert "victim.date_of_birth" in paths(check, make_body({"victim.date_of_birth": value}))


def test_offence_date_in_the_future(check: Check, make_body: MakeBody) -> None:
    assert "offence.occurred_on" in paths(check, make_body({"offence.occurred_on": "2026-12-01"}))


# --- phone numbers, email, postcodes ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("07700 900123", "+447700900123"),
        ("07700900999", "+447700900999"),
        ("+44 7700 900000", "+447700900000"),
        ("01632 960001", "+441632960001"),
        ("020 7946 0123", "+442079460123"),
    ],
)
def test_drama_numbers_accepted_and_normalised(
    check: Check, make_body: MakeBody, text: str, e164: str
) -> None:
    referral = check(make_body({"victim.phone": text, "referrer.phone": text}))
    assert referral.victim.phone == e164
    assert referral.referrer is not None
    assert referral.referrer.phone == e164


@pytest.mark.parametrize(
    "text", ["12345", "07700 9001234", "0770", "phone me", "+44 1632 96000", "00000000000"]
)
def test_impossible_phone_numbers(check: Check, make_body: MakeBody, text: str) -> None:
    found = problems_of(check, make_body({"victim.phone": text}))
    assert "victim.phone" in [p.path for p in found]
    # With its only number refused, the victim has no contact route either.
    assert NO_ROUTE in [p.path for p in found]


def test_bad_referrer_phone(check: Check, make_body: MakeBody) -> None:
    assert paths(check, make_body({"referrer.phone": "999"})) == ["referrer.phone"]


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("ct12ab", "CT1 2AB"),
        ("CT1 2AB", "CT1 2AB"),
        (" me14  1xq ", "ME14 1XQ"),
        ("sw1a1aa", "SW1A 1AA"),
        ("tn23 1aa", "TN23 1AA"),
    ],
)
def test_postcodes_normalised(
    check: Check, make_body: MakeBody, text: str, normalised: str
) -> None:
    referral = check(make_body({"victim.address": {"line1": "1 High St", "postcode": text}}))
    assert referral.victim.address is not None
    assert referral.victim.address.postcode == normalised


@pytest.mark.parametrize("text", ["CT1", "12345", "CT1 2A", "QQ1 2AB", "CT1 2AB X", "C T"])
def test_malformed_postcodes(check: Check, make_body: MakeBody, text: str) -> None:
    body = make_body({"victim.address": {"line1": "1 High St", "postcode": text}})
    assert paths(check, body) == ["victim.address.postcode"]


def test_email_normalised_and_checked(check: Check, make_body: MakeBody) -> None:
    referral = check(make_body({"victim.email": "Sam@Example.ORG"}))
    assert referral.victim.email == "Sam@example.org"
    assert paths(check, make_body({"victim.email": "sam-at-example"})) == ["victim.email"]


# --- contact routes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "drop"),
    [
        ({"contact.channels": []}, []),
        ({}, ["contact"]),
        ({}, ["victim.phone"]),  # phone listed, no number
        ({"contact.channels": ["email"]}, []),  # email listed, no address
        ({"contact.channels": ["sms"]}, ["victim.phone"]),
        (  # letter without letter_ok
            {
                "contact.channels": ["letter"],
                "victim.address": {"line1": "1 High St", "postcode": "CT1 2AB"},
            },
            [],
        ),
        (  # letter_ok without a postal address
            {"contact.channels": ["letter"], "contact.letter_ok": True},
            [],
        ),
        (  # letter_ok and a postcode but no street line
            {
                "contact.channels": ["letter"],
                "contact.letter_ok": True,
                "victim.address": {"postcode": "CT1 2AB"},
            },
            [],
        ),
    ],
)
def test_no_usable_contact_route(
    check: Check, make_body: MakeBody, overrides: dict[str, Any], drop: list[str]
) -> None:
    assert NO_ROUTE in paths(check, make_body(overrides, drop=drop))


@pytest.mark.parametrize(
    "overrides",
    [
        {"contact.channels": ["sms"]},
        {"contact.channels": ["email"], "victim.email": "sam@example.org"},
        {
            "contact.channels": ["letter"],
            "contact.letter_ok": True,
            "victim.address": {"line1": "1 High St", "postcode": "CT1 2AB"},
        },
        {"contact.channels": ["email", "phone"]},  # email unusable, phone usable
    ],
)
def test_usable_contact_routes(
    check: Check, make_body: MakeBody, overrides: dict[str, Any]
) -> None:
    check(make_body(overrides))


# --- several problems at once, no personal data in messages --------------------------------


def test_several_problems_reported_at_once(check: Check, make_body: MakeBody) -> None:
    body = make_body(
        {
            "victim.date_of_birth": "2030-01-01",
            "victim.phone": "12345",
            "flags": ["unknown_flag"],
            "referred_at": "2026-11-18T09:00:00",
            "offence.category": "sexual",
        },
        drop=["external_ref", "consent"],
    )
    found = set(paths(check, body))
    assert found >= {
        "external_ref",
        "victim.date_of_birth",
        "victim.phone",
        "flags[0]",
        "referred_at",
        "consent.to_referral",
        NO_ROUTE,
    }


def test_no_message_repeats_the_personal_data_sent(check: Check, make_body: MakeBody) -> None:
    secrets = {
        "victim.first_name": "Zebedee" * 20,  # too long
        "victim.last_name": "Quixotic",
        "victim.phone": "07700 9001239",
        "victim.email": "zebedee.quixotic-at-example",
        "victim.date_of_birth": "2031-02-03",
        "victim.age": 212,
        "victim.address": {"line1": "17 Cherry Tree Lane", "postcode": "ZZ9 9ZZQ"},
        "referrer.phone": "01632 96",
        "referrer.email": "pc.plod@@police",
        "external_ref": "46/987654/26",
        "referred_at": "2026-11-17T08:41:00",
    }
    found = problems_of(check, make_body(secrets))
    assert len(found) >= 8
    sent = [
        "Zebedee",
        "Quixotic",
        "9001239",
        "07700",
        "zebedee",
        "2031",
        "212",
        "Cherry",
        "ZZ9",
        "01632",
        "plod",
        "987654",
        "08:41",
    ]
    for problem in found:
        for value in sent:
            assert value not in problem.message, (problem, value)
            assert value not in problem.path, (problem, value)


# --- consent at intake ----------------------------------------------------------------------

EXPLICIT = [
    ({"offence.category": "sexual"}, "sexual"),
    ({"offence.category": "domestic_abuse"}, "domestic abuse"),
    ({"offence.category": "violence", "flags": ["domestic_abuse"]}, "domestic abuse"),
    ({"offence.category": "homicide", "flags": ["bereaved_by_homicide"]}, "bereaved"),
    ({"offence.category": "other", "flags": ["bereaved_by_da_death"]}, "bereaved"),
]
WITHOUT_CONSENT: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["consent"]),  # no consent object
    ({"consent": {"to_contact": True}}, []),  # field missing
    ({"consent.to_referral": None}, []),
]


@pytest.mark.parametrize(("facts", "words"), EXPLICIT)
@pytest.mark.parametrize(("consent", "drop"), WITHOUT_CONSENT)
def test_police_explicit_consent_required(
    check: Check,
    make_body: MakeBody,
    facts: dict[str, Any],
    words: str,
    consent: dict[str, Any],
    drop: list[str],
) -> None:
    found = problems_of(check, make_body({**facts, **consent}, drop=drop))
    assert [p.path for p in found] == ["consent.to_referral"]
    assert words in found[0].message
    assert "explicit consent" in found[0].message


@pytest.mark.parametrize(("facts", "words"), EXPLICIT)
def test_police_explicit_consent_refused_when_false(
    check: Check, make_body: MakeBody, facts: dict[str, Any], words: str
) -> None:
    found = problems_of(check, make_body({**facts, "consent.to_referral": False}))
    assert [p.path for p in found] == ["consent.to_referral"]


@pytest.mark.parametrize(("facts", "words"), EXPLICIT)
def test_police_explicit_consent_given(
    check: Check, make_body: MakeBody, facts: dict[str, Any], words: str
) -> None:
    referral = check(make_body({**facts, "consent.to_referral": True}))
    assert referral.consent.to_referral is True


@pytest.mark.parametrize(("consent", "drop"), WITHOUT_CONSENT)
def test_other_police_referrals_consent_by_default(
    check: Check, make_body: MakeBody, consent: dict[str, Any], drop: list[str]
) -> None:
    referral = check(make_body({"offence.category": "burglary", **consent}, drop=drop))
    assert referral.consent.to_referral is True
    assert referral.consent.to_contact is True
    assert referral.consent.to_survey is False
    assert referral.consent.recorded_by is None


def test_survey_needs_explicit_yes(check: Check, make_body: MakeBody) -> None:
    assert check(make_body({"consent.to_survey": True})).consent.to_survey is True
    assert check(make_body({"consent.to_survey": False})).consent.to_survey is False


def test_other_police_referral_opted_out_is_refused(check: Check, make_body: MakeBody) -> None:
    found = problems_of(check, make_body({"consent.to_referral": False}))
    assert [p.path for p in found] == ["consent.to_referral"]
    assert "asked not to be referred" in found[0].message


@pytest.mark.parametrize(
    ("consent", "drop"),
    [*WITHOUT_CONSENT, ({"consent.to_referral": False}, [])],
)
@pytest.mark.parametrize("category", ["burglary", "sexual"])
def test_professional_must_confirm_consent(
    check: Check, make_body: MakeBody, consent: dict[str, Any], drop: list[str], category: str
) -> None:
    body = make_body({"offence.category": category, **consent}, drop=drop)
    found = problems_of(check, body, source="professional")
    assert [p.path for p in found] == ["consent.to_referral"]
    assert "professional" in found[0].message


def test_professional_with_consent(check: Check, make_body: MakeBody) -> None:
    referral = check(make_body({"offence.category": "sexual"}), source="professional")
    assert referral.consent.to_referral is True


@pytest.mark.parametrize(
    ("consent", "drop"), [*WITHOUT_CONSENT, ({"consent.to_referral": True}, [])]
)
@pytest.mark.parametrize("category", ["burglary", "sexual", "domestic_abuse"])
def test_self_referral_consents_by_submitting(
    check: Check, make_body: MakeBody, consent: dict[str, Any], drop: list[str], category: str
) -> None:
    body = make_body({"offence.category": category, **consent}, drop=drop)
    referral = check(body, source="self")
    assert referral.consent.to_referral is True


@pytest.mark.parametrize("source", ["police", "professional", "self"])
def test_no_contact_consent_needs_no_contact_route(
    check: Check, make_body: MakeBody, source: str
) -> None:
    body = make_body(
        {"offence.category": "sexual", "consent.to_contact": False},
        drop=["contact", "victim.phone"],
    )
    referral = check(body, source=source)
    assert referral.consent.to_contact is False


def test_consent_must_be_an_object(check: Check, make_body: MakeBody) -> None:
    assert "consent" in paths(check, make_body({"consent": "yes"}))


def test_prefix_for_batch_items(catalogue: Any, make_body: MakeBody) -> None:
    from triage.domain.validation import validate_referral

    with pytest.raises(InvalidInput) as caught:
        validate_referral(
            make_body({"victim.phone": "1"}), "police", RECEIVED, catalogue, "referrals[3]"
        )
    assert "referrals[3].victim.phone" in [p.path for p in caught.value.problems]


# --- the CLI ----------------------------------------------------------------------------------


def triage_command() -> list[str]:
    script = Path(sys.executable).with_name("triage")
    return [str(script)] if script.exists() else [sys.executable, "-m", "triage.cli"]


def run_explain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*triage_command(), "explain", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_explains_the_api_example() -> None:
    result = run_explain(
        str(DATA / "example_referral.json"), "--received-at", "2026-11-20T14:10:00Z"
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {
        "area",
        "priority",
        "enhanced_rights",
        "contact_due_by",
        "services",
        "signposts",
        "first_contact_step",
        "flags",
        "catalogue_version",
    }
    assert out["area"] == {"code": "east-kent", "local_authority": "Canterbury", "district": "CT1"}
    assert out["priority"] == "P2"
    assert out["enhanced_rights"] == ["most_serious_crime", "persistently_targeted", "vulnerable"]
    assert out["contact_due_by"] == "2026-11-23T17:00:00Z"
    assert [(s["code"], s["role"]) for s in out["services"]] == [
        ("domestic-abuse", "primary"),
        ("stalking", "additional"),
    ]
    assert all(s["reasons"] for s in out["services"])
    assert out["signposts"] == []
    assert out["first_contact_step"] == {
        "kind": "call",
        "channel": "phone",
        "due_at": "2026-11-23T09:00:00Z",
    }
    assert out["flags"] == []
    assert out["catalogue_version"].startswith("sha256:")


def test_cli_invalid_body_prints_problem_json(tmp_path: Path) -> None:
    body = json.loads((DATA / "example_referral.json").read_text(encoding="utf-8"))
    body["victim"]["date_of_birth"] = "2030-01-01"
    del body["consent"]
    file = tmp_path / "invalid.json"
    file.write_text(json.dumps(body), encoding="utf-8")
    result = run_explain(str(file), "--received-at", "2026-11-20T14:10:00Z")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["status"] == 422
    assert out["type"] == "https://triage.example/problems/validation"
    assert out["detail"] == "2 problems"
    assert {e["path"] for e in out["errors"]} == {"victim.date_of_birth", "consent.to_referral"}
    assert "Sam" not in result.stdout and "07700" not in result.stdout


@pytest.mark.parametrize("value", ["٠٩:٠٠", "²²:00", "０９:００"])
def test_safe_times_take_ascii_digits_only(value: str) -> None:
    """Other scripts' digits pass str.isdigit(); some then break int() with a message that
    quotes the value. Both are refused with the fixed message."""
    from triage.domain.calendar import parse_clock

    with pytest.raises(ValueError, match=r"^must be a time as HH:MM$"):
        parse_clock(value)
