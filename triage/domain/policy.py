"""What each principal may do, and to which records: one table of roles and permissions, and
one rule for row scoping. Services check `require(principal, permission)` before acting and
build their queries with the scope (services/scoping.py); handlers and templates ask `allows`
and never test a role by name.

Scoping is by service code, never by provider name: one provider runs several services and
one service can have two providers. A caseworker sees a referral only while it has a case of
one of their services; hub staff and the duty lead see every referral; an API client sees the
referrals it sent; a commissioner sees reports only, never a referral.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from triage.domain.principals import Principal

STAFF_ROLES = ("hub", "caseworker", "duty_lead", "commissioner", "admin")

_HUB = frozenset(
    {
        "queue.view",
        "calls.view",
        "referral.view",
        "referral.create",
        "referral.note",
        "call.record",
        "contact.pause",
        "case.assign",
        "decision.override",
        "search",
        "duplicate.decide",
    }
)

# The one table: role (or API scope) -> permissions.
PERMISSIONS: dict[str, frozenset[str]] = {
    "hub": _HUB,
    "caseworker": frozenset(
        {
            "caseload.view",
            "calls.view",
            "referral.view",
            "referral.note",
            "call.record",
            "contact.pause",
            "case.work",
            "search",
        }
    ),
    "duty_lead": _HUB
    | frozenset({"alert.view", "case.reassign", "case.work", "caseload.view", "report.view"}),
    "commissioner": frozenset({"report.view"}),
    "admin": frozenset(
        {"user.manage", "client.manage", "catalogue.view", "audit.view", "report.view"}
    ),
    # API key scopes, as api.md names them.
    "referrals:write": frozenset({"referral.create", "referral.update", "referral.withdraw"}),
    "referrals:read": frozenset({"referral.view"}),
    "aa:write": frozenset({"aa.create"}),
    "reports:read": frozenset({"report.view"}),
    # A public form submits a referral and nothing else; the system acts as the plan says.
    "public": frozenset({"referral.create"}),
    "system": frozenset({"referral.view", "call.record", "contact.pause"}),
}

# Roles whose referral scope is every referral; a caseworker's is their services' cases.
_SEES_ALL = frozenset({"hub", "duty_lead", "system"})


class Forbidden(Exception):
    """The principal may not do this (a page answers 403, the API problem+json 403)."""

    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


API_SCOPES = ("referrals:write", "referrals:read", "aa:write", "reports:read")


def scope_granting(permission: str) -> str:
    """The API key scope that grants `permission` (for a 403's words)."""
    for scope in API_SCOPES:
        if permission in PERMISSIONS[scope]:
            return scope
    return permission


def permissions_of(principal: Principal) -> frozenset[str]:
    granted: frozenset[str] = frozenset()
    for role in principal.roles:
        granted |= PERMISSIONS.get(role, frozenset())
    return granted


def allows(principal: Principal, permission: str) -> bool:
    return permission in permissions_of(principal)


def require(principal: Principal, permission: str) -> None:
    if not allows(principal, permission):
        raise Forbidden(permission)


@dataclass(frozen=True)
class Scope:
    """Which referrals a principal's queries may return."""

    kind: Literal["all", "client", "services", "none"]
    client_id: str | None = None
    services: frozenset[str] = frozenset()


NOTHING = Scope("none")


def referral_scope(principal: Principal) -> Scope:
    if principal.kind == "client":
        return Scope("client", client_id=principal.id)
    if principal.roles & _SEES_ALL:
        return Scope("all")
    if "caseworker" in principal.roles and principal.services:
        return Scope("services", services=principal.services)
    return NOTHING


def sees_case_notes_of(principal: Principal, service: str) -> bool:
    """A caseworker reads their services' case notes, never another service's."""
    scope = referral_scope(principal)
    return scope.kind == "all" or (scope.kind == "services" and service in scope.services)
