"""Appropriate Adult requests from custody systems (api.md)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post

from triage.api.bodies import read_json
from triage.api.dependencies import Db
from triage.api.operation_docs import CREATE_AA_REQUEST
from triage.api.problems import ApiProblem
from triage.api.referrals import SINGLE_LIMIT
from triage.api.security import caller_for
from triage.services.appropriate_adults import submit_aa_request


class AppropriateAdultController(Controller):
    path = "/api/v1/appropriate-adult-requests"
    tags = ["appropriate adults"]  # noqa: RUF012 - Litestar reads it from the class

    @post(
        "/",
        status_code=201,
        request_max_body_size=SINGLE_LIMIT,
        summary="Request an Appropriate Adult for a detainee",
        operation_id="create_appropriate_adult_request",
        operation_class=CREATE_AA_REQUEST,
    )
    async def create(self, request: Request[Any, Any, Any], db: Db) -> Response[Any]:
        caller = await caller_for(request, "aa.create")
        body = await read_json(request)
        state = request.app.state
        status, view = await submit_aa_request(db, caller.principal, body, state.catalogue)
        if status == "conflict":
            raise ApiProblem(
                409,
                "conflict",
                "Conflict",
                "external_ref was already used for a request with different content",
            )
        return Response(view, status_code=201 if status == "created" else 200)
