"""The pages staff work in: the queue, calls due, a caseload, alerts, and a referral's page
with its actions (a note, a call's outcome, pause and resume).

Every handler names its permission in `opt`; the router's guard checks it. A referral outside
the person's scope answers 404 and is audited (services.staff_views.NotInScope)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from triage.domain.overrides import CONSENT_HOW
from triage.domain.vocabulary import CALL_OUTCOMES
from triage.services import duplicates, staff_accounts, staff_actions, staff_views, surveys
from triage.services.clock import service_now
from triage.web.dependencies import Db
from triage.web.forms import Form, read_form
from triage.web.once import new_once, spend_once
from triage.web.pages import render
from triage.web.staff.guards import StaffContext
from triage.web.staff.navigation import home_for

OUTCOME_TEXT = {
    "reached": "Reached: spoke to the victim",
    "no_answer": "No answer",
    "voicemail_left": "Voicemail left",
    "wrong_number": "Wrong number",
    "declined": "Declined support",
    "unsafe_to_talk": "Unsafe to talk now",
}


def _staff(request: Request[Any, Any, Any]) -> StaffContext:
    return request.state.staff  # type: ignore[no-any-return]


async def _flash(request: Request[Any, Any, Any], message: str | None = None) -> str | None:
    """Store a message for the next page, or take the one stored."""
    staff = _staff(request)
    store = request.app.state.staff_sessions
    if message is not None:
        staff.session.flash = message
        await store.save(staff.session_id, staff.session)
        return None
    taken, staff.session.flash = staff.session.flash, None
    if taken:
        await store.save(staff.session_id, staff.session)
    return taken


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFoundException() from None


class WorkController(Controller):
    path = "/staff"

    @get("/", opt={"permission": None})
    async def home(self, request: Request[Any, Any, Any]) -> Redirect:
        return Redirect(home_for(_staff(request)))

    @get("/account", opt={"permission": None})
    async def account_page(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        return render(
            "staff/account.html",
            title="Your account",
            staff=staff,
            nav_active="/staff/account",
            account=await staff_accounts.own_account(db, staff.principal),
            flash=await _flash(request),
        )

    @post("/account/sign-out-everywhere", opt={"permission": None})
    async def sign_out_everywhere(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        await read_form(request, staff.csrf)
        await staff_accounts.sign_out_everywhere(db, staff.principal, staff.user_id)
        return Redirect("/staff/sign-in")

    @get("/queue", opt={"permission": "queue.view"})
    async def queue_page(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        service: FromQuery[str | None] = None,
        area: FromQuery[str | None] = None,
        priority: FromQuery[str | None] = None,
        source: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        mine: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Any:
        staff = _staff(request)
        catalogue = request.app.state.catalogue
        # Each filter's choices (value, words); the catalogue's areas, then the two the
        # engine gives a victim outside them.
        choices: dict[str, list[tuple[str, str]]] = {
            "priority": [(p, p) for p in staff_views.PRIORITIES],
            "service": [(code, code) for code in sorted(catalogue.services)],
            "area": [
                *catalogue.area_names.items(),
                ("outside", "Outside the area"),
                ("unknown", "Not known"),
            ],
            "source": [(s, s) for s in staff_views.SOURCES],
            "status": [("triaged", "Awaiting first contact"), ("in_contact", "In contact")],
        }
        asked = {
            "priority": priority,
            "service": service,
            "area": area,
            "source": source,
            "status": status,
        }
        # A value not on its list (a link edited by hand, an old bookmark) is a clear error on
        # its field, never a 500 or a silently empty queue.
        form = Form(values={"status": "triaged"})
        for name, value in asked.items():
            if not value:
                continue
            if value in {code for code, _ in choices[name]}:
                form.values[name] = value
            else:
                form.error(name, f"Choose {'an' if name == 'area' else 'a'} {name} from the list")
        filters = staff_views.QueueFilters(
            service=form.values.get("service"),
            area=form.values.get("area"),
            priority=form.values.get("priority"),
            source=form.values.get("source"),
            status=form.values["status"],
            mine=mine == "yes",
        )
        if form.errors:
            page = staff_views.ListPage()
        else:
            page = await staff_views.queue(db, staff.principal, filters, cursor)
        now = await service_now(db)
        query = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
        return render(
            "staff/queue.html",
            status=400 if form.errors else 200,
            title="Queue",
            staff=staff,
            nav_active="/staff/queue",
            page=page,
            now=now,
            form=form,
            filters=filters,
            priorities=choices["priority"],
            services=choices["service"],
            areas=choices["area"],
            sources=choices["source"],
            statuses=choices["status"],
            query=query,
            error_summary=form.summary if form.errors else None,
            flash=await _flash(request),
        )

    @get("/calls", opt={"permission": "calls.view"})
    async def calls_page(
        self, request: Request[Any, Any, Any], db: Db, cursor: FromQuery[str | None] = None
    ) -> Any:
        staff = _staff(request)
        now = await service_now(db)
        page = await staff_views.calls_due(db, staff.principal, now, cursor)
        return render(
            "staff/calls.html",
            title="Calls due",
            staff=staff,
            nav_active="/staff/calls",
            rows=page.rows,
            next_cursor=page.next_cursor,
            now=now,
            flash=await _flash(request),
        )

    @get("/caseload", opt={"permission": "caseload.view"})
    async def caseload_page(
        self, request: Request[Any, Any, Any], db: Db, cursor: FromQuery[str | None] = None
    ) -> Any:
        staff = _staff(request)
        page = await staff_views.caseload(db, staff.principal, cursor)
        return render(
            "staff/caseload.html",
            title="Caseload",
            staff=staff,
            nav_active="/staff/caseload",
            rows=page.rows,
            next_cursor=page.next_cursor,
        )

    @get("/alerts", opt={"permission": "alert.view"})
    async def alerts_page(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        rows = await staff_views.alerts(db, staff.principal)
        return render(
            "staff/alerts.html", title="Alerts", staff=staff, nav_active="/staff/alerts", rows=rows
        )

    @get("/referrals/{referral_id:str}", opt={"permission": "referral.view"})
    async def referral_page(
        self, request: Request[Any, Any, Any], db: Db, referral_id: FromPath[str]
    ) -> Any:
        return await _referral_page(request, db, _uuid(referral_id), None)

    @post("/referrals/{referral_id:str}/notes", opt={"permission": "referral.note"})
    async def add_note(
        self, request: Request[Any, Any, Any], db: Db, referral_id: FromPath[str]
    ) -> Any:
        staff = _staff(request)
        target = _uuid(referral_id)
        form = await read_form(request, staff.csrf)
        case_id = _uuid(form.get("case")) if form.get("case") else None
        if not form.errors:
            try:
                # The same form sent twice (a double click) adds the note once.
                async with spend_once(request, form) as fresh:
                    if fresh:
                        await staff_actions.add_note(
                            db, staff.principal, target, form.get("note"), case_id
                        )
            except staff_actions.ActionRefused as refused:
                form.error(refused.field, refused.message)
        if form.errors:
            return await _referral_page(request, db, target, form)
        await _flash(request, "Note added")
        return Redirect(f"/staff/referrals/{target}#notes")

    @post("/referrals/{referral_id:str}/calls", opt={"permission": "call.record"})
    async def record_call(
        self, request: Request[Any, Any, Any], db: Db, referral_id: FromPath[str]
    ) -> Any:
        staff = _staff(request)
        target = _uuid(referral_id)
        form = await read_form(request, staff.csrf)
        outcome = form.get("outcome")
        if outcome not in CALL_OUTCOMES:
            form.error("outcome", "Select the outcome of the call")
        if not form.errors:
            try:
                await staff_actions.record_call(
                    db,
                    staff.principal,
                    target,
                    _uuid(form.get("step")),
                    outcome,
                    request.app.state.catalogue,
                    await service_now(db),
                )
            except staff_actions.ActionRefused as refused:
                form.error(refused.field, refused.message)
        if form.errors:
            return await _referral_page(request, db, target, form)
        await _flash(request, f"Call recorded: {OUTCOME_TEXT[outcome].lower()}")
        back = form.get("back")
        return Redirect("/staff/calls" if back == "calls" else f"/staff/referrals/{target}")

    @post("/referrals/{referral_id:str}/contact", opt={"permission": "contact.pause"})
    async def pause_or_resume(
        self, request: Request[Any, Any, Any], db: Db, referral_id: FromPath[str]
    ) -> Any:
        staff = _staff(request)
        target = _uuid(referral_id)
        form = await read_form(request, staff.csrf)
        now = await service_now(db)
        if form.get("action") == "pause":
            await staff_actions.pause(db, staff.principal, target, now)
            message = "All contact paused"
        elif form.get("action") == "resume":
            await staff_actions.resume(
                db, staff.principal, target, request.app.state.catalogue, now
            )
            message = "Contact resumed"
        else:
            raise NotFoundException()
        await _flash(request, message)
        return Redirect(f"/staff/referrals/{target}")


async def _referral_page(
    request: Request[Any, Any, Any], db: Db, referral_id: uuid.UUID, form: Form | None
) -> Any:
    staff = _staff(request)
    try:
        view = await staff_views.referral_page(db, staff.principal, referral_id)
    except staff_views.NotInScope:
        raise NotFoundException() from None
    now = await service_now(db)
    catalogue = request.app.state.catalogue
    possible = (
        await duplicates.possible_duplicates(db, staff.principal, referral_id)
        if staff.can("duplicate.decide")
        else []
    )
    return render(
        "staff/referral.html",
        note_once=new_once(),
        duplicates=possible,
        allocatable=sorted(
            (code, service.name)
            for code, service in catalogue.services.items()
            if service.mode == "allocate" and service.kind == "victim"
        ),
        consent_how=CONSENT_HOW,
        open_surveys=await surveys.open_invitations(db, referral_id),
        status=400 if form and form.errors else 200,
        title=f"Referral {view['referral'].reference}",
        staff=staff,
        nav_active=None,
        view=view,
        now=now,
        form=form,
        error_summary=form.summary if form and form.errors else None,
        outcomes=[(k, OUTCOME_TEXT[k]) for k in CALL_OUTCOMES],
        flash=await _flash(request),
    )
