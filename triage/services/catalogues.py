"""The catalogue in use, and the record of every catalogue version decisions were made with."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import CatalogueVersion
from triage.catalogue.loader import cached_catalogue
from triage.domain.catalogue import Catalogue
from triage.settings import get_settings

_stored: set[str] = set()


def current_catalogue() -> Catalogue:
    return cached_catalogue(get_settings().catalogue_path)


async def record_catalogue(
    sessions: async_sessionmaker[AsyncSession], catalogue: Catalogue
) -> None:
    """Keep the catalogue's content under its version, committed on its own (once per
    process), so every decision's version can be reproduced."""
    if catalogue.version in _stored:
        return
    async with sessions() as db:
        await db.execute(
            insert(CatalogueVersion)
            .values(
                version=catalogue.version, catalogue_id=catalogue.id, content=dict(catalogue.raw)
            )
            .on_conflict_do_nothing()
        )
        await db.commit()
    _stored.add(catalogue.version)


def forget_recorded() -> None:
    """For tests that start from an empty database in the same process."""
    _stored.clear()
