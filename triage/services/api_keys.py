"""API clients and their keys: keys shown once, stored as an HMAC under the server secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
import uuid
from dataclasses import dataclass

import asyncpg
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiClient, ApiKey
from triage.services.clock import service_now

SCOPES = ("referrals:write", "referrals:read", "aa:write", "reports:read")
DEFAULT_SCOPES = {
    "police": ("referrals:write", "referrals:read", "aa:write"),
    "professional": ("referrals:write", "referrals:read"),
}
_ALPHABET = string.ascii_letters + string.digits


class KeyError_(ValueError):
    pass


@dataclass(frozen=True)
class Caller:
    """Who is calling the API: the client and the scopes of the key used."""

    client_id: uuid.UUID
    source: str
    scopes: frozenset[str]
    per_minute: int
    batches_per_minute: int


def key_hash(secret: str, key: str) -> bytes:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).digest()


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


async def create_client(db: AsyncSession, name: str, source: str) -> ApiClient:
    if source not in DEFAULT_SCOPES:
        raise KeyError_("source must be police or professional")
    if (await db.execute(select(ApiClient).where(ApiClient.name == name))).scalar():
        raise KeyError_(f"a client named {name!r} already exists")
    client = ApiClient(id=uuid.uuid4(), name=name, source=source)
    db.add(client)
    await db.commit()
    return client


async def _client(db: AsyncSession, name: str) -> ApiClient:
    client = (await db.execute(select(ApiClient).where(ApiClient.name == name))).scalar()
    if client is None:
        raise KeyError_(f"no client named {name!r}")
    return client


async def set_limit(
    db: AsyncSession, name: str, per_minute: int | None, batches_per_minute: int | None
) -> ApiClient:
    client = await _client(db, name)
    if per_minute is not None:
        client.per_minute = per_minute
    if batches_per_minute is not None:
        client.batches_per_minute = batches_per_minute
    await db.commit()
    return client


async def create_key(db: AsyncSession, secret: str, name: str, scopes: tuple[str, ...] = ()) -> str:
    """A new key for the client; the key itself is returned once and never stored."""
    client = await _client(db, name)
    for scope in scopes:
        if scope not in SCOPES:
            raise KeyError_(f"unknown scope {scope!r} (one of {', '.join(SCOPES)})")
    prefix = _random(8)
    key = f"trg_{prefix}_{_random(32)}"
    db.add(
        ApiKey(
            id=uuid.uuid4(),
            client_id=client.id,
            prefix=prefix,
            key_hash=key_hash(secret, key),
            scopes=list(scopes or DEFAULT_SCOPES[client.source]),
        )
    )
    await db.commit()
    return key


async def rotate_key(db: AsyncSession, secret: str, name: str) -> str:
    """A new key with the newest key's scopes; old keys keep working until revoked."""
    client = await _client(db, name)
    newest = (
        await db.execute(
            select(ApiKey)
            .where(ApiKey.client_id == client.id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.created_at.desc())
            .limit(1)
        )
    ).scalar()
    scopes = tuple(newest.scopes) if newest else ()
    return await create_key(db, secret, name, scopes)


async def revoke_key(db: AsyncSession, prefix: str) -> bool:
    result = await db.execute(
        update(ApiKey)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        .values(revoked_at=await service_now(db))
    )
    await db.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


_KEY_LOOKUP = (
    "SELECT k.key_hash, k.scopes, c.id, c.source, c.per_minute, c.batches_per_minute "
    "FROM api_keys k JOIN api_clients c ON c.id = k.client_id "
    "WHERE k.prefix = $1 AND k.revoked_at IS NULL"
)


async def authenticate(connection: asyncpg.Connection, secret: str, key: str) -> Caller | None:
    """The caller a key belongs to; None for a malformed, unknown, revoked or wrong key.
    Runs on every API request: one prepared query on a plain asyncpg connection."""
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != "trg" or len(parts[1]) != 8 or len(parts[2]) != 32:
        return None
    row = await connection.fetchrow(_KEY_LOOKUP, parts[1])
    digest = key_hash(secret, key)
    if row is None:
        hmac.compare_digest(digest, bytes(32))  # the same work whether or not the prefix exists
        return None
    key_hash_, scopes, client_id, source, per_minute, batches_per_minute = row
    if not hmac.compare_digest(digest, bytes(key_hash_)):
        return None
    return Caller(client_id, source, frozenset(scopes), per_minute, batches_per_minute)


class KeyCache:
    """Callers of keys checked in the last `seconds`, by the key's HMAC (never the key): most
    requests then need no key query. A revoked key, or a changed limit or scope, takes
    effect within `seconds`; unknown and bad keys are never kept."""

    def __init__(self, secret: str, seconds: float, max_entries: int = 10_000):
        self._secret = secret
        self._seconds = seconds
        self._max_entries = max_entries
        self._entries: dict[bytes, tuple[float, Caller]] = {}

    def get(self, key: str) -> Caller | None:
        if self._seconds <= 0:
            return None
        entry = self._entries.get(key_hash(self._secret, key))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, caller: Caller) -> None:
        if self._seconds <= 0:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key_hash(self._secret, key)] = (time.monotonic() + self._seconds, caller)
