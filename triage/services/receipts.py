"""Delivery receipts: the provider's status kept verbatim; ours moves forward only."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from triage.domain.catalogue import Catalogue
from triage.services.catalogues import current_catalogue
from triage.services.clock import service_now
from triage.services.messaging import find_message, next_channel, resend

DELIVERED = {"delivered", "received"}  # letters end at received
PERMANENT = {"permanent-failure", "validation-failed", "virus-scan-failed", "cancelled"}
RETRYABLE = {"temporary-failure", "technical-failure"}


async def apply_receipt(
    db: AsyncSession,
    message_id: uuid.UUID,
    provider_status: str,
    catalogue: Catalogue | None = None,
) -> str:
    catalogue = catalogue or current_catalogue()
    now = await service_now(db)
    message = await find_message(db, message_id)
    if message is None:
        return "unknown"
    message.provider_status = provider_status
    message.updated_at = now
    if message.status in ("cancelled", "failed") and provider_status in DELIVERED:
        # The provider had it after all (a stop while its call was under way, an answer lost
        # after retries): the record says what happened, never "cancelled" for a message that
        # reached the victim. One cancelled by a stop shows as sent after the stop.
        if message.status == "cancelled" and message.stopped_at is None:
            message.stopped_at = message.final_at or now
        message.status, message.final_at = "delivered", now
        message.sent_at = message.sent_at or now
        await db.commit()
        return "delivered"
    if message.status in ("delivered", "failed", "cancelled"):
        await db.commit()
        return "already_final"
    if message.status in ("sending", "queued"):
        # The receipt beat our own commit (or a lookup): the provider has it.
        message.status, message.sent_at, message.claimed_until = "accepted", now, None
    if provider_status in DELIVERED:
        message.status, message.final_at = "delivered", now
    elif provider_status in PERMANENT:
        message.status, message.final_at = "failed", now
        message.failure_reason = provider_status
        await next_channel(db, message, now, catalogue)
    elif provider_status in RETRYABLE:
        message.status, message.final_at = "failed", now
        message.failure_reason = provider_status
        if not await resend(db, message, now):
            message.failure_reason = f"{provider_status}; resends exhausted"
    await db.commit()
    return message.status
