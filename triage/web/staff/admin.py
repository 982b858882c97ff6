"""The admin's pages: staff accounts, API clients and their keys, the catalogue in force, and
the audit trail with the chain's check.

Every handler names its permission in `opt`; the router's guard checks it, and the services
check it again. Every change is audited by the service that makes it.

A set-up link or an API key is shown once, in the answer to the POST that made it, and is
kept nowhere (Notify shows a new API key the same way). With a real provider (production) a
set-up link is not shown at all: it is emailed to the person (services/setup_emails), and the
answer says so; the account's page says whether the email went. So that reloading that answer (the
browser sends the POST again) neither shows it again nor makes a second one, each form that
makes one carries a one-time value (`once`), spent in Redis when the form is acted on: a form
sent again answers "done already"."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from triage.domain.policy import STAFF_ROLES
from triage.services import audit_views, client_admin, user_admin
from triage.services import staff_accounts as accounts
from triage.services.wakeups import wake_workers
from triage.web.dependencies import Db
from triage.web.forms import Form, read_form
from triage.web.once import new_once, spend_once
from triage.web.pages import render
from triage.web.staff.guards import StaffContext
from triage.web.staff.work import _flash, _staff, _uuid

USERS = "/staff/admin/users"
CLIENTS = "/staff/admin/clients"
CATALOGUE = "/staff/admin/catalogue"
AUDIT = "/staff/admin/audit"

LONDON = ZoneInfo("Europe/London")

ROLE_TEXT = {
    "hub": "Hub: every referral, the queue and calls",
    "caseworker": "Caseworker: the cases of their services",
    "duty_lead": "Duty lead: as hub, with alerts and reassignment",
    "commissioner": "Commissioner: reports only",
    "admin": "Admin: users, API clients and keys, the catalogue, the audit trail",
}
SCOPE_TEXT = {
    "referrals:write": "referrals:write: send, update and withdraw referrals",
    "referrals:read": "referrals:read: read its referrals and their status",
    "aa:write": "aa:write: request an appropriate adult",
    "reports:read": "reports:read: read reports",
}
SOURCE_TEXT = {"police": "Police system", "professional": "Professional or partner system"}
ACTION_DONE = {
    "disable": "Account disabled: its sessions have ended",
    "enable": "Account enabled",
    "unlock": "Sign-in throttling lifted",
    "sign_out_everywhere": "Signed out everywhere",
}

UNPRINTABLE = "Remove the characters that are not letters, numbers or punctuation"
_PREFIX_SHAPE = re.compile(r"[A-Za-z0-9]{8}")
_HEAD_SHAPE = re.compile(r"[0-9a-fA-F]{64}")


def _untouched(form: Form, *names: str) -> None:
    """The form's hidden fields as the page wrote them: one that carried a control character
    was not sent by the page (400), and has no field to show an error beside."""
    if any(form.error_for(name) for name in names):
        raise ClientException("a hidden field was changed")


def _already_done(staff: StaffContext, what: str, back: str, nav_active: str) -> Template:
    return render(
        "staff/admin/already_done.html",
        status=409,
        title="This has been done already",
        staff=staff,
        nav_active=nav_active,
        what=what,
        back=back,
    )


def _setup_link(request: Request[Any, Any, Any], token: str | None) -> str | None:
    # As `triage users create` prints it and the worker emails it, from this app's settings.
    if token is None:
        return None
    return accounts.setup_link(request.app.state.settings.base_url, token)


def _emails_links(request: Request[Any, Any, Any]) -> bool:
    return accounts.setup_links_emailed(request.app.state.settings)


def _services_offered(request: Request[Any, Any, Any]) -> list[tuple[str, str]]:
    """The services a caseworker can work on: those the catalogue allocates cases to."""
    return [
        (code, f"{service.name} ({code})")
        for code, service in request.app.state.catalogue.services.items()
        if service.mode == "allocate"
    ]


def _prefix(value: str) -> str:
    if not _PREFIX_SHAPE.fullmatch(value):
        raise NotFoundException()
    return value


class AdminController(Controller):
    path = "/staff/admin"

    # Users ----------------------------------------------------------------------------------

    @get("/users", opt={"permission": "user.manage"})
    async def users_page(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        rows = await user_admin.users(db, staff.principal)
        return render(
            "staff/admin/users.html",
            title="Users",
            staff=staff,
            nav_active=USERS,
            users=rows,
            me=staff.principal.id,
            flash=await _flash(request),
        )

    @get("/users/new", opt={"permission": "user.manage"})
    async def new_user_page(self, request: Request[Any, Any, Any]) -> Any:
        return _new_user_page(request, None)

    @post("/users", opt={"permission": "user.manage"})
    async def create_user(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        form = await read_form(request, staff.csrf)
        _untouched(form, "once")
        known = frozenset(request.app.state.catalogue.services)
        email, roles, services = form.get("email"), form.many("roles"), form.many("services")
        _check_account(form, email, roles, services, known)
        if form.errors:
            return _new_user_page(request, form)
        emailed = _emails_links(request)
        try:
            async with spend_once(request, form) as fresh:
                if not fresh:
                    return _already_done(staff, "account", USERS, USERS)
                account = await accounts.create_account(
                    db,
                    staff.principal,
                    request.app.state.settings.secret_key,
                    email,
                    roles,
                    services,
                    known,
                    email_link=emailed,
                )
        except accounts.AccountProblem as problem:
            form.error(problem.field, problem.message)
            return _new_user_page(request, form)
        if emailed:
            wake_workers()  # after the commit: the email goes now, not at the next beat
        return render(
            "staff/admin/user_link.html",
            title="Account created",
            staff=staff,
            nav_active=USERS,
            heading="Account created",
            email=accounts.normalise_email(email),
            user_id=account.user_id,
            link=_setup_link(request, account.setup_token),
        )

    @get("/users/{user_id:str}", opt={"permission": "user.manage"})
    async def user_page(
        self, request: Request[Any, Any, Any], db: Db, user_id: FromPath[str]
    ) -> Any:
        return await _user_page(request, db, _uuid(user_id), None)

    @post("/users/{user_id:str}/actions", opt={"permission": "user.manage"})
    async def user_action(
        self, request: Request[Any, Any, Any], db: Db, user_id: FromPath[str]
    ) -> Any:
        staff = _staff(request)
        target = _uuid(user_id)
        form = await read_form(request, staff.csrf)
        _untouched(form, "action", "once")
        user = await _user(db, staff, target)
        action = form.get("action")
        secret = request.app.state.settings.secret_key
        back = f"{USERS}/{target}"
        if action == "reset_two_factor":
            emailed = _emails_links(request)
            async with spend_once(request, form) as fresh:
                if not fresh:
                    return _already_done(staff, "reset", back, USERS)
                token = await accounts.admin_action(
                    db, staff.principal, secret, target, action, email_link=emailed
                )
            if emailed:
                wake_workers()
            else:
                assert token is not None  # a reset shown here always makes a new link
            return render(
                "staff/admin/user_link.html",
                title="Password and two-factor reset",
                staff=staff,
                nav_active=USERS,
                heading="Password and two-factor reset",
                email=user.email,
                user_id=target,
                link=_setup_link(request, token),
            )
        if action == "sign_out_everywhere":
            await accounts.sign_out_everywhere(db, staff.principal, target)
        elif action in ("disable", "enable", "unlock"):
            try:
                await accounts.admin_action(db, staff.principal, secret, target, action)
            except accounts.AccountProblem as problem:
                await db.rollback()
                form.error("actions", problem.message)
                return await _user_page(request, db, target, form)
        else:
            raise ClientException("no such action")
        await _flash(request, ACTION_DONE[action])
        return Redirect(back)

    # API clients and keys -------------------------------------------------------------------

    @get("/clients", opt={"permission": "client.manage"})
    async def clients_page(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        rows = await client_admin.clients(db, staff.principal)
        return render(
            "staff/admin/clients.html",
            title="API clients",
            staff=staff,
            nav_active=CLIENTS,
            clients=rows,
            flash=await _flash(request),
        )

    @get("/clients/new", opt={"permission": "client.manage"})
    async def new_client_page(self, request: Request[Any, Any, Any]) -> Any:
        return _new_client_page(request, None)

    @post("/clients", opt={"permission": "client.manage"})
    async def create_client(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        form = await read_form(request, staff.csrf)
        name, source = form.get("name"), form.get("source")
        for problem in client_admin.check_client_fields(name, source):
            form.error(problem.field, problem.message)
        if form.errors:
            return _new_client_page(request, form)
        try:
            client_id = await client_admin.create_client(db, staff.principal, name, source)
        except client_admin.ClientProblem as problem:
            form.error(problem.field, problem.message)
            return _new_client_page(request, form)
        await _flash(request, "Client created: now create its first key")
        return Redirect(f"{CLIENTS}/{client_id}")

    @get("/clients/{client_id:str}", opt={"permission": "client.manage"})
    async def client_page(
        self, request: Request[Any, Any, Any], db: Db, client_id: FromPath[str]
    ) -> Any:
        return await _client_page(request, db, _uuid(client_id))

    @post("/clients/{client_id:str}/keys", opt={"permission": "client.manage"})
    async def create_key(
        self, request: Request[Any, Any, Any], db: Db, client_id: FromPath[str]
    ) -> Any:
        staff = _staff(request)
        target = _uuid(client_id)
        form = await read_form(request, staff.csrf)
        _untouched(form, "once")
        found = await _client(db, staff, target)
        scopes = form.many("scopes")
        for problem in client_admin.check_scopes(scopes, found.source):
            form.error(problem.field, problem.message)
        if form.errors:
            return await _client_page(request, db, target, key_form=form)
        async with spend_once(request, form) as fresh:
            if not fresh:
                return _already_done(staff, "key", f"{CLIENTS}/{target}", CLIENTS)
            key = await client_admin.create_key(
                db, staff.principal, request.app.state.settings.secret_key, target, scopes
            )
        return _key_page(staff, found, key, "API key created")

    @post("/clients/{client_id:str}/rotate", opt={"permission": "client.manage"})
    async def rotate_key(
        self, request: Request[Any, Any, Any], db: Db, client_id: FromPath[str]
    ) -> Any:
        staff = _staff(request)
        target = _uuid(client_id)
        form = await read_form(request, staff.csrf)
        _untouched(form, "once")
        found = await _client(db, staff, target)
        async with spend_once(request, form) as fresh:
            if not fresh:
                return _already_done(staff, "key", f"{CLIENTS}/{target}", CLIENTS)
            key = await client_admin.rotate_key(
                db, staff.principal, request.app.state.settings.secret_key, target
            )
        return _key_page(staff, found, key, "API key rotated")

    @post("/clients/{client_id:str}/keys/{prefix:str}/revoke", opt={"permission": "client.manage"})
    async def revoke_key(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        client_id: FromPath[str],
        prefix: FromPath[str],
    ) -> Any:
        staff = _staff(request)
        target = _uuid(client_id)
        await read_form(request, staff.csrf)
        try:
            revoked = await client_admin.revoke_key(db, staff.principal, target, _prefix(prefix))
        except client_admin.NoSuchClient:
            raise NotFoundException() from None
        await _flash(
            request, f"Key {prefix} revoked" if revoked else f"Key {prefix} was revoked already"
        )
        return Redirect(f"{CLIENTS}/{target}")

    @post("/clients/{client_id:str}/limits", opt={"permission": "client.manage"})
    async def change_limits(
        self, request: Request[Any, Any, Any], db: Db, client_id: FromPath[str]
    ) -> Any:
        staff = _staff(request)
        target = _uuid(client_id)
        form = await read_form(request, staff.csrf)
        await _client(db, staff, target)
        per_minute = client_admin.parse_limit(
            form.get("per_minute"), "per_minute", client_admin.MAX_PER_MINUTE
        )
        batches = client_admin.parse_limit(
            form.get("batches_per_minute"),
            "batches_per_minute",
            client_admin.MAX_BATCHES_PER_MINUTE,
        )
        for parsed in (per_minute, batches):
            if isinstance(parsed, client_admin.ClientProblem):
                form.error(parsed.field, parsed.message)
        if form.errors or not isinstance(per_minute, int) or not isinstance(batches, int):
            return await _client_page(request, db, target, limits_form=form)
        await client_admin.set_limits(db, staff.principal, target, per_minute, batches)
        await _flash(request, "Limits changed")
        return Redirect(f"{CLIENTS}/{target}")

    # The catalogue in force -----------------------------------------------------------------

    @get("/catalogue", opt={"permission": "catalogue.view"})
    async def catalogue_page(self, request: Request[Any, Any, Any]) -> Any:
        catalogue = request.app.state.catalogue
        providers: dict[str, list[str]] = {}
        for code, service in catalogue.services.items():
            providers.setdefault(service.provider, []).append(code)
        return render(
            "staff/admin/catalogue.html",
            title="Catalogue in force",
            staff=_staff(request),
            nav_active=CATALOGUE,
            catalogue=catalogue,
            services=list(catalogue.services.values()),
            providers=sorted(providers.items(), key=lambda item: item[0].lower()),
        )

    # The audit trail ------------------------------------------------------------------------

    @get("/audit", opt={"permission": "audit.view"})
    async def audit_page(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        names = await audit_views.actor_names(db, staff.principal)
        query = request.query_params
        form = Form()
        for name in ("record", "actor", *DATE_FIELDS):
            value = query.get(name) or ""
            if not value.isprintable():
                form.error(
                    name, "Remove the characters that are not letters, numbers or punctuation"
                )
            # Shown again as typed, less what is not printable, and not too long.
            form.values[name] = "".join(c for c in value[:100] if c.isprintable()).strip()
        filters = _trail_filters(form, names)
        cursor = _cursor(query.get("cursor"))
        page = None
        if not form.errors:
            page = await audit_views.trail(db, staff.principal, filters, cursor)
        kept = {k: v for k, v in form.values.items() if v}
        return render(
            "staff/admin/audit.html",
            status=400 if form.errors else 200,
            title="Audit trail",
            staff=staff,
            nav_active=AUDIT,
            form=form,
            error_summary=form.summary if form.errors else None,
            page=page,
            names=names,
            actors=[("", "Anyone"), *names.items()],
            query=kept,
            paged=cursor is not None,
        )

    @post("/audit/verify", opt={"permission": "audit.view"})
    async def verify_chain(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        form = await read_form(request, staff.csrf)
        head = form.get("head") or None
        if head is not None and not _HEAD_SHAPE.fullmatch(head):
            form.error("head", "Enter the digest as 64 letters a to f and numbers")
        check = None
        if not form.errors:
            check = await audit_views.check_chain(
                db,
                staff.principal,
                request.app.state.settings.audit_key,
                head.lower() if head else None,
            )
        return render(
            "staff/admin/audit_verify.html",
            status=400 if form.errors else 200,
            title="Audit chain check",
            staff=staff,
            nav_active=AUDIT,
            form=form,
            error_summary=form.summary if form.errors else None,
            check=check,
        )


# Users ----------------------------------------------------------------------------------------


def _check_account(
    form: Form, email: str, roles: list[str], services: list[str], known: frozenset[str]
) -> None:
    """Every problem at once (the service stops at the first), never quoting what was sent."""
    if any(role not in STAFF_ROLES for role in roles):
        form.error("roles", "Select roles from the list")
    if any(code not in known for code in services):
        form.error("services", "Select services from the list")
    valid_roles = [role for role in roles if role in STAFF_ROLES]
    for problem in accounts.check_account_fields(email, valid_roles, services):
        form.error(problem.field, problem.message)


def _new_user_page(request: Request[Any, Any, Any], form: Form | None) -> Template:
    return render(
        "staff/admin/user_new.html",
        status=400 if form and form.errors else 200,
        title="Create a user",
        staff=_staff(request),
        nav_active=USERS,
        form=form,
        error_summary=form.summary if form and form.errors else None,
        roles=[(role, ROLE_TEXT[role]) for role in STAFF_ROLES],
        services=_services_offered(request),
        once=new_once(),
    )


async def _user(db: AsyncSession, staff: StaffContext, user_id: uuid.UUID) -> Any:
    try:
        return await user_admin.user(db, staff.principal, user_id)
    except user_admin.NoSuchUser:
        raise NotFoundException() from None


async def _user_page(
    request: Request[Any, Any, Any], db: AsyncSession, user_id: uuid.UUID, form: Form | None
) -> Template:
    staff = _staff(request)
    user = await _user(db, staff, user_id)
    names = request.app.state.catalogue.services
    return render(
        "staff/admin/user.html",
        status=400 if form and form.errors else 200,
        title=f"User {user.email}",
        staff=staff,
        nav_active=USERS,
        user=user,
        itself=str(user.id) == staff.principal.id,
        service_names={code: names[code].name for code in user.services if code in names},
        emails_links=_emails_links(request),
        form=form,
        error_summary=form.summary if form and form.errors else None,
        once=new_once(),
        flash=await _flash(request),
    )


# API clients ----------------------------------------------------------------------------------


def _new_client_page(request: Request[Any, Any, Any], form: Form | None) -> Template:
    return render(
        "staff/admin/client_new.html",
        status=400 if form and form.errors else 200,
        title="Create an API client",
        staff=_staff(request),
        nav_active=CLIENTS,
        form=form,
        error_summary=form.summary if form and form.errors else None,
        sources=list(SOURCE_TEXT.items()),
    )


async def _client(
    db: AsyncSession, staff: StaffContext, client_id: uuid.UUID
) -> client_admin.ClientRow:
    try:
        return await client_admin.client(db, staff.principal, client_id)
    except client_admin.NoSuchClient:
        raise NotFoundException() from None


async def _client_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    client_id: uuid.UUID,
    *,
    key_form: Form | None = None,
    limits_form: Form | None = None,
) -> Template:
    staff = _staff(request)
    found = await _client(db, staff, client_id)
    failed = key_form if key_form and key_form.errors else limits_form
    if key_form is None:
        # A new key's scopes start as the client's source's defaults.
        key_form = Form(lists={"scopes": list(client_admin.DEFAULT_SCOPES.get(found.source, ()))})
    if limits_form is None:
        limits_form = Form(
            values={
                "per_minute": str(found.per_minute),
                "batches_per_minute": str(found.batches_per_minute),
            }
        )
    return render(
        "staff/admin/client.html",
        status=400 if failed and failed.errors else 200,
        title=f"API client {found.name}",
        staff=staff,
        nav_active=CLIENTS,
        client=found,
        key_form=key_form,
        limits_form=limits_form,
        error_summary=failed.summary if failed and failed.errors else None,
        scopes=list(SCOPE_TEXT.items()),
        source_text=SOURCE_TEXT,
        once=new_once(),
        flash=await _flash(request),
    )


def _key_page(
    staff: StaffContext, found: client_admin.ClientRow, key: str, heading: str
) -> Template:
    return render(
        "staff/admin/key.html",
        title=heading,
        staff=staff,
        nav_active=CLIENTS,
        heading=heading,
        client=found,
        key=key,
        prefix=key.split("_")[1],
    )


# The audit trail -------------------------------------------------------------------------------

DATE_FIELDS = ("from-day", "from-month", "from-year", "to-day", "to-month", "to-year")


def _date(form: Form, prefix: str, label: str) -> date | None:
    parts = [form.get(f"{prefix}-{part}") for part in ("day", "month", "year")]
    if not any(parts):
        return None
    if all(p.isascii() and p.isdigit() and len(p) <= 4 for p in parts):
        day, month, year = (int(p) for p in parts)
        if 2000 <= year <= 2100:
            try:
                return date(year, month, day)
            except ValueError:
                pass
    form.error(f"{prefix}-day", f"{label} must be a real date, like 27 3 2026")
    return None


def _trail_filters(form: Form, names: dict[str, str]) -> audit_views.TrailFilters:
    record_id = None
    if form.get("record"):
        try:
            record_id = uuid.UUID(form.get("record"))
        except ValueError:
            form.error("record", "Enter the record's id, like 0b7e3c5a-1f2d-4c3b-9a8e-5d6f7a8b9c0d")
    actor = form.get("actor") or None
    if actor is not None and actor not in names:
        form.error("actor", "Select who acted from the list")
        actor = None
    since = _date(form, "from", "Date from")
    until = _date(form, "to", "Date to")
    if since and until and until < since:
        form.error("to-day", "Date to must be the same as or after date from")
    return audit_views.TrailFilters(
        record_id=record_id,
        actor=actor,
        since=_start_of(since) if since else None,
        before=_start_of(until + timedelta(days=1)) if until else None,
    )


def _start_of(day: date) -> datetime:
    """Midnight in London, the day staff mean."""
    return datetime.combine(day, time(0), LONDON)


def _cursor(value: str | None) -> int | None:
    """The last event id of the page before; anything else is the first page."""
    if value and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None
