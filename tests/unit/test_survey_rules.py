"""The pure part of surveys (triage/domain/surveys.py): when an invitation falls due (working
days, bank holidays, the clock change), who may be invited and by which channel, the contact
keys of the 90-day rule, reading a submitted survey, the safeguarding words, distance
travelled; and the access log's path without a link's token. No I/O besides the catalogue."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from triage.catalogue.loader import load_catalogue
from triage.domain.referral import Referral
from triage.domain.surveys import (
    contact_keys,
    distance_travelled,
    invitation_due,
    read_answers,
    safeguarding_words,
    survey_channel,
    why_not_invited,
)
from triage.domain.validation import validate_referral
from triage.logs import loggable_path

CATALOGUE = load_catalogue()
POLICY = CATALOGUE.surveys


def _victim(**changes: Any) -> Referral:
    from triage.api.examples import NEW_REFERRAL

    body: dict[str, Any] = copy.deepcopy(NEW_REFERRAL)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = body
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return validate_referral(body, "police", datetime(2026, 11, 20, 14, tzinfo=UTC), CATALOGUE)


@pytest.mark.parametrize(
    ("closed", "due"),
    [
        # Monday 10:00 -> Wednesday 10:00
        ("2027-03-01T10:00:00+00:00", "2027-03-03T10:00:00+00:00"),
        # Thursday -> Monday (a weekend between)
        ("2027-03-04T15:30:00+00:00", "2027-03-08T15:30:00+00:00"),
        # Thursday before Good Friday 2027 (26 March) and Easter Monday (29 March): Tuesday is
        # the first working day, Wednesday the second; the clocks gone forward meanwhile, so
        # the same wall time is an hour earlier in UTC.
        ("2027-03-25T10:00:00+00:00", "2027-03-31T09:00:00+00:00"),
        # A Saturday closure counts from the Monday: Tuesday.
        ("2027-03-06T11:00:00+00:00", "2027-03-09T11:00:00+00:00"),
    ],
)
def test_the_invitation_is_due_2_working_days_after_the_closure(closed: str, due: str) -> None:
    assert invitation_due(datetime.fromisoformat(closed), CATALOGUE) == datetime.fromisoformat(
        due
    ).astimezone(UTC)


def test_who_may_be_invited_and_by_which_channel() -> None:
    base = {"referral_status": "closed", "paused": False, "wrong_number": False}
    sms_first = _victim(**{"contact.channels": ["phone", "sms", "email"]})
    assert why_not_invited(sms_first, POLICY, **base) is None
    assert survey_channel(sms_first, POLICY, False) == "sms"
    # A wrong number: the email, never a text.
    assert survey_channel(sms_first, POLICY, True) == "email"
    email_first = _victim(**{"contact.channels": ["email", "sms"]})
    assert survey_channel(email_first, POLICY, False) == "email"
    calls_only = _victim(**{"contact.channels": ["phone"]})
    assert why_not_invited(calls_only, POLICY, **base) == "no_survey_channel"
    no = _victim(**{"consent.to_survey": False})
    assert why_not_invited(no, POLICY, **base) == "no_survey_consent"
    assert why_not_invited(sms_first, POLICY, **{**base, "paused": True}) == "paused"
    assert why_not_invited(sms_first, POLICY, **{**base, "referral_status": "withdrawn"}) == (
        "withdrawn"
    )


def test_contact_keys_recognise_one_victim_and_need_the_secret() -> None:
    one = _victim(**{"victim.phone": "07400 123456", "victim.email": "Sam@Example.org"})
    same = _victim(**{"victim.phone": "+44 7400 123 456", "victim.email": "sam@example.ORG"})
    assert contact_keys(one, "k") == contact_keys(same, "k")
    assert contact_keys(one, "k") != contact_keys(one, "another secret")
    phone_key, email_key = contact_keys(one, "k")
    assert phone_key and email_key and "7400" not in phone_key and len(phone_key) == 64


def test_every_question_may_be_skipped_and_only_its_options_are_taken() -> None:
    assert read_answers(POLICY, {}).values == {} and read_answers(POLICY, {}).safe_to_store
    read = read_answers(
        POLICY, {"satisfaction": "5", "recommend": "not_sure", "comments": "  thanks  "}
    )
    assert read.values == {"satisfaction": 5, "recommend": "not_sure"}
    assert read.free_text == "thanks" and read.safe_to_store
    for field, value in [("satisfaction", "6"), ("satisfaction", "5.0"), ("recommend", "YES")]:
        refused = read_answers(POLICY, {field: value})
        assert field in refused.errors and not refused.safe_to_store
    assert "comments" in read_answers(POLICY, {"comments": "x" * 2001}).errors


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("I am still scared of him", True),
        ("He said he would kill me", True),
        ("I have had suicidal thoughts", True),
        ("sometimes I want to END IT all", True),
        ("Skilled and kind staff, thank you", False),
        ("I could not have ended it without them", False),
        ("", False),
    ],
)
def test_safeguarding_words(text: str, found: bool) -> None:
    assert bool(safeguarding_words(text, POLICY)) is found


def test_distance_travelled_prefers_the_victims_own_answer_at_closure() -> None:
    rows = {
        ("assessment", "caseworker", "wellbeing"): 2,
        ("closure", "caseworker", "wellbeing"): 3,
        ("closure", "survey", "wellbeing"): 4,
        ("assessment", "caseworker", "safety"): 4,
        ("closure", "caseworker", "safety"): 3,
        ("closure", "survey", "informed"): 5,
    }
    by_measure = {d.measure.key: d for d in distance_travelled(POLICY, rows)}
    assert set(by_measure) == {q.key for q in POLICY.outcome_measures}
    wellbeing, safety, informed = (by_measure[k] for k in ("wellbeing", "safety", "informed"))
    assert (wellbeing.change, wellbeing.after_source, wellbeing.improved) == (2, "survey", True)
    assert (safety.change, safety.after_source, safety.improved) == (-1, "caseworker", False)
    assert informed.change is None and informed.improved is None  # nothing at assessment


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/survey/AbC-123_xyz", "/survey/\u2026"),
        ("/staff/set-up/tok3n/two-factor", "/staff/set-up/\u2026/two-factor"),
        ("/survey/thank-you", "/survey/\u2026"),
        ("/refer/about-you", "/refer/about-you"),
        ("/surveys", "/surveys"),
    ],
)
def test_the_access_log_never_carries_a_links_token(path: str, logged: str) -> None:
    assert loggable_path(path) == logged
