"""Working days and wall-clock time in the service's time zone.

Every instant in and out is timezone-aware UTC; Europe/London (or the catalogue's zone) is used
only inside these functions, so daylight saving time is handled in one place.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

LONDON = ZoneInfo("Europe/London")


def require_utc(instant: datetime) -> datetime:
    """Reject naive datetimes early: a naive time is a bug that moves deadlines by an hour."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("naive datetime: every instant must carry a time zone")
    return instant.astimezone(UTC)


def local_to_utc(day: date, wall: time, zone: ZoneInfo = LONDON) -> datetime:
    """The instant a wall clock in `zone` shows `wall` on `day`.

    A wall time that does not exist (inside the spring-forward gap) is moved forward to the
    first instant after the gap (Europe/London, 29 March 2026: 01:30 gives 02:00 BST, 01:00
    UTC), never earlier: nothing may happen before the time asked for. An ambiguous wall time
    (autumn fall-back) takes its first occurrence. Cached: the same few days and wall times
    come back for every referral.
    """
    # fold is dropped: time's == and hash ignore it, so the cache would otherwise hand a
    # fold=1 answer (the second occurrence, or before a gap) to a fold=0 caller.
    return _local_to_utc(day, wall.replace(fold=0), zone)


@lru_cache(maxsize=65536)
def _local_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    naive = datetime.combine(day, wall)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first occurrence
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # In the gap. fold=0 used the offset before the transition, so `instant` is as far past
    # the transition as `wall` is past the gap's start; fold=1 used the offset after it, so
    # `before` is earlier than the transition. The first instant whose wall clock reads
    # `wall` or later is the transition itself: find it by bisection (to the microsecond).
    before = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = before, instant  # wall(low) < naive <= wall(high)
    step = high - low
    while step > _MICROSECOND:
        middle = low + step // 2
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
        step = high - low
    return high


_MICROSECOND = timedelta(microseconds=1)


def repeated_wall_time(
    day: date, wall: time, zone: ZoneInfo = LONDON
) -> tuple[datetime, datetime] | None:
    """For a wall time the clock shows twice on `day` (autumn fall-back), the instant the clock
    goes back and the wall time's second occurrence; None for any other wall time.

    Between the two, the clock shows times earlier than `wall` again (Europe/London,
    25 October 2026, 01:30: the clock goes back at 01:00 UTC and shows 01:30 again at 01:30
    UTC), so a safe window that opens at `wall` is closed in between.
    """
    return _repeated_wall_time(day, wall, zone)


@lru_cache(maxsize=4096)
def _repeated_wall_time(day: date, wall: time, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if second <= first:  # shown once (equal) or never (in a spring-forward gap)
        return None
    target = second.astimezone(zone).utcoffset()
    low, high = first, second  # the offset changes to `target` in (low, high]
    step = high - low
    while step > _MICROSECOND:
        middle = low + step // 2
        if middle.astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
        step = high - low
    return high, second


def local_date(instant: datetime, zone: ZoneInfo = LONDON) -> date:
    return instant.astimezone(zone).date()


class WorkingCalendar:
    """Monday to Friday except the bank holidays of one country and subdivision."""

    def __init__(self, country: str = "GB", subdivision: str = "ENG", zone: ZoneInfo = LONDON):
        self.country = country
        self.subdivision = subdivision
        self.zone = zone

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in _holidays(self.country, self.subdivision, day.year)

    def holiday_name(self, day: date) -> str | None:
        name = _holidays(self.country, self.subdivision, day.year).get(day)
        return str(name) if name else None

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (`day` itself never counts)."""
        return _add_working_days(self.country, self.subdivision, day, count)

    def working_minutes(
        self, start: datetime, end: datetime, day_start: time, day_end: time
    ) -> int:
        """Minutes of working time (`day_start` to `day_end`, local, on working days) between
        two instants: how long a victim waited for first contact in the hub's hours."""
        if end <= start:
            return 0
        total = 0.0
        day = local_date(start, self.zone)
        last = local_date(end, self.zone)
        while day <= last:
            if self.is_working_day(day):
                opens = local_to_utc(day, day_start, self.zone)
                closes = local_to_utc(day, day_end, self.zone)
                overlap = (min(closes, end) - max(opens, start)).total_seconds()
                total += max(0.0, overlap)
            day += timedelta(days=1)
        return int(total // 60)

    def end_of_working_day(self, received_at: datetime, working_days: int, end: time) -> datetime:
        """End (`end`, local) of the `working_days`-th working day after the day of receipt."""
        received_day = local_date(received_at, self.zone)
        return _end_of_working_day(
            self.country, self.subdivision, self.zone, received_day, working_days, end
        )


@lru_cache(maxsize=65536)
def _add_working_days(country: str, subdivision: str, day: date, count: int) -> date:
    current = day
    remaining = count
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in _holidays(country, subdivision, current.year):
            remaining -= 1
    return current


@lru_cache(maxsize=65536)
def _end_of_working_day(
    country: str, subdivision: str, zone: ZoneInfo, day: date, count: int, end: time
) -> datetime:
    return local_to_utc(_add_working_days(country, subdivision, day, count), end, zone)


@lru_cache(maxsize=256)
def _holidays(country: str, subdivision: str, year: int) -> dict[date, str]:
    table = holidays_lib.country_holidays(country, subdiv=subdivision, years=[year])
    return {day: str(name) for day, name in table.items()}


def parse_clock(text: str) -> time:
    """`HH:MM` (24-hour) to a time; `24:00` is not accepted (use a window across midnight)."""
    hours, sep, minutes = text.partition(":")
    digits = hours + minutes
    # ASCII digits only: isdigit() alone takes other scripts' digits (and int() then refuses
    # some, with a message that would quote the value sent).
    if (
        not sep
        or len(hours) != 2
        or len(minutes) != 2
        or not (digits.isascii() and digits.isdigit())
    ):
        raise ValueError("must be a time as HH:MM")
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError("must be a time as HH:MM between 00:00 and 23:59")
    return time(h, m)


# The hub's working day starts at 09:00 (it ends at the catalogue's end_of_working_day).
WORKING_DAY_START = time(9)
AGE_BANDS = ("under_18", "18_24", "25_64", "65_plus", "unknown")


def age_band(
    date_of_birth: date | None,
    received_at: datetime,
    zone: ZoneInfo = LONDON,
    age: int | None = None,
) -> str:
    """The victim's age band on the day of receipt (reports keep the band, never the date): by
    the date of birth, else by the age the referrer gave."""
    if date_of_birth is not None:
        age = age_on(date_of_birth, local_date(received_at, zone))
    if age is None:
        return "unknown"
    if age < 18:
        return "under_18"
    if age < 25:
        return "18_24"
    if age < 65:
        return "25_64"
    return "65_plus"


def age_on(date_of_birth: date, day: date) -> int:
    years = day.year - date_of_birth.year
    if (day.month, day.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years
