"""The side navigation: the pages there are, each shown only to whom the policy allows."""

from __future__ import annotations

from typing import Any

from triage.domain.policy import allows

PAGES = (
    ("/staff/queue", "Queue", "queue.view"),
    # Before calls due: a caseworker lands on their caseload.
    ("/staff/caseload", "Caseload", "caseload.view"),
    ("/staff/calls", "Calls due", "calls.view"),
    ("/staff/search", "Search", "search"),
    ("/staff/phone-referral/", "Take a phone referral", "referral.create"),
    ("/staff/alerts", "Alerts", "alert.view"),
    ("/staff/caseload/reassign", "Reassign a caseload", "case.reassign"),
    ("/staff/admin/users", "Users", "user.manage"),
    ("/staff/admin/clients", "API clients", "client.manage"),
    ("/staff/admin/catalogue", "Catalogue", "catalogue.view"),
    ("/staff/admin/audit", "Audit trail", "audit.view"),
    # Last: a commissioner lands here; staff who also read reports land on their own work.
    ("/staff/reports", "Reports", "report.view"),
)


def staff_nav(staff: Any) -> list[dict[str, str]]:
    if staff is None:
        return []
    pages = [
        {"path": path, "text": text}
        for path, text, permission in PAGES
        if allows(staff.principal, permission)
    ]
    return [*pages, {"path": "/staff/account", "text": "Your account"}]


def home_for(staff: Any) -> str:
    """Where a person lands after signing in: the first page their roles allow."""
    return staff_nav(staff)[0]["path"]
