"""Who is calling: bearer key -> client and scopes, then the client's rate limit (held in
Redis, so it holds across every web process: rate_limits)."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request

from db.pool import connection
from triage.api.problems import ApiProblem
from triage.api.rate_limits import FailedKeyChecks, RateLimiter
from triage.domain.policy import allows, scope_granting
from triage.services.api_keys import Caller, KeyDirectory


async def caller_for(
    request: Request[Any, Any, Any], permission: str, *, batch: bool = False
) -> Caller:
    """The calling client, once its key checks out, the policy allows it `permission` (its
    key's scopes are its roles in the policy's table) and its rate limit has room."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiProblem(
            401,
            "unauthorised",
            "Unauthorised",
            "a bearer API key is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    state = request.app.state
    directory: KeyDirectory = state.key_directory
    failed: FailedKeyChecks = state.failed_key_checks
    address = request.client.host if request.client else ""

    async def address_in_good_standing() -> bool:
        return not await failed.is_over(address, time.time())

    caller = await directory.caller(
        lambda: connection(state.pg), token.strip(), address_in_good_standing
    )
    if caller is None:
        now = time.time()
        if await failed.over_limit(address, now):
            raise ApiProblem(
                429,
                "rate-limited",
                "Too many requests",
                "too many failed key checks from this address",
                headers={"Retry-After": str(max(1, 60 - int(now % 60)))},
            )
        raise ApiProblem(
            401,
            "unauthorised",
            "Unauthorised",
            "the API key is not valid",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not allows(caller.principal, permission):
        raise ApiProblem(
            403, "forbidden", "Forbidden", f"the key lacks the scope {scope_granting(permission)}"
        )
    await _rate_limit(state.rate_limiter, caller, batch)
    return caller


async def _rate_limit(limiter: RateLimiter, caller: Caller, batch: bool) -> None:
    now = time.time()
    checks = [("req", caller.per_minute)]
    if batch:
        checks.append(("batch", caller.batches_per_minute))
    for kind, limit in checks:
        if not await limiter.allow(caller.client_id, kind, limit, now):
            what = "batches" if kind == "batch" else "requests"
            raise ApiProblem(
                429,
                "rate-limited",
                "Too many requests",
                f"over {limit} {what} a minute for this client",
                headers={"Retry-After": str(max(1, 60 - int(now % 60)))},
            )
