"""Every record's statuses and the transitions lifecycle.md allows, defined once: referral,
case, contact step, message, alert, possible duplicate, set-up email and survey invitation.

Service functions lock the row (SELECT ... FOR UPDATE) and `check` a transition before they
make it, or select the rows to change by `sources` (the statuses a transition may start
from). The database holds the same tables (`status_transitions`, written by the migrations
from these) and a trigger on each table refuses any other change of status, whoever writes
it; a test keeps the two the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class TransitionRefused(ValueError):
    def __init__(self, kind: str, current: str, wanted: str):
        super().__init__(f"a {kind} that is {current} cannot become {wanted}")
        self.kind, self.current, self.wanted = kind, current, wanted


@dataclass(frozen=True)
class Lifecycle:
    """One record's statuses: where a new row starts (`initial`), where each status may go
    next (`transitions`; a status with nowhere to go is final) and its table."""

    record: str
    table: str
    initial: frozenset[str]
    transitions: Mapping[str, frozenset[str]]

    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(self.transitions)

    def can(self, current: str, wanted: str) -> bool:
        return wanted in self.transitions.get(current, frozenset())

    def check(self, current: str, wanted: str) -> None:
        if not self.can(current, wanted):
            raise TransitionRefused(self.record, current, wanted)

    def sources(self, wanted: str) -> tuple[str, ...]:
        """The statuses from which `wanted` may be reached (for set-based updates)."""
        return tuple(s for s, after in self.transitions.items() if wanted in after)

    def pairs(self) -> list[tuple[str, str]]:
        return [(a, b) for a, after in self.transitions.items() for b in sorted(after)]


REFERRAL = Lifecycle(
    "referral",
    "referrals",
    frozenset({"triaged"}),
    {
        "triaged": frozenset({"in_contact", "closed", "withdrawn"}),
        "in_contact": frozenset({"closed", "withdrawn"}),
        # A case re-opened brings its closed referral back into contact (never a withdrawn
        # one: a new referral is needed). A closed referral may still be withdrawn: a survey
        # may yet be due to go, and a withdrawal must stop it (surveys.md).
        "closed": frozenset({"in_contact", "withdrawn"}),
        "withdrawn": frozenset(),
    },
)
CASE = Lifecycle(
    "case",
    "cases",
    frozenset({"awaiting_contact"}),
    {
        "awaiting_contact": frozenset({"in_support", "waiting_list", "closed"}),
        "waiting_list": frozenset({"in_support", "closed"}),
        "in_support": frozenset({"closed"}),
        "closed": frozenset({"in_support"}),  # re-opened, with a reason
    },
)
STEP = Lifecycle(
    "contact step",
    "contact_steps",
    frozenset({"scheduled"}),
    {
        # A message step and the closing step are done when they fall due; a call is due
        # first, in the calls-due list, then done with its outcome.
        "scheduled": frozenset({"due", "done", "paused", "skipped"}),
        "due": frozenset({"done", "paused", "skipped"}),
        "paused": frozenset({"scheduled", "skipped"}),
        "done": frozenset(),
        "skipped": frozenset(),
    },
)
MESSAGE = Lifecycle(
    "message",
    "messages",
    frozenset({"queued"}),
    {
        # A receipt can overtake our own record of a send (queued or sending -> its result).
        "queued": frozenset({"sending", "cancelled", "accepted", "delivered", "failed"}),
        # Back to queued: not safe yet, a temporary failure, a provider outage, a re-check
        # that refused the call.
        "sending": frozenset({"queued", "accepted", "delivered", "failed", "cancelled"}),
        "accepted": frozenset({"delivered", "failed"}),
        "delivered": frozenset(),
        # A receipt can say the provider had it after all: recorded as delivered.
        "failed": frozenset({"delivered"}),
        "cancelled": frozenset({"delivered"}),
    },
)
ALERT = Lifecycle(
    "alert",
    "alerts",
    # Raised at once: an alert about the service itself (a provider outage).
    frozenset({"pending", "raised"}),
    {
        "pending": frozenset({"raised", "resolved", "cancelled"}),
        "raised": frozenset({"resolved"}),
        "resolved": frozenset(),
        "cancelled": frozenset(),
    },
)
# A possible duplicate linked at intake: staff merge it (the newer referral closes as a
# duplicate of the older) or dismiss it; either decision is final.
DUPLICATE = Lifecycle(
    "possible duplicate",
    "referral_duplicates",
    frozenset({"open"}),
    {
        "open": frozenset({"merged", "dismissed"}),
        "merged": frozenset(),
        "dismissed": frozenset(),
    },
)
# A staff account's set-up link by email (production): queued with the account's creation or
# reset, claimed, then sent or failed; cancelled when a newer link replaced it or the account
# was disabled before it went. Back to queued after a temporary failure (a later try).
SETUP_EMAIL = Lifecycle(
    "set-up email",
    "staff_setup_emails",
    frozenset({"queued"}),
    {
        "queued": frozenset({"sending", "cancelled"}),
        "sending": frozenset({"queued", "sent", "failed", "cancelled"}),
        "sent": frozenset(),
        "failed": frozenset(),
        "cancelled": frozenset(),
    },
)
# A survey invitation (surveys.md): written with a case's closure as supported, `scheduled`
# until it is due; `invited` once its message is written (the link then works); `reminded`
# once the reminder is; `completed` by the answers, `expired` 28 days after the invitation.
# `cancelled` from any open status: a pause, a withdrawal, a consent change, a wrong number,
# the case re-opened, or no allowed channel left when it fell due.
SURVEY = Lifecycle(
    "survey invitation",
    "survey_invitations",
    frozenset({"scheduled"}),
    {
        "scheduled": frozenset({"invited", "cancelled"}),
        "invited": frozenset({"reminded", "completed", "expired", "cancelled"}),
        "reminded": frozenset({"completed", "expired", "cancelled"}),
        "completed": frozenset(),
        "expired": frozenset(),
        "cancelled": frozenset(),
    },
)
LIFECYCLES: dict[str, Lifecycle] = {
    lifecycle.record: lifecycle
    for lifecycle in (REFERRAL, CASE, STEP, MESSAGE, ALERT, DUPLICATE, SETUP_EMAIL, SURVEY)
}

CLOSURE_REASONS = (
    "supported",
    "declined",
    "unable_to_contact",
    "not_eligible",
    "moved_area",
    "duplicate",
    "withdrawn",
)
OPEN_REFERRAL_STATUSES = ("triaged", "in_contact")
OPEN_CASE_STATUSES = ("awaiting_contact", "waiting_list", "in_support")
OPEN_STEP_STATUSES = ("scheduled", "due", "paused")
OPEN_SURVEY_STATUSES = ("scheduled", "invited", "reminded")
# The statuses in which a survey link opens the survey (until it expires).
ANSWERABLE_SURVEY_STATUSES = ("invited", "reminded")
