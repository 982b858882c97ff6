"""The /staff pages as one router: every handler behind the staff guard (sign-in pages are
marked public), so no page can be added without the guard."""

from __future__ import annotations

from litestar import Router

from triage.web.staff.admin import AdminController
from triage.web.staff.auth import SignInController
from triage.web.staff.casework import CaseworkController
from triage.web.staff.finding import FindingController
from triage.web.staff.guards import staff_guard
from triage.web.staff.phone import PhoneReferralController
from triage.web.staff.reports import ReportsController
from triage.web.staff.work import WorkController


def staff_router() -> Router:
    return Router(
        path="/",
        route_handlers=[
            SignInController,
            WorkController,
            CaseworkController,
            PhoneReferralController,
            FindingController,
            AdminController,
            ReportsController,
        ],
        guards=[staff_guard],
        include_in_schema=False,
    )
