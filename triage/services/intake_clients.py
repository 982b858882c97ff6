"""The intake clients that people's referrals go through (a phone referral taken by hub staff,
a public form): one `api_clients` row each, made on first use, never with a key. The row gives
the referral its client (idempotency is per client: a form's own external_ref makes a second
submit the same referral) and its source (the engine's and consent's rules)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain import principals
from triage.domain.principals import Principal


async def intake_client(db: AsyncSession, name: str, source: str) -> Principal:
    """The client named `name` (made with `source` if missing), as the principal intake takes
    a referral through. Commits (the row, when it was made)."""
    await db.execute(
        insert(models.ApiClient)
        .values(id=uuid.uuid4(), name=name, source=source, per_minute=0, batches_per_minute=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    client_id = await db.scalar(select(models.ApiClient.id).where(models.ApiClient.name == name))
    await db.commit()
    assert client_id is not None
    return principals.client(client_id, frozenset({"referrals:write"}), source)
