"""Engine and session factory: one per process (or per worker event loop)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool


def async_url(url: str) -> str:
    """Accept `postgresql://` or `postgresql+asyncpg://` (api: DATABASE_URL in either form)."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def plain_url(url: str) -> str:
    """The libpq / asyncpg form of a database URL."""
    return "postgresql://" + async_url(url)[len("postgresql+asyncpg://") :]


def make_engine(url: str, *, pool_size: int = 10, null_pool: bool = False) -> AsyncEngine:
    # hide_parameters: an error's text never carries a statement's parameters (recipients,
    # message bodies, names), whoever logs it.
    if null_pool:
        return create_async_engine(async_url(url), poolclass=NullPool, hide_parameters=True)
    return create_async_engine(
        async_url(url),
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        # No pre-ping: it costs a round trip on every checkout. A dead connection fails its
        # first statement instead, the request answers 503 and the pool replaces it.
        pool_recycle=1800,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: no lazy loads under asyncpg after a commit.
    return async_sessionmaker(engine, expire_on_commit=False)
