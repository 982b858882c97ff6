"""The safe contact rules, in one place (contacts.md). Every contact step and every message
asks here before anything reaches a victim."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from triage.domain.planning import PHONE_CHANNELS, ContactRules
from triage.domain.statuses import OPEN_REFERRAL_STATUSES


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str | None = None  # why not: withdrawn, paused, no_contact_consent, ...
    not_before: datetime | None = None  # allowed, but not yet: the next safe moment


def may_contact(
    *,
    referral_status: str,
    paused: bool,
    to_contact: bool,
    rules: ContactRules,
    channel: str | None,
    wrong_number: bool,
    now: datetime,
    closing: bool = False,
    survey: bool = False,
    to_survey: bool = False,
) -> Verdict:
    """May we contact this victim on `channel` now? (channel None: a call to be made by staff).
    `closing`: the plan's closing message, and `survey`: a survey invitation or reminder, go
    after the referral has closed; a survey also needs the victim's consent to be surveyed."""
    if referral_status == "withdrawn":
        return Verdict(False, "withdrawn")
    if referral_status not in OPEN_REFERRAL_STATUSES and not (closing or survey):
        return Verdict(False, "plan_ended")
    if not to_contact:
        return Verdict(False, "no_contact_consent")
    if survey and not to_survey:
        return Verdict(False, "no_survey_consent")
    if paused:
        return Verdict(False, "paused")
    if channel is not None:
        if channel not in rules.channels:
            return Verdict(False, "channel_not_allowed")
        if wrong_number and channel in PHONE_CHANNELS:
            return Verdict(False, "channel_not_allowed")
        if channel == "letter" and not rules.letter_ok:
            return Verdict(False, "channel_not_allowed")
        if channel == "letter":
            return Verdict(True)  # a letter arrives when it arrives: safe times are for calls
    if not rules.safe_times.contains(now):
        return Verdict(True, None, rules.safe_times.next_safe_moment(now))
    return Verdict(True)
