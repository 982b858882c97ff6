"""A referral taken by hub staff on the phone, from a victim or a professional: the form's
answers become the API's referral body and go through intake (services.intake), never a
second copy of its rules. Each kind of caller has its own intake client row (created on
first use), so a form submitted twice is found by its external_ref and never makes two."""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from triage.domain.catalogue import Catalogue
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.services import intake
from triage.services.intake_clients import intake_client

# One intake client per kind of caller (the referral's source): its name is never a key's.
CLIENTS = {"self": "staff-phone-victim", "professional": "staff-phone-professional"}


async def phone_client(db: AsyncSession, source: str) -> Principal:
    """The intake client a phone referral of `source` is taken through (made on first use)."""
    return await intake_client(db, CLIENTS[source], source)


async def take_phone_referral(
    db: AsyncSession,
    pool: asyncpg.Pool,
    principal: Principal,
    source: str,
    body: dict[str, Any],
    catalogue: Catalogue,
) -> intake.ItemResult:
    """InvalidInput (every problem, at the API's paths) when the answers break the rules."""
    require(principal, "referral.create")
    if source not in CLIENTS:
        raise ValueError("source must be self or professional")
    channel = await phone_client(db, source)
    return await intake.submit_for_person(pool, principal, channel, body, catalogue)
