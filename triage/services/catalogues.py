"""The catalogue in use, and the record of every catalogue version decisions were made with."""

from __future__ import annotations

import asyncpg
import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from triage.catalogue.loader import cached_catalogue
from triage.domain.catalogue import Catalogue
from triage.settings import get_settings

_stored: set[str] = set()


def current_catalogue() -> Catalogue:
    return cached_catalogue(get_settings().catalogue_path)


_RECORD = (
    "INSERT INTO catalogue_versions (version, catalogue_id, content) "
    "VALUES ($1, $2, CAST($3 AS jsonb)) ON CONFLICT DO NOTHING"
)


async def record_catalogue(db: asyncpg.Connection | AsyncSession, catalogue: Catalogue) -> None:
    """Keep the catalogue's content under its version, so every decision's version can be
    reproduced: on a plain asyncpg connection (autocommit) once per process; in a service
    command's session, inside its transaction until the version is known to be there."""
    if catalogue.version in _stored:
        return
    values = (catalogue.version, catalogue.id, msgspec.json.encode(dict(catalogue.raw)).decode())
    if isinstance(db, AsyncSession):
        # Not remembered: the command's transaction may still roll back.
        await db.execute(
            text(_RECORD.replace("$1", ":v").replace("$2", ":i").replace("$3", ":c")),
            dict(zip(("v", "i", "c"), values, strict=True)),
        )
        return
    await db.execute(_RECORD, *values)
    _stored.add(catalogue.version)


def is_recorded(catalogue: Catalogue) -> bool:
    return catalogue.version in _stored


def forget_recorded() -> None:
    """For tests that start from an empty database in the same process."""
    _stored.clear()
