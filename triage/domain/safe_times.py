"""The victim's safe times: weekly windows of wall-clock time when contact is safe.

A window runs from `from` (inclusive) to `to` (exclusive) on each listed day; a window whose
`to` is earlier than its `from` runs past midnight into the next day, and one whose `to`
equals its `from` lasts the whole 24 hours. Contact is moved forward into a window, never early.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from triage.domain.calendar import LONDON, local_date, local_to_utc, repeated_wall_time

DAY_INDEX = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
MIDNIGHT = time(0, 0)


@dataclass(frozen=True, slots=True)
class SafeWindow:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    def interval_on(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        begins = local_to_utc(day, self.start, zone)
        end_day = day if self.end > self.start else day + timedelta(days=1)
        return begins, local_to_utc(end_day, self.end, zone)


Interval = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class SafeTimes:
    windows: tuple[SafeWindow, ...]
    zone: ZoneInfo = LONDON
    # Intervals by local day, filled on use (the same few days come back for every referral).
    _days: dict[date, tuple[Interval, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    # Whether a window runs past midnight: only then can yesterday's window hold today's times.
    _overnight: bool = field(default=True, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        overnight = any(window.end <= window.start for window in self.windows)
        object.__setattr__(self, "_overnight", overnight)

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        """The safe intervals (UTC) of the windows that begin on local `day`, by start.

        An interval that holds no instant (a window inside the spring-forward gap, such as
        01:00-02:00 on 29 March 2026) is left out: no wall clock shows those times that day.
        """
        found = self._days.get(day)
        if found is None:
            if len(self._days) >= _DAYS_KEPT:
                self._days.clear()
            found = self._days[day] = _intervals_on(self.windows, self.zone, day)
        return found

    def intervals_from(self, instant: datetime, days: int = 9) -> Iterator[Interval]:
        """Safe intervals (UTC) that end after `instant`, in order of their start.

        Starts the day before, because yesterday's window may run past midnight into today;
        looks `days` days ahead. Lazy: callers usually need only the first one or two.
        """
        day = local_date(instant, self.zone) - ONE_DAY
        if not self._overnight:
            day += ONE_DAY  # yesterday's intervals all ended by midnight
        for _ in range(days + 1):
            for interval in self.intervals_on(day):
                if interval[1] > instant:
                    yield interval
            day += ONE_DAY

    def contains(self, instant: datetime) -> bool:
        return any(begins <= instant for begins, _ in self.intervals_from(instant, days=1))

    def next_safe_moment(self, instant: datetime) -> datetime:
        """`instant` when it is safe, else the start of the next safe window."""
        # intervals_from, unrolled: this runs for every referral triaged.
        day = instant.astimezone(self.zone).date()
        if self._overnight:
            day -= ONE_DAY
        cached = self._days
        for _ in range(10):
            found = cached.get(day)
            for begins, ends in self.intervals_on(day) if found is None else found:
                if ends > instant:
                    return begins if begins > instant else instant
            day += ONE_DAY
        raise ValueError("no safe window in the coming week")

    def next_window_start(self, instant: datetime) -> datetime:
        """The start of the next safe window that begins after the one holding `instant`.

        Used after "unsafe to talk": the victim could not talk in this window, so the next try
        is in a later one, never in the rest of this one.
        """
        current_end: datetime | None = None
        for begins, ends in self.intervals_from(instant):
            if begins <= instant:
                current_end = ends if current_end is None else max(current_end, ends)
                continue
            if current_end is None or begins >= current_end:
                return begins
        # Every window overlaps the current one (round-the-clock safe times): next day.
        return self.next_safe_moment((current_end or instant) + timedelta(minutes=1))

    def first_moment_in_half(
        self, instant: datetime, morning: bool, split: time
    ) -> datetime | None:
        """The first safe moment at or after `instant` in the morning (before `split`) or the
        afternoon (from `split`), Europe/London; None when the safe times hold no such moment."""
        for begins, ends in self.intervals_from(instant):
            start = max(begins, instant)
            for candidate in _half_boundaries(start, ends, split, self.zone):
                wall = candidate.astimezone(self.zone).time()
                if (wall < split) == morning:
                    return candidate
        return None


ONE_DAY = timedelta(days=1)


_DAYS_KEPT = 4096


def _intervals_on(
    windows: tuple[SafeWindow, ...], zone: ZoneInfo, day: date
) -> tuple[Interval, ...]:
    weekday = day.weekday()
    found = []
    for window in windows:
        if weekday in window.days:
            begins, ends = window.interval_on(day, zone)
            repeated = repeated_wall_time(day, window.start, zone)
            if repeated is not None:
                # Opens in the hour the clock shows twice: closed from the moment the clock
                # goes back until it shows the opening time again.
                back, again = repeated
                if begins < min(back, ends):
                    found.append((begins, min(back, ends)))
                begins = again
            if begins < ends:
                found.append((begins, ends))
    found.sort()
    return tuple(found)


def _half_boundaries(
    start: datetime, ends: datetime, split: time, zone: ZoneInfo
) -> list[datetime]:
    """`start` and every midnight and split instant inside [start, ends)."""
    points = [start]
    day = local_date(start, zone)
    while True:
        for wall in (split,) if day == local_date(start, zone) else (MIDNIGHT, split):
            point = local_to_utc(day, wall, zone)
            if start < point < ends:
                points.append(point)
        day += timedelta(days=1)
        if local_to_utc(day, MIDNIGHT, zone) >= ends:
            break
    return sorted(points)


def safe_times_from_spec(
    windows: Sequence[tuple[Sequence[str], time, time]], zone: ZoneInfo = LONDON
) -> SafeTimes:
    return SafeTimes(
        windows=tuple(
            SafeWindow(days=frozenset(DAY_INDEX[d] for d in days), start=start, end=end)
            for days, start, end in windows
        ),
        zone=zone,
    )
