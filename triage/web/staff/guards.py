"""Who is signed in, and what the page may do for them: one guard on the /staff router.

The guard loads the session from Redis and the account from PostgreSQL on every request (a
disabled account or "sign out everywhere" ends a session at once), makes the Principal, and
checks the permission the handler names in `opt["permission"]` against the policy. Handlers
ask for `staff: StaffContext` and never test a role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from triage.domain.policy import Forbidden, allows
from triage.domain.principals import Principal
from triage.services.staff_accounts import principal_for_session
from triage.web.sessions import SessionStore, StaffSession


class SignInRequired(Exception):
    """Not signed in: the page answers with a redirect to sign in, then back to `next_path`."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in required")
        self.next_path = next_path


@dataclass
class StaffContext:
    principal: Principal
    session_id: str
    session: StaffSession

    @property
    def csrf(self) -> str:
        return self.session.csrf

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.uuid

    def can(self, permission: str) -> bool:
        return allows(self.principal, permission)


def safe_next(path: str | None) -> str | None:
    """Only a path inside the staff pages: never another site (//evil, \\\\evil, a scheme)."""
    if not path or len(path) > 500 or not path.startswith("/staff/"):
        return None
    if path.startswith("//") or "\\" in path or any(ord(c) < 32 for c in path):
        return None
    return path


async def staff_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    if handler.opt.get("public"):
        return
    store: SessionStore = connection.app.state.staff_sessions
    loaded = await store.load(connection)
    here = connection.url.path
    if connection.url.query:
        here += "?" + connection.url.query
    if loaded is None or loaded[1].stage != "signed_in" or loaded[1].user_id is None:
        raise SignInRequired(here)
    session_id, session = loaded
    async with connection.app.state.sessions() as db:
        principal = await principal_for_session(db, uuid.UUID(session.user_id), _started(session))
    if principal is None:
        await store.end(session_id)
        raise SignInRequired(here)
    connection.state.staff = StaffContext(principal, session_id, session)
    permission = handler.opt.get("permission")
    if permission and not allows(principal, permission):
        raise Forbidden(permission)


def _started(session: StaffSession) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(session.started, UTC)


async def provide_staff(request: Any) -> StaffContext:
    return request.state.staff  # type: ignore[no-any-return]
