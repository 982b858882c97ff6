"""Contact planning: given the plan, the steps so far, the victim's rules and the time, the
next step (what, which channel, when) or the end of the plan. Pure: the caller gives `now`.

Only the next step exists at any time (lifecycle.md); every step is moved forward to the
victim's next safe moment, never earlier, and never before `now`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from triage.domain.calendar import WorkingCalendar, local_date, local_to_utc, parse_clock
from triage.domain.catalogue import Catalogue, ContactPolicy, PlanStep
from triage.domain.referral import Referral
from triage.domain.safe_times import SafeTimes, safe_times_from_spec

PHONE_CHANNELS = ("phone", "sms")
MIDNIGHT = time(0, 0)


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
        key = tuple((tuple(w.days), w.from_, w.to) for w in contact.safe_times)
        safe = _victim_safe_times(key, catalogue.zone)
    else:
        safe = catalogue.contact.default_safe_times
    return ContactRules(tuple(usable), safe, contact.voicemail_ok, contact.letter_ok)


@lru_cache(maxsize=4096)
def _victim_safe_times(
    windows: tuple[tuple[tuple[str, ...], str, str], ...], zone: ZoneInfo
) -> SafeTimes:
    """Parsed once per distinct set of windows, so the intervals cached on it are reused."""
    spec = [(days, parse_clock(start), parse_clock(end)) for days, start, end in windows]
    return safe_times_from_spec(spec, zone)


def plan_next_step(
    policy: ContactPolicy,
    calendar: WorkingCalendar,
    history: Sequence[StepRecord],
    rules: ContactRules,
    now: datetime,
) -> NextStep | PlanEnded:
    channels = rules.channels
    if not rules.letter_ok and "letter" in channels:
        channels = tuple(c for c in channels if c != "letter")  # letters only with letter_ok
    previous: StepRecord | None = None
    first_due: datetime | None = None
    index = 0  # plan steps are numbered from 1: the next step's index is the last's number
    if history:
        previous = history[-1]
        if previous.outcome == "reached":
            return PlanEnded("reached")
        if previous.outcome == "declined":
            return PlanEnded("declined", "declined")
        if any(step.outcome == "wrong_number" for step in history):
            # wrong_number stops calls and messages to that number, for the rest of the plan.
            channels = tuple(c for c in channels if c not in PHONE_CHANNELS)
        index = previous.number
        first_due = history[0].due_at
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
        # The victim could not talk then: try in the next safe window, not days later. When
        # that window has already begun by `now`, the next safe moment from `now`.
        window = safe.next_window_start(base)
        return window if window >= now else safe.next_safe_moment(now)
    if step.other_half:
        # The first safe moment of that working day in the other half of the day (morning
        # after an afternoon try, afternoon after a morning try); when the safe times hold
        # only one half, the first safe moment of that working day.
        morning = wall >= policy.half_day_split
        start = max(local_to_utc(day, MIDNIGHT, zone), now)
        moment = safe.first_moment_in_half(start, morning, policy.half_day_split)
        return moment if moment is not None else safe.next_safe_moment(start)
    return safe.next_safe_moment(candidate)


def _resolve(
    step: PlanStep, due: datetime, channels: tuple[str, ...], rules: ContactRules
) -> NextStep | None:
    message_channel = None
    for channel in channels:  # the victim's order of preference
        if channel in step.message_channels:
            message_channel = channel
            break
    template = step.message_template if message_channel else None
    if step.kind == "close":
        return NextStep(
            step.number, "close", None, due, template, message_channel, step.closure_reason
        )
    if "phone" in channels:
        return NextStep(step.number, "call", "phone", due, template, message_channel)
    if message_channel is not None and template is not None:
        return NextStep(step.number, "message", message_channel, due, template, message_channel)
    return None
