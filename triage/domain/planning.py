"""Contact planning: given the plan, the steps so far, the victim's rules and the time, the
next step (what, which channel, when) or the end of the plan. Pure: the caller gives `now`.

Only the next step exists at any time (lifecycle.md); every step is moved forward to the
victim's next safe moment, never earlier, and never before `now`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from triage.domain.calendar import WorkingCalendar, local_date, local_to_utc
from triage.domain.catalogue import Catalogue, ContactPolicy, PlanStep, parse_safe_windows
from triage.domain.referral import Referral
from triage.domain.safe_times import SafeTimes

PHONE_CHANNELS = ("phone", "sms")


@dataclass(frozen=True, slots=True)
class ContactRules:
    """What the victim allows: usable channels in order of preference, and safe times."""

    channels: tuple[str, ...]
    safe_times: SafeTimes
    voicemail_ok: bool = False
    letter_ok: bool = False


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A step already planned, with its outcome once it has one."""

    number: int
    due_at: datetime
    outcome: str | None = None
    attempted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NextStep:
    number: int
    kind: str  # call | message | close
    channel: str | None  # phone for a call, the message channel for a message, None to close
    due_at: datetime
    message_template: str | None = None
    message_channel: str | None = None
    closure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class PlanEnded:
    reason: str  # reached | declined | plan_ended
    closure_reason: str | None = None


def contact_rules(referral: Referral, usable: Sequence[str], catalogue: Catalogue) -> ContactRules:
    contact = referral.contact
    if contact.safe_times:
        raw = [{"days": w.days, "from": w.from_, "to": w.to} for w in contact.safe_times]
        safe = parse_safe_windows(None, raw, "contact.safe_times", catalogue.zone)
    else:
        safe = catalogue.contact.default_safe_times
    return ContactRules(tuple(usable), safe, contact.voicemail_ok, contact.letter_ok)


def plan_next_step(
    policy: ContactPolicy,
    calendar: WorkingCalendar,
    history: Sequence[StepRecord],
    rules: ContactRules,
    now: datetime,
) -> NextStep | PlanEnded:
    channels = rules.channels
    if any(step.outcome == "wrong_number" for step in history):
        channels = tuple(c for c in channels if c not in PHONE_CHANNELS)
    if history:
        last = history[-1]
        if last.outcome == "reached":
            return PlanEnded("reached")
        if last.outcome == "declined":
            return PlanEnded("declined", "declined")
    index = history[-1].number if history else 0  # plan steps are numbered from 1
    previous = history[-1] if history else None
    first_due = history[0].due_at if history else None
    while index < len(policy.plan):
        step = policy.plan[index]
        due = _due_at(step, policy, calendar, rules.safe_times, previous, first_due, now)
        resolved = _resolve(step, due, channels, rules)
        if resolved is not None:
            return resolved
        # Nothing this step can use (no phone after a wrong number, say): the plan moves on,
        # timed from when this step would have been.
        previous = StepRecord(step.number, due)
        first_due = first_due or due
        index += 1
    return PlanEnded("plan_ended")


def _due_at(
    step: PlanStep,
    policy: ContactPolicy,
    calendar: WorkingCalendar,
    safe: SafeTimes,
    previous: StepRecord | None,
    first_due: datetime | None,
    now: datetime,
) -> datetime:
    zone = calendar.zone
    if step.at_triage or previous is None:
        return safe.next_safe_moment(now)
    if step.after == "first" and first_due is not None:
        base = first_due
    else:
        base = previous.attempted_at or previous.due_at
    wall = base.astimezone(zone).time()
    day = calendar.add_working_days(local_date(base, zone), step.working_days)
    candidate = max(local_to_utc(day, wall, zone), now)
    if step.kind == "close":
        return candidate  # closing is the hub's own act, not a contact: no safe-time move
    if previous.outcome == "unsafe_to_talk":
        # The victim could not talk then: try in the next safe window, not days later.
        return max(safe.next_window_start(base), now)
    if step.other_half:
        morning = base.astimezone(zone).time() >= policy.half_day_split
        start = max(local_to_utc(day, wall.replace(hour=0, minute=0), zone), now)
        moment = safe.first_moment_in_half(start, morning, policy.half_day_split)
        if moment is not None:
            return moment
    return safe.next_safe_moment(candidate)


def _resolve(
    step: PlanStep, due: datetime, channels: tuple[str, ...], rules: ContactRules
) -> NextStep | None:
    message_channel = next((c for c in channels if c in step.message_channels), None)
    template = step.message_template if message_channel else None
    if step.kind == "close":
        return NextStep(step.number, "close", None, due, template, message_channel,
                        step.closure_reason)
    if "phone" in channels:
        return NextStep(step.number, "call", "phone", due, template, message_channel)
    if message_channel is not None and template is not None:
        return NextStep(step.number, "message", message_channel, due, template, message_channel)
    return None


def is_safe(rules: ContactRules, instant: datetime) -> bool:
    return rules.safe_times.contains(instant)


ONE_MINUTE = timedelta(minutes=1)
