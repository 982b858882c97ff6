"""Engine throughput on one core: validation + triage, and triage alone.

Run as `.venv/bin/python bench/engine.py [--n 100000] [--seed 20261120] [--profile]`.
Generates `n` varied referral bodies with a fixed seed (a realistic mix of categories, flags,
ages, Kent postcodes and some from outside), then prints one line per figure as
`name: value unit`, ending with `ratio: X (goal >= 1)` where X = engine decisions/s / 20000.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triage.catalogue.loader import load_catalogue
from triage.domain import vocabulary as v
from triage.domain.catalogue import Catalogue
from triage.domain.engine import triage
from triage.domain.problems import InvalidInput
from triage.domain.referral import Referral
from triage.domain.validation import validate_referral

GOAL = 20_000  # engine decisions per second on one core

# Roughly the mix a victim service sees: violence, theft and criminal damage dominate,
# domestic abuse and sexual offences are a large share of specialist work.
CATEGORY_WEIGHTS = {
    "violence": 22,
    "domestic_abuse": 16,
    "theft": 12,
    "criminal_damage": 8,
    "burglary": 7,
    "sexual": 8,
    "stalking_harassment": 8,
    "fraud": 6,
    "robbery": 3,
    "antisocial_behaviour": 4,
    "exploitation": 2,
    "homicide": 1,
    "other": 3,
}
OUTSIDE_POSTCODES = ("SW1A 1AA", "BN1 1AA", "RH10 1AA", "M1 1AE", "CF10 1AA", "SE1 7PB")
SAFE_TIME_CHOICES: tuple[list[dict[str, Any]], ...] = (
    [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "12:00"}],
    [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "13:00", "to": "17:30"}],
    [{"days": ["sat", "sun"], "from": "10:00", "to": "14:00"}],
    [{"days": ["mon", "wed", "fri"], "from": "18:00", "to": "21:00"}],
    [{"days": ["fri", "sat"], "from": "22:00", "to": "02:00"}],
    [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "07:30", "to": "08:30"},
        {"days": ["sat", "sun"], "from": "11:00", "to": "19:00"},
    ],
)
EXPLICIT_CONSENT_FLAGS = {"domestic_abuse", "bereaved_by_homicide", "bereaved_by_da_death"}


def make_body(
    rng: random.Random, index: int, received_at: datetime, districts: tuple[str, ...]
) -> tuple[dict[str, Any], str]:
    """A valid referral body and its source."""
    category = rng.choices(list(CATEGORY_WEIGHTS), weights=list(CATEGORY_WEIGHTS.values()))[0]
    received_day = received_at.date()
    victim: dict[str, Any] = {"first_name": rng.choice(("Sam", "Alex", "Jo", "Priya", "Tom"))}
    if rng.random() < 0.7:
        victim["last_name"] = rng.choice(("Taylor", "Smith", "Khan", "Jones"))
    age_kind = rng.random()
    if age_kind < 0.55:
        years = rng.choice((rng.randint(10, 17), rng.randint(18, 25), rng.randint(26, 90)))
        victim["date_of_birth"] = (
            received_day - timedelta(days=years * 365 + rng.randint(0, 364))
        ).isoformat()
    elif age_kind < 0.8:
        victim["age"] = rng.randint(12, 90)
    gender = rng.choices(v.GENDERS, weights=(50, 40, 3, 2, 5))[0]
    if rng.random() < 0.9:
        victim["gender"] = gender
    phone = rng.random() < 0.92
    if phone:
        victim["phone"] = f"07700 900{rng.randint(0, 999):03d}"
    if rng.random() < 0.5 or not phone:
        victim["email"] = f"victim{index}@example.org"
    where = rng.random()
    if where < 0.85:
        district = rng.choice(districts)
        postcode = f"{district} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}X"
        victim["address"] = {"line1": f"{rng.randint(1, 200)} High Street", "postcode": postcode}
    elif where < 0.95:
        victim["address"] = {"line1": "1 Other Road", "postcode": rng.choice(OUTSIDE_POSTCODES)}
    if rng.random() < 0.2:
        victim["vulnerabilities"] = rng.sample(v.VULNERABILITIES, rng.randint(1, 2))
    if rng.random() < 0.05:
        victim["language"] = rng.choice(("pl", "ro", "lt", "ar"))
        victim["interpreter_needed"] = True

    channels = []
    if phone:
        channels.append("phone")
        if rng.random() < 0.6:
            channels.append("sms")
    if "email" in victim:
        channels.append("email")
    letter_ok = "address" in victim and rng.random() < 0.2
    if letter_ok:
        channels.append("letter")
    contact: dict[str, Any] = {"channels": channels, "letter_ok": letter_ok}
    if rng.random() < 0.3:
        contact["safe_times"] = rng.choice(SAFE_TIME_CHOICES)
    if rng.random() < 0.3:
        contact["voicemail_ok"] = True

    offence: dict[str, Any] = {"category": category}
    if rng.random() < 0.06:
        offence["hate_motivations"] = rng.sample(v.HATE_MOTIVATIONS, 1)
    if rng.random() < 0.5:
        offence["occurred_on"] = (received_day - timedelta(days=rng.randint(0, 60))).isoformat()

    flags: list[str] = []
    if category != "domestic_abuse" and rng.random() < 0.08:
        flags.append("domestic_abuse")
    for flag, chance in (
        ("repeat_victim", 0.1),
        ("vulnerable", 0.05),
        ("children_in_household", 0.08),
        ("immediate_danger", 0.02),
        ("intimidated", 0.04),
        ("low_income", 0.03),
        ("attending_court", 0.03),
        ("gangs_exploitation", 0.01),
        ("major_investigation", 0.005),
        ("bereaved_by_homicide", 0.003),
    ):
        if rng.random() < chance:
            flags.append(flag)
    needs = rng.sample(v.NEEDS, rng.choice((0, 0, 1, 1, 2, 3)))
    risk: dict[str, Any] = {}
    if category == "domestic_abuse" or "domestic_abuse" in flags:
        risk["dash_score"] = rng.randint(0, 27)
        risk["level"] = rng.choice(("standard", "medium", "high"))
        risk["marac_referred"] = rng.random() < 0.3
    elif rng.random() < 0.3:
        risk["level"] = rng.choices(("standard", "medium", "high"), weights=(70, 25, 5))[0]

    source = rng.choices(("police", "professional", "self"), weights=(85, 10, 5))[0]
    consent: dict[str, Any] = {}
    explicit = category in ("sexual", "domestic_abuse") or bool(EXPLICIT_CONSENT_FLAGS & set(flags))
    if source == "professional" or explicit or rng.random() < 0.5:
        consent["to_referral"] = True
    if rng.random() < 0.03:
        consent["to_contact"] = False
    if rng.random() < 0.4:
        consent["to_survey"] = True

    body: dict[str, Any] = {
        "external_ref": f"46/{index:06d}/26",
        "victim": victim,
        "contact": contact,
        "offence": offence,
        "flags": flags,
        "needs": needs,
        "risk": risk,
        "consent": consent,
    }
    return body, source


def make_receipts(rng: random.Random, n: int) -> list[datetime]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    minutes = 3 * 365 * 24 * 60
    return [start + timedelta(minutes=rng.randrange(minutes)) for _ in range(n)]


def validate_and_triage(
    items: list[tuple[dict[str, Any], str, datetime]], catalogue: Catalogue
) -> tuple[float, int]:
    invalid = 0
    started = time.perf_counter()
    for body, source, received_at in items:
        try:
            referral = validate_referral(body, source, received_at, catalogue)
        except InvalidInput:
            invalid += 1
            continue
        triage(referral, source, received_at, catalogue)
    return time.perf_counter() - started, invalid


def engine_only(items: list[tuple[Referral, str, datetime]], catalogue: Catalogue) -> float:
    started = time.perf_counter()
    for referral, source, received_at in items:
        triage(referral, source, received_at, catalogue)
    return time.perf_counter() - started


def settle() -> None:
    """Collect, then move everything alive (the generated inputs) out of the collector's
    sight: a service does not hold 100,000 referrals in memory, so full collections walking
    them would measure the benchmark, not the engine."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000, help="number of referrals")
    parser.add_argument("--seed", type=int, default=20261120)
    parser.add_argument("--profile", action="store_true", help="profile the engine-only run")
    args = parser.parse_args(argv)

    catalogue = load_catalogue()
    districts = tuple(catalogue.districts)
    rng = random.Random(args.seed)
    receipts = make_receipts(rng, args.n)
    items = []
    for index, received_at in enumerate(receipts):
        body, source = make_body(rng, index, received_at, districts)
        items.append((body, source, received_at))

    settle()
    elapsed, invalid = validate_and_triage(items, catalogue)
    valid = args.n - invalid
    if invalid:
        print(f"invalid_bodies: {invalid} bodies", file=sys.stderr)

    referrals = []
    for body, source, received_at in items:
        try:
            referrals.append(
                (validate_referral(body, source, received_at, catalogue), source, received_at)
            )
        except InvalidInput:
            continue
    settle()
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        engine_elapsed = engine_only(referrals, catalogue)
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    else:
        engine_elapsed = engine_only(referrals, catalogue)

    engine_rate = len(referrals) / engine_elapsed
    print(f"validate_and_triage_per_s: {valid / elapsed:.0f} decisions/s")
    print(f"engine_decisions_per_s: {engine_rate:.0f} decisions/s")
    print(f"engine_us_per_decision: {1e6 / engine_rate:.1f} us")
    print(f"ratio: {engine_rate / GOAL:.2f} (goal >= 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
