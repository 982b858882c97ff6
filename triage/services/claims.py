"""Claiming rows that the workers send (messages, staff set-up emails): `queued` and due, or
`sending` with its lease run out (a worker died, or the provider's answer was lost), becomes
`sending` with a new lease and one more attempt. The attempt count is the claim's token: a
worker records its result only while the row is still `sending` with the attempts it claimed,
so a claim that lost its row to another never overwrites the other's result."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from triage.services.clock import service_now


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    attempts: int  # including this one: over 1 means an earlier attempt may have reached it


_DUE = """((status = 'queued' AND due_at <= :now)
           OR (status = 'sending' AND claimed_until < :now))"""


class LeasedQueue:
    """One table's claims: by the sweep (the oldest due first, FOR UPDATE SKIP LOCKED, so
    two sweeps never take the same row) or by id (a task's wake-up)."""

    def __init__(self, table: str, only: str = "true") -> None:
        # `table` and `only` (a condition narrowing the sweep's claims) are ours, never input.
        self.claim_due: TextClause = text(f"""
            UPDATE {table} t
            SET status = 'sending', claimed_until = :lease_end, attempts = t.attempts + 1,
                updated_at = :now
            FROM (
                SELECT id FROM {table} WHERE {_DUE} AND ({only})
                ORDER BY due_at
                LIMIT :limit
                FOR UPDATE SKIP LOCKED
            ) due
            WHERE t.id = due.id
            RETURNING t.id, t.attempts
        """)
        self.claim_one: TextClause = text(f"""
            UPDATE {table} SET status = 'sending', claimed_until = :lease_end,
                attempts = attempts + 1, updated_at = :now
            WHERE id = :id AND {_DUE}
            RETURNING id, attempts
        """)

    async def claim(self, db: AsyncSession, limit: int, lease: timedelta) -> list[Claimed]:
        """Up to `limit` due rows, claimed and committed."""
        now = await service_now(db)
        rows = await db.execute(
            self.claim_due, {"now": now, "lease_end": now + lease, "limit": limit}
        )
        claimed = [Claimed(r.id, r.attempts) for r in rows]
        await db.commit()
        return claimed

    async def claim_by_id(
        self, db: AsyncSession, row_id: uuid.UUID, lease: timedelta
    ) -> Claimed | None:
        """One row by id: None when it is not due, is another worker's, or is done."""
        now = await service_now(db)
        row = (
            await db.execute(self.claim_one, {"id": row_id, "now": now, "lease_end": now + lease})
        ).first()
        await db.commit()
        return Claimed(row.id, row.attempts) if row else None
