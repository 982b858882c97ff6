"""A public form's session: a random id in a cookie, and in Redis, under a hash of it, only
the journey, the draft's id, the CSRF token and (after the submit, for the confirmation page
alone) the reference. Never an answer: those are in the draft, in PostgreSQL. It ends with the
draft's 60 minutes, or as the confirmation page is shown, so the back button finds nothing."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from redis.asyncio import Redis

from triage.web.sessions import RedisSessions

COOKIE = "triage_form"
IDLE_SECONDS = 60 * 60  # the draft's own lifetime


@dataclass
class FormSession:
    journey: str
    draft: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # Set by the submit, read once by the confirmation page.
    reference: str | None = None
    # A page's hidden field was filled in (the honeypot): the referral is flagged for the hub.
    automated: bool = False


class FormSessions(RedisSessions[FormSession]):
    def __init__(self, redis: Redis, *, secure: bool = True) -> None:
        # Only the form's pages get the cookie.
        super().__init__(
            redis,
            FormSession,
            cookie=COOKIE,
            prefix="public-session:",
            idle=IDLE_SECONDS,
            path="/refer",
            secure=secure,
        )

    async def load(
        self, request: ASGIConnection[Any, Any, Any, Any], journey: str
    ) -> tuple[str, FormSession] | None:
        """This journey's session (another journey's is not this one's)."""
        loaded = await self.read(request)
        return loaded if loaded is not None and loaded[1].journey == journey else None

    async def end_any(
        self, request: ASGIConnection[Any, Any, Any, Any]
    ) -> tuple[str | None, Cookie]:
        """End whatever form session the browser has (either journey): the draft it held, for
        the caller to delete, and the cookie that clears it."""
        session_id = self.cookie_id(request)
        draft = None
        if session_id is not None:
            raw = await self.redis.getdel(self._key(session_id))
            try:
                draft = json.loads(raw).get("draft") if raw else None
            except (TypeError, ValueError, AttributeError):
                draft = None
        return draft, self.cookie("", max_age=0)
