"""Surveys, the pure part (surveys.md): who may be invited and by which channel, when an
invitation falls due, the victim's contact keys for the once-in-90-days rule, reading a
submitted survey, the safeguarding check on free text, and distance travelled."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from triage.domain.calendar import local_date, local_to_utc
from triage.domain.catalogue import Catalogue
from triage.domain.catalogue_words import words_found
from triage.domain.planning import PHONE_CHANNELS
from triage.domain.referral import Referral
from triage.domain.survey_catalogue import Question, SurveyPolicy
from triage.domain.validation import usable_channels

# Why an invitation is not written, or is cancelled (its `cancel_reason`).
NO_SURVEY_CONSENT = "no_survey_consent"
NO_CONTACT_CONSENT = "no_contact_consent"
PAUSED = "paused"
WITHDRAWN = "withdrawn"
NO_CHANNEL = "no_survey_channel"
ASKED_RECENTLY = "asked_in_last_90_days"


def survey_channel(facts: Referral, policy: SurveyPolicy, wrong_number: bool) -> str | None:
    """The victim's most preferred channel that a survey may use (SMS or email, listed by the
    victim and with what it needs); never a text to a number found to be wrong."""
    for channel in usable_channels(facts):
        if channel not in policy.channels:
            continue
        if wrong_number and channel in PHONE_CHANNELS:
            continue
        return channel
    return None


def why_not_invited(
    facts: Referral,
    policy: SurveyPolicy,
    *,
    referral_status: str,
    paused: bool,
    wrong_number: bool,
) -> str | None:
    """Why this victim may not be sent a survey now (None: they may)."""
    if referral_status == "withdrawn":
        return WITHDRAWN
    if not facts.consent.to_survey:
        return NO_SURVEY_CONSENT
    if not facts.consent.to_contact:
        return NO_CONTACT_CONSENT
    if paused:
        return PAUSED
    if survey_channel(facts, policy, wrong_number) is None:
        return NO_CHANNEL
    return None


def invitation_due(closed_at: datetime, catalogue: Catalogue) -> datetime:
    """The invitation's due time: the same time of day, `invite_after_working_days` working
    days after the closure (the safe times then decide the moment it goes)."""
    local = closed_at.astimezone(catalogue.zone)
    day = catalogue.calendar.add_working_days(
        local_date(closed_at, catalogue.zone), catalogue.surveys.invite_after_working_days
    )
    return local_to_utc(day, local.time().replace(tzinfo=None), catalogue.zone)


def contact_keys(facts: Referral, secret: str) -> tuple[str | None, str | None]:
    """Keyed hashes of the victim's phone number and email address, normalised, so that one
    victim is recognised whatever the referral without storing either again. A plain hash of a
    phone number could be reversed by trying every number; this one needs the secret."""
    phone = facts.victim.phone
    email = facts.victim.email

    def key(kind: str, value: str | None) -> str | None:
        if not value:
            return None
        message = f"survey-contact:{kind}:{value}".encode()
        return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()

    # The phone is stored in E.164 by validation; an address's case never tells two people
    # apart in practice, so the whole address is lower-cased.
    return key("phone", phone), key("email", email.strip().lower() if email else None)


def expiry(invited_at: datetime, policy: SurveyPolicy) -> datetime:
    return invited_at + timedelta(days=policy.expire_after_days)


@dataclass(frozen=True)
class Answers:
    """A submitted survey read against the questions: each answered question's value, the
    free text (None when left empty) and, for a form that was not ours, what was wrong."""

    values: dict[str, int | str]
    free_text: str | None
    errors: dict[str, str]

    @property
    def safe_to_store(self) -> bool:
        return not self.errors


def read_answers(policy: SurveyPolicy, form: Mapping[str, str]) -> Answers:
    """Every question may be skipped (no answer is an answer). A value that is not one of the
    question's options can only come from a changed form: it is refused, not guessed at."""
    values: dict[str, int | str] = {}
    free_text: str | None = None
    errors: dict[str, str] = {}
    for question in policy.questions:
        raw = (form.get(question.key) or "").strip()
        if not raw:
            continue
        if question.free_text:
            if len(raw) > question.max_length:
                errors[question.key] = (
                    f"Your answer must be {question.max_length:,} characters or fewer"
                )
            else:
                free_text = raw
            continue
        value = question.value_of(raw)
        if value is None:
            errors[question.key] = f"Select one of the answers to: {question.text}"
        else:
            values[question.key] = value
    return Answers(values, free_text, errors)


def safeguarding_words(text: str | None, policy: SurveyPolicy) -> list[str]:
    """The catalogue's safeguarding words in a survey's free text: any makes it the duty
    lead's to read at once."""
    return words_found(text, policy.safeguarding_words) if text else []


@dataclass(frozen=True)
class Distance:
    measure: Question
    before: int | None  # at the needs assessment
    after: int | None  # at closure: the survey's answer, else the caseworker's
    after_source: str | None

    @property
    def change(self) -> int | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    @property
    def improved(self) -> bool | None:
        change = self.change
        return None if change is None else change > 0


def distance_travelled(
    policy: SurveyPolicy, outcomes: Mapping[tuple[str, str, str], int]
) -> list[Distance]:
    """Per outcome measure: the score at the needs assessment, at closure (the victim's own
    answer in the survey when there is one, else the caseworker's record), and the change.
    `outcomes` maps (stage, source, measure) to a score."""
    rows = []
    for measure in policy.outcome_measures:
        before = outcomes.get(("assessment", "caseworker", measure.key))
        after: Any = outcomes.get(("closure", "survey", measure.key))
        source = "survey" if after is not None else None
        if after is None:
            after = outcomes.get(("closure", "caseworker", measure.key))
            source = "caseworker" if after is not None else None
        rows.append(Distance(measure, before, after, source))
    return rows
