"""The forms on a referral's page that change its decision or its cases: override (with a
mandatory reason), assign a case, start support, waiting list, close, re-open; and the duty
lead's reassignment of a caseload. A refused form re-renders the referral page with a GOV.UK
error summary and the values entered."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from triage.domain.surveys import distance_travelled
from triage.domain.vocabulary import NEEDS
from triage.services import case_work, overrides, staff_directory, staff_views, surveys
from triage.services.case_work import STAFF_CLOSURE_REASONS
from triage.services.clock import service_now
from triage.services.staff_actions import ActionRefused
from triage.web.dependencies import Db
from triage.web.forms import Form, read_form
from triage.web.pages import render
from triage.web.staff.work import _flash, _referral_page, _staff, _uuid

LONDON = ZoneInfo("Europe/London")


def _deadline(form: Form) -> datetime | None:
    """The deadline from its date and time fields, as Europe/London wall time."""
    day, clock = form.get("deadline_date"), form.get("deadline_time") or "17:00"
    if not day:
        return None
    try:
        return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=LONDON)
    except ValueError:
        raise ActionRefused(
            "deadline_date", "Enter the deadline as a date and time, like 2026-12-04 and 17:00"
        ) from None


class CaseworkController(Controller):
    path = "/staff"

    @post("/referrals/{referral_id:str}/override", opt={"permission": "decision.override"})
    async def override(
        self, request: Request[Any, Any, Any], db: Db, referral_id: FromPath[str]
    ) -> Any:
        staff = _staff(request)
        target = _uuid(referral_id)
        form = await read_form(request, staff.csrf)
        if not form.errors:
            try:
                await overrides.override(
                    db,
                    staff.principal,
                    target,
                    form.get("kind"),
                    form.get("reason"),
                    request.app.state.catalogue,
                    await service_now(db),
                    service=form.get("service") or None,
                    priority=form.get("priority") or None,
                    contact_due_by=_deadline(form) if form.get("kind") == "deadline" else None,
                    consent={
                        "given_by": form.get("consent_given_by"),
                        "given_on": form.get("consent_given_on"),
                        "how": form.get("consent_how"),
                    },
                )
            except ActionRefused as refused:
                await db.rollback()
                form.error(refused.field, refused.message)
        if form.errors:
            return await _referral_page(request, db, target, form)
        await _flash(request, "Decision overridden")
        return Redirect(f"/staff/referrals/{target}")

    @post("/cases/{case_id:str}/{action:str}", opt={"permission": None})
    async def case_action(
        self, request: Request[Any, Any, Any], db: Db, case_id: FromPath[str], action: FromPath[str]
    ) -> Any:
        staff = _staff(request)
        target = _uuid(case_id)
        form = await read_form(request, staff.csrf)
        now = await service_now(db)
        messages = {
            "assign": "Case assigned",
            "support": "Support started",
            "waiting-list": "Case put on the waiting list",
            "close": "Case closed",
            "reopen": "Case re-opened",
            "outcomes": "Outcome measures recorded",
        }
        if action not in messages:
            from litestar.exceptions import NotFoundException

            raise NotFoundException()
        if not form.errors:
            try:
                if action == "assign":
                    assignee = form.get("assignee")
                    user_id = staff.user_id if assignee == "me" else _uuid(assignee)
                    await case_work.assign(db, staff.principal, target, user_id, now)
                elif action == "support":
                    await case_work.start_support(
                        db, staff.principal, target, form.many("needs"), form.get("plan"), now
                    )
                elif action == "waiting-list":
                    await case_work.to_waiting_list(
                        db, staff.principal, target, request.app.state.catalogue, now
                    )
                elif action == "close":
                    await case_work.close(
                        db,
                        staff.principal,
                        target,
                        form.get("reason"),
                        now,
                        catalogue=request.app.state.catalogue,
                    )
                elif action == "outcomes":
                    await case_work.record_outcomes(
                        db,
                        staff.principal,
                        target,
                        form.get("stage"),
                        form.values,
                        request.app.state.catalogue,
                        now,
                    )
                else:
                    await case_work.reopen(
                        db, staff.principal, target, form.get("reopen_reason"), now
                    )
            except ActionRefused as refused:
                await db.rollback()
                form.error(refused.field, refused.message)
        if form.errors:
            return await case_page(request, db, target, form)
        await _flash(request, messages[action])
        return Redirect(f"/staff/cases/{target}")

    @get("/cases/{case_id:str}", opt={"permission": "referral.view"})
    async def case_view(
        self, request: Request[Any, Any, Any], db: Db, case_id: FromPath[str]
    ) -> Any:
        return await case_page(request, db, _uuid(case_id), None)

    @get("/caseload/reassign", opt={"permission": "case.reassign"})
    async def reassign_page(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        workers = await staff_directory.caseworkers(db, staff.principal)
        return render(
            "staff/reassign.html",
            title="Reassign a caseload",
            staff=staff,
            nav_active="/staff/caseload",
            workers=workers,
            form=None,
            flash=await _flash(request),
        )

    @post("/caseload/reassign", opt={"permission": "case.reassign"})
    async def reassign(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        form = await read_form(request, staff.csrf)
        moved = 0
        if not form.get("from_user"):
            form.error("from_user", "Select whose cases to move")
        if not form.get("to_user"):
            form.error("to_user", "Select who takes the cases")
        if not form.errors:
            try:
                moved = await case_work.reassign_caseload(
                    db,
                    staff.principal,
                    _uuid(form.get("from_user")),
                    _uuid(form.get("to_user")),
                    await service_now(db),
                )
            except ActionRefused as refused:
                await db.rollback()
                form.error(refused.field, refused.message)
        if form.errors:
            return render(
                "staff/reassign.html",
                status=400,
                title="Reassign a caseload",
                staff=staff,
                nav_active="/staff/caseload",
                workers=await staff_directory.caseworkers(db, staff.principal),
                form=form,
                error_summary=form.summary,
            )
        await _flash(request, f"{moved} case{'s' if moved != 1 else ''} reassigned")
        return Redirect("/staff/caseload/reassign")


async def case_page(
    request: Request[Any, Any, Any], db: Db, case_id: Any, form: Form | None
) -> Any:
    staff = _staff(request)
    try:
        view = await staff_views.case_page(db, staff.principal, case_id)
    except staff_views.NotInScope:
        from litestar.exceptions import NotFoundException

        raise NotFoundException() from None
    catalogue = request.app.state.catalogue
    service = catalogue.services.get(view["case"].service)
    workers = (
        await staff_directory.caseworkers(db, staff.principal) if staff.can("case.assign") else []
    )
    # The case is the viewer's to see (case_page checked it): its surveys, answers and free
    # text are shown to its service and the hub alike, as the rest of the case is.
    outcomes = await surveys.case_outcomes(db, case_id)
    return render(
        "staff/case.html",
        status=400 if form and form.errors else 200,
        title=f"{view['case'].service} case, {view['reference']}",
        staff=staff,
        nav_active=None,
        view=view,
        service_name=service.name if service else view["case"].service,
        has_waiting_list=bool(service and service.waiting_list),
        caseworkers=[w for w in workers if view["case"].service in w["services"]],
        needs=NEEDS,
        closure_reasons=STAFF_CLOSURE_REASONS,
        survey_policy=catalogue.surveys,
        case_surveys=await surveys.case_surveys(db, case_id),
        distances=distance_travelled(catalogue.surveys, outcomes),
        outcome_stage="closure" if view["case"].status == "closed" else "assessment",
        form=form,
        error_summary=form.summary if form and form.errors else None,
        flash=await _flash(request),
    )
