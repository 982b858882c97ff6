"""The machine API for police and partner systems (api.md), under /api/v1."""

from __future__ import annotations

import asyncio
import csv
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery

from triage.api.bodies import (
    BATCH_MAX_ITEMS,
    media_type,
    read_json,
    read_json_batch,
    too_many_items,
)
from triage.api.csv_batch import CSV_DOC, CsvProblem, LineTooLong, TooManyRows, parse_csv
from triage.api.dependencies import Db
from triage.api.operation_docs import CREATE_BATCH, CREATE_REFERRAL, SEARCH_REFERRALS
from triage.api.problems import ApiProblem
from triage.api.security import caller_for
from triage.api.wire_answers import (
    BATCH_STATUSES,
    BatchAnswer,
    BatchCounts,
    BatchItem,
    FieldProblem,
)
from triage.domain.checker import CONTROL_MESSAGE, clean_text, parse_instant
from triage.domain.problems import InvalidInput, Problem
from triage.services import intake, referral_views

SINGLE_LIMIT = 1024 * 1024
BATCH_LIMIT = 32 * 1024 * 1024
DEFAULT_PAGE = 100
MAX_PAGE = 500


class ReferralController(Controller):
    path = "/api/v1/referrals"
    tags = ["referrals"]  # noqa: RUF012 - Litestar reads it from the class

    @post(
        "/",
        status_code=201,
        request_max_body_size=SINGLE_LIMIT,
        summary="Create (triage) one referral",
        operation_id="create_referral",
        operation_class=CREATE_REFERRAL,
        description="201 with the triaged referral; 200 when the same external_ref and "
        "content were sent before; 409 when the content differs (use PATCH).",
    )
    async def create(self, request: Request[Any, Any, Any]) -> Response[Any]:
        caller = await caller_for(request, "referral.create")
        body = await read_json(request)
        state = request.app.state
        result = await intake.submit_referral(
            state.intake_writer, caller.principal, body, state.catalogue
        )
        if result.status == "conflict":
            raise ApiProblem(
                409,
                "conflict",
                "Conflict",
                f"external_ref was already used for a referral with different content; send "
                f"changes with PATCH /api/v1/referrals/{result.id}",
            )
        view = result.view
        if view is None:
            assert result.id is not None  # existing and conflict name the referral they met
            async with state.sessions() as db:  # a resend's answer is a reading: audited
                view = await referral_views.read_referral(
                    db, caller.principal, result.id, permission="referral.create"
                )
        # Plain JSON already (strings, numbers, lists): encoded here in one call.
        return Response(
            msgspec.json.encode(view),
            media_type="application/json",
            status_code=201 if result.status == "created" else 200,
        )

    @post(
        "/batch",
        status_code=200,
        request_max_body_size=BATCH_LIMIT,
        summary="Create up to 10,000 referrals (JSON or CSV)",
        description=CSV_DOC,
        operation_id="create_referral_batch",
        operation_class=CREATE_BATCH,
    )
    async def batch(self, request: Request[Any, Any, Any]) -> Response[Any]:
        caller = await caller_for(request, "referral.create", batch=True)
        media = media_type(request)
        if media not in ("text/csv", "application/json"):
            raise ApiProblem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "send the batch as application/json or text/csv",
            )
        raw = await request.body()
        bodies: list[Any]
        if media == "text/csv":
            try:
                bodies = await parse_csv(raw, BATCH_MAX_ITEMS)
            except UnicodeDecodeError:
                raise ApiProblem(
                    400, "malformed-csv", "Malformed CSV", "the body must be UTF-8 text"
                ) from None
            except TooManyRows:
                raise too_many_items() from None
            except csv.Error:
                # The csv module's field size limit (a cell over 131,072 characters, or a quote
                # left open that takes in the rest of the body): nothing after it can be read
                # reliably.
                raise ApiProblem(
                    422,
                    "validation",
                    "Invalid CSV",
                    f"a cell is longer than {csv.field_size_limit():,} characters, or a quote "
                    "is not closed",
                ) from None
            except LineTooLong as long:
                raise ApiProblem(422, "validation", "Invalid CSV", str(long)) from None
            except CsvProblem as bad:
                raise ApiProblem(
                    422, "validation", "Invalid CSV", f"{len(bad.problems)} problems", bad.problems
                ) from None
        else:
            bodies = await read_json_batch(raw)
        state = request.app.state
        results = await intake.submit_batch(state.pg, caller.principal, bodies, state.catalogue)
        counts = dict.fromkeys(BATCH_STATUSES, 0)
        items: list[BatchItem] = []
        for r in results:
            if len(items) % 1000 == 999:
                await asyncio.sleep(0)  # 10,000 answers are built a thousand at a time
            counts[r.status] += 1
            errors = [FieldProblem(path=e.path, message=e.message) for e in r.errors or []]
            items.append(
                BatchItem(
                    index=r.index, status=r.status, id=r.id, reference=r.reference, errors=errors
                )
            )
        # Built from the Structs the OpenAPI document describes it with.
        return Response(BatchAnswer(counts=BatchCounts(**counts), items=items))

    @get(
        "/",
        summary="The client's referrals by external_ref, or changed since a time",
        operation_id="search_referrals",
        operation_class=SEARCH_REFERRALS,
        description="`?external_ref=...`, or `?updated_since=<ISO 8601 with offset>` then "
        "`?cursor=<next_cursor>` (keyset pagination, oldest change first); `limit` 1 to "
        f"{MAX_PAGE} (default {DEFAULT_PAGE}).",
    )
    async def search(
        self,
        request: Request[Any, Any, Any],
        external_ref: FromQuery[str | None] = None,
        updated_since: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[str | None] = None,
        *,
        db: Db,
    ) -> dict[str, Any]:
        caller = await caller_for(request, "referral.view")
        # Checked here, every problem at once, so a bad query is a 422 like any broken rule.
        problems: list[Problem] = []
        page_size = DEFAULT_PAGE
        if limit is not None:
            # ASCII digits only: int() also takes signs, spaces, underscores, other scripts.
            page_size = int(limit) if limit.isascii() and limit.isdigit() else 0
            if not 1 <= page_size <= MAX_PAGE:
                problems.append(Problem("limit", f"must be a whole number from 1 to {MAX_PAGE}"))
        if external_ref is not None and clean_text(external_ref) is None:
            problems.append(Problem("external_ref", CONTROL_MESSAGE))
        # Every parameter given is checked, also those external_ref makes unused.
        since = None
        if updated_since is not None:
            parsed = parse_instant(updated_since)
            if isinstance(parsed, str):
                problems.append(Problem("updated_since", parsed))
            else:
                since = parsed
        if external_ref is None and updated_since is None and cursor is None:
            problems.append(Problem("external_ref", "give external_ref, updated_since or cursor"))
        if cursor is not None:
            try:
                referral_views.decode_cursor(cursor)
            except referral_views.BadCursor:
                problems.append(Problem("cursor", "is not a cursor this service gave"))
        if problems:
            raise InvalidInput(problems, "Invalid query")
        if external_ref is not None:
            items = await referral_views.read_by_external_ref(db, caller.principal, external_ref)
            return {"items": items, "next_cursor": None}
        items, next_cursor = await referral_views.read_changed_since(
            db, caller.principal, since, cursor, page_size
        )
        return {"items": items, "next_cursor": next_cursor}
