"""Notify's 3,000 messages a minute hold across every worker: one Redis counter."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from redis.asyncio import Redis

from triage.services.notifier import ProviderRateLimit


async def test_limit_is_shared_and_waits_for_the_next_minute(servers: Any) -> None:
    redis = Redis.from_url(os.environ["REDIS_URL"])
    try:
        now = time.time()
        if now % 60 > 55:  # too near a minute's end to tell waiting from rolling over
            await asyncio.sleep(60 - now % 60 + 0.1)
        first, second = ProviderRateLimit(redis, 3), ProviderRateLimit(redis, 3)
        minute = int(time.time() // 60)
        await redis.delete(f"notify:sent:{minute}")
        for limiter in (first, second, first):
            await asyncio.wait_for(limiter.acquire(), timeout=1)
        assert int(await redis.get(f"notify:sent:{minute}")) == 3
        # A fourth, from either process, waits for the next minute.
        waiting = asyncio.ensure_future(second.acquire())
        await asyncio.sleep(0.3)
        assert not waiting.done()
        waiting.cancel()
    finally:
        await redis.aclose()
