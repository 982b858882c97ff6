"""Who is calling: bearer key -> client and scopes; a per-client rate limit held in Redis, so
it holds across every web process."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from triage.api.problems import ApiProblem
from triage.services.api_keys import Caller, authenticate


async def caller_for(request: Request[Any, Any, Any], scope: str, *, batch: bool = False) -> Caller:
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
    async with state.pg.acquire() as connection:
        caller = await authenticate(connection, state.settings.secret_key, token.strip())
    if caller is None:
        raise ApiProblem(
            401,
            "unauthorised",
            "Unauthorised",
            "the API key is not valid",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if scope not in caller.scopes:
        raise ApiProblem(403, "forbidden", "Forbidden", f"the key lacks the scope {scope}")
    await _rate_limit(state.rate_script, caller, batch)
    return caller


# INCR each window's counter and give it an expiry when it is new, in one atomic round trip.
_COUNT = """
local counts = {}
for i, key in ipairs(KEYS) do
    counts[i] = redis.call('INCR', key)
    if counts[i] == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return counts
"""


def rate_limit_script(redis: Redis) -> AsyncScript:
    return redis.register_script(_COUNT)


async def _rate_limit(script: AsyncScript, caller: Caller, batch: bool) -> None:
    """Fixed one-minute windows: a counter keyed by client id (never personal data)."""
    now = time.time()
    window = int(now // 60)
    checks = [("req", caller.per_minute)]
    if batch:
        checks.append(("batch", caller.batches_per_minute))
    keys = [f"ratelimit:{caller.client_id}:{kind}:{window}" for kind, _limit in checks]
    counts = await script(keys=keys, args=[120])
    for (kind, limit), count in zip(checks, counts, strict=True):
        if int(count) > limit:
            retry = max(1, 60 - int(now % 60))
            what = "batches" if kind == "batch" else "requests"
            raise ApiProblem(
                429,
                "rate-limited",
                "Too many requests",
                f"over {limit} {what} a minute for this client",
                headers={"Retry-After": str(retry)},
            )
