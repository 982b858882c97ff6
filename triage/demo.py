"""Demo referrals: realistic proportions, made-up people, and only Ofcom's drama-range phone
numbers (07700 900xxx), so nothing can ever reach a real person.

Proportions (roughly Kent's mix from the PCC's reports): violence 30%, domestic abuse 15%,
theft 12%, criminal damage 8%, stalking and harassment 8%, burglary 7%, sexual 5%, fraud 5%,
robbery 3%, antisocial behaviour 3%, other 2.5%, exploitation 1%, homicide (bereaved) 0.5%;
4% hate motivated; risk high 5%; postcodes across all Kent and Medway districts, 5% outside
Kent and 3% with none.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from triage.domain.catalogue import Catalogue

CATEGORIES = [
    ("violence", 30),
    ("domestic_abuse", 15),
    ("theft", 12),
    ("criminal_damage", 8),
    ("stalking_harassment", 8),
    ("burglary", 7),
    ("sexual", 5),
    ("fraud", 5),
    ("robbery", 3),
    ("antisocial_behaviour", 3),
    ("other", 2.5),
    ("exploitation", 1),
    ("homicide", 0.5),
]
FIRST = [
    "Sam",
    "Alex",
    "Jo",
    "Chris",
    "Priya",
    "Tom",
    "Aisha",
    "Megan",
    "Daniel",
    "Olu",
    "Grace",
    "Liam",
    "Zofia",
    "Ravi",
    "Ellie",
    "Connor",
    "Fatima",
    "Hannah",
    "Kofi",
    "Ruth",
]
LAST = [
    "Taylor",
    "Smith",
    "Patel",
    "Jones",
    "Brown",
    "Okafor",
    "Williams",
    "Nowak",
    "Khan",
    "Evans",
    "Wilson",
    "Hughes",
    "Ahmed",
    "Green",
    "Baker",
    "Clarke",
]
OUTSIDE = ["SW1A 1AA", "BN1 1AA", "RH10 1AA", "DA7 4AA", "BR1 1AA", "TN34 1AA"]


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


def demo_referral(
    rng: random.Random, index: int, catalogue: Catalogue, today: date, prefix: str = "DEMO"
) -> dict[str, Any]:
    category = _pick(rng, CATEGORIES)
    districts = list(catalogue.districts)
    roll = rng.random()
    postcode: str | None
    if roll < 0.03:
        postcode = None
    elif roll < 0.08:
        postcode = rng.choice(OUTSIDE)
    else:
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        inward = f"{rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
        postcode = f"{rng.choice(districts)} {inward}"
    age = rng.choices(
        [rng.randint(10, 17), rng.randint(18, 25), rng.randint(26, 64), rng.randint(65, 90), None],
        [8, 17, 55, 12, 8],
    )[0]
    flags: list[str] = []
    needs = rng.sample(
        [
            "emotional",
            "practical",
            "safety",
            "counselling",
            "court_support",
            "legal_advice",
            "restorative_justice",
            "financial_hardship",
        ],
        k=rng.randint(0, 3),
    )
    if category == "domestic_abuse" or rng.random() < 0.03:
        flags += rng.sample(
            ["children_in_household", "repeat_victim", "low_income"], k=rng.randint(0, 2)
        )
    if category == "homicide":
        flags.append("bereaved_by_homicide")
    if rng.random() < 0.02:
        flags.append("immediate_danger")
    if rng.random() < 0.05:
        flags.append("vulnerable")
    risk_level = rng.choices(["standard", "medium", "high"], [70, 25, 5])[0]
    channels = rng.choice(
        [
            ["phone", "sms"],
            ["phone"],
            ["phone", "email"],
            ["sms", "email"],
            ["phone", "sms", "email"],
        ]
    )
    body: dict[str, Any] = {
        "external_ref": f"{prefix}/{index:06d}/{today:%y}",
        "referred_at": f"{today.isoformat()}T09:00:00Z",
        "victim": {
            "first_name": rng.choice(FIRST),
            "last_name": rng.choice(LAST),
            "gender": rng.choices(["female", "male", "non_binary", "not_known"], [55, 40, 2, 3])[0],
            "phone": f"07700 900{rng.randint(0, 999):03d}",
            "email": f"demo{index}@example.org",
            "vulnerabilities": rng.sample(
                ["mental_health", "learning_disability", "autism", "physical_disability"],
                k=rng.choices([0, 1], [85, 15])[0],
            ),
        },
        "contact": {"channels": channels},
        "offence": {
            "category": category,
            "occurred_on": (today - timedelta(days=rng.randint(0, 30))).isoformat(),
            "hate_motivations": rng.sample(
                ["race", "religion", "disability", "sexual_orientation"], k=1
            )
            if rng.random() < 0.04
            else [],
        },
        "flags": sorted(set(flags)),
        "risk": {
            "level": risk_level,
            "dash_score": rng.randint(0, 20) if category == "domestic_abuse" else None,
        },
        "needs": needs,
        "consent": {
            "to_referral": True,
            "to_contact": rng.random() > 0.03,
            "to_survey": rng.random() < 0.6,
        },
    }
    if age is not None:
        body["victim"]["age"] = age
    if postcode is not None:
        body["victim"]["address"] = {
            "line1": f"{rng.randint(1, 200)} Demo Road",
            "town": "Demo Town",
            "postcode": postcode,
        }
    if rng.random() < 0.3:
        body["contact"]["safe_times"] = [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}
        ]
    return body


def demo_referrals(
    count: int, catalogue: Catalogue, today: date, seed: int = 2026, prefix: str = "DEMO"
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [demo_referral(rng, i, catalogue, today, prefix) for i in range(count)]
