"""Server-side sessions in Redis, for people (the staff pages; the public forms' use the same
store with their own parameters, web/public/session.py).

The cookie holds a random id only; Redis holds, under a hash of that id, the user's id, the
stage of signing in, the CSRF token and the times (never personal data). The id is replaced at
every change of privilege (signing in, signing out), so an id planted before sign-in is worth
nothing after it. A session ends after IDLE without a request (Redis expires it) and after
LIFETIME whatever happens; an account disabled or signed out everywhere ends it at once
(checked against the database on every request, web/staff/guards).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from redis.asyncio import Redis

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

COOKIE = "triage_session"
IDLE_SECONDS = 30 * 60
LIFETIME_SECONDS = 12 * 60 * 60


S = TypeVar("S", bound="DataclassInstance")


@dataclass
class StaffSession:
    # anonymous: only a CSRF token (the sign-in form); password: the password was right and
    # the second factor is awaited for `user_id`; signed_in: `user_id` is signed in.
    stage: str = "anonymous"
    user_id: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    started: float = field(default_factory=time.time)
    # Where to go after signing in (a /staff path, checked when it was stored).
    next_path: str | None = None
    # A flash message for the next page ("Note added").
    flash: str | None = None


class RedisSessions(Generic[S]):
    """Sessions of one kind in Redis: a random id in an HttpOnly cookie, the session (a
    dataclass of ids and tokens, never personal data) as JSON under a hash of that id, idle
    `idle` seconds before Redis expires it; each read starts the idle period again in the same
    round trip. The staff's and the public forms' sessions differ only in these parameters and
    in what makes a loaded session valid."""

    def __init__(
        self,
        redis: Redis,
        kind: type[S],
        *,
        cookie: str,
        prefix: str,
        idle: int,
        path: str = "/",
        secure: bool = True,
    ) -> None:
        self.redis = redis
        self.kind = kind
        self.cookie_name = cookie
        self.prefix = prefix
        self.idle = idle
        self.path = path
        self.secure = secure

    def _key(self, session_id: str) -> str:
        return self.prefix + hashlib.sha256(session_id.encode()).hexdigest()

    def cookie_id(self, request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        session_id = request.cookies.get(self.cookie_name, "")
        return session_id if session_id and len(session_id) <= 100 else None

    async def read(self, request: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, S] | None:
        session_id = self.cookie_id(request)
        if session_id is None:
            return None
        raw = await self.redis.getex(self._key(session_id), ex=self.idle)
        if raw is None:
            return None
        try:
            return session_id, self.kind(**json.loads(raw))
        except (TypeError, ValueError):
            return None

    async def save(self, session_id: str, session: S) -> None:
        await self.redis.set(self._key(session_id), json.dumps(asdict(session)), ex=self.idle)

    async def start(self, session: S, old_id: str | None = None) -> Cookie:
        """A new id for `session` (the old one, if any, deleted): the cookie to set."""
        if old_id:
            await self.redis.delete(self._key(old_id))
        session_id = secrets.token_urlsafe(32)
        await self.save(session_id, session)
        return self.cookie(session_id)

    async def end(self, session_id: str) -> Cookie:
        await self.redis.delete(self._key(session_id))
        return self.cookie("", max_age=0)

    def cookie(self, session_id: str, max_age: int | None = None) -> Cookie:
        return Cookie(
            key=self.cookie_name,
            value=session_id,
            max_age=max_age,
            path=self.path,
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )


class SessionStore(RedisSessions[StaffSession]):
    def __init__(self, redis: Redis, *, secure: bool = True) -> None:
        super().__init__(
            redis,
            StaffSession,
            cookie=COOKIE,
            prefix="staff-session:",
            idle=IDLE_SECONDS,
            secure=secure,
        )

    async def load(
        self, request: ASGIConnection[Any, Any, Any, Any]
    ) -> tuple[str, StaffSession] | None:
        loaded = await self.read(request)
        if loaded is None:
            return None
        session_id, session = loaded
        if time.time() - session.started > LIFETIME_SECONDS:
            await self.redis.delete(self._key(session_id))
            return None
        return loaded
