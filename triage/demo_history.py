"""A past year of demo referrals shaped like the seed's (reports.md, issue 13):
`triage demo load --year-like kent-2022` writes Kent's 2022-23 financial year at a chosen
scale (103,650 referrals at scale 1; about 78% contacted and offered support, 91% of survey
answers satisfied, 90% would recommend, 89% helped to cope and recover), so the annual core
service report shows those percentages from the data.

The service clock only moves forward, so the year is written as history: each made-up referral
is validated and triaged by the engine at its own past receipt time and written through the
same row builders and statement as intake (referral_rows, referral_writes), without a contact
plan (the year is over); its contact outcome, closures and survey answers are then written as
what happened, in set-based statements. Nothing is sent to anyone (every person is made up and
no message row is written)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from triage.demo import demo_referrals
from triage.domain.calendar import WORKING_DAY_START
from triage.domain.catalogue import Catalogue
from triage.domain.engine import triage
from triage.domain.validation import consent_given, validate_referral
from triage.services.catalogues import record_catalogue
from triage.services.references import ensure_sequence, reference_stem, sequence_name
from triage.services.referral_rows import RowSet, add_referral_rows
from triage.services.referral_writes import write_referrals


@dataclass(frozen=True)
class YearShape:
    """The seed's figures for one year (Kent PCC's published 2022-23 figures)."""

    first_day: date
    referrals: int
    contacted: float  # offered support, of referrals received
    satisfied: float
    recommend: float
    cope: float
    responded: float  # of invitations (the seed does not say: a typical rate)
    improved: float  # distance travelled: wellbeing better at closure than at assessment


SHAPES = {
    "kent-2022": YearShape(date(2022, 4, 1), 103_650, 0.78, 0.91, 0.90, 0.89, 0.35, 0.60),
}
CHUNK = 1000


@dataclass
class _Made:
    referral_id: uuid.UUID
    received_at: datetime
    due: datetime | None
    to_contact: bool
    to_survey: bool
    can_survey: bool
    core: bool  # has a case of the core service (the seed's figures are the core service's)


class _Quota:
    """Yes for exactly `share` of the calls (to the nearest one), spread evenly: so a small
    demo year shows the seed's percentages to the point, not give or take chance."""

    def __init__(self, share: float) -> None:
        self.share, self.calls, self.yes = share, 0, 0

    def take(self) -> bool:
        self.calls += 1
        if round(self.share * self.calls) > self.yes:
            self.yes += 1
            return True
        return False


async def load_year(
    pool: asyncpg.Pool,
    catalogue: Catalogue,
    client_id: uuid.UUID,
    source: str,
    shape_name: str,
    scale: float,
    seed: int = 2022,
) -> dict[str, int]:
    shape = SHAPES[shape_name]
    count = max(1, round(shape.referrals * scale))
    rng = random.Random(seed)
    start = datetime(shape.first_day.year, 4, 1, tzinfo=UTC)
    span = (datetime(shape.first_day.year + 1, 4, 1, tzinfo=UTC) - start).total_seconds()
    bodies = demo_referrals(count, catalogue, shape.first_day, seed=seed, prefix=f"Y{seed}")
    made: list[_Made] = []
    written: dict[uuid.UUID, str] = {}
    async with pool.acquire() as db:
        await record_catalogue(db, catalogue)
        prefix = catalogue.reference_prefixes["victim"]
        for year in (shape.first_day.year, shape.first_day.year + 1):
            await ensure_sequence(db, prefix, datetime(year, 6, 1, tzinfo=UTC))
        for begin in range(0, count, CHUNK):
            by_year: dict[int, RowSet] = {}
            for body in bodies[begin : begin + CHUNK]:
                # Office hours mostly, every day of the year.
                received = start + timedelta(seconds=rng.random() * span)
                received = received.replace(hour=rng.choice(range(8, 19)), minute=rng.randrange(60))
                referral = validate_referral(body, source, received, catalogue)
                decision = triage(referral, source, received, catalogue)
                # History: the year is over, so no contact plan (no step, message or alert).
                decision = msgspec.structs.replace(decision, planned_step=None)
                referral_id = uuid.uuid4()
                rows = by_year.setdefault(received.year, RowSet())
                add_referral_rows(
                    rows,
                    referral_id=referral_id,
                    client_id=client_id,
                    source=source,
                    referral=referral,
                    content_hash=referral.content_hash(),
                    consent_given=consent_given(body, source),
                    decision=decision,
                    received_at=received,
                )
                channels = set(referral.contact.channels)
                made.append(
                    _Made(
                        referral_id,
                        received,
                        decision.contact_due_by,
                        referral.consent.to_contact,
                        referral.consent.to_survey,
                        bool(channels & {"sms", "email"}),
                        any(choice.code == "core" for choice in decision.services),
                    )
                )
            for year, rows in by_year.items():
                at = datetime(year, 6, 1, tzinfo=UTC)
                async with db.transaction():
                    written |= await write_referrals(
                        db,
                        rows,
                        sequence=sequence_name(prefix, at),
                        prefix=reference_stem(prefix, at),
                        digits=catalogue.reference_min_digits,
                    )
        # A second load of the same year finds its external references taken: only what was
        # written now gets a history.
        return await _history(
            db, catalogue, shape, [m for m in made if m.referral_id in written], rng
        )


async def _history(
    db: asyncpg.Connection,
    catalogue: Catalogue,
    shape: YearShape,
    made: list[_Made],
    rng: random.Random,
) -> dict[str, int]:
    """What happened to each referral: contact (in time or late), its cases closed, a survey
    answered by some, all written in a few set-based statements."""
    contacted_ids, contacted_at, minutes, late = [], [], [], []
    closed_ids, closed_at, reasons = [], [], []
    surveys: list[tuple[uuid.UUID, datetime, dict[str, Any]]] = []
    counts = {"referrals": len(made), "contacted": 0, "surveys": 0}
    # Exactly the seed's share contacted, of the core service's referrals and of the others
    # (only those that may be contacted are chosen).
    chosen: set[uuid.UUID] = set()
    for core in (True, False):
        group = [m for m in made if m.core is core]
        eligible = [m.referral_id for m in group if m.to_contact and m.due is not None]
        wanted = min(round(shape.contacted * len(group)), len(eligible))
        chosen |= set(rng.sample(eligible, wanted))
    quotas = {core: _Quotas(shape) for core in (True, False)}
    for item in made:
        contacted = item.referral_id in chosen
        if contacted:
            assert item.due is not None
            window = max((item.due - item.received_at).total_seconds(), 3600)
            in_time = rng.random() < 0.85
            wait = (
                timedelta(seconds=window * rng.uniform(0.05, 0.95))
                if in_time
                else (item.due - item.received_at) + timedelta(hours=rng.uniform(1, 72))
            )
            first = item.received_at + wait
            contacted_ids.append(item.referral_id)
            contacted_at.append(first)
            minutes.append(
                catalogue.calendar.working_minutes(
                    item.received_at, first, WORKING_DAY_START, catalogue.end_of_working_day
                )
            )
            late.append(not in_time)
            closed = first + timedelta(days=rng.randint(10, 60))
            closed_ids.append(item.referral_id)
            closed_at.append(closed)
            reasons.append("supported")
            counts["contacted"] += 1
            if item.to_survey and item.can_survey and rng.random() < shape.responded:
                surveys.append((item.referral_id, closed, quotas[item.core].answers(rng)))
        else:
            closed_ids.append(item.referral_id)
            closed_at.append(item.received_at + timedelta(days=14))
            reasons.append("unable_to_contact" if item.to_contact else "declined")
    async with db.transaction():
        await db.execute(
            """UPDATE referrals r SET first_contact_at = v.at, first_contact_working_minutes = v.m,
                   status = 'in_contact'
               FROM unnest($1::uuid[], $2::timestamptz[], $3::int[]) AS v(id, at, m)
               WHERE r.id = v.id""",
            contacted_ids,
            contacted_at,
            minutes,
        )
        await db.execute(
            """UPDATE cases c SET first_contact_at = r.first_contact_at
               FROM referrals r WHERE r.id = c.referral_id AND r.id = ANY($1::uuid[])""",
            contacted_ids,
        )
        await db.execute(
            """UPDATE cases c SET status = 'closed', closed_at = v.at, closure_reason = v.reason,
                   updated_at = v.at
               FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS v(id, at, reason)
               WHERE c.referral_id = v.id""",
            closed_ids,
            closed_at,
            reasons,
        )
        # The referral closes with its cases; its final state dates from then (the trigger
        # stamps the service clock's now, which history is not).
        await db.execute(
            """UPDATE referrals r SET status = 'closed'
               WHERE r.id = ANY($1::uuid[])""",
            closed_ids,
        )
        await db.execute(
            """UPDATE referrals r SET final_at = v.at, updated_at = v.at
               FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at) WHERE r.id = v.id""",
            closed_ids,
            closed_at,
        )
        late_ids = [i for i, was_late in zip(contacted_ids, late, strict=True) if was_late]
        reached = set(contacted_ids)
        never = [
            i.referral_id
            for i in made
            if i.to_contact and i.due is not None and i.referral_id not in reached
        ]
        await db.execute(
            """INSERT INTO alerts (id, referral_id, kind, status, due_at, raised_at, reason)
               SELECT gen_random_uuid(), r.id, 'deadline_breach', 'raised', r.contact_due_by,
                      r.contact_due_by, 'missed'
               FROM referrals r WHERE r.id = ANY($1::uuid[])""",
            late_ids + never,
        )
        for referral_id, closed, answers in surveys:
            await _survey(db, catalogue, referral_id, closed, answers, rng, shape)
            counts["surveys"] += 1
    return counts


class _Quotas:
    """One group's survey answers, each measure at exactly the seed's share."""

    def __init__(self, shape: YearShape) -> None:
        self.satisfied = _Quota(shape.satisfied)
        self.recommend = _Quota(shape.recommend)
        self.cope = _Quota(shape.cope)
        self.improved = _Quota(shape.improved)

    def answers(self, rng: random.Random) -> dict[str, Any]:
        return {
            "satisfaction": rng.choice([5, 4] if self.satisfied.take() else [3, 2, 1]),
            "recommend": "yes" if self.recommend.take() else rng.choice(["no", "not_sure"]),
            "cope_recover": rng.choice([5, 4] if self.cope.take() else [3, 2, 1]),
            "wellbeing": rng.choice([3, 4, 5]),
            "_improved": self.improved.take(),
        }


async def _survey(
    db: asyncpg.Connection,
    catalogue: Catalogue,
    referral_id: uuid.UUID,
    closed: datetime,
    answers: dict[str, Any],
    rng: random.Random,
    shape: YearShape,
) -> None:
    """A completed invitation and its answers for the referral's first closed case, and the
    case's wellbeing at assessment (better at closure for `improved` of them)."""
    case = await db.fetchrow(
        """SELECT id, service FROM cases WHERE referral_id = $1
           ORDER BY service = 'core' DESC, service LIMIT 1""",
        referral_id,
    )
    improved = bool(answers.pop("_improved"))
    # Answered within the year (the year's report counts it): late-year ones are clamped.
    year_end = datetime(shape.first_day.year + 1, 3, 31, 12, tzinfo=UTC)
    answered = min(closed + timedelta(days=2 + rng.randint(0, 10)), year_end)
    invited = min(closed + timedelta(days=2), answered)
    invitation_id = uuid.uuid4()
    await db.execute(
        """INSERT INTO survey_invitations (id, referral_id, case_id, service, status, channel,
               invited_at, expires_at, completed_at, final_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, 'completed', 'sms', $5, $6, $7, $7, $8, $7)""",
        invitation_id,
        referral_id,
        case["id"],
        case["service"],
        invited,
        invited + timedelta(days=catalogue.surveys.expire_after_days),
        answered,
        closed,
    )
    await db.execute(
        """INSERT INTO survey_responses (invitation_id, case_id, service, questions_version,
               answers, completed_at)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6)""",
        invitation_id,
        case["id"],
        case["service"],
        catalogue.surveys.version,
        msgspec.json.encode(answers).decode(),
        answered,
    )
    after = int(answers["wellbeing"])
    before = after - 1 if improved else after
    await db.execute(
        """INSERT INTO case_outcomes (case_id, stage, source, measure, score, recorded_at,
               recorded_by)
           VALUES ($1, 'assessment', 'caseworker', 'wellbeing', $2, $3, 'system:demo'),
                  ($1, 'closure', 'survey', 'wellbeing', $4, $5, 'system:demo')""",
        case["id"],
        max(1, before),
        closed - timedelta(days=20),
        after,
        answered,
    )
