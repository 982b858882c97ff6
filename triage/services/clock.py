"""One clock for the service layer: the system clock plus, outside production, an offset kept
in the database so the web app, the workers and the tests agree on "now" (lifecycle.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from triage.settings import get_settings


class ClockRefused(RuntimeError):
    pass


# The database's clock, the one every web process and worker host shares: leases, claims and
# due times are judged by it, never by a host's own clock (two hosts whose clocks differ would
# otherwise each think the other's lease had run out). Outside production, plus the offset.
_NOW_SQL = "clock_timestamp()"
_NOW_WITH_OFFSET_SQL = (
    "clock_timestamp() + make_interval(secs => CAST(COALESCE("
    "(SELECT offset_seconds FROM clock_offset WHERE id = 1), 0) AS double precision))"
)
_DATABASE_NOW = f"SELECT {_NOW_SQL}"
_DATABASE_NOW_WITH_OFFSET = f"SELECT {_NOW_WITH_OFFSET_SQL}"


def service_now_sql() -> str:
    """The service clock as an SQL expression, for a statement that needs "now" and would
    otherwise cost a round trip to ask for it first."""
    return _NOW_SQL if get_settings().is_production else _NOW_WITH_OFFSET_SQL


def production_now() -> datetime | None:
    """Now by this host's clock, without asking the database, in production only (where the
    clock cannot be moved): for the intake hot path, whose receipt time is a record, not a
    lease. None elsewhere (the offset is in the database)."""
    return datetime.now(UTC) if get_settings().is_production else None


async def service_now(db: AsyncSession | AsyncConnection | asyncpg.Connection) -> datetime:
    """Now by the database's clock (plus the offset outside production), on a SQLAlchemy
    session or connection or on a plain asyncpg connection."""
    query = _DATABASE_NOW if get_settings().is_production else _DATABASE_NOW_WITH_OFFSET
    if isinstance(db, AsyncSession | AsyncConnection):
        return cast(datetime, (await db.execute(text(query))).scalar_one())
    return cast(datetime, await db.fetchval(query))


async def advance(db: AsyncSession, by: timedelta) -> timedelta:
    if get_settings().is_production:
        raise ClockRefused("the clock cannot be moved in production")
    if by < timedelta(0):
        raise ClockRefused("the clock only moves forward (use reset)")
    result = await db.execute(
        text(
            "UPDATE clock_offset SET offset_seconds = offset_seconds + :s WHERE id = 1 "
            "RETURNING offset_seconds"
        ),
        {"s": int(by.total_seconds())},
    )
    await db.commit()
    return timedelta(seconds=result.scalar_one())


async def reset(db: AsyncSession) -> None:
    if get_settings().is_production:
        raise ClockRefused("the clock cannot be moved in production")
    await db.execute(text("UPDATE clock_offset SET offset_seconds = 0 WHERE id = 1"))
    await db.commit()


def parse_duration(text_value: str) -> timedelta:
    """`2d`, `36h`, `90m`, `1d12h` -> timedelta."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    total, number = 0, ""
    for char in text_value.strip():
        if char.isdigit():
            number += char
        elif char in units and number:
            total += int(number) * units[char]
            number = ""
        else:
            raise ValueError("a duration is like 2d, 36h, 90m or 1d12h")
    if number or total == 0:
        raise ValueError("a duration is like 2d, 36h, 90m or 1d12h")
    return timedelta(seconds=total)
