"""The referral and contact-step transitions of lifecycle.md, the closure reasons, and the
open statuses, defined once.

Service functions lock the row (SELECT ... FOR UPDATE) and call `check` before changing a
referral's or a step's status, so a transition that is not allowed (or already done) never
happens twice. Messages are guarded by their claim token and `WHERE status = ...`.
"""

from __future__ import annotations

REFERRAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "triaged": frozenset({"in_contact", "closed", "withdrawn"}),
    "in_contact": frozenset({"closed", "withdrawn"}),
    "closed": frozenset(),
    "withdrawn": frozenset(),
}
STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    "scheduled": frozenset({"due", "paused", "skipped"}),
    "due": frozenset({"done", "paused", "skipped"}),
    "paused": frozenset({"scheduled", "skipped"}),
    "done": frozenset(),
    "skipped": frozenset(),
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
