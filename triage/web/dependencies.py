"""How a page handler asks for its request's session: `db: Db` (the app provides it; see
triage.api.dependencies.provide_db: the same session convention for pages and the API)."""

from __future__ import annotations

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

Db = NamedDependency[AsyncSession]
