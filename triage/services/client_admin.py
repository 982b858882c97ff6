"""API clients and their keys as an admin manages them in the pages: the policy's
`client.manage` checked, the input checked with messages for a person, then the same
commands the operator's CLI runs (services.api_keys), acting as the admin (each audited
there: client.created, client.limits_changed, key.created, key.rotated, key.revoked).

Clients are named by id here (the pages' URLs); api_keys names them by their unique name."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiClient, ApiKey
from triage.domain.checker import clean_text
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.services import api_keys

DEFAULT_SCOPES = api_keys.DEFAULT_SCOPES
SOURCES = tuple(DEFAULT_SCOPES)  # police, professional
SCOPES = api_keys.SCOPES
MAX_NAME = 100
MAX_PER_MINUTE = 100_000
MAX_BATCHES_PER_MINUTE = 10_000


class NoSuchClient(LookupError):
    """No client with this id, or no key with this prefix for it (a page answers 404)."""


class ClientProblem(Exception):
    """A refusal to show a person: `field` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class KeyRow:
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class ClientRow:
    id: uuid.UUID
    name: str
    source: str
    per_minute: int
    batches_per_minute: int
    created_at: datetime
    keys: tuple[KeyRow, ...]

    @property
    def active_keys(self) -> int:
        return sum(1 for k in self.keys if k.revoked_at is None)


async def _rows(db: AsyncSession, client_id: uuid.UUID | None) -> list[ClientRow]:
    clients_query = select(ApiClient).order_by(ApiClient.name)
    keys_query = select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.prefix)
    if client_id is not None:
        clients_query = clients_query.where(ApiClient.id == client_id)
        keys_query = keys_query.where(ApiKey.client_id == client_id)
    clients = (await db.scalars(clients_query)).all()
    keys: dict[uuid.UUID, list[KeyRow]] = {}
    for key in (await db.scalars(keys_query)).all():
        keys.setdefault(key.client_id, []).append(
            KeyRow(key.prefix, tuple(key.scopes), key.created_at, key.revoked_at)
        )
    return [
        ClientRow(
            c.id,
            c.name,
            c.source,
            c.per_minute,
            c.batches_per_minute,
            c.created_at,
            tuple(keys.get(c.id, [])),
        )
        for c in clients
    ]


async def clients(db: AsyncSession, principal: Principal) -> list[ClientRow]:
    """Every client with its keys (newest first): prefixes, scopes and dates, never a key."""
    require(principal, "client.manage")
    return await _rows(db, None)


async def client(db: AsyncSession, principal: Principal, client_id: uuid.UUID) -> ClientRow:
    require(principal, "client.manage")
    found = await _rows(db, client_id)
    if not found:
        raise NoSuchClient(str(client_id))
    return found[0]


def check_client_fields(name: str, source: str) -> list[ClientProblem]:
    problems = []
    if not name:
        problems.append(ClientProblem("name", "Enter the client's name"))
    elif len(name) > MAX_NAME:
        problems.append(ClientProblem("name", f"Name must be {MAX_NAME} characters or fewer"))
    elif clean_text(name) != name:
        problems.append(
            ClientProblem("name", "Name must only use letters, numbers, spaces and punctuation")
        )
    if source not in SOURCES:
        problems.append(ClientProblem("source", "Select where the client's referrals come from"))
    return problems


async def create_client(
    db: AsyncSession, principal: Principal, name: str, source: str
) -> uuid.UUID:
    require(principal, "client.manage")
    problems = check_client_fields(name, source)
    if problems:
        raise problems[0]
    if await db.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
        raise ClientProblem("name", "A client with this name exists")
    try:
        made = await api_keys.create_client(db, name, source, actor=principal.actor)
    except api_keys.KeyError_:
        # Created by someone else between the check and the insert.
        raise ClientProblem("name", "A client with this name exists") from None
    return made.id


def check_scopes(scopes: list[str], source: str | None = None) -> list[ClientProblem]:
    if not scopes:
        return [ClientProblem("scopes", "Select at least one scope")]
    if any(scope not in SCOPES for scope in scopes):
        return [ClientProblem("scopes", "Select scopes from the list")]
    if source in api_keys.ONLY_DEFAULT_SCOPES and any(
        scope not in api_keys.DEFAULT_SCOPES[source] for scope in scopes
    ):
        allowed = ", ".join(api_keys.DEFAULT_SCOPES[source])
        return [ClientProblem("scopes", f"A {source} client's keys carry only {allowed}")]
    return []


async def create_key(
    db: AsyncSession,
    principal: Principal,
    secret: str,
    client_id: uuid.UUID,
    scopes: list[str],
) -> str:
    """A new key with these scopes: the key itself is returned once and never stored."""
    found = await client(db, principal, client_id)
    problems = check_scopes(scopes, found.source)
    if problems:
        raise problems[0]
    ordered = tuple(s for s in SCOPES if s in scopes)
    return await api_keys.create_key(db, secret, found.name, ordered, actor=principal.actor)


async def rotate_key(
    db: AsyncSession, principal: Principal, secret: str, client_id: uuid.UUID
) -> str:
    """A new key with the newest active key's scopes (the client's defaults when it has
    none); the old keys keep working until revoked."""
    found = await client(db, principal, client_id)
    return await api_keys.rotate_key(db, secret, found.name, actor=principal.actor)


async def revoke_key(
    db: AsyncSession, principal: Principal, client_id: uuid.UUID, prefix: str
) -> bool:
    """True if this revoked the key, False if it was revoked already."""
    found = await client(db, principal, client_id)
    if not any(key.prefix == prefix for key in found.keys):
        raise NoSuchClient(prefix)
    return await api_keys.revoke_key(db, prefix, actor=principal.actor)


def parse_limit(value: str, field: str, most: int) -> int | ClientProblem:
    text = value.strip().replace(",", "")
    if not text:
        return ClientProblem(field, "Enter a number")
    if not (text.isascii() and text.isdigit()) or len(text) > 7 or not 1 <= int(text) <= most:
        return ClientProblem(field, f"Enter a whole number from 1 to {most:,}")
    return int(text)


async def set_limits(
    db: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID,
    per_minute: int,
    batches_per_minute: int,
) -> None:
    found = await client(db, principal, client_id)
    if not 1 <= per_minute <= MAX_PER_MINUTE:
        raise ClientProblem("per_minute", f"Enter a whole number from 1 to {MAX_PER_MINUTE:,}")
    if not 1 <= batches_per_minute <= MAX_BATCHES_PER_MINUTE:
        raise ClientProblem(
            "batches_per_minute", f"Enter a whole number from 1 to {MAX_BATCHES_PER_MINUTE:,}"
        )
    await api_keys.set_limit(db, found.name, per_minute, batches_per_minute, actor=principal.actor)
