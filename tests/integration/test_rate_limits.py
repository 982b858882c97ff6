"""The per-client rate limit (triage/api/rate_limits.py) on the real Redis: every process
together never lets more than the limit through in a window, a quiet client is counted
exactly, and a new window starts again.

Each RateLimiter stands for one web process (its own Redis connection); `now` is chosen by
the tests (the middle of a window), never read from the wall clock at a minute's edge.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from triage.api.rate_limits import MAX_BLOCK, RateLimiter

pytestmark = pytest.mark.integration

TIMEOUT = 30


@pytest.fixture
async def redises(servers: Any) -> AsyncIterator[list[Redis]]:
    """Two Redis connections: one per process."""
    made = [Redis.from_url(servers.redis_url) for _ in range(2)]
    try:
        yield made
    finally:
        for redis in made:
            await redis.aclose()


def _mid_window() -> float:
    """The middle of the current minute (the window is only computed from `now`)."""
    return (time.time() // 60) * 60 + 30


def _key(client_id: uuid.UUID, kind: str, now: float) -> str:
    return f"ratelimit:{client_id}:{kind}:{int(now // 60)}"


async def _counter(redis: Redis, key: str) -> int:
    value = await redis.get(key)
    assert value is not None, f"no counter at {key}"
    return int(value)


class _Leases:
    """Counts a limiter's round trips to Redis and the blocks it leased (an observation of
    our own limiter; the script still runs on the real Redis)."""

    def __init__(self, limiter: RateLimiter):
        self.blocks: list[int] = []
        script = limiter._script

        async def counted(*, keys: list[str], args: list[int]) -> Any:
            self.blocks.append(int(args[0]))
            return await script(keys=keys, args=args)

        limiter._script = counted  # type: ignore[assignment]


async def test_two_processes_together_never_pass_the_limit(redises: list[Redis]) -> None:
    limit, calls = 200, 600
    client_id = uuid.uuid4()
    now = _mid_window()
    limiters = [RateLimiter(redis) for redis in redises]
    leases = [_Leases(limiter) for limiter in limiters]

    answered: list[tuple[int, bool]] = []  # (process, answer) in the order answered

    async def call(i: int) -> bool:
        answer = await limiters[i % 2].allow(client_id, "req", limit, now)
        answered.append((i % 2, answer))
        return answer

    async with asyncio.timeout(TIMEOUT):
        answers = await asyncio.gather(*(call(i) for i in range(calls)))

    allowed = sum(answers)
    block = min(MAX_BLOCK, max(1, limit // 50))
    assert allowed <= limit
    # Leased and not spent by the time the window's calls ran out: at most a block each.
    assert allowed >= limit - 2 * block, allowed
    # Both processes took part.
    assert all(sum(answers[i::2]) > 0 for i in range(2)), answers
    # Once refused, refused: nothing allowed after the first refusal in each process.
    for i in range(2):
        mine = [answer for process, answer in answered if process == i]
        first_no = mine.index(False)
        assert not any(mine[first_no:]), f"process {i} allowed after refusing"

    redis = redises[0]
    key = _key(client_id, "req", now)
    counter = int(await redis.get(key) or 0)
    # The counter is the sum of the leases; once at the limit a process stops asking.
    assert counter == sum(sum(lease.blocks) for lease in leases)
    assert limit <= counter <= limit + 2 * block, counter
    ttl = await redis.ttl(key)
    assert 1 <= ttl <= 120, ttl
    # Busy: blocks grow, never past limit // 50, so far fewer round trips than requests.
    all_blocks = [b for lease in leases for b in lease.blocks]
    assert max(all_blocks) == block, all_blocks
    assert len(all_blocks) < allowed, len(all_blocks)


async def test_busy_client_blocks_stop_at_max_block(redises: list[Redis]) -> None:
    limit = 100_000  # limit // 50 is far above MAX_BLOCK
    client_id = uuid.uuid4()
    now = _mid_window()
    limiter = RateLimiter(redises[0])
    leases = _Leases(limiter)
    async with asyncio.timeout(TIMEOUT):
        answers = await asyncio.gather(
            *(limiter.allow(client_id, "req", limit, now) for _ in range(2000))
        )
    assert all(answers)
    assert max(leases.blocks) == MAX_BLOCK, leases.blocks
    assert await _counter(redises[0], _key(client_id, "req", now)) == sum(leases.blocks)


async def test_quiet_client_is_counted_exactly(redises: list[Redis]) -> None:
    client_id, other_client = uuid.uuid4(), uuid.uuid4()
    now = _mid_window()
    here, there = (RateLimiter(redis) for redis in redises)

    answers = [await here.allow(client_id, "req", 3, now) for _ in range(5)]
    assert answers == [True, True, True, False, False]
    assert await _counter(redises[0], _key(client_id, "req", now)) == 3
    # Another process finds the window full too.
    assert await there.allow(client_id, "req", 3, now) is False
    # Another kind, or another client, has its own count.
    assert [await here.allow(client_id, "batch", 3, now) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert await here.allow(other_client, "req", 3, now) is True
    assert await there.allow(other_client, "req", 3, now) is True
    assert await _counter(redises[0], _key(other_client, "req", now)) == 2

    # A client with a large limit, calling now and then (not busy): one request leased at a
    # time, so nothing is leased ahead of use.
    occasional = uuid.uuid4()
    for _ in range(3):
        assert await here.allow(occasional, "req", 10_000, now) is True
        await asyncio.sleep(0.3)  # longer than a busy client's gap
    assert await _counter(redises[0], _key(occasional, "req", now)) == 3


async def test_a_new_window_allows_again(redises: list[Redis]) -> None:
    client_id = uuid.uuid4()
    now = _mid_window()
    here, there = (RateLimiter(redis) for redis in redises)

    assert [await here.allow(client_id, "req", 2, now) for _ in range(3)] == [True, True, False]
    assert await there.allow(client_id, "req", 2, now + 20) is False  # same window
    later = now + 60
    assert [await here.allow(client_id, "req", 2, later) for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert await _counter(redises[0], _key(client_id, "req", later)) == 2
    assert await there.allow(client_id, "req", 2, later) is False
    ttl = await redises[0].ttl(_key(client_id, "req", later))
    assert 1 <= ttl <= 120, ttl
    # The old window's count is untouched (and expires on its own).
    assert await _counter(redises[0], _key(client_id, "req", now)) == 3
