"""The victim's safe times: weekly windows of wall-clock time when contact is safe.

A window runs from `from` (inclusive) to `to` (exclusive) on each listed day; a window whose
`to` is earlier than its `from` runs past midnight into the next day, and one whose `to`
equals its `from` lasts the whole 24 hours. Contact is moved forward into a window, never early.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from triage.domain.calendar import LONDON, local_date, local_to_utc

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


@dataclass(frozen=True, slots=True)
class SafeTimes:
    windows: tuple[SafeWindow, ...]
    zone: ZoneInfo = LONDON

    def intervals_from(self, instant: datetime, days: int = 9) -> Iterator[tuple[datetime, datetime]]:
        """Safe intervals (UTC) that end after `instant`, in order of their start.

        Starts the day before, because yesterday's window may run past midnight into today.
        """
        first = local_date(instant, self.zone) - timedelta(days=1)
        found: list[tuple[datetime, datetime]] = []
        for offset in range(days + 1):
            day = first + timedelta(days=offset)
            weekday = day.weekday()
            for window in self.windows:
                if weekday in window.days:
                    begins, ends = window.interval_on(day, self.zone)
                    if ends > instant:
                        found.append((begins, ends))
        found.sort()
        return iter(found)

    def contains(self, instant: datetime) -> bool:
        return any(begins <= instant for begins, _ in self.intervals_from(instant, days=1))

    def next_safe_moment(self, instant: datetime) -> datetime:
        """`instant` when it is safe, else the start of the next safe window."""
        for begins, _ends in self.intervals_from(instant):
            return max(begins, instant)
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

    def first_moment_in_half(self, instant: datetime, morning: bool, split: time) -> datetime | None:
        """The first safe moment at or after `instant` in the morning (before `split`) or the
        afternoon (from `split`), Europe/London; None when the safe times hold no such moment."""
        for begins, ends in self.intervals_from(max(instant, instant)):
            start = max(begins, instant)
            for candidate in _half_boundaries(start, ends, split, self.zone):
                wall = candidate.astimezone(self.zone).time()
                if (wall < split) == morning:
                    return candidate
        return None


def _half_boundaries(start: datetime, ends: datetime, split: time, zone: ZoneInfo) -> list[datetime]:
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
