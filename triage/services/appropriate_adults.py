"""Appropriate Adult requests from custody: validated, decided and stored in one transaction,
apart from victims; idempotent on (client, external_ref) like referrals."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.appropriate_adult import decide_aa, validate_aa_request
from triage.domain.catalogue import Catalogue
from triage.domain.decision import iso_z
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.services.audit import record_event
from triage.services.catalogues import record_catalogue
from triage.services.clock import service_now
from triage.services.references import ensure_sequence, next_references


def _view(row: models.AppropriateAdultRequest) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "reference": row.reference,
        "external_ref": row.external_ref,
        "status": row.status,
        "attend_by": iso_z(row.attend_by),
        "signpost_to": row.signpost_to,
        "reasons": list(row.reasons),
        "flags": list(row.flags),
    }


async def submit_aa_request(
    db: AsyncSession, principal: Principal, body: Any, catalogue: Catalogue
) -> tuple[str, dict[str, Any]]:
    """(`created` | `existing` | `conflict`, the request's view). Raises InvalidInput.
    Commits once."""
    require(principal, "aa.create")
    client_id = principal.uuid
    prefix = catalogue.reference_prefixes["appropriate_adult"]
    await record_catalogue(db, catalogue)
    now = await service_now(db)
    await ensure_sequence(db, prefix, now)
    request = validate_aa_request(body, now, catalogue)
    decision = decide_aa(request, now, catalogue)
    content = msgspec.json.encode(request, order="sorted")
    content_hash = hashlib.sha256(content).hexdigest()
    (reference,) = await next_references(db, prefix, now, 1, catalogue.reference_min_digits)
    row_id = uuid.uuid4()
    inserted = await db.execute(
        pg_insert(models.AppropriateAdultRequest)
        .values(
            id=row_id,
            reference=reference,
            client_id=client_id,
            external_ref=request.external_ref,
            custody_suite=request.custody_suite,
            person=msgspec.to_builtins(request.person),
            request=msgspec.json.decode(content),
            content_hash=content_hash,
            received_at=now,
            needed_at=request.needed_at,
            status=decision.status,
            attend_by=decision.attend_by,
            signpost_to=decision.signpost_to,
            reasons=decision.reasons,
            flags=decision.flags,
            catalogue_version=catalogue.version,
            updated_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_aa_requests_client_external_ref")
        .returning(models.AppropriateAdultRequest.id)
    )
    created = inserted.scalar() is not None
    if created:
        await record_event(db, principal.actor, "aa_request.created", row_id, "aa_request")
    await db.commit()
    row = (
        await db.execute(
            select(models.AppropriateAdultRequest).where(
                models.AppropriateAdultRequest.client_id == client_id,
                models.AppropriateAdultRequest.external_ref == request.external_ref,
            )
        )
    ).scalar_one()
    if created:
        return "created", _view(row)
    if row.content_hash != content_hash:
        return "conflict", _view(row)
    # The same request again: answered with the request as it stands, a reading (audited).
    await record_event(db, principal.actor, "aa_request.viewed", row.id, "aa_request")
    await db.commit()
    return "existing", _view(row)
