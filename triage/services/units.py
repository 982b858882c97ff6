"""How a service command gets its session: one convention everywhere.

A service command takes the session it is given (and the caller acting) and commits once;
nothing is sent or woken before that commit. The web app gives each request one session (a
Litestar dependency, triage.api.dependencies); workers, the CLI and the tests run a command
through `in_session`, which opens one session for it and closes it afterwards (rolling back
whatever the command did not commit, on an error too). Intake's single-referral path is the
one exception, behind the same kind of function: it writes through its own asyncpg group
writer (services.group_writes), never through a session per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

P = ParamSpec("P")
T = TypeVar("T")


async def in_session(
    sessions: async_sessionmaker[AsyncSession],
    command: Callable[Concatenate[AsyncSession, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run `command(session, *args, **kwargs)` in a session of its own."""
    async with sessions() as db:
        return await command(db, *args, **kwargs)
