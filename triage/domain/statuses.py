"""Every status of lifecycle.md and the transitions allowed between them, defined once.

Service functions lock the row (SELECT ... FOR UPDATE) and call `check` before changing it, so
a transition that is not allowed (or already done) never happens twice.
"""

from __future__ import annotations

REFERRAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "triaged": frozenset({"in_contact", "closed", "withdrawn"}),
    "in_contact": frozenset({"closed", "withdrawn"}),
    "closed": frozenset(),
    "withdrawn": frozenset(),
}
CASE_TRANSITIONS: dict[str, frozenset[str]] = {
    "awaiting_contact": frozenset({"in_support", "waiting_list", "closed"}),
    "waiting_list": frozenset({"in_support", "closed"}),
    "in_support": frozenset({"closed"}),
    "closed": frozenset({"in_support"}),  # a re-opened case goes back to in_support
}
STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    "scheduled": frozenset({"due", "paused", "skipped"}),
    "due": frozenset({"done", "paused", "skipped"}),
    "paused": frozenset({"scheduled", "skipped"}),
    "done": frozenset(),
    "skipped": frozenset(),
}
MESSAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"sending", "cancelled", "failed"}),
    "sending": frozenset({"accepted", "queued", "failed"}),
    "accepted": frozenset({"delivered", "failed"}),
    "delivered": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
AA_TRANSITIONS: dict[str, frozenset[str]] = {
    "allocated": frozenset({"attended", "not_attended", "cancelled"}),
    "signposted": frozenset(),
    "attended": frozenset(),
    "not_attended": frozenset(),
    "cancelled": frozenset(),
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
OPEN_STEP_STATUSES = ("scheduled", "due", "paused")
OPEN_CASE_STATUSES = ("awaiting_contact", "waiting_list", "in_support")


class TransitionRefused(ValueError):
    def __init__(self, kind: str, current: str, wanted: str):
        super().__init__(f"a {kind} that is {current} cannot become {wanted}")
        self.kind, self.current, self.wanted = kind, current, wanted


def can(transitions: dict[str, frozenset[str]], current: str, wanted: str) -> bool:
    return wanted in transitions.get(current, frozenset())


def check(kind: str, transitions: dict[str, frozenset[str]], current: str, wanted: str) -> None:
    if not can(transitions, current, wanted):
        raise TransitionRefused(kind, current, wanted)
