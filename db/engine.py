"""Engine and session factory: one per process (or per worker event loop)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from db.errors import CONNECTING, LOST, DatabaseUnavailable


def async_url(url: str) -> str:
    """Accept `postgresql://` or `postgresql+asyncpg://` (api: DATABASE_URL in either form)."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def plain_url(url: str) -> str:
    """The libpq / asyncpg form of a database URL."""
    return "postgresql://" + async_url(url)[len("postgresql+asyncpg://") :]


# A database that stops answering (rather than refusing) never holds a request or a task for
# long: past these a connect or a statement fails with a TimeoutError, which is "try again
# later" (503). The pooled engines of the web app and the workers have them; a NullPool
# engine (migrations, the CLI, tests) may wait as long as a migration's statement needs.
CONNECT_SECONDS = 10
STATEMENT_SECONDS = 30
# No JIT for the app's and workers' statements: each reads a few rows by index, but a
# LATERAL's high estimate (a surname search) passes jit_above_cost and compiling then took
# 200 ms of a 10 ms query (bench/staff.py). Migrations and reports keep the server's default.
SESSION_SETTINGS = {"jit": "off"}


def make_engine(url: str, *, pool_size: int = 10, null_pool: bool = False) -> AsyncEngine:
    """Every engine the project makes comes from here (the Alembic environment's too)."""
    if null_pool:
        engine = create_async_engine(async_url(url), poolclass=NullPool, hide_parameters=True)
    else:
        engine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size // 2,
            # No pre-ping round trip on every checkout: a connection the server has closed
            # is seen closed locally and replaced (_closed_on_checkout); one that dies in
            # use fails its statement, the request answers 503 and the pool replaces it.
            pool_recycle=1800,
            # Error text carries the statement's parameters (names, phones, message
            # bodies) otherwise, and error text reaches logs.
            hide_parameters=True,
            connect_args={
                "timeout": CONNECT_SECONDS,
                "command_timeout": STATEMENT_SECONDS,
                "server_settings": SESSION_SETTINGS,
            },
        )
    _classify_outages(engine)
    return engine


def _classify_outages(engine: AsyncEngine) -> None:
    """Connecting, or losing the connection, raises DatabaseUnavailable (db.errors)."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as error:
            raise DatabaseUnavailable(CONNECTING) from error

    @event.listens_for(sync_engine, "checkout")
    def _closed_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # Closed by the server while idle (terminated, restarted): the pool opens another.
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the pooled connection was closed")

    @event.listens_for(sync_engine, "handle_error", retval=True)
    def _lost(context: ExceptionContext) -> BaseException | None:
        # is_disconnect: the dialect found the connection closed after the error (SQLAlchemy
        # invalidates it either way). A cancellation, which SQLAlchemy also counts as a
        # disconnect, stays a cancellation.
        if (
            context.is_disconnect
            and not context.is_pre_ping
            and isinstance(context.original_exception, Exception)
        ):
            return DatabaseUnavailable(LOST)
        return None


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: no lazy loads under asyncpg after a commit.
    return async_sessionmaker(engine, expire_on_commit=False)
