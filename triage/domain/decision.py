"""The triage decision, in the shape of the API's `triage` object (api.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from triage.domain.planning import NextStep


class Area(msgspec.Struct, frozen=True):
    code: str
    local_authority: str | None
    district: str | None


class ServiceChoice(msgspec.Struct, frozen=True):
    code: str
    role: str  # primary | additional
    reasons: list[str]


class Signpost(msgspec.Struct, frozen=True):
    code: str
    reasons: list[str]


class FirstContactStep(msgspec.Struct, frozen=True):
    kind: str
    channel: str | None
    due_at: datetime


class Decision(msgspec.Struct, frozen=True):
    area: Area
    priority: str
    enhanced_rights: list[str]
    contact_due_by: datetime | None
    services: list[ServiceChoice]
    signposts: list[Signpost]
    first_contact_step: FirstContactStep | None
    flags: list[str]
    catalogue_version: str
    # Why the priority, the groups and the flags: kept with the decision, not in the API shape.
    explanation: dict[str, list[str]] = msgspec.field(default_factory=dict)
    # The planner's whole first step (template, message channel), for the rows written with
    # the decision: planned once. Not in the API shape.
    planned_step: NextStep | None = None

    @property
    def primary(self) -> str:
        return next(s.code for s in self.services if s.role == "primary")

    def to_api(self) -> dict[str, Any]:
        """Exactly the keys of api.md's `triage` object, times as UTC with `Z`."""
        step = self.first_contact_step
        return {
            "area": {
                "code": self.area.code,
                "local_authority": self.area.local_authority,
                "district": self.area.district,
            },
            "priority": self.priority,
            "enhanced_rights": list(self.enhanced_rights),
            "contact_due_by": iso_z(self.contact_due_by),
            "services": [
                {"code": s.code, "role": s.role, "reasons": list(s.reasons)} for s in self.services
            ],
            "signposts": [{"code": s.code, "reasons": list(s.reasons)} for s in self.signposts],
            "first_contact_step": None
            if step is None
            else {"kind": step.kind, "channel": step.channel, "due_at": iso_z(step.due_at)},
            "flags": list(self.flags),
            "catalogue_version": self.catalogue_version,
        }


def iso_z(instant: datetime | None) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
