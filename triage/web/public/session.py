"""A public form's session: a random id in a cookie, and in Redis, under a hash of it, only
the journey, the draft's id, the CSRF token and (after the submit, for the confirmation page
alone) the reference. Never an answer: those are in the draft, in PostgreSQL. It ends with the
draft's 60 minutes, or as the confirmation page is shown, so the back button finds nothing."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from redis.asyncio import Redis

COOKIE = "triage_form"
IDLE_SECONDS = 60 * 60  # the draft's own lifetime


@dataclass
class FormSession:
    journey: str
    draft: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # Set by the submit, read once by the confirmation page.
    reference: str | None = None


def _key(session_id: str) -> str:
    return "public-session:" + hashlib.sha256(session_id.encode()).hexdigest()


class FormSessions:
    def __init__(self, redis: Redis, *, secure: bool = True) -> None:
        self.redis = redis
        self.secure = secure

    async def load(
        self, request: ASGIConnection[Any, Any, Any, Any], journey: str
    ) -> tuple[str, FormSession] | None:
        session_id = request.cookies.get(COOKIE, "")
        if not session_id or len(session_id) > 100:
            return None
        raw = await self.redis.getex(_key(session_id), ex=IDLE_SECONDS)
        if raw is None:
            return None
        try:
            session = FormSession(**json.loads(raw))
        except (TypeError, ValueError):
            return None
        if session.journey != journey:
            return None
        return session_id, session

    async def save(self, session_id: str, session: FormSession) -> None:
        await self.redis.set(_key(session_id), json.dumps(asdict(session)), ex=IDLE_SECONDS)

    async def start(self, session: FormSession, old_id: str | None = None) -> Cookie:
        if old_id:
            await self.redis.delete(_key(old_id))
        session_id = secrets.token_urlsafe(32)
        await self.save(session_id, session)
        return self._cookie(session_id)

    async def end_any(
        self, request: ASGIConnection[Any, Any, Any, Any]
    ) -> tuple[str | None, Cookie]:
        """End whatever form session the browser has (either journey): the draft it held, for
        the caller to delete, and the cookie that clears it."""
        session_id = request.cookies.get(COOKIE, "")
        draft = None
        if session_id and len(session_id) <= 100:
            raw = await self.redis.getdel(_key(session_id))
            try:
                draft = json.loads(raw).get("draft") if raw else None
            except (TypeError, ValueError, AttributeError):
                draft = None
        return draft, self._cookie("", max_age=0)

    async def end(self, session_id: str) -> Cookie:
        await self.redis.delete(_key(session_id))
        return self._cookie("", max_age=0)

    def _cookie(self, value: str, max_age: int | None = None) -> Cookie:
        # A session cookie (no expiry kept on the device), only for the form's pages.
        return Cookie(
            key=COOKIE,
            value=value,
            max_age=max_age,
            path="/refer",
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )
