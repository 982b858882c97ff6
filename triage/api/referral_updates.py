"""One referral by id: read it, PATCH it, withdraw it, list its decisions."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, patch, post
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from triage.api.bodies import read_json
from triage.api.dependencies import Db
from triage.api.operation_docs import (
    GET_REFERRAL,
    LIST_DECISIONS,
    UPDATE_REFERRAL,
    WITHDRAW_REFERRAL,
)
from triage.api.referrals import SINGLE_LIMIT
from triage.api.security import caller_for
from triage.domain.checker import Checker
from triage.domain.principals import Principal
from triage.domain.problems import InvalidInput
from triage.services import referral_views, updates


def _id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise updates.NotFound("no such referral") from None


class ReferralUpdateController(Controller):
    path = "/api/v1/referrals/{referral_id:str}"
    tags = ["referrals"]  # noqa: RUF012 - Litestar reads it from the class

    @get(
        "/",
        summary="One referral, for the client that sent it",
        operation_id="get_referral",
        operation_class=GET_REFERRAL,
    )
    async def read(
        self, request: Request[Any, Any, Any], db: Db, referral_id: FromPath[str]
    ) -> dict[str, Any]:
        caller = await caller_for(request, "referral.view")
        view = await referral_views.read_referral(db, caller.principal, _id(referral_id))
        if view is None:
            raise updates.NotFound("no such referral")
        return view

    @patch(
        "/",
        request_max_body_size=SINGLE_LIMIT,
        summary="Update a referral (re-triaged; the old decision is kept)",
        operation_id="update_referral",
        operation_class=UPDATE_REFERRAL,
    )
    async def update(
        self, request: Request[Any, Any, Any], db: Db, referral_id: FromPath[str]
    ) -> dict[str, Any]:
        caller = await caller_for(request, "referral.update")
        body = await read_json(request)
        target = _id(referral_id)
        await updates.apply_update(db, caller.principal, target, body, request.app.state.catalogue)
        return await _view(db, caller.principal, target)

    @post(
        "/withdraw",
        status_code=200,
        request_max_body_size=SINGLE_LIMIT,
        summary="Withdraw a referral: all pending contact is cancelled",
        operation_id="withdraw_referral",
        operation_class=WITHDRAW_REFERRAL,
    )
    async def withdraw(
        self, request: Request[Any, Any, Any], db: Db, referral_id: FromPath[str]
    ) -> dict[str, Any]:
        caller = await caller_for(request, "referral.withdraw")
        body = await read_json(request)
        checker = Checker()
        fields = checker.object(body, "", ("reason",)) or {}
        reason = checker.text(
            fields, "reason", "reason", required=True, max_length=500, free_text=True
        )
        if checker.problems or reason is None:
            raise InvalidInput(checker.problems, "Invalid withdrawal")
        target = _id(referral_id)
        await updates.withdraw(db, caller.principal, target, reason)
        return await _view(db, caller.principal, target)

    @get(
        "/decisions",
        summary="Every decision made for the referral, oldest first",
        operation_id="list_referral_decisions",
        operation_class=LIST_DECISIONS,
    )
    async def decisions(
        self, request: Request[Any, Any, Any], db: Db, referral_id: FromPath[str]
    ) -> dict[str, Any]:
        caller = await caller_for(request, "referral.view")
        items = await updates.decisions(db, caller.principal, _id(referral_id))
        return {"items": items}


async def _view(db: AsyncSession, principal: Principal, referral_id: uuid.UUID) -> dict[str, Any]:
    view = await referral_views.get_visible(db, principal, referral_id)
    if view is None:
        raise updates.NotFound("no such referral")
    return view
