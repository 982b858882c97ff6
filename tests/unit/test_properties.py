"""Properties of the whole engine over generated referrals (hypothesis).

Varied valid bodies (every category, flag, need, vulnerability, gender, ages and unknown ages,
Kent postcodes, outside postcodes and none, risk, safe times including windows past midnight,
channels, consent) received at any minute of 2026-2028, checked against the rules that hold for
every referral: triage-policy.md's decision shape and deadlines, contacts.md's safe contact.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.catalogue.loader import load_catalogue
from triage.domain import vocabulary as v
from triage.domain.calendar import LONDON
from triage.domain.decision import Decision
from triage.domain.engine import triage
from triage.domain.referral import Referral
from triage.domain.validation import usable_channels, validate_referral

CATALOGUE = load_catalogue()
KENT_DISTRICTS = sorted(CATALOGUE.districts)
OUTSIDE_DISTRICTS = ["SW1A", "BN1", "RH10", "M1", "CF10", "SE1", "E1"]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
# England's bank holidays, from the holidays package directly (the engine has its own table).
ENGLAND = holidays.country_holidays("GB", subdiv="ENG", years=range(2026, 2031))
DEFAULT_WINDOWS = [(list(v.DAYS), "08:00", "20:00")]
EXPLICIT_CONSENT_FLAGS = {"domestic_abuse", "bereaved_by_homicide", "bereaved_by_da_death"}

MINUTES_2026_2028 = (datetime(2029, 1, 1) - datetime(2026, 1, 1)) // timedelta(minutes=1)
CLOCK_CHANGE_NIGHTS = [
    datetime(2026, 3, 29, 0, 59, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    datetime(2026, 12, 24, 16, 59, tzinfo=UTC),
    datetime(2027, 12, 31, 23, 59, tzinfo=UTC),
]
RECEIPTS = st.one_of(
    st.integers(0, MINUTES_2026_2028 - 1).map(
        lambda m: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=m)
    ),
    st.sampled_from(CLOCK_CHANGE_NIGHTS),
)


def subset(values: tuple[str, ...] | list[str], max_size: int = 4) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(list(values)), max_size=max_size, unique=True)


CLOCK = st.builds(
    lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45])
)
WINDOW = st.fixed_dictionaries(
    {
        "days": st.lists(st.sampled_from(v.DAYS), min_size=1, max_size=7, unique=True),
        "from": CLOCK,
        "to": CLOCK,
    }
)
NIGHT_WINDOW = st.fixed_dictionaries(
    {
        "days": st.lists(st.sampled_from(v.DAYS), min_size=1, max_size=7, unique=True),
        "from": st.sampled_from(["21:00", "22:00", "23:30"]),
        "to": st.sampled_from(["01:00", "02:00", "06:00"]),
    }
)


@st.composite
def referrals(draw: st.DrawFn) -> tuple[dict[str, Any], str, datetime]:
    received_at = draw(RECEIPTS)
    today = received_at.astimezone(LONDON).date()
    source = draw(st.sampled_from(v.SOURCES))
    category = draw(st.sampled_from(v.OFFENCE_CATEGORIES))
    flags = draw(subset(v.REFERRAL_FLAGS, 5))

    victim: dict[str, Any] = {"first_name": "Sam"}
    if draw(st.booleans()):
        victim["last_name"] = "Taylor"
    age_kind = draw(st.sampled_from(["dob", "age", "unknown"]))
    if age_kind == "dob":
        victim["date_of_birth"] = (
            today - timedelta(days=draw(st.integers(0, 110 * 365)))
        ).isoformat()
    elif age_kind == "age":
        victim["age"] = draw(st.integers(0, 120))
    gender = draw(st.none() | st.sampled_from(v.GENDERS))
    if gender is not None:
        victim["gender"] = gender
    victim["vulnerabilities"] = draw(subset(v.VULNERABILITIES, 3))
    if draw(st.booleans()):
        victim["language"] = draw(st.sampled_from(["en", "pl", "ro", "ar", "pa"]))
        victim["interpreter_needed"] = draw(st.booleans())

    has_phone = draw(st.booleans())
    has_email = draw(st.booleans())
    if has_phone:
        victim["phone"] = f"07700 900{draw(st.integers(0, 999)):03d}"
    if has_email:
        victim["email"] = "someone@example.org"
    where = draw(st.sampled_from(["kent", "kent", "outside", "none"]))
    if where != "none":
        district = draw(st.sampled_from(KENT_DISTRICTS if where == "kent" else OUTSIDE_DISTRICTS))
        inward = f"{draw(st.integers(0, 9))}{draw(st.sampled_from(INWARD_LETTERS))}"
        inward += draw(st.sampled_from(INWARD_LETTERS))
        victim["address"] = {"line1": "1 High Street", "postcode": f"{district} {inward}"}

    to_contact = draw(st.sampled_from([True, True, True, False, None]))
    channels = draw(subset(v.CHANNELS, 4))
    letter_ok = draw(st.booleans())
    contact: dict[str, Any] = {"channels": channels, "letter_ok": letter_ok}
    if to_contact is not False and not _usable(victim, channels, letter_ok):
        # A usable route is required unless to_contact is false: add one.
        if has_phone:
            channels.append("phone")
        else:
            victim["email"] = "someone@example.org"
            channels.append("email")
    if draw(st.booleans()):
        contact["safe_times"] = draw(
            st.lists(st.one_of(WINDOW, NIGHT_WINDOW), min_size=1, max_size=3)
        )
    contact["voicemail_ok"] = draw(st.booleans())

    offence: dict[str, Any] = {"category": category}
    offence["hate_motivations"] = draw(subset(v.HATE_MOTIVATIONS, 2))
    if draw(st.booleans()):
        offence["occurred_on"] = (today - timedelta(days=draw(st.integers(0, 3000)))).isoformat()

    risk: dict[str, Any] = {}
    if draw(st.booleans()):
        risk["dash_score"] = draw(st.integers(0, 27))
    if draw(st.booleans()):
        risk["level"] = draw(st.sampled_from(v.RISK_LEVELS))
    if draw(st.booleans()):
        risk["marac_referred"] = draw(st.booleans())

    consent: dict[str, Any] = {}
    explicit = category in ("sexual", "domestic_abuse") or bool(EXPLICIT_CONSENT_FLAGS & set(flags))
    if source == "professional" or (source == "police" and explicit) or draw(st.booleans()):
        consent["to_referral"] = True
    if to_contact is not None:
        consent["to_contact"] = to_contact
    if draw(st.booleans()):
        consent["to_survey"] = draw(st.booleans())

    body = {
        "external_ref": f"46/{draw(st.integers(0, 999_999)):06d}/26",
        "victim": victim,
        "contact": contact,
        "offence": offence,
        "flags": flags,
        "needs": draw(subset(v.NEEDS, 4)),
        "risk": risk,
        "consent": consent,
    }
    return body, source, received_at


def _usable(victim: dict[str, Any], channels: list[str], letter_ok: bool) -> bool:
    for channel in channels:
        if channel in ("phone", "sms") and "phone" in victim:
            return True
        if channel == "email" and "email" in victim:
            return True
        if channel == "letter" and letter_ok and "address" in victim:
            return True
    return False


def decide(body: dict[str, Any], source: str, received_at: datetime) -> tuple[Referral, Decision]:
    referral = validate_referral(body, source, received_at, CATALOGUE)
    return referral, triage(referral, source, received_at, CATALOGUE)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in ENGLAND


def working_days_between(after: date, until: date) -> int:
    """Working days in (after, until]."""
    count, day = 0, after
    while day < until:
        day += timedelta(days=1)
        count += is_working_day(day)
    return count


def in_windows(instant: datetime, windows: list[tuple[list[str], str, str]]) -> bool:
    """Whether the London wall clock at `instant` is inside one of the windows, computed
    independently of the engine: `from` inclusive, `to` exclusive, `to` < `from` past midnight,
    `to` == `from` the whole day."""
    local = instant.astimezone(LONDON)
    clock = local.time().replace(tzinfo=None)
    today = v.DAYS[local.weekday()]
    yesterday = v.DAYS[(local.weekday() - 1) % 7]
    for days, start_text, end_text in windows:
        start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
        if end > start:
            if today in days and start <= clock < end:
                return True
        else:
            if today in days and clock >= start:
                return True
            if yesterday in days and clock < end:
                return True
    return False


SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(case=referrals())
def test_decision_shape(case: tuple[dict[str, Any], str, datetime]) -> None:
    body, source, received_at = case
    _, decision = decide(body, source, received_at)
    roles = [s.role for s in decision.services]
    assert roles.count("primary") == 1
    assert roles[0] == "primary"
    assert set(roles[1:]) <= {"additional"}
    codes = [s.code for s in decision.services]
    assert len(codes) == len(set(codes))
    for service in decision.services:
        assert service.code in CATALOGUE.services
        assert CATALOGUE.services[service.code].mode == "allocate"
    for signpost in decision.signposts:
        assert signpost.code in CATALOGUE.services
        assert CATALOGUE.services[signpost.code].mode == "signpost"
    reasons = [s.reasons for s in decision.services] + [s.reasons for s in decision.signposts]
    for listed in reasons:
        assert listed
        assert all(isinstance(r, str) and r.strip() for r in listed)
    assert decision.explanation["priority"]
    assert all(r.strip() for r in decision.explanation["priority"])
    assert decision.priority in ("P1", "P2", "P3")
    assert decision.catalogue_version == CATALOGUE.version
    assert len(decision.flags) == len(set(decision.flags))


@SETTINGS
@given(case=referrals())
def test_deadlines(case: tuple[dict[str, Any], str, datetime]) -> None:
    body, source, received_at = case
    referral, decision = decide(body, source, received_at)
    if not referral.consent.to_contact:
        assert decision.contact_due_by is None
        assert decision.first_contact_step is None
        assert "no_contact_consent" in decision.flags
        return
    due = decision.contact_due_by
    assert due is not None
    assert due > received_at
    if decision.priority == "P1":
        assert due - received_at == timedelta(hours=24)
        return
    local = due.astimezone(LONDON)
    assert local.time() == time(17, 0)
    assert local.weekday() < 5
    assert local.date() not in ENGLAND
    received_day = received_at.astimezone(LONDON).date()
    wanted = 1 if decision.priority == "P2" else 2
    assert working_days_between(received_day, local.date()) == wanted
    assert bool(decision.enhanced_rights) == (decision.priority == "P2")


@SETTINGS
@given(case=referrals())
def test_same_facts_same_decision(case: tuple[dict[str, Any], str, datetime]) -> None:
    body, source, received_at = case
    first_referral, first = decide(body, source, received_at)
    second_referral, second = decide(body, source, received_at)
    assert first_referral == second_referral
    assert first == second
    assert first.to_api() == second.to_api()
    assert triage(first_referral, source, received_at, CATALOGUE) == first


@SETTINGS
@given(case=referrals())
def test_first_contact_is_never_early_and_always_safe(
    case: tuple[dict[str, Any], str, datetime],
) -> None:
    body, source, received_at = case
    referral, decision = decide(body, source, received_at)
    step = decision.first_contact_step
    if not referral.consent.to_contact:
        assert step is None
        return
    assert step is not None
    assert step.due_at >= received_at
    windows = [(w.days, w.from_, w.to) for w in referral.contact.safe_times] or DEFAULT_WINDOWS
    assert in_windows(step.due_at, windows), (step, windows)
    usable = usable_channels(referral)
    if "phone" in usable:
        assert (step.kind, step.channel) == ("call", "phone")
    else:
        assert step.kind == "message"
        assert step.channel in usable
    assert decision.contact_due_by is not None
    late = step.due_at > decision.contact_due_by
    if {"phone", "sms", "email"} & set(usable):
        # Step 1 itself can be made: it is due at the first safe moment, so "late" is exactly
        # "the victim's first safe moment is after the deadline".
        assert ("safe_window_after_deadline" in decision.flags) == late
    else:
        # Letters only: the first step is a later one, late for want of a channel: a plain
        # breach, not a safety flag (unless the safe times alone are late).
        assert "safe_window_after_deadline" not in decision.flags or late


@SETTINGS
@given(case=referrals())
def test_area(case: tuple[dict[str, Any], str, datetime]) -> None:
    body, source, received_at = case
    _, decision = decide(body, source, received_at)
    address = body["victim"].get("address")
    if address is None:
        assert decision.area.code == "unknown"
        assert "area_check" in decision.flags
        return
    district = address["postcode"].split(" ")[0]
    assert decision.area.district == district
    if district in CATALOGUE.districts:
        entry = CATALOGUE.districts[district]
        assert decision.area.code == entry.area
        assert decision.area.local_authority == entry.local_authority
        assert ("area_check" in decision.flags) == entry.straddles
    else:
        assert decision.area.code == "outside"
        assert "area_check" in decision.flags
