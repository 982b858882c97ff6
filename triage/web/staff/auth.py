"""Signing in (email and password, then a TOTP or recovery code), signing out, and an
account's set-up link (password, then two-factor, then recovery codes shown once).

Each step's failure says nothing about which part was wrong or whether the account exists.
The session id is replaced at every step that changes what it grants."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import segno
from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from triage.services import staff_accounts as accounts
from triage.web.dependencies import Db
from triage.web.forms import Form, read_form
from triage.web.pages import render
from triage.web.sessions import SessionStore, StaffSession
from triage.web.staff.guards import StaffContext, safe_next

DEVICE_COOKIE = "triage_device"
DEVICE_DAYS = 90


def _store(request: Request[Any, Any, Any]) -> SessionStore:
    return request.app.state.staff_sessions  # type: ignore[no-any-return]


def _device_mark(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), f"device:{user_id}".encode(), hashlib.sha256).hexdigest()


def _trusted_device(request: Request[Any, Any, Any], user_id: uuid.UUID) -> bool:
    """Whether this browser signed in to `user_id` before (throttling spares it)."""
    secret = request.app.state.settings.secret_key
    value = request.cookies.get(DEVICE_COOKIE, "")
    return hmac.compare_digest(value, f"{user_id}.{_device_mark(secret, str(user_id))}")


def _device_cookie(request: Request[Any, Any, Any], user_id: uuid.UUID, secure: bool) -> Cookie:
    secret = request.app.state.settings.secret_key
    return Cookie(
        key=DEVICE_COOKIE,
        value=f"{user_id}.{_device_mark(secret, str(user_id))}",
        max_age=DEVICE_DAYS * 86400,
        path="/staff",
        httponly=True,
        secure=secure,
        samesite="lax",
    )


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


async def _anonymous(
    request: Request[Any, Any, Any],
) -> tuple[str | None, StaffSession, list[Cookie]]:
    """The visitor's session, or a new anonymous one (holding the form's CSRF token)."""
    store = _store(request)
    loaded = await store.load(request)
    if loaded is not None:
        return loaded[0], loaded[1], []
    session = StaffSession()
    cookie = await store.start(session)
    return cookie.value, session, [cookie]


class SignInController(Controller):
    path = "/staff"
    opt = {"public": True}  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/sign-in")
    async def sign_in_page(
        self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None
    ) -> Any:
        session_id, session, cookies = await _anonymous(request)
        if session.stage == "signed_in":
            return Redirect("/staff/")
        target = safe_next(next)
        if target and session_id:
            session.next_path = target
            await _store(request).save(session_id, session)
        flash, session.flash = session.flash, None
        if flash and session_id:
            await _store(request).save(session_id, session)
        return render(
            "staff/sign_in.html",
            cookies=cookies,
            title="Sign in",
            csrf=session.csrf,
            form=None,
            flash=flash,
        )

    @post("/sign-in")
    async def sign_in(self, request: Request[Any, Any, Any], db: Db) -> Any:
        store = _store(request)
        loaded = await store.load(request)
        if loaded is None:
            return Redirect("/staff/sign-in")
        session_id, session = loaded
        form = await read_form(request, session.csrf)
        failures = request.app.state.sign_in_failures
        now = time.time()
        if await failures.is_over(_address(request), now):
            return _too_many(session.csrf)
        email, password = form.get("email"), form.values.get("password", "")
        if not email:
            form.error("email", "Enter your email address")
        if not password:
            form.error("password", "Enter your password")
        result = accounts.SignInResult(None)
        if not form.errors:
            # The user id is only known when the password is right; a trusted device is
            # checked for the account the email names (it only lifts throttling).
            result = await accounts.check_password(
                db, email, password, device_user=_device_user(request)
            )
        if result.throttled:
            await failures.over_limit(_address(request), now)
            return _too_many(session.csrf)
        if result.user_id is None:
            if not form.errors:
                await failures.over_limit(_address(request), now)
                form.errors = [("email", accounts.SIGN_IN_FAILED)]
            return render(
                "staff/sign_in.html",
                status=400,
                title="Sign in",
                csrf=session.csrf,
                form=form,
                error_summary=form.summary,
            )
        pending = StaffSession(
            stage="password", user_id=str(result.user_id), next_path=session.next_path
        )
        cookie = await store.start(pending, old_id=session_id)
        return Redirect("/staff/two-factor", cookies=[cookie])

    @get("/two-factor")
    async def two_factor_page(self, request: Request[Any, Any, Any]) -> Any:
        loaded = await _store(request).load(request)
        if loaded is None or loaded[1].stage != "password":
            return Redirect("/staff/sign-in")
        return render(
            "staff/two_factor.html",
            title="Enter your security code",
            csrf=loaded[1].csrf,
            form=None,
        )

    @post("/two-factor")
    async def two_factor(self, request: Request[Any, Any, Any], db: Db) -> Any:
        store = _store(request)
        loaded = await store.load(request)
        if loaded is None or loaded[1].stage != "password" or loaded[1].user_id is None:
            return Redirect("/staff/sign-in")
        session_id, session = loaded
        form = await read_form(request, session.csrf)
        user_id = uuid.UUID(session.user_id)
        code = form.get("code")
        if not code:
            form.error("code", "Enter the 6-digit code from your authenticator app")
            result = accounts.SignInResult(None)
        elif not await _first_use(request, user_id, code):
            # A code seen before (read over a shoulder, or replayed) is refused like a wrong
            # one, and counted as one.
            result = await accounts.check_second_factor(
                db,
                request.app.state.settings.secret_key,
                user_id,
                "replayed",
                trusted_device=_trusted_device(request, user_id),
            )
        else:
            result = await accounts.check_second_factor(
                db,
                request.app.state.settings.secret_key,
                user_id,
                code,
                trusted_device=_trusted_device(request, user_id),
            )
        if result.throttled:
            await store.end(session_id)
            return _too_many(session.csrf)
        if result.user_id is None:
            if not form.errors:
                await request.app.state.sign_in_failures.over_limit(_address(request), time.time())
                form.error("code", "Enter a correct security code")
            return render(
                "staff/two_factor.html",
                status=400,
                title="Enter your security code",
                csrf=session.csrf,
                form=form,
                error_summary=form.summary,
            )
        signed_in = StaffSession(stage="signed_in", user_id=str(user_id))
        cookie = await store.start(signed_in, old_id=session_id)
        device = _device_cookie(request, user_id, store.secure)
        return Redirect(session.next_path or "/staff/", cookies=[cookie, device])

    @post("/sign-out")
    async def sign_out(self, request: Request[Any, Any, Any]) -> Any:
        store = _store(request)
        loaded = await store.load(request)
        if loaded is None:
            return Redirect("/staff/sign-in")
        await read_form(request, loaded[1].csrf)
        await store.end(loaded[0])
        session = StaffSession(flash="You have signed out")
        cookie = await store.start(session)
        return Redirect("/staff/sign-in", cookies=[cookie])

    @get("/set-up/{token:str}")
    async def set_up_page(
        self, request: Request[Any, Any, Any], db: Db, token: FromPath[str]
    ) -> Any:
        user = await accounts.setup_user(db, request.app.state.settings.secret_key, token)
        _, session, cookies = await _anonymous(request)
        if user is None:
            return render("staff/set_up_expired.html", status=404, title="This link has expired")
        return render(
            "staff/set_up_password.html",
            cookies=cookies,
            title="Create your password",
            csrf=session.csrf,
            form=None,
            token=token,
        )

    @post("/set-up/{token:str}")
    async def set_up(self, request: Request[Any, Any, Any], db: Db, token: FromPath[str]) -> Any:
        loaded = await _store(request).load(request)
        if loaded is None:
            return Redirect(f"/staff/set-up/{token}")
        form = await read_form(request, loaded[1].csrf)
        try:
            await accounts.set_password(
                db,
                request.app.state.settings.secret_key,
                token,
                form.values.get("password", ""),
                form.values.get("confirm", ""),
            )
        except accounts.AccountProblem as problem:
            if problem.field == "token":
                return render(
                    "staff/set_up_expired.html", status=404, title="This link has expired"
                )
            form.error(problem.field, problem.message)
            return render(
                "staff/set_up_password.html",
                status=400,
                title="Create your password",
                csrf=loaded[1].csrf,
                form=form,
                token=token,
                error_summary=form.summary,
            )
        return Redirect(f"/staff/set-up/{token}/two-factor")

    @get("/set-up/{token:str}/two-factor")
    async def set_up_two_factor_page(
        self, request: Request[Any, Any, Any], db: Db, token: FromPath[str]
    ) -> Any:
        user = await accounts.setup_user(db, request.app.state.settings.secret_key, token)
        loaded = await _store(request).load(request)
        if user is None or loaded is None:
            return render("staff/set_up_expired.html", status=404, title="This link has expired")
        if user.password_hash is None:
            return Redirect(f"/staff/set-up/{token}")
        return _two_factor_setup(user, token, loaded[1].csrf, None)

    @post("/set-up/{token:str}/two-factor")
    async def set_up_two_factor(
        self, request: Request[Any, Any, Any], db: Db, token: FromPath[str]
    ) -> Any:
        secret = request.app.state.settings.secret_key
        loaded = await _store(request).load(request)
        if loaded is None:
            return Redirect(f"/staff/set-up/{token}/two-factor")
        form = await read_form(request, loaded[1].csrf)
        try:
            _, codes = await accounts.confirm_two_factor(db, secret, token, form.get("code"))
        except accounts.AccountProblem as problem:
            user = await accounts.setup_user(db, secret, token)
            if problem.field == "token" or user is None:
                return render(
                    "staff/set_up_expired.html", status=404, title="This link has expired"
                )
            form.error("code", problem.message)
            return _two_factor_setup(user, token, loaded[1].csrf, form, status=400)
        return render("staff/recovery_codes.html", title="Your recovery codes", codes=codes)


REPLAY_SECONDS = 120  # longer than a code's life: 30 s, and one step either side accepted


async def _first_use(request: Request[Any, Any, Any], user_id: uuid.UUID, code: str) -> bool:
    """Whether this security code is used for the first time by this account (a code is
    good for up to 90 seconds: it must not sign anyone else in within them). Redis keeps a
    keyed hash of the account and the code, never either, for two minutes."""
    secret = request.app.state.settings.secret_key
    mark = hmac.new(
        secret.encode(), f"totp:{user_id}:{code.replace(' ', '')}".encode(), hashlib.sha256
    ).hexdigest()
    fresh = await request.app.state.redis.set(f"totp-used:{mark}", 1, nx=True, ex=REPLAY_SECONDS)
    return bool(fresh)


def _device_user(request: Request[Any, Any, Any]) -> uuid.UUID | None:
    value = request.cookies.get(DEVICE_COOKIE, "")
    user_part = value.partition(".")[0]
    try:
        user_id = uuid.UUID(user_part)
    except ValueError:
        return None
    return user_id if _trusted_device(request, user_id) else None


def _two_factor_setup(
    user: Any, token: FromPath[str], csrf: str, form: Form | None, status: int = 200
) -> Template:
    uri = accounts.totp_uri(user)
    qr_svg = segno.make(uri, error="m").svg_inline(
        scale=5, title="QR code for your authenticator app"
    )
    return render(
        "staff/set_up_two_factor.html",
        status=status,
        title="Set up two-factor authentication",
        csrf=csrf,
        form=form,
        token=token,
        qr_svg=qr_svg,
        secret=user.totp_secret,
        error_summary=form.summary if form else None,
    )


def _too_many(csrf: str) -> Template:
    return render(
        "error.html",
        status=429,
        title="Too many attempts",
        advice="Wait 15 minutes, then try again, or ask an administrator to unlock your account.",
        code=429,
    )


def staff_context(request: Request[Any, Any, Any]) -> StaffContext:
    return request.state.staff  # type: ignore[no-any-return]
