"""Human references (`KVR-26-004211`): the catalogue's prefix, the year of receipt in
Europe/London and a number from a sequence per prefix and year, at least 6 digits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from triage.domain.calendar import LONDON

_known: set[str] = set()


def _sequence_name(prefix: str, year: int) -> str:
    if not prefix.isalpha():
        raise ValueError("reference prefixes are letters only")
    return f"reference_{prefix.lower()}_{year}"


async def next_references(
    db: AsyncSession, prefix: str, received_at: datetime, count: int, min_digits: int = 6
) -> list[str]:
    if count == 0:
        return []
    year = received_at.astimezone(LONDON).year
    name = _sequence_name(prefix, year)
    if name not in _known:
        # A sequence, not a counter row: no lock shared by every intake transaction. Creating
        # it once a year takes a transaction-scoped lock, so two first referrals of the year
        # cannot both try (the second waits, then finds it).
        await db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})
        await db.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {name}"))
        _known.add(name)
    rows = await db.execute(
        text(f"SELECT nextval('{name}') FROM generate_series(1, :n)"), {"n": count}
    )
    yy = year % 100
    return [f"{prefix}-{yy:02d}-{number:0{min_digits}d}" for (number,) in rows]
