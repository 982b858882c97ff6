"""The staff pages' benchmark data (bench/staff.py): `n` generated referrals (default
1,000,000) with their decisions, cases, contact steps, messages, alerts, notes and overrides,
loaded with COPY into a database of their own that is kept between runs.

Realistic, not random noise:
- Facts in the shape intake stores (`msgspec.to_builtins(Referral)`): a pool of bodies
  (`--templates`, default 20,000: the demo's mix of offences, flags, risk, needs, consent and
  channels, ages across all bands, postcodes in every Kent and Medway district, some outside,
  some none) is validated and triaged by the real engine. Each referral takes one of them and
  its own person: first and last names from weighted lists (a common surname is common), a
  date of birth agreeing with the age the engine saw, a phone number from Ofcom's drama
  ranges in E.164 (never a real person's; about 20,000 numbers), an email address at
  example.org, a house number, street and inward code in the same postcode district (so the
  decision still fits). Its decision is the template's, with its own deadline and first step.
- Statuses as a service three years old has them: 93.5% closed, 1.5% withdrawn (over three
  years), 3% in contact (the last 120 days), 2% triaged and awaiting first contact (the last
  10 days). P1/P2/P3 and `contact_due_by` from the engine; sources police, professional and
  self in the engine benchmark's proportions.
- Cases: the decision's services (one or more), awaiting contact, in support (with a needs
  assessment), on a waiting list or closed with a reason that fits the referral's story.
- The contact plan as kent.yaml has it (three calls, the introduction and please-contact-us
  messages, a closing step with its letter): closed referrals reached at a call, declined, or
  closed unable to contact after the closing step; withdrawn ones with the open step skipped;
  in-contact ones reached (the plan ended: no open step, as contact_plan.record_outcome
  leaves it); every triaged one with exactly one open step after 0-2 unanswered calls:
  scheduled (the next safe moment, in the coming 3 days), due (15%: in the calls-due list)
  or paused (3%, with contact paused). Messages accepted, delivered, failed, queued or
  cancelled to match.
- Notes on a quarter of the referrals (some on a case), a second decision on 3% (an update),
  a priority override on 0.5%, alerts for the open referrals (pending, raised, resolved).

COPY sets no row twice, so the status-transition triggers (BEFORE UPDATE) never fire; every
CHECK constraint holds (statuses from triage/domain/statuses.py, closure reasons from its
list). The data is relative to the moment of loading: a day later the same rows are a day
older (calls stay due; nothing moves without the workers).

Idempotent: the table `bench_staff_load` records what was loaded (n, seed, generator
version); the same request finds it and loads nothing. Another size or seed, or `--reload`,
starts from a new database.

Run alone: `.venv/bin/python bench/staff_data.py [--n 1000000] [--reload]` (DATABASE_URL
naming the server, e.g. postgresql://root@127.0.0.1:5432/postgres, else the embedded
server); bench/staff.py loads it the same way before it measures.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py would shadow the standard library's `http` with this folder first on sys.path.
_BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _BENCH] + [_BENCH]

import argparse
import asyncio
import bisect
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from triage.demo import CATEGORIES
from triage.domain import vocabulary as v
from triage.domain.calendar import LONDON
from triage.domain.catalogue import Catalogue
from triage.domain.engine import triage
from triage.domain.problems import InvalidInput
from triage.domain.referral import content_hash_of
from triage.domain.validation import consent_given, validate_referral
from triage.services.referral_rows import facts_json

GENERATOR_VERSION = 1
DEFAULT_N = 1_000_000
DATABASE = "bench_staff"
CHUNK = 20_000  # referrals per COPY round (one transaction)
MARKER = "bench_staff_load"

# Weighted (Zipf-like) name lists: "Smith" is common, "Quartey" is rare, as in life.
FIRST_NAMES = """Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Freya Willow
Florence Emily Ella Poppy Evie Elsie Charlotte Evelyn Sienna Sofia Daisy Phoebe Sophie Alice
Harper Matilda Ruby Emilia Maya Millie Isabelle Ellie Esme Luna Arabella Eliza Jessica Chloe
Hannah Megan Ruth Zofia Aisha Fatima Priya Amara Noah Oliver George Arthur Muhammad Leo Harry
Oscar Archie Henry Theodore Freddie Jack Charlie Theo Alfie Jacob Thomas Finley Arlo William
Lucas Roman Tommy Isaac Teddy Alexander Luca Edward James Joshua Albie Elijah Max Mohammed
Reggie Hudson Daniel Ethan Sebastian Benjamin Adam Liam Connor Kofi Ravi Olu Samuel Jamie Tom
Sam Alex Jo Chris Robin Jordan Taylor Morgan Casey Riley Kai Ali Omar Yusuf Ibrahim Tariq Dev
Arjun Rohan Kiran Anil Piotr Tomasz Jakub Andrei Mihai Ionut Darius Lukas Mantas Jonas Marta
Agnieszka Ewa Anna Katarzyna Irina Elena Ioana Dalia Ruta Ngozi Chiamaka Ama Abena Efua""".split()
SURNAMES = """Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Robinson Wright
Thompson Evans Walker White Roberts Green Hall Thomas Clarke Jackson Wood Harris Edwards Turner
Martin Cooper Hill Ward Hughes Moore Clark King Harrison Lewis Baker Lee Allen Morris Khan
Scott Watson Davis Parker James Bennett Young Phillips Richardson Mitchell Bailey Carter Cook
Singh Shaw Bell Collins Morgan Kelly Begum Miller Cox Marshall Simpson Anderson Ellis Adams
Wilkinson Ward Foster Lloyd Mason Webb Rogers Gray Murphy Palmer Griffiths Hunt Holmes Mills
Barnes Knight Matthews Barker Powell Stevens Kaur Fisher Butler Dixon Russell Harvey Pearson
Graham Fletcher Howard Ahmed Hussain Ali Shah Iqbal Rahman Chowdhury Akhtar Mahmood Nowak
Kowalski Wisniewski Wojcik Kaminski Lewandowski Zielinski Popescu Ionescu Popa Stan Dumitru
Kazlauskas Jankauskas Petrauskas Okafor Okonkwo Adeyemi Mensah Boateng Owusu Asante Quartey
Osei Nwosu Eze Chen Wang Li Zhang Liu Nguyen Tran Pham Kim Park O'Brien O'Connor McCarthy
Murray Doyle Byrne Kennedy Quinn Walsh Ryan Fitzgerald Gallagher MacDonald Campbell Stewart
Reid Ross Fraser Hamilton Robertson Gordon Burns Kerr Sutherland Cameron Duncan Hooper Pickett
Ashdown Whitlock Fairweather Blackwood Thornton Hartley Ashworth Penfold Cheeseman Godden
Hoad Pilcher Tutt Wenban Gurr Kemsley Elgar""".split()
STREETS = """High Street|Station Road|Church Road|London Road|Maidstone Road|Canterbury Road
|Dover Road|Park Road|Victoria Road|Queens Road|The Street|Mill Lane|School Lane|Chapel Street
|New Road|Ashford Road|Folkestone Road|Sandwich Road|Tonbridge Road|Hythe Road|Rochester Road
|Watling Street|Marine Parade|Sea Road|Orchard Way|Hop Garden Way|Oast Close|Priory Road
|Castle Street|King Street""".replace("\n", "").split("|")
LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
OUTSIDE_POSTCODES = ("SW1A 1AA", "BN1 1AA", "RH10 1AA", "DA7 4AA", "BR1 1AA", "TN34 1AA")
# Ofcom's drama ranges (triage/domain/contact_details.py) less freephone and premium rate:
# about 18,000 numbers that never reach anyone, weighted towards mobiles as victims' are.
PHONE_RANGES = (
    (447700900000, 8),
    (441134960000, 1),
    (441144960000, 1),
    (441154960000, 1),
    (441164960000, 1),
    (441174960000, 1),
    (441184960000, 1),
    (441214960000, 1),
    (441314960000, 1),
    (441414960000, 1),
    (441514960000, 1),
    (441614960000, 1),
    (441914980000, 1),
    (442079460000, 1),
    (442891800000, 1),
    (442920180000, 1),
    (441632960000, 1),
    (443069990000, 1),
)
NOTE_TEXTS = (
    "Spoke to the officer in the case: no change to the risk assessment.",
    "Victim asked for calls after 6pm only.",
    "Left details of the hub's number with the professional who referred.",
    "Safety plan discussed; victim has a personal alarm.",
    "Court date set: victim would like support on the day.",
    "Victim prefers email; phone is shared with a family member.",
    "Interpreter booked for the next call.",
    "Referred on to the local counselling service as asked.",
    "Victim says they are coping well and needs no more support.",
    "Checked the address with the police: it is current.",
)
WITHDRAWN_REASONS = (
    "The victim asked the police to withdraw the referral.",
    "Referred in error: not a victim of crime.",
    "Duplicate referral sent by another team.",
)

# How a closed referral's story ended (its cases' closure reasons follow).
CLOSED_STORIES = (
    ("supported", 52),
    ("declined", 14),
    ("unable_to_contact", 24),
    ("not_eligible", 4),
    ("moved_area", 3),
    ("duplicate", 3),
)
STATUSES = (("closed", 935), ("withdrawn", 15), ("in_contact", 30), ("triaged", 20))
SOURCES = (("police", 85), ("professional", 10), ("self", 5))
REFERRAL_COLUMNS = tuple(
    (
        "id reference client_id external_ref source status received_at referred_at "
        "content_hash facts referral_consent priority contact_due_by area flags contact_paused "
        "first_contact_at withdrawn_reason created_at updated_at"
    ).split()
)
DECISION_COLUMNS = tuple(
    "referral_id decided_at cause catalogue_version decision explanation".split()
)
CASE_COLUMNS = tuple(
    (
        "id referral_id service role status opened_at first_contact_at closed_at "
        "closure_reason updated_at needs"
    ).split()
)
STEP_COLUMNS = tuple(
    (
        "id referral_id priority number kind channel status due_at message_template "
        "message_channel "
        "closure_reason outcome attempted_at skip_reason created_at updated_at"
    ).split()
)
MESSAGE_COLUMNS = tuple(
    (
        "id referral_id contact_step_id purpose channel template status due_at attempts "
        "provider_status failure_reason sent_at final_at created_at updated_at"
    ).split()
)
NOTE_COLUMNS = ("referral_id", "case_id", "author", "body", "created_at")
OVERRIDE_COLUMNS = ("referral_id", "kind", "priority", "reason", "actor", "created_at")
ALERT_COLUMNS = ("id", "referral_id", "kind", "status", "due_at", "raised_at", "created_at")
TABLES = (
    ("referrals", REFERRAL_COLUMNS),
    ("triage_decisions", DECISION_COLUMNS),
    ("cases", CASE_COLUMNS),
    ("contact_steps", STEP_COLUMNS),
    ("messages", MESSAGE_COLUMNS),
    ("notes", NOTE_COLUMNS),
    ("overrides", OVERRIDE_COLUMNS),
    ("alerts", ALERT_COLUMNS),
)


class Weighted:
    """`rng.choices` for one pick, without its per-call set-up."""

    def __init__(self, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


def zipf(items: Sequence[str], s: float = 0.9) -> Weighted:
    return Weighted(items, [1 / (rank + 1) ** s for rank in range(len(items))])


DONE_BEFORE_OPEN = Weighted((0, 1, 2), (60, 25, 15))  # unanswered calls before the open one
REACHED_AT = Weighted((1, 2, 3), (70, 20, 10))
DECLINED_AT = Weighted((1, 2, 3), (75, 15, 10))
WITHDRAWN_AFTER = Weighted((0, 1, 2), (50, 30, 20))
UNANSWERED = Weighted(("no_answer", "voicemail_left", "unsafe_to_talk"), (70, 20, 10))
SENT_STATUS = Weighted(("delivered", "accepted", "failed"), (88, 8, 4))
OPEN_CASE_STATUS = Weighted(("in_support", "awaiting_contact", "waiting_list"), (70, 20, 10))


@dataclass
class Template:
    """One validated, triaged body: the facts and decision a generated referral starts from."""

    source: str
    facts: dict[str, Any]
    consent_given: bool
    priority: str
    flags: list[str]
    due_after: timedelta | None  # contact_due_by - received_at
    services: list[tuple[str, str]]  # (code, role)
    decision_json: str  # with @DUE@ and @STEP@ where the times go
    explanation_json: str
    plan_kind: str | None  # call | message | None (no contact plan)
    plan_channel: str | None
    intro_channel: str | None  # the introduction message's channel, if any
    district: str | None  # the postcode district kept when personalising
    area: str  # the decision's area code


def template_body(rng: random.Random, index: int, districts: Sequence[str]) -> dict[str, Any]:
    """A body for the engine: the demo's mix (triage/demo.py) with ages in every band."""
    category = rng.choices([c for c, _ in CATEGORIES], [w for _, w in CATEGORIES])[0]
    roll = rng.random()
    victim: dict[str, Any] = {"first_name": "Template"}
    if rng.random() < 0.93:
        victim["last_name"] = "Person"
    age = rng.choices(
        [rng.randint(10, 17), rng.randint(18, 25), rng.randint(26, 64), rng.randint(65, 92), None],
        [9, 17, 55, 11, 8],
    )[0]
    if age is not None:
        victim["age"] = age
    victim["gender"] = rng.choices(v.GENDERS, (52, 42, 2, 1, 3))[0]
    has_phone = rng.random() < 0.92
    if has_phone:
        victim["phone"] = "07700 900000"
    if rng.random() < 0.55 or not has_phone:
        victim["email"] = f"template{index}@example.org"
    if roll < 0.03:
        pass
    elif roll < 0.08:
        victim["address"] = {"line1": "1 Other Road", "postcode": rng.choice(OUTSIDE_POSTCODES)}
    else:
        victim["address"] = {
            "line1": "1 High Street",
            "town": "Kent",
            "postcode": f"{rng.choice(districts)} 1AA",
        }
    if rng.random() < 0.18:
        victim["vulnerabilities"] = rng.sample(v.VULNERABILITIES, rng.randint(1, 2))
    if rng.random() < 0.05:
        victim["language"] = rng.choice(("pl", "ro", "lt", "ar", "ur", "pa"))
        victim["interpreter_needed"] = True
    channels: list[str] = []
    if has_phone:
        channels.append("phone")
        if rng.random() < 0.6:
            channels.append("sms")
    if "email" in victim:
        channels.append("email")
    contact: dict[str, Any] = {"channels": channels}
    if rng.random() < 0.3:
        contact["safe_times"] = rng.choice(
            (
                [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}],
                [{"days": ["mon", "wed", "fri"], "from": "18:00", "to": "21:00"}],
                [{"days": ["sat", "sun"], "from": "10:00", "to": "14:00"}],
            )
        )
    if rng.random() < 0.3:
        contact["voicemail_ok"] = True
    flags: list[str] = []
    if category == "domestic_abuse" or rng.random() < 0.03:
        flags += rng.sample(
            ["children_in_household", "repeat_victim", "low_income"], k=rng.randint(0, 2)
        )
    if category == "homicide":
        flags.append("bereaved_by_homicide")
    for flag, chance in (("immediate_danger", 0.02), ("vulnerable", 0.05), ("intimidated", 0.03)):
        if rng.random() < chance:
            flags.append(flag)
    risk: dict[str, Any] = {"level": rng.choices(["standard", "medium", "high"], [70, 25, 5])[0]}
    if category == "domestic_abuse":
        risk["dash_score"] = rng.randint(0, 24)
        risk["marac_referred"] = risk["level"] == "high" and rng.random() < 0.7
    body: dict[str, Any] = {
        "external_ref": f"T/{index:06d}",
        "referred_at": "2026-01-05T09:00:00Z",
        "victim": victim,
        "contact": contact,
        "offence": {
            "category": category,
            "occurred_on": "2026-01-01",
            "hate_motivations": rng.sample(v.HATE_MOTIVATIONS, 1) if rng.random() < 0.04 else [],
        },
        "flags": sorted(set(flags)),
        "risk": risk,
        "needs": rng.sample(list(v.NEEDS), k=rng.choice((0, 1, 1, 2, 3))),
        "consent": {
            "to_referral": rng.random() < 0.9,
            "to_contact": rng.random() > 0.03,
            "to_survey": rng.random() < 0.5,
        },
    }
    return body


def template_pool(catalogue: Catalogue, count: int, seed: int) -> list[Template]:
    """`count` bodies through validation and the engine, as intake takes them."""
    rng = random.Random(seed)
    districts = sorted(catalogue.districts)
    source_pick = Weighted([s for s, _ in SOURCES], [w for _, w in SOURCES])
    received_at = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday morning
    pool: list[Template] = []
    index = 0
    while len(pool) < count:
        index += 1
        body = template_body(rng, index, districts)
        source = source_pick.pick(rng)
        try:
            referral = validate_referral(body, source, received_at, catalogue)
        except InvalidInput:
            continue
        decision = triage(referral, source, received_at, catalogue)
        api = decision.to_api()
        if api["contact_due_by"] is not None:
            api["contact_due_by"] = "@DUE@"
        if api["first_contact_step"] is not None:
            api["first_contact_step"]["due_at"] = "@STEP@"
        step = decision.planned_step
        postcode = referral.victim.address.postcode if referral.victim.address else None
        district = postcode.split(" ")[0] if postcode else None
        pool.append(
            Template(
                source=source,
                facts=facts_json(referral),
                consent_given=consent_given(body, source),
                priority=decision.priority,
                flags=list(decision.flags),
                due_after=None
                if decision.contact_due_by is None
                else decision.contact_due_by - received_at,
                services=[(s.code, s.role) for s in decision.services],
                decision_json=msgspec.json.encode(api).decode(),
                explanation_json=msgspec.json.encode(decision.explanation).decode(),
                plan_kind=step.kind if step else None,
                plan_channel=step.channel if step else None,
                intro_channel=step.message_channel if step and step.message_template else None,
                district=district if district in catalogue.districts else None,
                area=decision.area.code,
            )
        )
    return pool


def iso_z(instant: datetime) -> str:
    """As the API writes instants (every instant generated here is in UTC already)."""
    return instant.isoformat(timespec="seconds")[:19] + "Z"


def between(rng: random.Random, low: int, high: int) -> int:
    """`rng.randint` without its checks (a third of the generator's time)."""
    return low + int(rng.random() * (high - low + 1))


def one_of(rng: random.Random, items: Sequence[Any]) -> Any:
    return items[int(rng.random() * len(items))]


def new_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@dataclass
class Rows:
    tables: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {name: [] for name, _ in TABLES}
    )

    def count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


@dataclass
class Context:
    """What every referral's generation shares."""

    now: datetime
    version: str
    pool: list[Template]
    police_client: uuid.UUID
    professional_client: uuid.UUID
    prefix: str
    first_names: Weighted = field(default_factory=lambda: zipf(FIRST_NAMES, 0.7))
    surnames: Weighted = field(default_factory=lambda: zipf(SURNAMES, 1.0))
    phone_ranges: Weighted = field(
        default_factory=lambda: Weighted([p for p, _ in PHONE_RANGES], [w for _, w in PHONE_RANGES])
    )
    statuses: Weighted = field(
        default_factory=lambda: Weighted([s for s, _ in STATUSES], [w for _, w in STATUSES])
    )
    stories: Weighted = field(
        default_factory=lambda: Weighted(
            [s for s, _ in CLOSED_STORIES], [w for _, w in CLOSED_STORIES]
        )
    )
    staff_actors: list[str] = field(default_factory=list)
    numbers: Counter[int] = field(default_factory=Counter)  # references per year
    # Status counts, open steps by status, due calls: printed after the load.
    tally: Counter[str] = field(default_factory=Counter)


def personal_facts(
    ctx: Context, rng: random.Random, t: Template, index: int, received_at: datetime
) -> dict[str, Any]:
    facts = dict(t.facts)
    victim = dict(facts["victim"])
    facts["victim"] = victim
    victim["first_name"] = ctx.first_names.pick(rng)
    if "last_name" in victim:
        victim["last_name"] = ctx.surnames.pick(rng)
    received_day = received_at.astimezone(LONDON).date()
    if "age" in victim and rng.random() < 0.65:
        # A date of birth that gives the age the engine saw, on the day of receipt.
        years = int(victim.pop("age"))
        birthday = _years_before(received_day, years) - timedelta(days=between(rng, 0, 364))
        victim["date_of_birth"] = birthday.isoformat()
    if "phone" in victim:
        victim["phone"] = f"+{ctx.phone_ranges.pick(rng) + between(rng, 0, 999)}"
    if "email" in victim:
        victim["email"] = f"victim.{index}@example.org"
    address = victim.get("address")
    if address is not None and t.district is not None:
        address = dict(address)
        address["line1"] = f"{between(rng, 1, 240)} {one_of(rng, STREETS)}"
        inward = f"{between(rng, 1, 9)}{one_of(rng, LETTERS)}{one_of(rng, LETTERS)}"
        address["postcode"] = f"{t.district} {inward}"
        victim["address"] = address
    facts["external_ref"] = external_ref(t.source, index, received_day)
    facts["referred_at"] = iso_z(received_at - timedelta(minutes=between(rng, 5, 48 * 60)))
    offence = facts.get("offence")
    if isinstance(offence, dict) and "occurred_on" in offence:
        offence = dict(offence)
        offence["occurred_on"] = (received_day - timedelta(days=between(rng, 0, 60))).isoformat()
        facts["offence"] = offence
    return facts


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def external_ref(source: str, index: int, day: date) -> str:
    if source == "police":
        return f"46/{index:07d}/{day.year % 100:02d}"
    if source == "professional":
        return f"PRO-{index:07d}"
    return f"SELF-{index:07d}"


def received_for(rng: random.Random, status: str, now: datetime) -> datetime:
    """When a referral of this status arrived (open ones are recent)."""
    if status == "triaged":
        span = timedelta(days=10)
    elif status == "in_contact":
        span = timedelta(days=120)
    else:
        span = timedelta(days=3 * 365)
    earliest = now - span
    instant = earliest + timedelta(seconds=rng.random() * span.total_seconds())
    if status in ("closed", "withdrawn") and instant > now - timedelta(days=5):
        instant -= timedelta(days=5)  # a plan takes days to run its course
    return instant


def add_referral(ctx: Context, rng: random.Random, rows: Rows, index: int) -> None:
    t = ctx.pool[rng.randrange(len(ctx.pool))]
    status = ctx.statuses.pick(rng)
    if t.plan_kind is None and status == "triaged":
        status = "closed"  # no contact allowed: nothing stays awaiting contact
    received_at = received_for(rng, status, ctx.now)
    ctx.tally[f"referrals_{status}"] += 1
    referral_id = new_id(rng)
    facts = personal_facts(ctx, rng, t, index, received_at)
    year = received_at.astimezone(LONDON).year
    ctx.numbers[year] += 1
    reference = f"{ctx.prefix}-{year % 100:02d}-{ctx.numbers[year]:06d}"
    due = received_at + t.due_after if t.due_after is not None else None
    client = {"police": ctx.police_client, "professional": ctx.professional_client}.get(t.source)
    story = ctx.stories.pick(rng) if status == "closed" else status
    if t.plan_kind is None and story in ("supported", "declined", "unable_to_contact"):
        story = "not_eligible" if rng.random() < 0.3 else "supported"
    paused = status == "triaged" and rng.random() < 0.03
    plan = _plan(ctx, rng, rows, t, referral_id, received_at, status, story, paused)
    first_contact_at = plan.reached_at
    updated_at = plan.last_at or received_at
    rows.tables["referrals"].append(
        (
            referral_id,
            reference,
            client,
            facts["external_ref"],
            t.source,
            status,
            received_at,
            datetime.fromisoformat(facts["referred_at"]),
            content_hash_of(facts),
            msgspec.json.encode(facts).decode(),
            "given" if t.consent_given else "defaulted",
            t.priority,
            due,
            t.area,
            t.flags,
            paused,
            first_contact_at,
            one_of(rng, WITHDRAWN_REASONS) if status == "withdrawn" else None,
            received_at,
            updated_at,
        )
    )
    decision = t.decision_json.replace("@DUE@", iso_z(due) if due else "").replace(
        "@STEP@", iso_z(plan.first_due or received_at)
    )
    rows.tables["triage_decisions"].append(
        (referral_id, received_at, "intake", ctx.version, decision, t.explanation_json)
    )
    if rng.random() < 0.03:
        rows.tables["triage_decisions"].append(
            (
                referral_id,
                received_at + timedelta(hours=between(rng, 1, 72)),
                "update",
                ctx.version,
                decision,
                t.explanation_json,
            )
        )
    case_ids = _cases(
        rng, rows, t, referral_id, received_at, status, story, plan, updated_at, ctx.now
    )
    if rng.random() < (0.05 if status == "triaged" else 0.25):
        for _ in range(one_of(rng, (1, 1, 1, 2, 3))):
            at = received_at + (updated_at - received_at) * rng.random()
            on_case = one_of(rng, case_ids) if case_ids and rng.random() < 0.3 else None
            rows.tables["notes"].append(
                (referral_id, on_case, one_of(rng, ctx.staff_actors), one_of(rng, NOTE_TEXTS), at)
            )
            ctx.tally["notes"] += 1
    if rng.random() < 0.005 and t.priority != "P1":
        rows.tables["overrides"].append(
            (
                referral_id,
                "priority",
                "P1",
                "Officer in the case reports the suspect has been released.",
                one_of(rng, ctx.staff_actors),
                received_at + timedelta(hours=between(rng, 1, 24)),
            )
        )
    if status in ("triaged", "in_contact"):
        _alerts(ctx, rng, rows, t, referral_id, received_at, due, status)


@dataclass
class Plan:
    reached_at: datetime | None = None
    last_at: datetime | None = None
    first_due: datetime | None = None


def _plan(
    ctx: Context,
    rng: random.Random,
    rows: Rows,
    t: Template,
    referral_id: uuid.UUID,
    received_at: datetime,
    status: str,
    story: str,
    paused: bool,
) -> Plan:
    """The contact steps and their messages (kent.yaml's plan), as the referral's story ran."""
    plan = Plan()
    if t.plan_kind is None:
        return plan
    calls = t.plan_kind == "call"
    # How many steps were done, and how the last one ended.
    if status == "triaged":
        done, last = DONE_BEFORE_OPEN.pick(rng), "open"
    elif status == "in_contact" or story in ("supported", "not_eligible", "moved_area"):
        done, last = REACHED_AT.pick(rng), "reached"
    elif story == "declined":
        done, last = DECLINED_AT.pick(rng), "declined"
    elif story == "unable_to_contact":
        done, last = 4, "closed"
    elif story == "withdrawn":
        done, last = WITHDRAWN_AFTER.pick(rng), "skipped"
    else:  # duplicate: closed before any call
        done, last = 0, "skipped"
    if not calls and last in ("reached", "declined"):
        done, last = 1, "message_only"
    at = received_at + timedelta(minutes=between(rng, 5, 240))
    # Steps a few days apart, all in the past (a recent referral's closer together).
    gap = max(timedelta(minutes=1), min(timedelta(days=2), (ctx.now - at) / (done + 2)))
    plan.first_due = at
    number = 0
    for number in range(1, done + 1):
        kind = "close" if number == 4 else ("call" if calls else "message")
        outcome = "no_answer"
        if number == done and last in ("reached", "declined"):
            outcome = last
        elif kind == "call":
            outcome = UNANSWERED.pick(rng)
        elif kind == "message":
            outcome = "message_queued"
        else:
            outcome = "plan_ended"
        step_id = _step(
            ctx,
            rng,
            rows,
            referral_id,
            number,
            kind,
            t,
            "done",
            at,
            outcome=outcome,
            attempted_at=min(at + timedelta(minutes=between(rng, 0, 90)), ctx.now),
        )
        _message_for(rng, rows, t, referral_id, step_id, number, kind, at, "sent")
        if outcome in ("reached", "declined"):
            plan.reached_at = min(at + timedelta(minutes=between(rng, 0, 90)), ctx.now)
        plan.last_at = min(at + timedelta(minutes=90), ctx.now)
        at += gap + timedelta(minutes=between(rng, 0, 120))
    if last == "open":
        number = done + 1
        kind = "call" if calls else "message"
        roll = rng.random()
        if paused:
            step_status, due_at = "paused", ctx.now + timedelta(hours=between(rng, 1, 72))
        elif kind == "call" and roll < 0.15:
            step_status, due_at = "due", ctx.now - timedelta(minutes=between(rng, 1, 48 * 60))
        else:
            step_status, due_at = "scheduled", ctx.now + timedelta(minutes=between(rng, 1, 72 * 60))
        due_at = max(due_at, received_at + timedelta(minutes=1))
        step_id = _step(ctx, rng, rows, referral_id, number, kind, t, step_status, due_at)
        _message_for(
            rng,
            rows,
            t,
            referral_id,
            step_id,
            number,
            kind,
            due_at,
            "cancelled" if paused else ("sent" if step_status == "due" else "queued"),
        )
        ctx.tally[f"open_steps_{step_status}"] += 1
        if step_status == "due" and kind == "call":
            ctx.tally["calls_due"] += 1
        if number == 1:
            plan.first_due = due_at
    elif last == "skipped" and t.plan_kind is not None:
        number = done + 1
        kind = "call" if calls else "message"
        step_id = _step(
            ctx, rng, rows, referral_id, number, kind, t, "skipped", at, skip_reason="withdrawn"
        )
        _message_for(rng, rows, t, referral_id, step_id, number, kind, at, "cancelled")
        plan.last_at = at
    return plan


def _step(
    ctx: Context,
    rng: random.Random,
    rows: Rows,
    referral_id: uuid.UUID,
    number: int,
    kind: str,
    t: Template,
    status: str,
    due_at: datetime,
    *,
    outcome: str | None = None,
    attempted_at: datetime | None = None,
    skip_reason: str | None = None,
) -> uuid.UUID:
    step_id = new_id(rng)
    template, channel = _message_of(t, number, kind)
    rows.tables["contact_steps"].append(
        (
            step_id,
            referral_id,
            t.priority,  # the referral's, as intake writes it
            number,
            kind,
            "phone" if kind == "call" else (channel if kind == "message" else None),
            status,
            due_at,
            template,
            channel,
            "unable_to_contact" if kind == "close" else None,
            outcome,
            attempted_at,
            skip_reason,
            due_at - timedelta(days=1) if number > 1 else due_at,
            attempted_at or due_at,
        )
    )
    return step_id


def _message_of(t: Template, number: int, kind: str) -> tuple[str | None, str | None]:
    """The message that goes with a step (kent.yaml's plan)."""
    if number == 1 and t.intro_channel:
        return "introduction", t.intro_channel
    if number == 3 and t.intro_channel:
        return "please_contact_us", t.intro_channel
    if kind == "close":
        return "closing_letter", "letter"
    return None, None


def _message_for(
    rng: random.Random,
    rows: Rows,
    t: Template,
    referral_id: uuid.UUID,
    step_id: uuid.UUID,
    number: int,
    kind: str,
    due_at: datetime,
    how: str,
) -> None:
    template, channel = _message_of(t, number, kind)
    if template is None or channel is None:
        return
    sent_at = final_at = provider = failure = None
    attempts = 0
    if how == "sent":
        status = SENT_STATUS.pick(rng)
        sent_at = due_at + timedelta(seconds=between(rng, 1, 120))
        attempts = 1
        provider = {"delivered": "delivered", "accepted": "sending", "failed": "permanent-failure"}[
            status
        ]
        if status != "accepted":
            final_at = sent_at + timedelta(seconds=between(rng, 5, 600))
        if status == "failed":
            failure = "permanent-failure"
    elif how == "cancelled":
        status = "cancelled"
        final_at = due_at
    else:
        status = "queued"
    rows.tables["messages"].append(
        (
            new_id(rng),
            referral_id,
            step_id,
            "contact",
            channel,
            template,
            status,
            due_at,
            attempts,
            provider,
            failure,
            sent_at,
            final_at,
            due_at,
            final_at or sent_at or due_at,
        )
    )


def _cases(
    rng: random.Random,
    rows: Rows,
    t: Template,
    referral_id: uuid.UUID,
    received_at: datetime,
    status: str,
    story: str,
    plan: Plan,
    updated_at: datetime,
    now: datetime,
) -> list[uuid.UUID]:
    ids = []
    for code, role in t.services:
        case_id = new_id(rng)
        ids.append(case_id)
        needs = None
        closed_at = reason = None
        if status == "triaged":
            case_status = "awaiting_contact"
        elif status == "in_contact":
            case_status = OPEN_CASE_STATUS.pick(rng)
        else:
            case_status = "closed"
            reason = "withdrawn" if status == "withdrawn" else story
            closed_at = max(updated_at, received_at) + timedelta(days=between(rng, 0, 90))
            closed_at = min(closed_at, now)
        if case_status == "in_support" or (status == "closed" and story == "supported"):
            needs = '{"needs": ["emotional", "practical"], "plan": "Weekly calls; court support."}'
        rows.tables["cases"].append(
            (
                case_id,
                referral_id,
                code,
                role,
                case_status,
                received_at,
                plan.reached_at,
                closed_at,
                reason,
                closed_at or updated_at,
                needs,
            )
        )
    return ids


def _alerts(
    ctx: Context,
    rng: random.Random,
    rows: Rows,
    t: Template,
    referral_id: uuid.UUID,
    received_at: datetime,
    due: datetime | None,
    status: str,
) -> None:
    def alert(kind: str, due_at: datetime) -> None:
        if status == "in_contact":
            state, raised = "resolved", None
        elif due_at <= ctx.now:
            state, raised = "raised", due_at + timedelta(seconds=between(rng, 1, 60))
        else:
            state, raised = "pending", None
        rows.tables["alerts"].append(
            (new_id(rng), referral_id, kind, state, due_at, raised, received_at)
        )

    if t.priority == "P1":
        alert("p1_not_reached", received_at + timedelta(hours=4))
    if due is not None:
        alert("deadline_breach", due)


def generate(ctx: Context, seed: int, start: int, count: int) -> Rows:
    """Referrals `start` .. `start + count - 1`: the same rows for the same seed and chunks."""
    rows = Rows()
    rng = random.Random(f"{seed}:{start}")
    for index in range(start, start + count):
        add_referral(ctx, rng, rows, index)
    return rows


async def copy_rows(connection: Any, rows: Rows) -> None:
    async with connection.transaction():
        for table, columns in TABLES:
            records = rows.tables[table]
            if records:
                await connection.copy_records_to_table(table, records=records, columns=columns)


# -- the database ------------------------------------------------------------------------------


@dataclass
class LoadReport:
    loaded: bool  # False: found already loaded
    n: int
    seconds: float  # generating and copying (this run, or when it was loaded)
    vacuum_seconds: float
    rows: int
    tally: dict[str, int]


async def _marker(connection: Any) -> Any:
    exists = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", MARKER)
    if not exists:
        return None
    return await connection.fetchrow(f"SELECT * FROM {MARKER} ORDER BY loaded_at DESC LIMIT 1")


async def loaded_as(owner_url: str) -> Any:
    """The marker row of a finished load, or None."""
    import asyncpg

    connection = await asyncpg.connect(owner_url)
    try:
        return await _marker(connection)
    finally:
        await connection.close()


async def load(
    owner_url: str,
    catalogue: Catalogue,
    n: int,
    seed: int,
    templates: int,
    progress: Callable[[str], None] = print,
) -> LoadReport:
    """Generate and COPY `n` referrals into an empty, migrated database, then VACUUM ANALYZE
    (autovacuum may be off) and record the marker."""
    import asyncpg

    from triage.services.catalogues import record_catalogue

    started = time.perf_counter()
    pool = template_pool(catalogue, templates, seed)
    connection = await asyncpg.connect(owner_url)
    try:
        if await connection.fetchval("SELECT count(*) FROM (SELECT 1 FROM referrals LIMIT 1) x"):
            raise SystemExit("the database already holds referrals: load into a new one")
        await record_catalogue(connection, catalogue)
        police, professional = new_id(random.Random(seed)), new_id(random.Random(seed + 1))
        await connection.executemany(
            "INSERT INTO api_clients (id, name, source, per_minute, batches_per_minute) "
            "VALUES ($1, $2, $3, 600, 20)",
            [
                (police, "bench-staff-kent-police", "police"),
                (professional, "bench-staff-professional", "professional"),
            ],
        )
        now = await connection.fetchval("SELECT now()")
        actor_rng = random.Random(seed + 2)
        ctx = Context(
            now=now,
            version=catalogue.version,
            pool=pool,
            police_client=police,
            professional_client=professional,
            prefix=catalogue.reference_prefixes["victim"],
            staff_actors=[f"staff:{new_id(actor_rng)}" for _ in range(60)],
        )
        total_rows = 0
        chunks = [(start, min(CHUNK, n - start)) for start in range(0, n, CHUNK)]
        # The next chunk is generated on a thread while this one is copied, so PostgreSQL
        # works on the other core meanwhile.
        upcoming = asyncio.ensure_future(asyncio.to_thread(generate, ctx, seed, *chunks[0]))
        for i, (start, count) in enumerate(chunks):
            rows = await upcoming
            if i + 1 < len(chunks):
                upcoming = asyncio.ensure_future(
                    asyncio.to_thread(generate, ctx, seed, *chunks[i + 1])
                )
            await copy_rows(connection, rows)
            total_rows += rows.count()
            done = start + count
            if done % 100_000 == 0 or done == n:
                progress(
                    f"  {done:,} referrals ({total_rows:,} rows), "
                    f"{time.perf_counter() - started:.0f} s"
                )
        # The reference sequences carry on after the loaded numbers, as intake expects.
        for year, last in ctx.numbers.items():
            name = f"reference_{ctx.prefix.lower()}_{year}"
            await connection.execute("SELECT triage_ensure_reference_sequence($1)", name)
            await connection.execute("SELECT setval($1::regclass, $2)", name, last)
        seconds = time.perf_counter() - started
        vacuum_seconds = await _vacuum(owner_url)
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {MARKER} (n integer, seed integer, version integer, "
            "rows bigint, load_seconds double precision, vacuum_seconds double precision, "
            "tally jsonb, loaded_at timestamptz DEFAULT now())"
        )
        await connection.execute(
            f"INSERT INTO {MARKER} (n, seed, version, rows, load_seconds, vacuum_seconds, tally) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
            n,
            seed,
            GENERATOR_VERSION,
            total_rows,
            seconds,
            vacuum_seconds,
            msgspec.json.encode(dict(ctx.tally)).decode(),
        )
        return LoadReport(True, n, seconds, vacuum_seconds, total_rows, dict(ctx.tally))
    finally:
        await connection.close()


def server_url() -> tuple[str | None, str | None]:
    """The server to use: MIGRATION_DATABASE_URL or DATABASE_URL (its database part is
    ignored), and REDIS_URL; None for the embedded ones."""
    import os

    base = os.environ.get("MIGRATION_DATABASE_URL") or os.environ.get("DATABASE_URL")
    return base, os.environ.get("REDIS_URL")


def prepare(
    base: str,
    catalogue: Catalogue,
    n: int,
    seed: int,
    templates: int,
    reload: bool,
    database: str = DATABASE,
) -> tuple[str, LoadReport]:
    """The database `database` on the server of `base`, created and migrated if missing, with
    `n` referrals of `seed` loaded (once: a later call finds the marker). Returns the owner's
    URL of it and what was loaded."""
    import asyncpg

    from db.engine import plain_url
    from db.migrate import upgrade
    from triage.devstack import _admin, with_database

    owner_url = with_database(plain_url(base), database)
    admin_url = with_database(plain_url(base), "postgres")

    async def exists() -> bool:
        connection = await asyncpg.connect(admin_url)
        try:
            return bool(
                await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            )
        finally:
            await connection.close()

    def recreate() -> None:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        asyncio.run(_admin(admin_url, f'CREATE DATABASE "{database}"'))

    if reload or not asyncio.run(exists()):
        recreate()
    before = asyncio.run(_revision(owner_url))
    upgrade(owner_url)  # later migrations (new indexes) apply to a loaded database too
    after = asyncio.run(_revision(owner_url))
    marker = asyncio.run(loaded_as(owner_url))
    if (
        marker is not None
        and (marker["n"], marker["seed"], marker["version"]) == (n, seed, GENERATOR_VERSION)
        and not reload
    ):
        import json

        if before != after:
            # New indexes on loaded tables: statistics for their expressions (autovacuum
            # may be off).
            print(f"{database}: migrated {before} -> {after}: VACUUM ANALYZE")
            asyncio.run(_vacuum(owner_url))
        return owner_url, LoadReport(
            False,
            n,
            marker["load_seconds"],
            marker["vacuum_seconds"],
            marker["rows"],
            json.loads(marker["tally"]) if isinstance(marker["tally"], str) else marker["tally"],
        )
    if marker is not None:
        print(f"{database}: loaded with n={marker['n']} seed={marker['seed']}: reloading")
        recreate()
        upgrade(owner_url)
    elif asyncio.run(_has_referrals(owner_url)):
        print(f"{database}: an unfinished load: reloading")
        recreate()
        upgrade(owner_url)
    print(f"loading {n:,} referrals into {database} (seed {seed})")
    report = asyncio.run(load(owner_url, catalogue, n, seed, templates))
    return owner_url, report


async def _revision(owner_url: str) -> str | None:
    import asyncpg

    connection = await asyncpg.connect(owner_url)
    try:
        if not await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            return None
        version: str = await connection.fetchval("SELECT version_num FROM alembic_version")
        return version
    finally:
        await connection.close()


async def _vacuum(owner_url: str) -> float:
    import asyncpg

    started = time.perf_counter()
    connection = await asyncpg.connect(owner_url)
    try:
        for table, _ in TABLES:
            await connection.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await connection.close()
    return time.perf_counter() - started


async def _has_referrals(owner_url: str) -> bool:
    import asyncpg

    connection = await asyncpg.connect(owner_url)
    try:
        return bool(await connection.fetchval("SELECT EXISTS (SELECT 1 FROM referrals)"))
    finally:
        await connection.close()


def print_report(report: LoadReport) -> None:
    state = "loaded" if report.loaded else "already loaded"
    print(f"data_referrals: {report.n} referrals ({state}; {report.rows:,} rows in all)")
    print(f"data_load_time: {report.seconds:.0f} s (generating and COPY)")
    print(f"data_vacuum_analyze_time: {report.vacuum_seconds:.0f} s")
    for key in sorted(report.tally):
        print(f"data_{key}: {report.tally[key]} rows")


def main() -> None:
    from triage.catalogue.loader import load_catalogue
    from triage.devstack import EmbeddedStack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="referrals")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--templates", type=int, default=20_000, help="engine-triaged bodies")
    parser.add_argument("--reload", action="store_true", help="drop the database and load again")
    parser.add_argument("--database", default=DATABASE)
    args = parser.parse_args()
    base, _ = server_url()
    stack = None
    if not base:
        root = Path(__file__).resolve().parent.parent
        stack = EmbeddedStack(root / ".triage-data" / "bench").start()
        base = stack.owner_url
    try:
        _, report = prepare(
            base, load_catalogue(), args.n, args.seed, args.templates, args.reload, args.database
        )
        print_report(report)
    finally:
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    main()
