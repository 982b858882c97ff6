"""One event loop per worker process, with its engine, session factory and notifier created on
that loop (asyncpg pools are bound to the loop that made them) and disposed at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import make_engine, make_sessionmaker
from triage.domain.catalogue import Catalogue
from triage.services.catalogues import current_catalogue
from triage.services.notifier import Notifier, make_notifier
from triage.services.setup_emails import SetupLinks
from triage.settings import get_settings

T = TypeVar("T")


@dataclass
class Runtime:
    loop: asyncio.AbstractEventLoop
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    notifier: Notifier
    catalogue: Catalogue
    lease: timedelta
    links: SetupLinks  # staff set-up emails: the key for the token's hash, the pages' address


_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        settings = get_settings()
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL is not set")
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        catalogue = current_catalogue()

        async def build() -> tuple[AsyncEngine, async_sessionmaker[AsyncSession], Notifier]:
            engine = make_engine(settings.database_url, pool_size=4)
            sessions = make_sessionmaker(engine)
            return engine, sessions, make_notifier(settings, sessions, catalogue)

        engine, sessions, notifier = loop.run_until_complete(build())
        _runtime = Runtime(
            loop,
            engine,
            sessions,
            notifier,
            catalogue,
            timedelta(seconds=settings.claim_lease_seconds),
            SetupLinks(settings.secret_key, settings.base_url),
        )
    return _runtime


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return runtime().loop.run_until_complete(coroutine)


def shutdown() -> None:
    global _runtime
    if _runtime is not None:
        _runtime.loop.run_until_complete(_runtime.engine.dispose())
        _runtime.loop.close()
        _runtime = None
