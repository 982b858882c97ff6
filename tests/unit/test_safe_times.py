"""Safe times, wall-clock conversion and working days (contacts.md, lifecycle.md, api.md).

Safe-time windows are Europe/London wall-clock times: `from` inclusive, `to` exclusive, a `to`
earlier than `from` runs past midnight. A step is moved forward into a window, never early.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.domain.calendar import LONDON, WorkingCalendar, local_date, local_to_utc
from triage.domain.safe_times import SafeTimes, safe_times_from_spec

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
EVERY_DAY = (*WEEKDAYS, "sat", "sun")
MICROSECOND = timedelta(microseconds=1)


def london(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A London wall time as UTC (only for wall times that exist once)."""
    return datetime(y, m, d, h, mi, tzinfo=LONDON).astimezone(UTC)


def utc(y: int, m: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, s, tzinfo=UTC)


def safe(*windows: tuple[tuple[str, ...], str, str]) -> SafeTimes:
    return safe_times_from_spec(
        [(days, time.fromisoformat(start), time.fromisoformat(end)) for days, start, end in windows]
    )


DEFAULT = safe((EVERY_DAY, "08:00", "20:00"))
OFFICE = safe((WEEKDAYS, "09:00", "17:00"))
NIGHT = safe((EVERY_DAY, "22:00", "02:00"))


# -- local_to_utc: one place for daylight saving time ------------------------------------------


class TestLocalToUtc:
    def test_winter_is_gmt_and_summer_is_bst(self) -> None:
        assert local_to_utc(date(2026, 1, 15), time(9, 0)) == utc(2026, 1, 15, 9)
        assert local_to_utc(date(2026, 7, 15), time(9, 0)) == utc(2026, 7, 15, 8)

    @pytest.mark.parametrize("wall", [time(1, 0), time(1, 30), time(1, 59, 59)])
    def test_a_wall_time_in_the_spring_gap_moves_to_the_end_of_the_gap(self, wall: time) -> None:
        # 29 March 2026: 01:00 GMT becomes 02:00 BST; 01:00-01:59 never shows on a clock.
        moved = local_to_utc(date(2026, 3, 29), wall)
        assert moved == utc(2026, 3, 29, 1)  # 02:00 BST, the first instant after the gap
        assert moved.astimezone(LONDON).time() == time(2, 0)

    def test_around_the_spring_gap(self) -> None:
        assert local_to_utc(date(2026, 3, 29), time(0, 59)) == utc(2026, 3, 29, 0, 59)
        assert local_to_utc(date(2026, 3, 29), time(2, 0)) == utc(2026, 3, 29, 1)
        assert local_to_utc(date(2026, 3, 29), time(2, 30)) == utc(2026, 3, 29, 1, 30)

    def test_an_ambiguous_autumn_wall_time_takes_its_first_occurrence(self) -> None:
        # 25 October 2026: 02:00 BST becomes 01:00 GMT; 01:00-01:59 shows twice.
        assert local_to_utc(date(2026, 10, 25), time(1, 30)) == utc(2026, 10, 25, 0, 30)
        assert local_to_utc(date(2026, 10, 25), time(0, 59)) == utc(2026, 10, 24, 23, 59)
        assert local_to_utc(date(2026, 10, 25), time(2, 0)) == utc(2026, 10, 25, 2)

    @settings(max_examples=150, deadline=None)
    @given(
        day=st.dates(date(2026, 1, 1), date(2028, 12, 31)),
        wall=st.times(),
    )
    def test_never_earlier_than_asked_and_the_first_such_instant(
        self, day: date, wall: time
    ) -> None:
        instant = local_to_utc(day, wall)
        asked = datetime.combine(day, wall)
        assert instant.tzinfo is UTC
        assert instant.astimezone(LONDON).replace(tzinfo=None) >= asked
        assert (instant - MICROSECOND).astimezone(LONDON).replace(tzinfo=None) < asked

    def test_a_wall_time_with_fold_set_is_the_same_wall_time(self) -> None:
        # Found by hypothesis: st.times() makes fold=1 times, and the cache (time's hash ignores
        # fold) then gave a later fold=0 caller an instant before the one asked for.
        for day, wall in ((date(2026, 3, 29), time(1, 0, 12)), (date(2026, 10, 25), time(1, 30))):
            assert local_to_utc(day, wall.replace(fold=1)) == local_to_utc(day, wall)
        assert local_to_utc(date(2026, 3, 29), time(1, 0, 12)) == utc(2026, 3, 29, 1)

    @pytest.mark.parametrize("day", [date(2026, 3, 29), date(2027, 3, 28), date(2028, 3, 26)])
    def test_gap_on_every_spring_forward_day(self, day: date) -> None:
        moved = local_to_utc(day, time(1, 15))
        assert moved.astimezone(LONDON).time() == time(2, 0)
        assert moved.astimezone(LONDON).date() == day


# -- safe times -------------------------------------------------------------------------------


class TestDefaultSafeTimes:
    def test_inside_is_now(self) -> None:
        at = london(2026, 11, 20, 14, 5)
        assert DEFAULT.next_safe_moment(at) == at
        assert DEFAULT.contains(at)

    def test_from_is_inclusive(self) -> None:
        at = london(2026, 11, 20, 8, 0)
        assert DEFAULT.contains(at)
        assert DEFAULT.next_safe_moment(at) == at
        assert not DEFAULT.contains(at - MICROSECOND)

    def test_to_is_exclusive(self) -> None:
        at = london(2026, 11, 20, 20, 0)
        assert not DEFAULT.contains(at)
        assert DEFAULT.contains(at - MICROSECOND)
        assert DEFAULT.next_safe_moment(at) == london(2026, 11, 21, 8, 0)

    def test_before_the_window_moves_to_its_start(self) -> None:
        assert DEFAULT.next_safe_moment(london(2026, 11, 20, 6, 30)) == london(2026, 11, 20, 8)

    def test_summer_window_is_in_bst(self) -> None:
        assert DEFAULT.next_safe_moment(utc(2026, 7, 1, 5)) == utc(2026, 7, 1, 7)


class TestAcrossMidnight:
    def test_late_evening_and_small_hours_are_inside(self) -> None:
        assert NIGHT.contains(london(2026, 11, 20, 22, 0))
        assert NIGHT.contains(london(2026, 11, 20, 23, 30))
        assert NIGHT.contains(london(2026, 11, 21, 0, 0))
        assert NIGHT.contains(london(2026, 11, 21, 1, 59))

    def test_to_is_exclusive_after_midnight(self) -> None:
        at = london(2026, 11, 21, 2, 0)
        assert not NIGHT.contains(at)
        assert NIGHT.next_safe_moment(at) == london(2026, 11, 21, 22, 0)

    def test_small_hours_are_safe_now(self) -> None:
        at = london(2026, 11, 21, 1, 15)
        assert NIGHT.next_safe_moment(at) == at

    def test_evening_before_the_window_waits_for_it(self) -> None:
        assert NIGHT.next_safe_moment(london(2026, 11, 20, 21, 0)) == london(2026, 11, 20, 22)
        assert NIGHT.next_safe_moment(london(2026, 11, 20, 12, 0)) == london(2026, 11, 20, 22)

    def test_a_friday_night_window_runs_into_saturday_only(self) -> None:
        friday_night = safe((("fri",), "22:00", "02:00"))
        # Saturday 21 November 2026, 01:00: still Friday's window.
        assert friday_night.contains(london(2026, 11, 21, 1, 0))
        assert friday_night.next_safe_moment(london(2026, 11, 21, 1, 0)) == london(
            2026, 11, 21, 1, 0
        )
        # Saturday 23:00: no window opens on Saturday; the next is next Friday.
        assert not friday_night.contains(london(2026, 11, 21, 23, 0))
        assert friday_night.next_safe_moment(london(2026, 11, 21, 23, 0)) == london(
            2026, 11, 27, 22, 0
        )

    def test_sunday_night_runs_into_monday(self) -> None:
        sunday_night = safe((("sun",), "23:00", "01:00"))
        monday = london(2026, 11, 23, 0, 30)
        assert sunday_night.contains(monday)
        assert sunday_night.next_safe_moment(london(2026, 11, 23, 1, 0)) == london(
            2026, 11, 29, 23, 0
        )


class TestWeekends:
    def test_friday_evening_moves_to_monday(self) -> None:
        assert OFFICE.next_safe_moment(london(2026, 11, 20, 18, 0)) == london(2026, 11, 23, 9)

    def test_friday_at_the_window_end_moves_to_monday(self) -> None:
        assert OFFICE.next_safe_moment(london(2026, 11, 20, 17, 0)) == london(2026, 11, 23, 9)

    def test_saturday_and_sunday_move_to_monday(self) -> None:
        assert OFFICE.next_safe_moment(london(2026, 11, 21, 10, 0)) == london(2026, 11, 23, 9)
        assert OFFICE.next_safe_moment(london(2026, 11, 22, 23, 59)) == london(2026, 11, 23, 9)
        assert not OFFICE.contains(london(2026, 11, 21, 10, 0))

    def test_weekend_only_windows(self) -> None:
        weekend = safe((("sat", "sun"), "10:00", "14:00"))
        assert weekend.next_safe_moment(london(2026, 11, 23, 9, 0)) == london(2026, 11, 28, 10)
        assert weekend.next_safe_moment(london(2026, 11, 22, 14, 0)) == london(2026, 11, 28, 10)

    def test_safe_times_ignore_bank_holidays(self) -> None:
        # Safe times are the victim's, not office hours: Christmas Day is a Friday window.
        assert OFFICE.next_safe_moment(london(2026, 12, 25, 7, 0)) == london(2026, 12, 25, 9)


class TestClockChanges:
    def test_a_window_inside_the_spring_gap_does_not_exist_that_day(self) -> None:
        # 01:00-02:00 on Sunday 29 March 2026 never shows on a clock.
        small_hours = safe((EVERY_DAY, "01:00", "02:00"))
        asked = utc(2026, 3, 29, 0, 30)  # 00:30 GMT
        moment = small_hours.next_safe_moment(asked)
        assert moment >= asked
        assert small_hours.contains(moment)
        # The next 01:00 that exists: Monday 30 March, 01:00 BST.
        assert moment == london(2026, 3, 30, 1, 0)
        assert not small_hours.contains(utc(2026, 3, 29, 1, 0))  # 02:00 BST: outside

    def test_a_sunday_only_window_in_the_gap_waits_a_week(self) -> None:
        small_hours = safe((("sun",), "01:00", "02:00"))
        asked = utc(2026, 3, 28, 12, 0)
        moment = small_hours.next_safe_moment(asked)
        assert moment == london(2026, 4, 5, 1, 0)
        assert moment >= asked

    def test_a_window_that_starts_in_the_gap_opens_at_the_gap_end(self) -> None:
        window = safe((("sun",), "01:30", "03:00"))
        asked = utc(2026, 3, 29, 0, 0)
        assert window.next_safe_moment(asked) == utc(2026, 3, 29, 1, 0)  # 02:00 BST
        assert window.contains(utc(2026, 3, 29, 1, 59))  # 02:59 BST
        assert not window.contains(utc(2026, 3, 29, 2, 0))  # 03:00 BST

    def test_a_window_that_ends_in_the_gap_closes_at_the_gap_start(self) -> None:
        window = safe((("sun",), "00:30", "01:30"))
        assert window.contains(utc(2026, 3, 29, 0, 59))
        assert not window.contains(utc(2026, 3, 29, 1, 0))

    def test_night_window_across_the_spring_forward_night_is_shorter(self) -> None:
        # Saturday 28 March 22:00 GMT to Sunday 29 March 02:00 BST: three hours.
        saturday_night = safe((("sat",), "22:00", "02:00"))
        intervals = saturday_night.intervals_on(date(2026, 3, 28))
        assert intervals == ((utc(2026, 3, 28, 22), utc(2026, 3, 29, 1)),)
        assert saturday_night.contains(utc(2026, 3, 29, 0, 59))
        assert not saturday_night.contains(utc(2026, 3, 29, 1, 0))

    def test_night_window_across_the_autumn_night_is_longer(self) -> None:
        # Saturday 24 October 22:00 BST to Sunday 25 October 02:00 GMT: five hours.
        saturday_night = safe((("sat",), "22:00", "02:00"))
        intervals = saturday_night.intervals_on(date(2026, 10, 24))
        assert intervals == ((utc(2026, 10, 24, 21), utc(2026, 10, 25, 2)),)
        assert saturday_night.contains(utc(2026, 10, 25, 1, 30))  # 01:30 GMT, second time
        assert not saturday_night.contains(utc(2026, 10, 25, 2, 0))

    def test_a_window_in_the_repeated_autumn_hour_holds_both_occurrences(self) -> None:
        small_hours = safe((("sun",), "01:00", "02:00"))
        assert small_hours.contains(utc(2026, 10, 25, 0, 30))  # 01:30 BST
        assert small_hours.contains(utc(2026, 10, 25, 1, 30))  # 01:30 GMT
        assert not small_hours.contains(utc(2026, 10, 25, 2, 0))  # 02:00 GMT
        assert small_hours.next_safe_moment(utc(2026, 10, 24, 23, 0)) == utc(2026, 10, 25, 0)

    def test_a_window_opening_in_the_repeated_hour_closes_while_the_clock_goes_back(
        self,
    ) -> None:
        # Sunday 25 October 2026 from 01:30: open at 01:30 BST, closed when the clock goes
        # back to 01:00 GMT (01:00 UTC) and shows 01:00-01:29 again, open from 01:30 GMT.
        late = safe((("sun",), "01:30", "04:00"))
        assert late.contains(utc(2026, 10, 25, 0, 30))  # 01:30 BST
        assert late.contains(utc(2026, 10, 25, 0, 59))  # 01:59 BST
        assert not late.contains(utc(2026, 10, 25, 1, 0))  # 01:00 GMT
        assert not late.contains(utc(2026, 10, 25, 1, 29))  # 01:29 GMT
        assert late.contains(utc(2026, 10, 25, 1, 30))  # 01:30 GMT
        assert late.next_safe_moment(utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 25, 1, 30)
        assert not late.contains(utc(2026, 10, 25, 4, 0))

    def test_windows_keep_their_wall_times_across_the_change(self) -> None:
        friday_before = OFFICE.next_safe_moment(london(2026, 3, 27, 18, 0))
        assert friday_before == utc(2026, 3, 30, 8, 0)  # Monday 09:00 BST
        autumn = OFFICE.next_safe_moment(london(2026, 10, 23, 18, 0))
        assert autumn == utc(2026, 10, 26, 9, 0)  # Monday 09:00 GMT


class TestNextWindowStart:
    def test_default_moves_to_tomorrow_morning(self) -> None:
        assert DEFAULT.next_window_start(london(2026, 11, 23, 10, 0)) == london(2026, 11, 24, 8)

    def test_a_later_window_the_same_day(self) -> None:
        split = safe((WEEKDAYS, "09:00", "12:00"), (WEEKDAYS, "18:00", "20:00"))
        assert split.next_window_start(london(2026, 11, 23, 10, 0)) == london(2026, 11, 23, 18)
        assert split.next_window_start(london(2026, 11, 20, 19, 0)) == london(2026, 11, 23, 9)

    def test_across_midnight_moves_to_the_next_night(self) -> None:
        assert NIGHT.next_window_start(london(2026, 11, 20, 23, 0)) == london(2026, 11, 21, 22)
        assert NIGHT.next_window_start(london(2026, 11, 21, 1, 0)) == london(2026, 11, 21, 22)

    def test_round_the_clock_moves_to_the_next_day(self) -> None:
        always = safe((EVERY_DAY, "00:00", "00:00"))
        at = london(2026, 11, 23, 10, 0)
        assert always.contains(at)
        assert always.next_window_start(at) == london(2026, 11, 24, 0, 0)


class TestFirstMomentInHalf:
    SPLIT = time(13, 0)

    def test_afternoon_of_a_default_day(self) -> None:
        start = london(2026, 11, 24, 0, 0)
        assert DEFAULT.first_moment_in_half(start, False, self.SPLIT) == london(2026, 11, 24, 13)

    def test_morning_of_a_default_day(self) -> None:
        start = london(2026, 11, 24, 0, 0)
        assert DEFAULT.first_moment_in_half(start, True, self.SPLIT) == london(2026, 11, 24, 8)

    def test_morning_asked_in_the_afternoon_is_tomorrow(self) -> None:
        start = london(2026, 11, 24, 14, 0)
        assert DEFAULT.first_moment_in_half(start, True, self.SPLIT) == london(2026, 11, 25, 8)

    def test_afternoon_starts_at_the_split(self) -> None:
        window = safe((WEEKDAYS, "10:00", "16:00"))
        start = london(2026, 11, 24, 9, 0)
        assert window.first_moment_in_half(start, False, self.SPLIT) == london(2026, 11, 24, 13)
        assert window.first_moment_in_half(start, True, self.SPLIT) == london(2026, 11, 24, 10)

    def test_only_one_half_gives_none(self) -> None:
        mornings = safe((WEEKDAYS, "09:00", "12:00"))
        assert mornings.first_moment_in_half(london(2026, 11, 24), False, self.SPLIT) is None
        ending_at_split = safe((WEEKDAYS, "09:00", "13:00"))
        start = london(2026, 11, 24)
        assert ending_at_split.first_moment_in_half(start, False, self.SPLIT) is None

    def test_after_midnight_is_morning(self) -> None:
        start = london(2026, 11, 24, 21, 0)
        assert NIGHT.first_moment_in_half(start, True, self.SPLIT) == london(2026, 11, 25, 0, 0)
        assert NIGHT.first_moment_in_half(start, False, self.SPLIT) == london(2026, 11, 24, 22)


# -- properties of safe times ---------------------------------------------------------------

CLOCKS = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))
WINDOWS = st.lists(
    st.tuples(
        st.lists(st.sampled_from(EVERY_DAY), min_size=1, max_size=7, unique=True).map(tuple),
        CLOCKS,
        CLOCKS,
    ),
    min_size=1,
    max_size=3,
)
INSTANTS = st.datetimes(
    datetime(2026, 1, 1), datetime(2028, 12, 31, 23, 59), timezones=st.just(UTC)
) | st.sampled_from(
    # The clock-change nights, where mistakes hide.
    [
        *(utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 28, 23, 59)),
        *(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2026, 10, 24, 22, 0)),
        *(utc(2027, 3, 28, 0, 45), utc(2028, 10, 29, 1, 15)),
    ]
)


@settings(max_examples=200, deadline=None)
@given(windows=WINDOWS, instant=INSTANTS)
def test_next_safe_moment_is_never_early_always_safe_and_the_first(
    windows: list[tuple[tuple[str, ...], time, time]], instant: datetime
) -> None:
    times = safe_times_from_spec(windows)
    moment = times.next_safe_moment(instant)
    assert moment >= instant
    assert times.contains(moment)
    if moment > instant:
        assert not times.contains(instant)
        assert not times.contains(moment - MICROSECOND)
    # The wall clock then is inside one of the windows (from inclusive, to exclusive).
    wall = moment.astimezone(LONDON)
    inside = False
    for days, start, end in windows:
        for day, offset in ((wall.date(), 0), (wall.date() - timedelta(days=1), 1)):
            if day.strftime("%a").lower() not in days:
                continue
            clock = wall.time().replace(tzinfo=None)
            if end > start:
                inside |= offset == 0 and start <= clock < end
            elif offset == 0:
                inside |= clock >= start
            else:
                inside |= clock < end
    assert inside


@settings(max_examples=100, deadline=None)
@given(windows=WINDOWS, instant=INSTANTS)
def test_next_window_start_is_later_and_safe(
    windows: list[tuple[tuple[str, ...], time, time]], instant: datetime
) -> None:
    times = safe_times_from_spec(windows)
    start = times.next_window_start(instant)
    assert start > instant
    assert times.contains(start)


# -- working days -------------------------------------------------------------------------------

CALENDAR = WorkingCalendar()


class TestWorkingCalendar:
    def test_christmas_2026(self) -> None:
        # Friday 25 December and Monday 28 December (Boxing Day substitute) are bank holidays.
        assert not CALENDAR.is_working_day(date(2026, 12, 25))
        assert not CALENDAR.is_working_day(date(2026, 12, 28))
        assert CALENDAR.add_working_days(date(2026, 12, 24), 1) == date(2026, 12, 29)
        assert CALENDAR.add_working_days(date(2026, 12, 24), 2) == date(2026, 12, 30)

    def test_weekends_never_count_and_the_day_itself_never_counts(self) -> None:
        assert CALENDAR.add_working_days(date(2026, 11, 20), 1) == date(2026, 11, 23)
        assert CALENDAR.add_working_days(date(2026, 11, 21), 1) == date(2026, 11, 23)
        assert CALENDAR.add_working_days(date(2026, 11, 23), 0) == date(2026, 11, 23)

    def test_easter_2026(self) -> None:
        # Good Friday 3 April, Easter Monday 6 April.
        assert CALENDAR.add_working_days(date(2026, 4, 2), 1) == date(2026, 4, 7)

    def test_spec_example_p3_over_christmas(self) -> None:
        # triage-policy.md: received Thursday 24 December 2026 10:00, P3 -> 30 December 17:00.
        due = CALENDAR.end_of_working_day(london(2026, 12, 24, 10), 2, time(17, 0))
        assert due == utc(2026, 12, 30, 17, 0)

    def test_end_of_day_in_summer_is_bst(self) -> None:
        due = CALENDAR.end_of_working_day(london(2026, 7, 1, 23, 30), 1, time(17, 0))
        assert due == utc(2026, 7, 2, 16, 0)

    def test_receipt_day_is_the_london_day(self) -> None:
        # 23:30 UTC on 30 June is 00:30 on 1 July in London: 1 July is the day of receipt.
        due = CALENDAR.end_of_working_day(utc(2026, 6, 30, 23, 30), 1, time(17, 0))
        assert local_date(due) == date(2026, 7, 2)
