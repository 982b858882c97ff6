"""Staff accounts: creation with a one-time set-up link, passwords (argon2id) and TOTP
two-factor with recovery codes, sign-in checks with throttling, and the admin's actions
(disable, reset two-factor, unlock, sign out everywhere).

Throttling is never a lockout that anyone could trigger against a colleague: after
FAILURES_BEFORE_THROTTLE failed sign-ins an account is throttled for THROTTLE (each further
failure starts it again), except from a browser that has signed in to that account before
(a trusted-device cookie, web/staff/devices), and an admin can lift it at once. Failures per
address are counted apart, in Redis (web/staff/throttle).

A new or reset account's set-up link is shown (printed by `triage users`, shown once to the
admin) or, with a real provider, emailed: then no token is made here at all, only a row that
says "email user X their set-up link", in the same transaction, and the worker issues the
link as it sends (services/setup_emails).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.checker import clean_text
from triage.domain.policy import STAFF_ROLES, require
from triage.domain.principals import Principal
from triage.services.audit import record_event
from triage.services.clock import service_now
from triage.settings import Settings

SETUP_LINK_LIFETIME = timedelta(days=3)
FAILURES_BEFORE_THROTTLE = 5
THROTTLE = timedelta(minutes=15)
MIN_PASSWORD = 12
RECOVERY_CODES = 8
TOTP_ISSUER = "Victim referral triage"

_hasher = PasswordHasher()
# A hash to check against when there is no account, so an unknown email costs the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountProblem(Exception):
    """A refusal to show a person: `field` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class NewAccount:
    user_id: uuid.UUID
    # The set-up link's token when the link is shown, or the set-up email's row when emailed.
    setup_token: str | None
    setup_email_id: uuid.UUID | None = None


def setup_links_emailed(settings: Settings) -> bool:
    """Whether a new or reset account's set-up link is emailed to the person (a row for the
    workers) rather than shown: only with a real provider (TRIAGE_NOTIFIER=notify, as in
    production). In dev and the tests (the outbox notifier) the CLI prints it and the admin's
    page shows it once, and nothing is emailed: the worker would issue a fresh link as it
    sends, which ends the one just printed, and an outbox reaches nobody."""
    return settings.notifier == "notify"


def setup_link(base_url: str, token: str) -> str:
    """The link as it is printed, shown and emailed: TRIAGE_BASE_URL's set-up page."""
    return f"{base_url}/staff/set-up/{token}"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _token_hash(secret_key: str, token: str) -> bytes:
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).digest()


def _recovery_hash(secret_key: str, code: str) -> str:
    cleaned = code.replace("-", "").replace(" ", "").lower()
    return hmac.new(
        secret_key.encode(), b"recovery:" + cleaned.encode(), hashlib.sha256
    ).hexdigest()


def check_account_fields(email: str, roles: list[str], services: list[str]) -> list[AccountProblem]:
    problems = []
    email = normalise_email(email)
    if not email or "@" not in email or len(email) > 254 or clean_text(email) != email:
        problems.append(AccountProblem("email", "Enter an email address, like name@example.org"))
    if not roles:
        problems.append(AccountProblem("roles", "Select at least one role"))
    for role in roles:
        if role not in STAFF_ROLES:
            problems.append(AccountProblem("roles", f"Select roles from the list ({role!r})"))
    if "caseworker" in roles and not services:
        problems.append(AccountProblem("services", "Select the services a caseworker works on"))
    return problems


async def create_account(
    db: AsyncSession,
    principal: Principal,
    secret_key: str,
    email: str,
    roles: list[str],
    services: list[str],
    known_services: frozenset[str],
    *,
    email_link: bool = False,
) -> NewAccount:
    """A new account and its one-time set-up link: the token, to show once (printed by the
    CLI, shown to the admin), or with `email_link` (production) no token but a set-up email
    queued in this same transaction (a failed creation queues nothing)."""
    require(principal, "user.manage")
    problems = check_account_fields(email, roles, services)
    problems += [
        AccountProblem("services", f"There is no service {code!r} in the catalogue")
        for code in services
        if code not in known_services
    ]
    email = normalise_email(email)
    taken = await db.scalar(select(models.StaffUser.id).where(models.StaffUser.email == email))
    if taken is not None:
        problems.append(AccountProblem("email", "An account with this email address exists"))
    if problems:
        raise problems[0]
    user_id = uuid.uuid4()
    db.add(
        models.StaffUser(
            id=user_id, email=email, roles=sorted(set(roles)), services=sorted(set(services))
        )
    )
    await db.flush()
    token, email_id = await _setup_link(db, secret_key, user_id, email_link)
    await record_event(
        db, principal.actor, "user.created", user_id, "staff_user", {"roles": sorted(roles)}
    )
    await db.commit()
    return NewAccount(user_id, token, email_id)


async def _setup_link(
    db: AsyncSession, secret_key: str, user_id: uuid.UUID, email_link: bool
) -> tuple[str | None, uuid.UUID | None]:
    """A new set-up link in the caller's transaction: its token to show, or (`email_link`)
    the set-up email that will carry it. Either way earlier links stop working and a set-up
    email not sent yet is cancelled, queued or being sent (a retry of one whose answer was
    lost would issue a link that ends this one; one mid-send carries a link this one ends).
    The caller holds the account's row lock: a worker locks the account before the email."""
    now = await service_now(db)
    await db.execute(
        update(models.StaffSetupEmail)
        .where(
            models.StaffSetupEmail.user_id == user_id,
            models.StaffSetupEmail.status.in_(("queued", "sending")),
        )
        .values(
            status="cancelled",
            final_at=now,
            updated_at=now,
            failure_reason="replaced by a newer set-up link",
        )
        .execution_options(synchronize_session=False)
    )
    if not email_link:
        return await new_setup_token(db, secret_key, user_id), None
    await _end_setup_links(db, user_id, now)
    email_id = uuid.uuid4()
    db.add(
        models.StaffSetupEmail(
            id=email_id, user_id=user_id, status="queued", due_at=now, attempts=0
        )
    )
    await db.flush()
    return None, email_id


async def _end_setup_links(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    await db.execute(
        update(models.StaffToken)
        .where(models.StaffToken.user_id == user_id, models.StaffToken.used_at.is_(None))
        .values(used_at=now)
    )


async def new_setup_token(db: AsyncSession, secret_key: str, user_id: uuid.UUID) -> str:
    """A new link's token (its hash stored, in the caller's transaction). Earlier links stop
    working: only the newest is valid."""
    now = await service_now(db)
    await _end_setup_links(db, user_id, now)
    token = secrets.token_urlsafe(32)
    db.add(
        models.StaffToken(
            id=uuid.uuid4(),
            user_id=user_id,
            token_hash=_token_hash(secret_key, token),
            purpose="setup",
            expires_at=now + SETUP_LINK_LIFETIME,
        )
    )
    return token


async def setup_user(db: AsyncSession, secret_key: str, token: str) -> models.StaffUser | None:
    """The account a set-up link is for, while the link is unused and in date."""
    if not token or len(token) > 100:
        return None
    now = await service_now(db)
    row = await db.scalar(
        select(models.StaffToken).where(
            models.StaffToken.token_hash == _token_hash(secret_key, token),
            models.StaffToken.used_at.is_(None),
            models.StaffToken.expires_at > now,
        )
    )
    if row is None:
        return None
    user = await db.get(models.StaffUser, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return user


def check_new_password(password: str, confirm: str, email: str) -> list[AccountProblem]:
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(
            AccountProblem("password", f"Password must be {MIN_PASSWORD} characters or more")
        )
    elif len(password) > 256:
        problems.append(AccountProblem("password", "Password must be 256 characters or fewer"))
    elif email.split("@")[0] and email.split("@")[0] in password.lower():
        problems.append(AccountProblem("password", "Password must not contain your email name"))
    if password != confirm:
        problems.append(AccountProblem("confirm", "Passwords must match"))
    return problems


async def hash_password(password: str) -> str:
    # argon2 is slow on purpose: never on the event loop that answers everyone else.
    return await asyncio.to_thread(_hasher.hash, password)


async def _password_matches(stored: str | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


async def set_password(
    db: AsyncSession, secret_key: str, token: str, password: str, confirm: str
) -> models.StaffUser:
    """The set-up link's first step: the password, and a new TOTP secret to show as a QR code.
    The link stays valid until two-factor is confirmed."""
    user = await setup_user(db, secret_key, token)
    if user is None:
        raise AccountProblem("token", "This link has expired or been used")
    problems = check_new_password(password, confirm, user.email)
    if problems:
        raise problems[0]
    user.password_hash = await hash_password(password)
    user.totp_secret = pyotp.random_base32()
    user.updated_at = await service_now(db)
    await record_event(db, f"staff:{user.id}", "user.password_set", user.id, "staff_user")
    await db.commit()
    return user


def totp_uri(user: models.StaffUser) -> str:
    return pyotp.TOTP(user.totp_secret or "").provisioning_uri(
        name=user.email, issuer_name=TOTP_ISSUER
    )


def _code_ok(secret: str | None, code: str) -> bool:
    code = code.replace(" ", "")
    if not secret or not code.isascii() or not code.isdigit() or len(code) != 6:
        return False
    return pyotp.TOTP(secret).verify(code, valid_window=1)


async def confirm_two_factor(
    db: AsyncSession, secret_key: str, token: str, code: str
) -> tuple[models.StaffUser, list[str]]:
    """The set-up link's last step: a code from the new authenticator proves it works; the
    link is used up and recovery codes are made (shown once)."""
    user = await setup_user(db, secret_key, token)
    if user is None:
        raise AccountProblem("token", "This link has expired or been used")
    if user.password_hash is None:
        raise AccountProblem("password", "Set a password first")
    if not _code_ok(user.totp_secret, code):
        raise AccountProblem("code", "Enter the 6-digit code your authenticator app shows now")
    now = await service_now(db)
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    user.recovery_codes = [_recovery_hash(secret_key, c) for c in codes]
    user.updated_at = now
    await db.execute(
        update(models.StaffToken)
        .where(models.StaffToken.user_id == user.id, models.StaffToken.used_at.is_(None))
        .values(used_at=now)
    )
    await record_event(db, f"staff:{user.id}", "user.two_factor_set", user.id, "staff_user")
    await db.commit()
    return user, codes


@dataclass(frozen=True)
class SignInResult:
    user_id: uuid.UUID | None
    throttled: bool = False


SIGN_IN_FAILED = "Enter a correct email address and password"


async def check_password(
    db: AsyncSession, email: str, password: str, *, device_user: uuid.UUID | None
) -> SignInResult:
    """The first step of signing in. A failure says nothing about which part was wrong, or
    whether the account exists; it is counted against the account (throttling)."""
    email = normalise_email(email)
    user = None
    if email and len(email) <= 254 and len(password) <= 256:
        user = await db.scalar(select(models.StaffUser).where(models.StaffUser.email == email))
    now = await service_now(db)
    # A browser that signed in to this account before (its device cookie names the account)
    # passes the throttle: nobody can lock a colleague out by typing her email.
    trusted_device = user is not None and device_user == user.id
    if user is not None and _throttled(user, now) and not trusted_device:
        # Checked after the lookup, before the hash: a throttled account costs no argon2.
        return SignInResult(None, throttled=True)
    matches = await _password_matches(user.password_hash if user else None, password)
    if user is None or user.disabled_at is not None or user.totp_secret is None:
        await db.rollback()
        return SignInResult(None)
    # Set-up not finished (two-factor never confirmed: its link is still unused): the
    # password alone must not open the account to whoever holds the link.
    unfinished = await db.scalar(
        select(models.StaffToken.id).where(
            models.StaffToken.user_id == user.id, models.StaffToken.used_at.is_(None)
        )
    )
    if unfinished is not None:
        await db.rollback()
        return SignInResult(None)
    user_id = user.id  # read before the rollback expires it
    if not matches:
        await _count_failure(db, user_id, now)
        return SignInResult(None)
    await db.rollback()
    return SignInResult(user_id)


def _throttled(user: models.StaffUser, now: datetime) -> bool:
    return user.throttled_until is not None and user.throttled_until > now


async def _count_failure(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    # One statement: two failures at once both count (a read-then-write would lose one).
    failures = models.StaffUser.failed_sign_ins + 1
    await db.execute(
        update(models.StaffUser)
        .where(models.StaffUser.id == user_id)
        .values(
            failed_sign_ins=failures,
            throttled_until=case(
                (failures >= FAILURES_BEFORE_THROTTLE, now + THROTTLE),
                else_=models.StaffUser.throttled_until,
            ),
        )
    )
    await record_event(db, f"staff:{user_id}", "user.sign_in_failed", user_id, "staff_user")
    await db.commit()


async def check_second_factor(
    db: AsyncSession, secret_key: str, user_id: uuid.UUID, code: str, *, trusted_device: bool
) -> SignInResult:
    """The second step: a TOTP code, or one of the recovery codes (used up)."""
    user = await db.get(models.StaffUser, user_id, with_for_update=True)
    now = await service_now(db)
    if user is None or user.disabled_at is not None:
        await db.rollback()
        return SignInResult(None)
    if _throttled(user, now) and not trusted_device:
        await db.rollback()
        return SignInResult(None, throttled=True)
    cleaned = code.strip()
    if len(cleaned) <= 20 and _code_ok(user.totp_secret, cleaned):
        ok = True
    else:
        hashed = _recovery_hash(secret_key, cleaned) if len(cleaned) <= 20 else ""
        ok = hashed in user.recovery_codes
        if ok:
            user.recovery_codes = [c for c in user.recovery_codes if c != hashed]
            await record_event(
                db, f"staff:{user.id}", "user.recovery_code_used", user.id, "staff_user"
            )
    if not ok:
        await db.rollback()
        await _count_failure(db, user_id, now)
        return SignInResult(None)
    user.failed_sign_ins = 0
    user.throttled_until = None
    user.last_sign_in_at = now
    await record_event(db, f"staff:{user_id}", "user.signed_in", user_id, "staff_user")
    await db.commit()
    return SignInResult(user_id)


async def principal_for_session(
    db: AsyncSession, user_id: uuid.UUID, session_started: datetime
) -> Principal | None:
    """The signed-in user as a principal, or None when the account was disabled, or signed
    out everywhere, since the session began."""
    from triage.domain.principals import staff

    row = (
        await db.execute(
            select(
                models.StaffUser.roles,
                models.StaffUser.services,
                models.StaffUser.disabled_at,
                models.StaffUser.sessions_valid_after,
            ).where(models.StaffUser.id == user_id)
        )
    ).first()
    if row is None or row.disabled_at is not None:
        return None
    if row.sessions_valid_after is not None and row.sessions_valid_after >= session_started:
        return None
    return staff(user_id, frozenset(row.roles), frozenset(row.services))


async def sign_out_everywhere(db: AsyncSession, principal: Principal, user_id: uuid.UUID) -> None:
    if principal.kind != "staff" or principal.id != str(user_id):
        require(principal, "user.manage")
    now = await service_now(db)
    await db.execute(
        update(models.StaffUser)
        .where(models.StaffUser.id == user_id)
        .values(sessions_valid_after=now, updated_at=now)
    )
    await record_event(db, principal.actor, "user.signed_out_everywhere", user_id, "staff_user")
    await db.commit()


async def admin_action(
    db: AsyncSession,
    principal: Principal,
    secret_key: str,
    user_id: uuid.UUID,
    action: str,
    *,
    email_link: bool = False,
) -> str | None:
    """disable | enable | unlock | reset_two_factor (a new set-up link: its token returned, or
    with `email_link` a set-up email queued in this transaction and None returned)."""
    require(principal, "user.manage")
    user = await db.get(models.StaffUser, user_id, with_for_update=True)
    if user is None:
        raise AccountProblem("user", "There is no such user")
    now = await service_now(db)
    token = None
    if action == "disable":
        if principal.id == str(user_id):
            raise AccountProblem("user", "You cannot disable your own account")
        user.disabled_at = now
        user.sessions_valid_after = now
    elif action == "enable":
        user.disabled_at = None
    elif action == "unlock":
        user.failed_sign_ins = 0
        user.throttled_until = None
    elif action == "reset_two_factor":
        user.password_hash = None
        user.totp_secret = None
        user.recovery_codes = []
        user.sessions_valid_after = now
        token, _ = await _setup_link(db, secret_key, user.id, email_link)
    else:
        raise AccountProblem("action", "Choose an action")
    user.updated_at = now
    await record_event(db, principal.actor, f"user.{action}", user_id, "staff_user")
    await db.commit()
    return token


async def own_account(db: AsyncSession, principal: Principal) -> dict[str, object]:
    """The signed-in person's own account, for their account page."""
    user = await db.get(models.StaffUser, principal.uuid)
    if user is None:
        raise AccountProblem("user", "There is no such user")
    return {
        "email": user.email,
        "roles": user.roles,
        "services": user.services,
        "recovery_codes_left": len(user.recovery_codes),
        "last_sign_in_at": user.last_sign_in_at,
    }
