"""Search, and a referral's possible duplicates (merge or dismiss): staff only, never shown to
a referrer or a victim. The search text goes in the query string of a GET form (a person can
go back to it) and is never logged or audited: the audit event holds its kind and count."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from triage.domain.search_query import SearchRefused
from triage.services import duplicates, search
from triage.web.dependencies import Db
from triage.web.forms import Form, read_form
from triage.web.pages import render
from triage.web.staff.work import _flash, _referral_page, _staff, _uuid


class FindingController(Controller):
    path = "/staff"

    @get("/search", opt={"permission": "search"})
    async def search_page(
        self, request: Request[Any, Any, Any], db: Db, q: FromQuery[str | None] = None
    ) -> Any:
        staff = _staff(request)
        form = Form(values={"q": q or ""})
        results = None
        if q is not None:
            try:
                results = await search.search_referrals(db, staff.principal, q)
            except SearchRefused as refused:
                form.error("q", str(refused))
        return render(
            "staff/search.html",
            status=400 if form.errors else 200,
            title="Search",
            staff=staff,
            nav_active="/staff/search",
            form=form,
            results=results,
            error_summary=form.summary if form.errors else None,
        )

    @post("/duplicates/{link_id:str}", opt={"permission": "duplicate.decide"})
    async def decide(self, request: Request[Any, Any, Any], db: Db, link_id: FromPath[str]) -> Any:
        staff = _staff(request)
        form = await read_form(request, staff.csrf)
        referral_id = _uuid(form.get("referral"))
        if not link_id.isdigit() or len(link_id) > 18:
            raise NotFoundException()
        decision = form.get("decision")
        if decision not in ("merge", "dismiss"):
            form.error("decision", "Choose merge or dismiss")
        if not form.errors:
            try:
                command = duplicates.merge if decision == "merge" else duplicates.dismiss
                await command(db, staff.principal, int(link_id), form.get("duplicate_reason"))
            except duplicates.DuplicateRefused as refused:
                await db.rollback()
                form.error(
                    "duplicate_reason" if refused.field == "reason" else "decision",
                    refused.message,
                )
            except duplicates.DuplicateNotFound:
                raise NotFoundException() from None
        if form.errors:
            return await _referral_page(request, db, referral_id, form)
        await _flash(request, "Merged" if decision == "merge" else "Dismissed: not the same person")
        return Redirect(f"/staff/referrals/{referral_id}#duplicates")
