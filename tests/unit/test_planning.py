"""The contact plan of contacts.md, step by step, with Kent's catalogue plan.

| 1 | at triage, at the victim's first safe moment            | call (+ introduction message) |
| 2 | next working day, in the other half of the day          | call                          |
| 3 | 2 working days after step 2                             | call + "please contact us"    |
| 4 | 10 working days after step 1 with no contact            | close, closing letter if ok   |
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.catalogue.loader import load_catalogue
from triage.domain.calendar import LONDON
from triage.domain.planning import (
    ContactRules,
    NextStep,
    PlanEnded,
    StepRecord,
    contact_rules,
    plan_next_step,
)
from triage.domain.safe_times import SafeTimes, safe_times_from_spec
from triage.domain.validation import usable_channels, validate_referral

CATALOGUE = load_catalogue()
POLICY = CATALOGUE.contact
CALENDAR = CATALOGUE.calendar
DEFAULT = POLICY.default_safe_times
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
EVERY_DAY = (*WEEKDAYS, "sat", "sun")


def london(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=LONDON).astimezone(UTC)


def safe(*windows: tuple[tuple[str, ...], str, str]) -> SafeTimes:
    return safe_times_from_spec(
        [(days, time.fromisoformat(start), time.fromisoformat(end)) for days, start, end in windows]
    )


def rules(
    *channels: str, safe_times: SafeTimes | None = None, letter_ok: bool = False
) -> ContactRules:
    return ContactRules(
        channels=channels,
        safe_times=safe_times or DEFAULT,
        voicemail_ok=False,
        letter_ok=letter_ok,
    )


def plan(
    history: Sequence[StepRecord], contact: ContactRules, now: datetime
) -> NextStep | PlanEnded:
    return plan_next_step(POLICY, CALENDAR, history, contact, now)


def step(history: Sequence[StepRecord], contact: ContactRules, now: datetime) -> NextStep:
    found = plan(history, contact, now)
    assert isinstance(found, NextStep), found
    return found


def tried(number: int, at: datetime, outcome: str | None = "no_answer") -> StepRecord:
    """A step that was due and attempted at `at` with `outcome`."""
    return StepRecord(number, at, outcome, at if outcome else None)


PHONE_SMS = rules("phone", "sms")


class TestCatalogueHoldsThePlan:
    def test_kent_plan_shape(self) -> None:
        assert [s.number for s in POLICY.plan] == [1, 2, 3, 4]
        assert [s.kind for s in POLICY.plan] == ["call", "call", "call", "close"]
        assert POLICY.half_day_split == time(13, 0)
        assert POLICY.plan[3].closure_reason == "unable_to_contact"


# -- step 1 -------------------------------------------------------------------------------------


class TestStepOne:
    def test_at_triage_when_safe_now(self) -> None:
        now = london(2026, 11, 20, 14, 5)
        first = step([], PHONE_SMS, now)
        assert (first.number, first.kind, first.channel, first.due_at) == (1, "call", "phone", now)
        assert first.message_template == "introduction"
        assert first.message_channel == "sms"

    def test_night_receipt_waits_for_the_first_safe_moment(self) -> None:
        first = step([], PHONE_SMS, london(2026, 11, 20, 22, 30))
        assert first.due_at == london(2026, 11, 21, 8, 0)

    def test_victims_own_safe_times_api_example(self) -> None:
        # api.md: received Friday 20 November 2026 14:05Z, safe mon-fri 09:00-12:00:
        # first call due Monday 23 November 09:00Z.
        contact = rules("phone", "sms", safe_times=safe((WEEKDAYS, "09:00", "12:00")))
        first = step([], contact, datetime(2026, 11, 20, 14, 5, tzinfo=UTC))
        assert first.due_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
        assert first.kind == "call"

    def test_introduction_by_the_first_message_channel_the_victim_allows(self) -> None:
        assert step([], rules("phone"), london(2026, 11, 20, 10)).message_template is None
        email_first = step([], rules("email", "phone", "sms"), london(2026, 11, 20, 10))
        assert (email_first.kind, email_first.channel) == ("call", "phone")
        assert email_first.message_channel == "email"

    def test_no_phone_means_a_message_step(self) -> None:
        first = step([], rules("email"), london(2026, 11, 20, 10))
        assert (first.kind, first.channel, first.message_template) == (
            "message",
            "email",
            "introduction",
        )

    def test_letter_is_not_an_introduction_channel(self) -> None:
        first = step([], rules("letter", letter_ok=True), london(2026, 11, 20, 10))
        # Steps 1 and 2 have nothing a letter-only victim can use: the first step is the
        # "please contact us" letter of step 3.
        assert (first.number, first.kind, first.channel) == (3, "message", "letter")
        assert first.message_template == "please_contact_us"

    def test_contact_rules_from_a_referral(self) -> None:
        body = {
            "external_ref": "x",
            "victim": {"first_name": "Sam", "phone": "07700 900123"},
            "contact": {
                "channels": ["sms", "phone", "email"],
                "safe_times": [{"days": ["sat"], "from": "22:00", "to": "02:00"}],
            },
            "offence": {"category": "burglary"},
        }
        received = datetime(2026, 11, 18, 10, tzinfo=UTC)
        referral = validate_referral(body, "police", received, CATALOGUE)
        contact = contact_rules(referral, usable_channels(referral), CATALOGUE)
        assert contact.channels == ("sms", "phone")  # no email address: email is not usable
        first = step([], contact, received)
        assert first.due_at == london(2026, 11, 21, 22, 0)
        assert first.message_channel == "sms"


# -- step 2 -------------------------------------------------------------------------------------


class TestStepTwo:
    def test_afternoon_after_a_morning_try(self) -> None:
        second = step([tried(1, london(2026, 11, 23, 10))], PHONE_SMS, london(2026, 11, 23, 10))
        assert (second.number, second.kind, second.channel) == (2, "call", "phone")
        assert second.due_at == london(2026, 11, 24, 13, 0)
        assert second.message_template is None

    def test_morning_after_an_afternoon_try(self) -> None:
        second = step([tried(1, london(2026, 11, 23, 15))], PHONE_SMS, london(2026, 11, 23, 15))
        assert second.due_at == london(2026, 11, 24, 8, 0)

    def test_a_try_at_the_split_is_an_afternoon_try(self) -> None:
        second = step([tried(1, london(2026, 11, 23, 13))], PHONE_SMS, london(2026, 11, 23, 13))
        assert second.due_at == london(2026, 11, 24, 8, 0)

    def test_friday_try_moves_to_monday(self) -> None:
        second = step([tried(1, london(2026, 11, 20, 15))], PHONE_SMS, london(2026, 11, 20, 15))
        assert second.due_at == london(2026, 11, 23, 8, 0)

    def test_christmas_eve_try_moves_past_the_bank_holidays(self) -> None:
        # Thursday 24 December 2026; Friday 25 and Monday 28 are bank holidays.
        morning = step([tried(1, london(2026, 12, 24, 10))], PHONE_SMS, london(2026, 12, 24, 10))
        assert morning.due_at == london(2026, 12, 29, 13, 0)
        afternoon = step([tried(1, london(2026, 12, 24, 16))], PHONE_SMS, london(2026, 12, 24, 16))
        assert afternoon.due_at == london(2026, 12, 29, 8, 0)

    def test_easter_try_moves_past_good_friday_and_easter_monday(self) -> None:
        second = step([tried(1, london(2026, 4, 2, 11))], PHONE_SMS, london(2026, 4, 2, 11))
        assert second.due_at == london(2026, 4, 7, 13, 0)

    def test_across_the_spring_clock_change(self) -> None:
        # Friday 27 March 2026 10:00 GMT -> Monday 30 March 13:00 BST (12:00 UTC).
        second = step([tried(1, london(2026, 3, 27, 10))], PHONE_SMS, london(2026, 3, 27, 10))
        assert second.due_at == datetime(2026, 3, 30, 12, 0, tzinfo=UTC)

    def test_other_half_within_the_victims_own_windows(self) -> None:
        contact = rules("phone", safe_times=safe((WEEKDAYS, "11:00", "15:00")))
        morning = step([tried(1, london(2026, 11, 23, 11, 30))], contact, london(2026, 11, 23, 12))
        assert morning.due_at == london(2026, 11, 24, 13, 0)
        afternoon = step([tried(1, london(2026, 11, 23, 14))], contact, london(2026, 11, 23, 14))
        assert afternoon.due_at == london(2026, 11, 24, 11, 0)

    def test_safe_times_with_one_half_only_give_the_next_safe_moment(self) -> None:
        contact = rules("phone", safe_times=safe((WEEKDAYS, "09:00", "12:00")))
        second = step([tried(1, london(2026, 11, 23, 10, 30))], contact, london(2026, 11, 23, 11))
        # No afternoon is ever safe: the first safe moment of the next working day.
        assert second.due_at == london(2026, 11, 24, 9, 0)

    def test_a_step_falling_due_with_no_outcome_is_timed_from_its_due_time(self) -> None:
        due = london(2026, 11, 23, 9, 0)
        second = step([StepRecord(1, due)], PHONE_SMS, due + timedelta(minutes=5))
        assert second.due_at == london(2026, 11, 24, 13, 0)

    def test_never_before_now(self) -> None:
        # The outcome is recorded late, on Wednesday afternoon: the step is not in the past.
        now = london(2026, 11, 25, 14, 30)
        second = step([tried(1, london(2026, 11, 23, 10))], PHONE_SMS, now)
        assert second.due_at >= now
        assert second.due_at == now  # Wednesday afternoon is the other half, and safe
        late_evening = london(2026, 11, 25, 21, 0)
        again = step([tried(1, london(2026, 11, 23, 10))], PHONE_SMS, late_evening)
        assert again.due_at == london(2026, 11, 26, 13, 0)


# -- step 3 -------------------------------------------------------------------------------------

STEP_1 = tried(1, london(2026, 11, 23, 10))  # Monday morning
STEP_2 = tried(2, london(2026, 11, 24, 13))  # Tuesday afternoon


class TestStepThree:
    def test_two_working_days_after_step_two_with_please_contact_us(self) -> None:
        third = step([STEP_1, STEP_2], PHONE_SMS, STEP_2.due_at)
        assert (third.number, third.kind, third.channel) == (3, "call", "phone")
        assert third.due_at == london(2026, 11, 26, 13, 0)
        assert third.message_template == "please_contact_us"
        assert third.message_channel == "sms"

    def test_message_by_the_next_allowed_channel_in_the_victims_order(self) -> None:
        third = step([STEP_1, STEP_2], rules("phone", "email", "sms"), STEP_2.due_at)
        assert third.message_channel == "email"
        letter = step([STEP_1, STEP_2], rules("phone", "letter", letter_ok=True), STEP_2.due_at)
        assert letter.message_channel == "letter"

    def test_no_message_channel_means_a_call_only(self) -> None:
        third = step([STEP_1, STEP_2], rules("phone"), STEP_2.due_at)
        assert (third.kind, third.message_template, third.message_channel) == ("call", None, None)

    def test_letter_needs_letter_ok(self) -> None:
        third = step([STEP_1, STEP_2], rules("phone", "letter"), STEP_2.due_at)
        assert third.message_channel is None

    def test_across_christmas(self) -> None:
        # Step 2 on Wednesday 23 December: Thursday 24, then Tuesday 29 December.
        second = tried(2, london(2026, 12, 23, 13))
        third = step([tried(1, london(2026, 12, 22, 10)), second], PHONE_SMS, second.due_at)
        assert third.due_at == london(2026, 12, 29, 13, 0)

    def test_moved_into_the_victims_safe_times(self) -> None:
        weekend = rules("phone", safe_times=safe((("sat", "sun"), "10:00", "14:00")))
        first = tried(1, london(2026, 11, 21, 10))  # Saturday
        second = tried(2, london(2026, 11, 22, 11))  # Sunday
        third = step([first, second], weekend, second.due_at)
        # Two working days after Sunday: Tuesday 11:00, not safe; next safe: Saturday 10:00.
        assert third.due_at == london(2026, 11, 28, 10, 0)


# -- step 4 -------------------------------------------------------------------------------------

STEP_3 = tried(3, london(2026, 11, 26, 13))


class TestCloseStep:
    def test_ten_working_days_after_step_one(self) -> None:
        close = step([STEP_1, STEP_2, STEP_3], PHONE_SMS, STEP_3.due_at)
        assert (close.number, close.kind, close.channel) == (4, "close", None)
        assert close.closure_reason == "unable_to_contact"
        assert close.due_at == london(2026, 12, 7, 10, 0)
        assert close.message_template is None  # letters not allowed
        assert close.message_channel is None

    def test_closing_letter_only_when_letters_are_allowed(self) -> None:
        contact = rules("phone", "sms", "letter", letter_ok=True)
        close = step([STEP_1, STEP_2, STEP_3], contact, STEP_3.due_at)
        assert (close.message_template, close.message_channel) == ("closing_letter", "letter")
        no_letter_ok = rules("phone", "sms", "letter", letter_ok=False)
        close = step([STEP_1, STEP_2, STEP_3], no_letter_ok, STEP_3.due_at)
        assert (close.message_template, close.message_channel) == (None, None)

    def test_email_is_not_a_closing_letter(self) -> None:
        close = step([STEP_1, STEP_2, STEP_3], rules("phone", "email"), STEP_3.due_at)
        assert close.message_channel is None

    def test_over_christmas_and_new_year(self) -> None:
        first = tried(1, london(2026, 12, 17, 10))
        second = tried(2, london(2026, 12, 18, 13))
        third = tried(3, london(2026, 12, 22, 13))
        close = step([first, second, third], PHONE_SMS, third.due_at)
        assert close.due_at == london(2027, 1, 5, 10, 0)

    def test_across_the_spring_clock_change_keeps_the_wall_time(self) -> None:
        first = tried(1, london(2026, 3, 16, 10))
        second = tried(2, london(2026, 3, 17, 13))
        third = tried(3, london(2026, 3, 19, 13))
        close = step([first, second, third], PHONE_SMS, third.due_at)
        assert close.due_at == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)  # 10:00 BST

    def test_close_is_not_moved_into_safe_times(self) -> None:
        nights = rules("phone", safe_times=safe((EVERY_DAY, "22:00", "02:00")))
        first = tried(1, london(2026, 11, 23, 22, 30))
        second = tried(2, london(2026, 11, 24, 23, 0))
        third = tried(3, london(2026, 11, 26, 23, 0))
        close = step([first, second, third], nights, third.due_at)
        assert close.due_at == london(2026, 12, 7, 22, 30)

    def test_close_never_before_now(self) -> None:
        now = london(2026, 12, 9, 9, 0)
        close = step([STEP_1, STEP_2, STEP_3], PHONE_SMS, now)
        assert close.due_at == now

    def test_after_the_close_step_the_plan_has_ended(self) -> None:
        closed = StepRecord(4, london(2026, 12, 7, 10), "done")
        assert plan([STEP_1, STEP_2, STEP_3, closed], PHONE_SMS, closed.due_at) == PlanEnded(
            "plan_ended"
        )


def test_the_whole_plan_with_no_answer() -> None:
    now = london(2026, 11, 20, 14, 5)  # Friday afternoon
    history: list[StepRecord] = []
    dues = []
    while True:
        found = plan(history, PHONE_SMS, now)
        if isinstance(found, PlanEnded):
            break
        assert found.due_at >= now
        dues.append((found.number, found.kind, found.due_at))
        history.append(tried(found.number, found.due_at))
        now = found.due_at
    assert dues == [
        (1, "call", london(2026, 11, 20, 14, 5)),  # at triage
        (2, "call", london(2026, 11, 23, 8, 0)),  # Monday morning (after an afternoon try)
        (3, "call", london(2026, 11, 25, 8, 0)),  # two working days later
        (4, "close", london(2026, 12, 4, 14, 5)),  # ten working days after step 1
    ]
    assert found == PlanEnded("plan_ended")


# -- outcomes -----------------------------------------------------------------------------------


AT = london(2026, 11, 23, 10)


class TestOutcomes:
    @pytest.mark.parametrize("number", [1, 2, 3])
    def test_reached_ends_the_plan(self, number: int) -> None:
        history = [*[STEP_1, STEP_2, STEP_3][: number - 1], tried(number, AT, "reached")]
        assert plan(history, PHONE_SMS, london(2026, 11, 23, 10)) == PlanEnded("reached")

    @pytest.mark.parametrize("number", [1, 2, 3])
    def test_declined_ends_the_plan_and_closes_as_declined(self, number: int) -> None:
        history = [*[STEP_1, STEP_2, STEP_3][: number - 1], tried(number, AT, "declined")]
        ended = plan(history, PHONE_SMS, london(2026, 11, 23, 10))
        assert ended == PlanEnded("declined", "declined")

    @pytest.mark.parametrize("outcome", ["no_answer", "voicemail_left"])
    def test_no_contact_outcomes_continue(self, outcome: str) -> None:
        found = step([tried(1, london(2026, 11, 23, 10), outcome)], PHONE_SMS, STEP_1.due_at)
        assert found.number == 2

    def test_unsafe_to_talk_moves_to_the_next_safe_window(self) -> None:
        unsafe = tried(1, london(2026, 11, 23, 10), "unsafe_to_talk")
        found = step([unsafe], PHONE_SMS, unsafe.due_at)
        assert found.number == 2
        assert found.due_at == london(2026, 11, 24, 8, 0)  # not 13:00: the next window

    def test_unsafe_to_talk_the_same_day_when_a_later_window_opens(self) -> None:
        contact = rules(
            "phone", safe_times=safe((WEEKDAYS, "09:00", "12:00"), (WEEKDAYS, "18:00", "20:00"))
        )
        unsafe = tried(1, london(2026, 11, 23, 10), "unsafe_to_talk")
        assert step([unsafe], contact, unsafe.due_at).due_at == london(2026, 11, 23, 18, 0)

    def test_unsafe_to_talk_across_midnight(self) -> None:
        contact = rules("phone", safe_times=safe((EVERY_DAY, "22:00", "02:00")))
        unsafe = tried(1, london(2026, 11, 23, 23, 0), "unsafe_to_talk")
        assert step([unsafe], contact, unsafe.due_at).due_at == london(2026, 11, 24, 22, 0)

    def test_unsafe_to_talk_recorded_late_is_still_safe_and_not_early(self) -> None:
        contact = rules(
            "phone", safe_times=safe((WEEKDAYS, "09:00", "12:00"), (WEEKDAYS, "18:00", "20:00"))
        )
        unsafe = tried(1, london(2026, 11, 23, 10), "unsafe_to_talk")
        during = london(2026, 11, 23, 19, 0)  # the next window has begun: now is safe
        assert step([unsafe], contact, during).due_at == during
        after = london(2026, 11, 23, 20, 30)  # it has ended: the next safe moment
        found = step([unsafe], contact, after)
        assert found.due_at == london(2026, 11, 24, 9, 0)
        assert contact.safe_times.contains(found.due_at)

    def test_unsafe_to_talk_does_not_move_the_close_step(self) -> None:
        unsafe = tried(3, london(2026, 11, 26, 13), "unsafe_to_talk")
        close = step([STEP_1, STEP_2, unsafe], PHONE_SMS, unsafe.due_at)
        assert (close.kind, close.due_at) == ("close", london(2026, 12, 7, 10, 0))

    def test_wrong_number_with_phone_and_sms_only_goes_to_the_close_step(self) -> None:
        wrong = tried(1, london(2026, 11, 23, 10), "wrong_number")
        close = step([wrong], PHONE_SMS, wrong.due_at)
        assert (close.number, close.kind, close.closure_reason) == (4, "close", "unable_to_contact")
        assert close.due_at == london(2026, 12, 7, 10, 0)  # still 10 working days after step 1
        assert close.message_channel is None

    def test_wrong_number_with_email_turns_the_next_steps_into_email(self) -> None:
        contact = rules("phone", "sms", "email")
        wrong = tried(1, london(2026, 11, 23, 10), "wrong_number")
        third = step([wrong], contact, wrong.due_at)
        # Step 2 is a call only: nothing to do without the number; step 3 by email, timed
        # from when step 2 would have been (Tuesday 13:00) plus two working days.
        assert (third.number, third.kind, third.channel) == (3, "message", "email")
        assert (third.message_template, third.message_channel) == ("please_contact_us", "email")
        assert third.due_at == london(2026, 11, 26, 13, 0)
        sent = StepRecord(3, third.due_at)
        close = step([wrong, sent], contact, third.due_at)
        assert (close.number, close.kind, close.message_channel) == (4, "close", None)
        assert close.due_at == london(2026, 12, 7, 10, 0)

    def test_wrong_number_stops_sms_for_the_rest_of_the_plan(self) -> None:
        contact = rules("phone", "sms", "email")
        wrong = tried(2, london(2026, 11, 24, 13), "wrong_number")
        third = step([STEP_1, wrong], contact, wrong.due_at)
        assert (third.kind, third.channel, third.message_channel) == ("message", "email", "email")
        later = tried(3, third.due_at, None)
        close = step([STEP_1, wrong, later], contact, third.due_at)
        assert close.kind == "close"

    def test_wrong_number_with_a_letter_allowed(self) -> None:
        contact = rules("phone", "sms", "letter", letter_ok=True)
        wrong = tried(1, london(2026, 11, 23, 10), "wrong_number")
        third = step([wrong], contact, wrong.due_at)
        assert (third.kind, third.channel, third.message_template) == (
            "message",
            "letter",
            "please_contact_us",
        )
        close = step([wrong, StepRecord(3, third.due_at)], contact, third.due_at)
        assert (close.message_template, close.message_channel) == ("closing_letter", "letter")


# -- properties ---------------------------------------------------------------------------------

CLOCKS = st.builds(time, st.integers(0, 23), st.sampled_from([0, 30, 59]))
SAFE_TIMES = st.one_of(
    st.just(DEFAULT),
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(EVERY_DAY), min_size=1, max_size=7, unique=True).map(tuple),
            CLOCKS,
            CLOCKS,
        ),
        min_size=1,
        max_size=3,
    ).map(safe_times_from_spec),
)
CHANNELS = st.lists(
    st.sampled_from(["phone", "sms", "email", "letter"]), min_size=1, max_size=4, unique=True
).map(tuple)
OUTCOMES = st.sampled_from(
    [None, "no_answer", "voicemail_left", "wrong_number", "unsafe_to_talk", "reached", "declined"]
)
STARTS = st.datetimes(
    datetime(2026, 1, 1), datetime(2028, 12, 20), timezones=st.just(UTC)
) | st.sampled_from(
    [
        datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 12, 24, 15, 0, tzinfo=UTC),
        datetime(2027, 3, 27, 23, 0, tzinfo=UTC),
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    safe_times=SAFE_TIMES,
    channels=CHANNELS,
    letter_ok=st.booleans(),
    start=STARTS,
    outcomes=st.lists(OUTCOMES, min_size=4, max_size=4),
    delays=st.lists(st.integers(0, 3 * 24 * 60), min_size=4, max_size=4),
)
def test_every_next_step_is_never_early_and_always_safe(
    safe_times: SafeTimes,
    channels: tuple[str, ...],
    letter_ok: bool,
    start: datetime,
    outcomes: list[str | None],
    delays: list[int],
) -> None:
    contact = ContactRules(channels, safe_times, False, letter_ok)
    history: list[StepRecord] = []
    now = start
    numbers = []
    for outcome, delay in zip(outcomes, delays, strict=True):
        found = plan(history, contact, now)
        if isinstance(found, PlanEnded):
            last = history[-1].outcome if history else None
            expected = {"reached": "reached", "declined": "declined"}.get(last or "", "plan_ended")
            assert found.reason == expected
            assert found.closure_reason == ("declined" if expected == "declined" else None)
            break
        assert found.due_at >= now
        numbers.append(found.number)
        if found.kind == "close":
            assert found.closure_reason == "unable_to_contact"
            assert found.message_channel in (None, "letter")
            assert found.message_channel is None or (letter_ok and "letter" in channels)
        else:
            assert safe_times.contains(found.due_at), (found, safe_times)
            wrong = any(s.outcome == "wrong_number" for s in history)
            allowed = [
                c
                for c in channels
                if not (wrong and c in ("phone", "sms")) and (c != "letter" or letter_ok)
            ]
            if found.kind == "call":
                assert found.channel == "phone" and "phone" in allowed
            else:
                assert found.kind == "message" and found.channel in allowed
            assert found.message_channel is None or found.message_channel in allowed
        attempted = found.due_at + timedelta(minutes=delay)
        history.append(StepRecord(found.number, found.due_at, outcome, attempted))
        now = attempted
    assert numbers == sorted(set(numbers))  # steps only move forward
    assert all(1 <= n <= 4 for n in numbers)
