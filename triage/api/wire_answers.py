"""The answers of the machine API (api.md) as msgspec Structs: the OpenAPI document's schemas
are generated from these (openapi_docs).

Every field is always sent (so `required`), null where it says so. The referral views are
built as plain JSON by triage.services.referral_views (the single POST encodes them in one
call): these Structs describe them, and the suite checks each real answer against them (field
for field) and schemathesis against the document. The batch answer, the receipt answer and
problem+json are built from these Structs themselves.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from msgspec import Meta, Struct

from triage.api.wire_constraints import one_of
from triage.domain import vocabulary as v
from triage.domain.statuses import CASE, MESSAGE, REFERRAL

# Answers give times in UTC with `Z`.
Instant = Annotated[datetime, Meta(tz=True, description="UTC, such as 2026-11-23T17:00:00Z")]
BATCH_STATUSES = ("created", "existing", "invalid", "conflict")
# What a delivery receipt did: the message's status after it, or why it changed nothing.
RECEIPT_RESULTS = ("ignored", "unknown", "already_final", *MESSAGE.statuses)


class Area(Struct, kw_only=True):
    code: str
    local_authority: str | None
    district: str | None


class ServiceChoice(Struct, kw_only=True):
    code: str
    role: Annotated[str, Meta(description="primary or additional")]
    reasons: list[str]


class Signpost(Struct, kw_only=True):
    code: str
    reasons: list[str]


class FirstContactStep(Struct, kw_only=True):
    kind: Annotated[str, Meta(description="call, message or close")]
    channel: Annotated[str, one_of("Channel", v.CHANNELS)] | None
    due_at: Instant


class Triage(Struct, kw_only=True):
    """The triage decision."""

    area: Area
    priority: Annotated[str, one_of("Priority", v.PRIORITIES)]
    enhanced_rights: list[Annotated[str, one_of("EnhancedRight", v.ENHANCED_RIGHTS_GROUPS)]]
    contact_due_by: Instant | None
    services: list[ServiceChoice]
    signposts: list[Signpost]
    first_contact_step: FirstContactStep | None
    flags: list[Annotated[str, one_of("Flag", v.DECISION_FLAGS)]]
    catalogue_version: str


class Case(Struct, kw_only=True):
    """A case with one service: the primary service's first, then in the order opened."""

    service: str
    status: Annotated[str, one_of("Status", CASE.statuses)]
    first_contact_at: Instant | None
    closed_at: Instant | None
    closure_reason: str | None


class Referral(Struct, kw_only=True):
    """A referral as its sender may see it: status, the decision in force, the cases."""

    id: uuid.UUID
    reference: Annotated[str, Meta(description="The human reference, such as KVR-26-004211")]
    external_ref: str | None
    status: Annotated[str, one_of("Status", REFERRAL.statuses)]
    received_at: Instant
    updated_at: Instant
    triage: Triage | None
    cases: list[Case]


class ReferralPage(Struct, kw_only=True):
    items: list[Referral]
    next_cursor: (
        Annotated[str, Meta(description="Give as `cursor` for the next page; null at the end")]
        | None
    )


class Decision(Struct, kw_only=True):
    decided_at: Instant
    cause: Annotated[str, Meta(description="intake, update or override")]
    catalogue_version: str
    triage: Triage


class DecisionList(Struct, kw_only=True):
    items: list[Decision]


class FieldProblem(Struct, kw_only=True):
    path: Annotated[str, Meta(description="Dotted path, such as referrals[3].victim.phone")]
    message: str


class BatchCounts(Struct, kw_only=True):
    created: int
    existing: int
    invalid: int
    conflict: int


class BatchItem(Struct, kw_only=True):
    index: int
    status: Annotated[str, one_of("Status", BATCH_STATUSES)]
    id: uuid.UUID | None
    reference: str | None
    errors: list[FieldProblem]


class BatchAnswer(Struct, kw_only=True):
    """Every item's outcome, in request order."""

    counts: BatchCounts
    items: list[BatchItem]


class AppropriateAdultAnswer(Struct, kw_only=True):
    id: uuid.UUID
    reference: Annotated[str, Meta(description="Such as KAA-26-000123")]
    external_ref: str
    status: Annotated[str, Meta(description="allocated (see attend_by) or signposted")]
    attend_by: Instant | None
    signpost_to: str | None
    reasons: list[str]
    flags: list[str]


class ReceiptAnswer(Struct, kw_only=True):
    result: Annotated[str, one_of("Result", RECEIPT_RESULTS)]


class ProblemDetails(Struct, kw_only=True):
    """An error (RFC 9457), with every problem of a body at once in `errors`."""

    type: Annotated[str, Meta(extra_json_schema={"format": "uri"})]
    title: str
    status: Annotated[int, Meta(ge=400, le=599)]
    detail: str
    errors: list[FieldProblem]


# Reports (issue 13): the commissioner's own tools read the same report as the pages, with
# disclosure control (a count under 5 is `<5`, others rounded to the nearest 5, percentages,
# medians and percentiles only with 10 people behind them).
class ReportValue(Struct, kw_only=True):
    value: Annotated[
        float | None, Meta(description="The figure as shown; null when suppressed or under 5")
    ]
    text: Annotated[str, Meta(description="As a table shows it: `<5`, `suppressed`, `35`, `91%`")]


class ReportFigure(Struct, kw_only=True):
    name: Annotated[str, Meta(description="Stable name, such as `received` or `source:police`")]
    label: str
    current: ReportValue
    previous: ReportValue
    year_earlier: ReportValue


class ReportSection(Struct, kw_only=True):
    name: str
    title: str
    figures: list[ReportFigure]


class ReportPeriod(Struct, kw_only=True, rename={"start": "from", "end": "to"}):
    start: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}$", description="First month, YYYY-MM")]
    end: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}$", description="Last month, YYYY-MM")]


class ReportPeriods(Struct, kw_only=True):
    current: ReportPeriod
    previous: ReportPeriod
    year_earlier: ReportPeriod


class ReportAnswer(Struct, kw_only=True, rename={"start": "from", "end": "to"}):
    service: Annotated[str, Meta(description="A service's code, or `all`")]
    start: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}$")]
    end: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}$")]
    periods: ReportPeriods
    disclosure_control: bool
    sections: list[ReportSection]
