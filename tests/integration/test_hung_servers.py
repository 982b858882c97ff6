"""A database or Redis that stops answering (rather than refusing) is a 503 with Retry-After
within a bounded time, never a request held for ever (issue 9, point 11: every failure of the
database or Redis to answer)."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import assert_problem, bearer, referral
from litestar.testing import AsyncTestClient

URL = "/api/v1/referrals"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections (the kernel completes them into the backlog) and never
    says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


async def test_redis_that_does_not_answer_is_a_503(make_key: Any, silent_port: int) -> None:
    from triage.app import REDIS_SECONDS, create_app
    from triage.settings import get_settings

    _, key = await make_key("police")
    settings = dataclasses.replace(get_settings(), redis_url=f"redis://127.0.0.1:{silent_port}/0")
    async with AsyncTestClient(app=create_app(settings)) as silent:
        started = time.monotonic()
        response = await silent.post(URL, json=referral(), headers=bearer(key))
        took = time.monotonic() - started
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    assert took < REDIS_SECONDS * 3, took


async def test_a_database_that_does_not_answer_is_a_503(make_key: Any, silent_port: int) -> None:
    from db.engine import CONNECT_SECONDS
    from triage.app import create_app
    from triage.settings import get_settings

    _, key = await make_key("police")
    silent_url = f"postgresql://triage_app@127.0.0.1:{silent_port}/triage"
    settings = dataclasses.replace(get_settings(), database_url=silent_url)
    async with AsyncTestClient(app=create_app(settings)) as silent:
        started = time.monotonic()
        response = await silent.post(URL, json=referral(), headers=bearer(key))
        took = time.monotonic() - started
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    assert took < CONNECT_SECONDS * 2, took
