"""Public referral forms (issue 11): drafts and their submission through intake.

A draft holds one person's answers, page by page, in PostgreSQL only (`public_drafts`): the
person's Redis session holds its id alone, so what they typed is never in Redis, a cookie, the
browser or a URL. A draft lives 60 minutes after its last save; the sweep deletes it when it
has expired, and submitting deletes it. Submitting is one more way into intake
(`intake.submit_for_person`), never a copy of its rules: the draft's id is the referral's
idempotency key (`external_ref` `form-<id>` under the journey's intake client), so a double
submit (a double click, the back button and submit again) is one referral.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain import principals
from triage.domain.catalogue import Catalogue
from triage.services import intake
from triage.services.clock import service_now
from triage.services.intake_clients import intake_client

DRAFT_LIFETIME = timedelta(minutes=60)
JOURNEYS = ("self", "professional")
# The intake client of each journey (its source: the engine's and consent's rules).
CLIENTS = {
    "self": ("public-self-referral", "self"),
    "professional": ("public-professional-referral", "professional"),
}


def _under_18(body: dict[str, Any], today: date) -> bool:
    """Whether the victim's date of birth (as typed: intake checks it) makes them a child."""
    raw = (body.get("victim") or {}).get("date_of_birth")
    try:
        born = date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return False
    if born is None:
        return False
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return 0 <= age < 18


def external_ref_of(draft_id: uuid.UUID) -> str:
    return f"form-{draft_id}"


async def start_draft(db: AsyncSession, journey: str) -> uuid.UUID:
    """A new, empty draft for `journey`. Commits."""
    if journey not in JOURNEYS:
        raise ValueError(f"no journey {journey!r}")
    now = await service_now(db)
    draft_id = uuid.uuid4()
    db.add(models.PublicDraft(id=draft_id, journey=journey, expires_at=now + DRAFT_LIFETIME))
    await db.commit()
    return draft_id


async def answers_of(
    db: AsyncSession, draft_id: uuid.UUID, journey: str
) -> dict[str, dict[str, Any]] | None:
    """The draft's answers by page, or None when it is gone, has expired or is another
    journey's (the person starts again: never someone else's answers)."""
    now = await service_now(db)
    row = await db.scalar(
        select(models.PublicDraft).where(
            models.PublicDraft.id == draft_id,
            models.PublicDraft.journey == journey,
            models.PublicDraft.expires_at > now,
        )
    )
    return None if row is None else dict(row.answers)


async def save_page(
    db: AsyncSession, draft_id: uuid.UUID, journey: str, page: str, answers: dict[str, Any]
) -> bool:
    """One page's answers replace what that page had; the draft lives 60 minutes more.
    False when the draft is gone or expired (nothing written). Commits."""
    now = await service_now(db)
    saved = await db.execute(
        update(models.PublicDraft)
        .where(
            models.PublicDraft.id == draft_id,
            models.PublicDraft.journey == journey,
            models.PublicDraft.expires_at > now,
        )
        .values(
            # One key of the JSON object set in the statement: two tabs saving different
            # pages at once never lose each other's page.
            answers=models.PublicDraft.answers.op("||")({page: answers}),
            updated_at=now,
            expires_at=now + DRAFT_LIFETIME,
        )
        .returning(models.PublicDraft.id)
    )
    found = saved.first() is not None
    await db.commit()
    return found


async def submit(
    db: AsyncSession,
    pool: asyncpg.Pool,
    draft_id: uuid.UUID,
    journey: str,
    body: dict[str, Any],
    catalogue: Catalogue,
    *,
    possibly_automated: bool = False,
) -> intake.ItemResult:
    """The draft's referral (`body`, the API's shape, built from its answers) taken by intake
    as the public form's; then the draft deleted. InvalidInput (every problem, at the API's
    paths) leaves the draft as it is, to be corrected. A second submit of the same draft
    answers the same referral (`existing`)."""
    name, source = CLIENTS[journey]
    channel = await intake_client(db, name, source)
    flags = []
    if possibly_automated:
        # Taken, never dropped: a person's browser or screen reader may fill a hidden field.
        flags.append("possibly_automated")
    if journey == "self" and _under_18(body, (await service_now(db)).date()):
        # A child may refer themselves, and nothing asks for a parent: the hub reviews it.
        flags.append("safeguarding_review")
    person = principals.public(f"{journey}-referral")
    taken = await intake.submit_for_person(
        pool,
        person,
        channel,
        {**body, "external_ref": external_ref_of(draft_id)},
        catalogue,
        extra_flags=flags,
    )
    await db.execute(delete(models.PublicDraft).where(models.PublicDraft.id == draft_id))
    await db.commit()
    return taken


async def delete_draft(db: AsyncSession, draft_id: uuid.UUID) -> None:
    """The person left (Exit this page): their answers go now. Commits."""
    await db.execute(delete(models.PublicDraft).where(models.PublicDraft.id == draft_id))
    await db.commit()


async def purge_expired(db: AsyncSession, now: datetime | None = None) -> int:
    """Delete the drafts whose 60 minutes have run out (the sweep). Commits."""
    now = now or await service_now(db)
    gone = await db.execute(
        delete(models.PublicDraft)
        .where(models.PublicDraft.expires_at <= now)
        .returning(models.PublicDraft.id)
    )
    count = len(gone.all())
    await db.commit()
    return count
