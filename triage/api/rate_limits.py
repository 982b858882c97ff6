"""The per-client rate limit: fixed one-minute windows counted in Redis, so the limit holds
across every web process.

A process does not ask Redis on every request: it leases requests from the window's counter
in blocks (INCRBY) and spends them locally. The counter in Redis is the sum of every lease,
and a lease that passes the limit is cut to what is left, so all processes together never let
more than the limit through. The block starts at one and doubles while a client keeps a
process busy (at most 1/50 of the limit, and 64), so a quiet client is counted exactly and a
busy one costs one round trip per block; what a process has leased and not spent when the
window ends can only make the limit refuse a little early, never late.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

MAX_BLOCK = 64
GROW_WITHIN = 0.25  # seconds: leasing again this soon means the client is busy here

# Add the lease to the window's counter and give it an expiry when it is new: one atomic
# round trip. Keys hold a client id and a window number, never personal data.
_LEASE = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if total == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return total
"""


@dataclass
class _Lease:
    window: int
    remaining: int = 0
    exhausted: bool = False
    block: int = 1
    leased_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RateLimiter:
    def __init__(self, redis: Redis):
        self._script: AsyncScript = redis.register_script(_LEASE)
        self._leases: dict[tuple[uuid.UUID, str], _Lease] = {}

    async def allow(self, client_id: uuid.UUID, kind: str, limit: int, now: float) -> bool:
        """Whether one more `kind` request from the client fits this minute's limit."""
        window = int(now // 60)
        lease = self._leases.get((client_id, kind))
        if lease is None or lease.window != window:
            lease = self._leases[(client_id, kind)] = _Lease(window)
            self._forget_old(window)
        if lease.remaining == 0 and not lease.exhausted:
            async with lease.lock:  # one lease at a time per client; the others wait for it
                if lease.remaining == 0 and not lease.exhausted:
                    await self._lease(lease, f"ratelimit:{client_id}:{kind}:{window}", limit)
        if lease.remaining == 0:
            return False
        lease.remaining -= 1
        return True

    async def _lease(self, lease: _Lease, key: str, limit: int) -> None:
        moment = time.monotonic()
        if moment - lease.leased_at < GROW_WITHIN:
            lease.block = min(lease.block * 2, MAX_BLOCK, max(1, limit // 50))
        else:
            lease.block = 1
        lease.leased_at = moment
        total = int(await self._script(keys=[key], args=[lease.block, 120]))
        granted = max(0, min(lease.block, limit - (total - lease.block)))
        lease.remaining += granted
        # The counter only grows within a window: once at the limit, refuse here without
        # asking again until the next window.
        lease.exhausted = total >= limit

    def _forget_old(self, window: int) -> None:
        if len(self._leases) > 1000:
            self._leases = {k: v for k, v in self._leases.items() if v.window == window}


# Count a failed key check and give it an expiry when it is new: one atomic round trip.
_FAILED = """
local total = redis.call('INCR', KEYS[1])
if total == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return total
"""


class FailedKeyChecks:
    """Failed key checks per client address and minute, in Redis (so across every web
    process). Past the limit an address is answered 429 for a key that does not check out:
    a stream of made-up keys is slowed at the address it comes from. Only failures are
    counted, and a key that checks out is never refused for them, so nobody who knows a key's
    prefix can make the real key answer 429. The address is kept as an HMAC under the server
    secret, never as it is."""

    def __init__(self, redis: Redis, secret: str, per_minute: int, prefix: str = "authfail"):
        self._redis = redis
        # The staff sign-in counts its failures the same way, under its own prefix.
        self._prefix = prefix
        self._script: AsyncScript = redis.register_script(_FAILED)
        self._secret = secret.encode()
        self.per_minute = per_minute

    def _key(self, address: str, now: float) -> str:
        mark = hmac.new(self._secret, address.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{self._prefix}:{mark}:{int(now // 60)}"

    async def over_limit(self, address: str, now: float) -> bool:
        """Count one failure from `address`; whether the address is now over its limit."""
        total = int(await self._script(keys=[self._key(address, now)], args=[120]))
        return total > self.per_minute

    async def is_over(self, address: str, now: float) -> bool:
        """Whether `address` is over its limit already (nothing counted)."""
        total = await self._redis.get(self._key(address, now))
        return total is not None and int(total) > self.per_minute
