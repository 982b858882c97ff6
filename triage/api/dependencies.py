"""The session a request's service command is given (services.units): one per request, made
only for the handlers that ask for it (intake's hot path does not), closed after the answer;
the command commits, never this dependency (a failed command's work is rolled back here)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

# How a handler asks for its request's session: `db: Db`.
Db = NamedDependency[AsyncSession]


async def provide_db(state: State) -> AsyncGenerator[AsyncSession, None]:
    async with state.sessions() as db:
        yield db
