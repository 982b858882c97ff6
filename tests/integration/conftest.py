"""The real app in-process (real PostgreSQL and Redis), and API clients with keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
async def client(servers: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    from triage.app import create_app
    from triage.settings import get_settings

    app = create_app(get_settings())
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def web(servers: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    """The real app for the staff pages: over https, so the Secure session cookie is kept."""
    from triage.app import create_app
    from triage.settings import get_settings

    app = create_app(get_settings())
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as test_client:
        yield test_client


KeyMaker = Callable[..., Awaitable[tuple[str, str]]]


@pytest.fixture
def make_key(sessions: Any) -> KeyMaker:
    """A new API client (unique name, so tests never see each other's referrals) and a key."""
    from triage.services.api_keys import create_client, create_key, set_limit
    from triage.settings import get_settings

    async def make(
        source: str = "police", scopes: tuple[str, ...] = (), per_minute: int | None = None
    ) -> tuple[str, str]:
        name = f"test-{source}-{uuid.uuid4().hex[:8]}"
        async with sessions() as db:
            await create_client(db, name, source)
            if per_minute is not None:
                await set_limit(db, name, per_minute, None)
            key = await create_key(db, get_settings().secret_key, name, scopes)
        return name, key

    return make


@pytest.fixture
async def police(make_key: KeyMaker) -> dict[str, str]:
    _, key = await make_key("police")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def stub(tmp_path: Any) -> Any:
    """The Notify-compatible stub, in its own process, for one test."""
    from notify_stub_support import start_stub, stop_process

    started = start_stub(tmp_path)
    try:
        yield started
    finally:
        stop_process(started.process, grace=5)


@pytest.fixture
def notifier(sessions: Any) -> Any:
    """The outbox notifier (what the workers send through in tests), in this process."""
    from triage.services.notifier import OutboxNotifier

    return OutboxNotifier(sessions)


@pytest.fixture
async def service_clock_reset(sessions: Any) -> AsyncIterator[None]:
    """The shared service clock at the system time before and after the test (a test that
    moves it forward never leaves the next one in the future)."""
    from contact_support import reset_clock

    await reset_clock(sessions)
    yield
    await reset_clock(sessions)
