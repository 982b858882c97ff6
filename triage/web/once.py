"""A form's one-time value: a form that makes something (an account, a key, a note) carries
one, and it is spent in Redis when the form is acted on, so the same form sent twice (a
double click without JavaScript, a reload after a slow answer, the back button) makes one
thing. Redis keeps only a hash of the value, for a day."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request
from litestar.exceptions import ClientException

from triage.web.forms import Form

ONCE_SECONDS = 24 * 3600
_ONCE_SHAPE = re.compile(r"[A-Za-z0-9_-]{32}")


def new_once() -> str:
    return secrets.token_urlsafe(24)


@asynccontextmanager
async def spend_once(request: Request[Any, Any, Any], form: Form) -> AsyncIterator[bool]:
    """Spend the form's one-time value: True the first time, False when it was spent before.
    A failure inside gives it back (nothing was made; the form may be sent again)."""
    token = form.get("once")
    if form.error_for("once") or not _ONCE_SHAPE.fullmatch(token):
        raise ClientException("the form's one-time value is missing")
    key = "staff-once:" + hashlib.sha256(token.encode()).hexdigest()
    redis = request.app.state.redis
    fresh = bool(await redis.set(key, b"1", nx=True, ex=ONCE_SECONDS))
    try:
        yield fresh
    except BaseException:
        if fresh:
            await redis.delete(key)
        raise
