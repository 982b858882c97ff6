"""The catalogue in use, and the record of every catalogue version decisions were made with."""

from __future__ import annotations

import asyncpg
import msgspec

from triage.catalogue.loader import cached_catalogue
from triage.domain.catalogue import Catalogue
from triage.settings import get_settings

_stored: set[str] = set()


def current_catalogue() -> Catalogue:
    return cached_catalogue(get_settings().catalogue_path)


async def record_catalogue(connection: asyncpg.Connection, catalogue: Catalogue) -> None:
    """Keep the catalogue's content under its version, committed on its own (once per
    process), so every decision's version can be reproduced."""
    if catalogue.version in _stored:
        return
    await connection.execute(
        "INSERT INTO catalogue_versions (version, catalogue_id, content) "
        "VALUES ($1, $2, CAST($3 AS jsonb)) ON CONFLICT DO NOTHING",
        catalogue.version,
        catalogue.id,
        msgspec.json.encode(dict(catalogue.raw)).decode(),
    )
    _stored.add(catalogue.version)


def is_recorded(catalogue: Catalogue) -> bool:
    return catalogue.version in _stored


def forget_recorded() -> None:
    """For tests that start from an empty database in the same process."""
    _stored.clear()
