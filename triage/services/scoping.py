"""Row scoping: the policy's referral scope as a WHERE clause, so a query can only ever return
what its principal may see (a record outside it is not found: 404 and an audit event)."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, and_, exists, false, select, true
from sqlalchemy.orm import InstrumentedAttribute

from db import models
from triage.domain.policy import referral_scope
from triage.domain.principals import Principal


def referrals_visible_to(
    principal: Principal,
    referral_id: ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID] | None = None,
) -> ColumnElement[bool]:
    """A condition on `referrals` (models.Referral) true only for rows the principal may see.
    `referral_id`: another table's column naming the referral (a contact step's), so that a
    caseworker's scope is checked on that row before its referral is read."""
    scope = referral_scope(principal)
    if scope.kind == "all":
        return true()
    if scope.kind == "client" and scope.client_id is not None:
        return models.Referral.client_id == uuid.UUID(scope.client_id)
    if scope.kind == "services":
        return exists(
            select(models.Case.id).where(
                and_(
                    models.Case.referral_id
                    == (models.Referral.id if referral_id is None else referral_id),
                    models.Case.service.in_(sorted(scope.services)),
                )
            )
        )
    return false()


def cases_visible_to(principal: Principal) -> ColumnElement[bool]:
    """A condition on `cases`: a caseworker's own services' cases; everything for the hub."""
    scope = referral_scope(principal)
    if scope.kind == "all":
        return true()
    if scope.kind == "services":
        return models.Case.service.in_(sorted(scope.services))
    if scope.kind == "client" and scope.client_id is not None:
        return exists(
            select(models.Referral.id).where(
                and_(
                    models.Referral.id == models.Case.referral_id,
                    models.Referral.client_id == uuid.UUID(scope.client_id),
                )
            )
        )
    return false()
