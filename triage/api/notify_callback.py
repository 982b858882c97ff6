"""Delivery receipts from GOV.UK Notify (api.md): POST /api/v1/notify/callback.

Authenticated by a bearer token from settings, compared in constant time. Idempotent: a
receipt moves a message forward only (accepted -> delivered | failed). An unknown reference
answers 200 (Notify would otherwise retry for ever) and is logged without personal data.
"""

from __future__ import annotations

import hmac
import re
import uuid
from typing import Any

import structlog
from litestar import Request, Response, post

from triage.api.bodies import decode_json
from triage.api.dependencies import Db
from triage.api.operation_docs import RECEIVE_RECEIPT
from triage.api.problems import ApiProblem
from triage.api.wire_answers import ReceiptAnswer
from triage.domain.problems import InvalidInput, Problem
from triage.services.receipts import apply_receipt

log = structlog.get_logger("triage.receipts")
PROVIDER_STATUS = re.compile(r"[a-z][a-z-]{0,39}")


@post(
    "/api/v1/notify/callback",
    status_code=200,
    request_max_body_size=64 * 1024,
    tags=["delivery receipts"],
    summary="Delivery receipt from the SMS and email provider",
    operation_id="receive_delivery_receipt",
    operation_class=RECEIVE_RECEIPT,
)
async def notify_callback(request: Request[Any, Any, Any], db: Db) -> Response[Any]:
    state = request.app.state
    expected = state.settings.notify_callback_token
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if (
        not expected
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(token.strip().encode(), expected.encode())
    ):
        raise ApiProblem(
            401,
            "unauthorised",
            "Unauthorised",
            "a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = decode_json(await request.body())
    reference = body.get("reference") if isinstance(body, dict) else None
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, str):
        raise ApiProblem(400, "bad-receipt", "Bad receipt", "status is required")
    problems = []
    if not PROVIDER_STATUS.fullmatch(status):
        # Kept verbatim in a 40-character column: anything else is not a provider's status.
        problems.append(
            Problem("status", "must be a provider status (lower case and hyphens, 1 to 40)")
        )
    if reference is not None and not isinstance(reference, str):
        # The provider sends our reference back as it was given (a string) or null.
        problems.append(Problem("reference", "must be a string or null"))
    if problems:
        raise InvalidInput(problems, "Invalid receipt")
    try:
        message_id = uuid.UUID(str(reference))
    except ValueError:
        log.info("receipt_unknown_reference")
        return Response(ReceiptAnswer(result="ignored"))
    result = await apply_receipt(db, message_id, status, state.catalogue)
    if result == "unknown":
        log.info("receipt_unknown_reference")
    return Response(ReceiptAnswer(result=result))
