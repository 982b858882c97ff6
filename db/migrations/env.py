"""Alembic environment: async, under an advisory lock so replicas can start at once."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.engine import make_engine
from db.models import Base

# Any fixed 64-bit number: every replica that migrates takes the same lock and waits its turn.
MIGRATION_LOCK = 0x7472696167650001

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
        connection.commit()


async def _main(url: str) -> None:
    # db.engine's, like every engine of the project: parameters hidden from error text.
    engine = make_engine(url, null_pool=True)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_main(url))
