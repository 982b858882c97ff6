"""API clients and their keys: keys shown once, stored as an HMAC under the server secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import string
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiClient, ApiKey
from triage.domain import principals
from triage.domain.principals import Principal
from triage.services.audit import record_event
from triage.services.clock import service_now

SCOPES = ("referrals:write", "referrals:read", "aa:write", "reports:read")
DEFAULT_SCOPES = {
    "police": ("referrals:write", "referrals:read", "aa:write"),
    "professional": ("referrals:write", "referrals:read"),
    # The commissioner's own tools read reports, with disclosure control, and nothing else.
    "commissioner": ("reports:read",),
}
# Sources whose keys may carry no scope beyond their defaults.
ONLY_DEFAULT_SCOPES = frozenset({"commissioner"})
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

    @property
    def principal(self) -> Principal:
        """The client as the policy and the audit trail see it: its scopes are its roles."""
        return principals.client(self.client_id, self.scopes, self.source)


def key_hash(secret: str, key: str) -> bytes:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).digest()


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


# Who runs the operator's commands, as audit events record them (the staff UI's admins
# will act as themselves).
OPERATOR = "operator:cli"


async def create_client(
    db: AsyncSession, name: str, source: str, *, actor: str = OPERATOR
) -> ApiClient:
    if source not in DEFAULT_SCOPES:
        raise KeyError_(f"source must be one of {', '.join(DEFAULT_SCOPES)}")
    if (await db.execute(select(ApiClient).where(ApiClient.name == name))).scalar():
        raise KeyError_(f"a client named {name!r} already exists")
    client = ApiClient(id=uuid.uuid4(), name=name, source=source)
    db.add(client)
    await record_event(db, actor, "client.created", client.id, "api_client", {"source": source})
    await db.commit()
    return client


async def _client(db: AsyncSession, name: str) -> ApiClient:
    client = (await db.execute(select(ApiClient).where(ApiClient.name == name))).scalar()
    if client is None:
        raise KeyError_(f"no client named {name!r}")
    return client


async def set_limit(
    db: AsyncSession,
    name: str,
    per_minute: int | None,
    batches_per_minute: int | None,
    *,
    actor: str = OPERATOR,
) -> ApiClient:
    client = await _client(db, name)
    if per_minute is not None:
        client.per_minute = per_minute
    if batches_per_minute is not None:
        client.batches_per_minute = batches_per_minute
    await record_event(
        db,
        actor,
        "client.limits_changed",
        client.id,
        "api_client",
        {"per_minute": client.per_minute, "batches_per_minute": client.batches_per_minute},
    )
    await db.commit()
    return client


async def create_key(
    db: AsyncSession,
    secret: str,
    name: str,
    scopes: tuple[str, ...] = (),
    *,
    actor: str = OPERATOR,
    action: str = "key.created",
) -> str:
    """A new key for the client; the key itself is returned once and never stored (nor is it
    in the audit event: its prefix and scopes are)."""
    client = await _client(db, name)
    for scope in scopes:
        if scope not in SCOPES:
            raise KeyError_(f"unknown scope {scope!r} (one of {', '.join(SCOPES)})")
        if client.source in ONLY_DEFAULT_SCOPES and scope not in DEFAULT_SCOPES[client.source]:
            raise KeyError_(
                f"a {client.source} client's keys carry only "
                + ", ".join(DEFAULT_SCOPES[client.source])
            )
    prefix = _random(8)
    key = f"trg_{prefix}_{_random(32)}"
    granted = list(scopes or DEFAULT_SCOPES[client.source])
    key_id = uuid.uuid4()
    db.add(
        ApiKey(
            id=key_id,
            client_id=client.id,
            prefix=prefix,
            key_hash=key_hash(secret, key),
            scopes=granted,
        )
    )
    await record_event(
        db,
        actor,
        action,
        key_id,
        "api_key",
        {"client": str(client.id), "prefix": prefix, "scopes": granted},
    )
    await db.commit()
    return key


async def rotate_key(db: AsyncSession, secret: str, name: str, *, actor: str = OPERATOR) -> str:
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
    return await create_key(db, secret, name, scopes, actor=actor, action="key.rotated")


async def revoke_key(db: AsyncSession, prefix: str, *, actor: str = OPERATOR) -> bool:
    revoked = (
        await db.execute(
            update(ApiKey)
            .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
            .values(revoked_at=await service_now(db))
            .returning(ApiKey.id)
        )
    ).scalar()
    if revoked is not None:
        await record_event(db, actor, "key.revoked", revoked, "api_key", {"prefix": prefix})
    await db.commit()
    return revoked is not None


_KEY_LOOKUP = (
    "SELECT k.key_hash, k.scopes, c.id, c.source, c.per_minute, c.batches_per_minute "
    "FROM api_keys k JOIN api_clients c ON c.id = k.client_id "
    "WHERE k.prefix = $1 AND k.revoked_at IS NULL"
)
_ACTIVE_PREFIXES = "SELECT prefix FROM api_keys WHERE revoked_at IS NULL"
_KEY_SHAPE = re.compile(r"trg_([A-Za-z0-9]{8})_[A-Za-z0-9]{32}")


def key_prefix(key: str) -> str | None:
    """The prefix of a key of the right shape (`trg_<8>_<32>`, letters and digits), else None."""
    match = _KEY_SHAPE.fullmatch(key)
    return match.group(1) if match else None


def _check(secret: str, key: str, row: Any) -> Caller | None:
    digest = key_hash(secret, key)
    if row is None:
        hmac.compare_digest(digest, bytes(32))  # the same work whether or not the prefix exists
        return None
    key_hash_, scopes, client_id, source, per_minute, batches_per_minute = row
    if not hmac.compare_digest(digest, bytes(key_hash_)):
        return None
    return Caller(client_id, source, frozenset(scopes), per_minute, batches_per_minute)


class KeyDirectory:
    """The key checks of one web process, so that most requests (and every made-up key) cost
    no database query.

    - The prefixes of the active keys, read at most once every `refresh_seconds` (a quarter
      of a second), and only when a request names a prefix not among them. A prefix still
      unknown after that is looked up on its own only while this process has looked up fewer
      than `misses_per_second` such prefixes in the last second (a key created a moment ago
      works at once), and only for an address under its limit of failed checks; its absence
      is remembered for `miss_seconds`. However many made-up keys arrive, they cost at most
      four reads of the prefixes a second, a query each for the first few from an address,
      and never more than `misses_per_second` queries a second.
    - The row of each key prefix looked at in the last `seconds` (found or not), checked here
      by HMAC: a wrong secret sent again and again with a real prefix costs one query a
      second, and a revoked key, or a changed limit or scope, takes effect within `seconds`.

    `seconds` 0 turns both off: every request queries the database."""

    def __init__(
        self,
        secret: str,
        seconds: float,
        refresh_seconds: float = 0.25,
        misses_per_second: int = 50,
        miss_seconds: float = 10.0,
        max_entries: int = 10_000,
    ):
        self._secret = secret
        self._seconds = seconds
        self._refresh_seconds = refresh_seconds
        self._misses_per_second = misses_per_second
        self._miss_seconds = miss_seconds
        self._max_entries = max_entries
        self._prefixes: frozenset[str] = frozenset()
        self._prefixes_at = -float("inf")
        self._rows: dict[str, tuple[float, Any]] = {}
        self._misses: list[float] = []  # when prefixes not in the set were looked up
        self._refreshing: asyncio.Lock | None = None

    async def caller(
        self,
        connect: Callable[[], AbstractAsyncContextManager[Any]],
        key: str,
        may_look_up: Callable[[], Awaitable[bool]] | None = None,
    ) -> Caller | None:
        """The caller of `key`, or None; `connect()` gives an asyncpg connection when one is
        needed. A prefix not among the active ones is looked up on its own only when
        `may_look_up()` agrees (the caller's address is not over its limit of failed
        checks)."""
        prefix = key_prefix(key)
        if prefix is None:
            return None
        if self._seconds <= 0:
            async with connect() as db:
                return _check(self._secret, key, await db.fetchrow(_KEY_LOOKUP, prefix))
        now = time.monotonic()
        cached = self._rows.get(prefix)
        if prefix not in self._prefixes and (cached is None or cached[0] < now):
            await self._refresh(connect)
            if prefix not in self._prefixes and not (
                self._may_look_up_a_miss(now) and (may_look_up is None or await may_look_up())
            ):
                return None  # no such key, and no query for it
        if cached is None or cached[0] < now:
            async with connect() as db:
                row = await db.fetchrow(_KEY_LOOKUP, prefix)
            if len(self._rows) >= self._max_entries:
                self._rows.clear()
            # Found: trusted for `seconds`. Not found: remembered as missing a while longer.
            keep = self._seconds if row is not None else max(self._seconds, self._miss_seconds)
            cached = self._rows[prefix] = (now + keep, row)
        return _check(self._secret, key, cached[1])

    def _may_look_up_a_miss(self, now: float) -> bool:
        self._misses = [t for t in self._misses if now - t < 1.0]
        if len(self._misses) >= self._misses_per_second:
            return False
        self._misses.append(now)
        return True

    async def _refresh(self, connect: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
        if time.monotonic() - self._prefixes_at < self._refresh_seconds:
            return
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:  # one refresh at a time; the others use its answer
            if time.monotonic() - self._prefixes_at < self._refresh_seconds:
                return
            async with connect() as db:
                found = frozenset(r[0] for r in await db.fetch(_ACTIVE_PREFIXES))
            self._prefixes, self._prefixes_at = found, time.monotonic()
