"""Referral intake: validate -> triage -> write everything in one transaction -> wake workers.

Idempotency is by (client, external_ref), enforced by a unique index: the same content again
is `existing`, different content is `conflict`. A batch is validated and triaged in chunks that
yield to the event loop, then written with one statement per table.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import models
from triage.domain.catalogue import Catalogue
from triage.domain.decision import Decision
from triage.domain.engine import triage
from triage.domain.problems import InvalidInput, Problem
from triage.domain.referral import Referral
from triage.domain.validation import validate_referral
from triage.services import referral_views
from triage.services.api_keys import Caller
from triage.services.catalogues import record_catalogue
from triage.services.clock import service_now
from triage.services.references import ensure_sequence, reference_stem, sequence_name
from triage.services.referral_rows import RowSet, add_referral_rows
from triage.services.referral_writes import write_referrals
from triage.services.wakeups import wake_workers

referrals_table: Any = models.Referral.__table__
WRITE_CHUNK = 200  # referrals written per statement in a batch
CHUNK = 20  # referrals validated and triaged between two yields to the event loop


@dataclass
class ItemResult:
    index: int
    status: str  # created | existing | invalid | conflict
    id: uuid.UUID | None = None
    reference: str | None = None
    errors: list[Problem] | None = None
    view: dict[str, Any] | None = None  # the API's referral object, for a single created one


@dataclass
class _Prepared:
    index: int
    referral: Referral
    decision: Decision
    content_hash: str


async def submit_referral(
    sessions: async_sessionmaker[AsyncSession], caller: Caller, body: Any, catalogue: Catalogue
) -> ItemResult:
    """One referral; raises InvalidInput with every problem when the body breaks the rules."""
    results = await _submit(sessions, caller, [body], catalogue, single=True)
    return results[0]


async def submit_batch(
    sessions: async_sessionmaker[AsyncSession],
    caller: Caller,
    bodies: Sequence[Any],
    catalogue: Catalogue,
) -> list[ItemResult]:
    return await _submit(sessions, caller, bodies, catalogue, single=False)


async def _submit(
    sessions: async_sessionmaker[AsyncSession],
    caller: Caller,
    bodies: Sequence[Any],
    catalogue: Catalogue,
    *,
    single: bool,
) -> list[ItemResult]:
    await record_catalogue(sessions, catalogue)
    async with sessions() as db:
        now = await service_now(db)
    await ensure_sequence(sessions, catalogue.reference_prefixes["victim"], now)
    results: list[ItemResult | None] = [None] * len(bodies)
    prepared: dict[str, _Prepared] = {}  # by external_ref, first occurrence wins
    duplicates: list[_Prepared] = []
    for start in range(0, len(bodies), CHUNK):
        for index in range(start, min(start + CHUNK, len(bodies))):
            try:
                referral = validate_referral(
                    bodies[index],
                    caller.source,
                    now,
                    catalogue,
                    prefix="" if single else f"referrals[{index}]",
                )
            except InvalidInput as invalid:
                if single:
                    raise
                results[index] = ItemResult(index, "invalid", errors=invalid.problems)
                continue
            item = _Prepared(
                index,
                referral,
                triage(referral, caller.source, now, catalogue),
                referral.content_hash(),
            )
            if referral.external_ref in prepared:
                duplicates.append(item)
            else:
                prepared[referral.external_ref] = item
        if len(bodies) > CHUNK:
            await asyncio.sleep(0)  # let other requests through during a large batch

    created: dict[str, tuple[uuid.UUID, str]] = {}
    prefix = catalogue.reference_prefixes["victim"]
    rows = RowSet()
    ids: dict[uuid.UUID, _Prepared] = {}
    won: dict[uuid.UUID, str] = {}
    async with sessions() as db:
        if single:
            # One referral is one statement, atomic on its own (every table or none): no
            # BEGIN and COMMIT round trips around it.
            await db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        # One referral: let the unique index find a resend (one round trip fewer).
        existing = {} if single else await _existing(db, caller.client_id, list(prepared))
        fresh = [item for ref, item in prepared.items() if ref not in existing]
        # One transaction, written in slices, yielding between them so that a 10,000-item
        # batch never holds the event loop for long.
        for start in range(0, len(fresh), WRITE_CHUNK):
            rows = RowSet()
            for item in fresh[start : start + WRITE_CHUNK]:
                referral_id = uuid.uuid4()
                ids[referral_id] = item
                add_referral_rows(
                    rows,
                    referral_id=referral_id,
                    client_id=caller.client_id,
                    source=caller.source,
                    referral=item.referral,
                    decision=item.decision,
                    received_at=now,
                    catalogue=catalogue,
                )
            won.update(
                await write_referrals(
                    db,
                    rows,
                    sequence=sequence_name(prefix, now),
                    prefix=reference_stem(prefix, now),
                    digits=catalogue.reference_min_digits,
                    actor=f"client:{caller.client_id}",
                )
            )
        lost = [item.referral.external_ref for i, item in ids.items() if i not in won]
        if lost:
            # A concurrent request took these external_refs first: theirs stand.
            existing.update(await _existing(db, caller.client_id, lost))
        created = {ids[i].referral.external_ref: (i, ref) for i, ref in won.items()}
        await db.commit()

    for ref, item in prepared.items():
        if ref in created:
            referral_id, reference = created[ref]
            results[item.index] = ItemResult(
                item.index,
                "created",
                referral_id,
                reference,
                view=_view(rows, referral_id, reference) if single else None,
            )
        else:
            results[item.index] = _against_existing(item, existing[ref])
    for item in duplicates:
        first = prepared[item.referral.external_ref]
        target = created.get(first.referral.external_ref)
        if target is not None:
            record = (target[0], target[1], first.content_hash)
        else:
            record = existing[first.referral.external_ref]
        results[item.index] = _against_existing(item, record)
    if created:
        wake_workers()  # after the commit only: a wake-up never points at a rolled-back row
    return [r for r in results if r is not None]


def _view(rows: RowSet, referral_id: uuid.UUID, reference: str) -> dict[str, Any]:
    """The created referral's API object from the rows just written (no read back)."""
    referral = next(r for r in rows.referrals if r["id"] == referral_id)
    decision = next(d for d in rows.decisions if d["referral_id"] == referral_id)
    cases = [
        referral_views.case_view(c["service"], c["role"], c["status"], None, None, None)
        for c in rows.cases
        if c["referral_id"] == referral_id
    ]
    return referral_views.referral_view(
        referral_id,
        reference,
        referral["external_ref"],
        referral["status"],
        referral["received_at"],
        referral["updated_at"],
        decision["decision"],
        cases,
    )


def _against_existing(item: _Prepared, record: tuple[uuid.UUID, str, str]) -> ItemResult:
    referral_id, reference, content_hash = record
    status = "existing" if content_hash == item.content_hash else "conflict"
    return ItemResult(item.index, status, referral_id, reference)


async def _existing(
    db: AsyncSession, client_id: uuid.UUID, external_refs: list[str]
) -> dict[str, tuple[uuid.UUID, str, str]]:
    if not external_refs:
        return {}
    rows = await db.execute(
        select(
            models.Referral.external_ref,
            models.Referral.id,
            models.Referral.reference,
            models.Referral.content_hash,
        ).where(
            models.Referral.client_id == client_id, models.Referral.external_ref.in_(external_refs)
        )
    )
    return {r.external_ref: (r.id, r.reference, r.content_hash) for r in rows}
