"""Test servers: the embedded PostgreSQL and Redis (as `make run` uses), or TEST_DATABASE_URL
and TEST_REDIS_URL when set. A fresh database per test session, migrated with Alembic.

Two roles, as in production: the migrations run as the server's administrator (the embedded
superuser, or TEST_DATABASE_URL's role), which owns the tables (`owner_url`); the app, the
workers and the tests' `sessions` use the application's role (`database_url`, TRIAGE_APP_ROLE,
created as a LOGIN role without a password: local connections are trusted)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Servers:
    database_url: str  # the application's role, as DATABASE_URL
    redis_url: str
    # The owner that ran the migrations: for tests that need an administrator (creating
    # databases, ending backends, tampering with the audit trail to see it found).
    owner_url: str


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    from db.migrate import upgrade
    from db.roles import app_role
    from triage.devstack import (
        EmbeddedStack,
        as_role,
        create_database,
        drop_database,
        ensure_login_role,
    )

    stack = None
    base_db = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not base_db or not redis_url:
        # Its own server per test session, so two runs at once never stop each other's.
        # Under the project folder: pgserver's system user must be able to reach it.
        stack_dir = ROOT / ".triage-data" / f"test-{uuid.uuid4().hex[:8]}"
        stack = EmbeddedStack(stack_dir).start()
        base_db, redis_url = stack.owner_url, stack.redis_url
    else:
        ensure_login_role(base_db, app_role())
    owner_url = create_database(base_db, "triage_test")
    upgrade(owner_url)
    database_url = as_role(owner_url, app_role())
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "MIGRATION_DATABASE_URL": owner_url,
            "REDIS_URL": redis_url,
            "TRIAGE_ENV": "test",
            "TRIAGE_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
            "TRIAGE_AUDIT_KEY": "test-audit-key-" + uuid.uuid4().hex,
            "TRIAGE_LOG_FORMAT": "json",
            # Every test signs in from the same address: the per-address limit has a test
            # of its own (test_staff_sign_in), with its own app.
            "TRIAGE_SIGN_IN_FAILURES_PER_MINUTE": "1000",
            # Every test's public form answers come from the one test client address.
            "TRIAGE_PUBLIC_POSTS_PER_MINUTE": "100000",
        }
    )
    from triage.settings import get_settings

    get_settings.cache_clear()
    try:
        yield Servers(database_url, redis_url, owner_url)
    finally:
        drop_database(owner_url)
        if stack is not None:
            stack.stop()
            shutil.rmtree(stack_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def sessions(servers: Servers) -> AsyncIterator[object]:
    from db.engine import make_engine, make_sessionmaker

    engine = make_engine(servers.database_url, null_pool=True)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
async def owner_sessions(servers: Servers) -> AsyncIterator[object]:
    """Sessions as the owner role: only for what the application may not do."""
    from db.engine import make_engine, make_sessionmaker

    engine = make_engine(servers.owner_url, null_pool=True)
    yield make_sessionmaker(engine)
    await engine.dispose()
