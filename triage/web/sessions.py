"""Server-side sessions in Redis, for people (the staff pages).

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
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from redis.asyncio import Redis

COOKIE = "triage_session"
IDLE_SECONDS = 30 * 60
LIFETIME_SECONDS = 12 * 60 * 60


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


def _key(session_id: str) -> str:
    return "staff-session:" + hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(self, redis: Redis, *, secure: bool = True) -> None:
        self.redis = redis
        self.secure = secure

    async def load(
        self, request: ASGIConnection[Any, Any, Any, Any]
    ) -> tuple[str, StaffSession] | None:
        session_id = request.cookies.get(COOKIE, "")
        if not session_id or len(session_id) > 100:
            return None
        # Read and start the idle period again in one round trip (every page asks).
        raw = await self.redis.getex(_key(session_id), ex=IDLE_SECONDS)
        if raw is None:
            return None
        try:
            session = StaffSession(**json.loads(raw))
        except (TypeError, ValueError):
            return None
        if time.time() - session.started > LIFETIME_SECONDS:
            await self.redis.delete(_key(session_id))
            return None
        return session_id, session

    async def save(self, session_id: str, session: StaffSession) -> None:
        await self.redis.set(_key(session_id), json.dumps(asdict(session)), ex=IDLE_SECONDS)

    async def start(self, session: StaffSession, old_id: str | None = None) -> Cookie:
        """A new id for `session` (the old one, if any, deleted): the cookie to set."""
        if old_id:
            await self.redis.delete(_key(old_id))
        session_id = secrets.token_urlsafe(32)
        await self.save(session_id, session)
        return self.cookie(session_id)

    async def end(self, session_id: str) -> Cookie:
        await self.redis.delete(_key(session_id))
        return Cookie(
            key=COOKIE,
            value="",
            max_age=0,
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )

    def cookie(self, session_id: str) -> Cookie:
        return Cookie(
            key=COOKIE,
            value=session_id,
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )
