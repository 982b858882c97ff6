"""Shared by the contact tests: the service clock moved to chosen instants, a real Celery worker
process, polling the database until it shows an outcome, and referral bodies per priority."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import holidays
from helpers import DELETE, referral
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
LONDON = ZoneInfo("Europe/London")
T = TypeVar("T")

# Bank holidays of England and Wales, straight from the holidays package (an oracle that does
# not go through the code under test).
ENGLAND = holidays.country_holidays("GB", subdiv="ENG", years=range(2026, 2040))


def london(day: date, hour: int, minute: int = 0) -> datetime:
    """The UTC instant a London wall clock shows hour:minute on `day` (first occurrence)."""
    return datetime.combine(day, wall_time(hour, minute), LONDON).astimezone(UTC)


def local(instant: datetime) -> datetime:
    return instant.astimezone(LONDON)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in ENGLAND


def working_days_after(day: date, count: int) -> date:
    while count:
        day += timedelta(days=1)
        if is_working_day(day):
            count -= 1
    return day


def quiet_monday(after: datetime, weeks: int = 3) -> date:
    """The first Monday after `after` that starts `weeks` weeks without a bank holiday or a
    clock change, so that working days are weekdays and wall times keep their UTC offset."""
    day = after.astimezone(LONDON).date() + timedelta(days=1)
    day += timedelta(days=(7 - day.weekday()) % 7)
    while True:
        span = [day + timedelta(days=i) for i in range(7 * weeks)]
        offsets = {london(d, 12).astimezone(LONDON).utcoffset() for d in span}
        if all(d not in ENGLAND for d in span) and len(offsets) == 1:
            return day
        day += timedelta(days=7)


def next_autumn_change(after: datetime) -> date:
    """The next last Sunday of October (the clocks go back at 02:00 BST) after `after`."""
    year = after.year
    while True:
        day = date(year, 10, 31)
        day -= timedelta(days=(day.weekday() + 1) % 7)
        if london(day, 0) > after + timedelta(days=1):
            return day
        year += 1


# The clock ------------------------------------------------------------------------------------


async def service_time(sessions: Any) -> datetime:
    from triage.services.clock import service_now

    async with sessions() as db:
        return await service_now(db)


async def move_clock_to(sessions: Any, target: datetime) -> datetime:
    """Advance the shared service clock so that "now" is `target` (to the second; forward only)
    and return the new now."""
    from triage.services.clock import advance, service_now

    async with sessions() as db:
        now = await service_now(db)
        assert target >= now - timedelta(seconds=1), f"the clock only moves forward ({target})"
        seconds = math.ceil((target - now).total_seconds())
        if seconds > 0:
            await advance(db, timedelta(seconds=seconds))
        return await service_now(db)


async def reset_clock(sessions: Any) -> None:
    from triage.services.clock import reset

    async with sessions() as db:
        await reset(db)


# Waiting for the database -------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    within: float = 20,
    sweep: bool = False,
    what: str = "the database to show the result",
) -> T:
    """Poll `check` until it returns something truthy; with `sweep`, ask the worker for a sweep
    at the start and again every second while waiting."""
    deadline = time.monotonic() + within
    next_sweep = 0.0
    while True:
        if sweep and time.monotonic() >= next_sweep:
            send_sweep()
            next_sweep = time.monotonic() + 1.0
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)


def send_sweep() -> None:
    from workers.celery_app import celery_app

    celery_app.send_task("triage.sweep", expires=30)


# The worker ----------------------------------------------------------------------------------


@contextmanager
def celery_worker(log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process (prefork, concurrency 1) on the test database and Redis,
    with the outbox notifier. Stopped (warm shutdown, then killed) on the way out."""
    env = dict(os.environ, TRIAGE_NOTIFIER="outbox", PYTHONUNBUFFERED="1")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "triage.cli",
                "worker",
                "--concurrency",
                "1",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the pool child goes with it
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)


# Rows ----------------------------------------------------------------------------------------


async def one(sessions: Any, sql: str, **params: Any) -> Any:
    async with sessions() as db:
        return (await db.execute(text(sql), params)).first()


async def all_rows(sessions: Any, sql: str, **params: Any) -> list[Any]:
    async with sessions() as db:
        return list(await db.execute(text(sql), params))


async def open_step(sessions: Any, referral_id: str) -> Any:
    return await one(
        sessions,
        "SELECT * FROM contact_steps WHERE referral_id = :r "
        "AND status IN ('scheduled', 'due', 'paused')",
        r=referral_id,
    )


async def steps_of(sessions: Any, referral_id: str) -> list[Any]:
    return await all_rows(
        sessions,
        "SELECT * FROM contact_steps WHERE referral_id = :r ORDER BY number, created_at",
        r=referral_id,
    )


async def messages_of(sessions: Any, referral_id: str) -> list[Any]:
    return await all_rows(
        sessions,
        "SELECT * FROM messages WHERE referral_id = :r ORDER BY created_at, due_at",
        r=referral_id,
    )


async def outbox_of(sessions: Any, references: list[Any]) -> list[Any]:
    return await all_rows(
        sessions,
        "SELECT * FROM outbox WHERE reference = ANY(:refs) ORDER BY id",
        refs=[uuid.UUID(str(r)) for r in references],
    )


async def record(sessions: Any, step_id: Any, outcome: str, actor: str = "staff:test") -> Any:
    """A staff member's call outcome, through the service function, at the service clock."""
    from triage.services.catalogues import current_catalogue
    from triage.services.clock import service_now
    from triage.services.contact_plan import record_outcome

    async with sessions() as db:
        result = await record_outcome(
            db, uuid.UUID(str(step_id)), outcome, actor, current_catalogue(), await service_now(db)
        )
        await db.commit()
    return result


# Referral bodies -----------------------------------------------------------------------------


def plain(**changes: Any) -> dict[str, Any]:
    """An adult burglary victim with no Enhanced Rights (P3), default safe times, phone, SMS
    and email; `changes` as in helpers.referral."""
    base: dict[str, Any] = {
        "offence.category": "burglary",
        "offence.description": "shed broken into",
        "flags": [],
        "victim.vulnerabilities": [],
        "risk": {"dash_score": 0, "level": "standard", "marac_referred": False},
        "needs": ["practical"],
        "contact.channels": ["phone", "sms", "email"],
        "contact.safe_times": DELETE,
        "contact.notes": DELETE,
        "notes": DELETE,
    }
    base.update(changes)
    return referral(**base)


PRIORITY_CHANGES: dict[str, dict[str, Any]] = {
    "P1": {"risk": {"dash_score": 16, "level": "high", "marac_referred": True}},
    "P2": {"flags": ["repeat_victim"]},
    "P3": {},
}


def at_priority(priority: str, **changes: Any) -> dict[str, Any]:
    return plain(**{**PRIORITY_CHANGES[priority], **changes})


async def submit(client: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/referrals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
