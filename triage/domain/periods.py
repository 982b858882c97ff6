"""Report periods (reports.md): whole months, in Europe/London. A month, a quarter, a financial
year (April to March) or any range of whole months; each compared with the period just before
it (of the same length) and the same period a year earlier."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
MAX_MONTHS = 60  # five years in one report at most
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """A period that cannot be reported on; `field` is the query's `from` or `to`. The message
    never repeats what was sent (it could be anything a person typed)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_month(text: str, field: str = "from") -> date:
    """`YYYY-MM` -> the first day of that month."""
    found = _MONTH.match(text.strip()) if isinstance(text, str) else None
    year, month = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        which = "first" if field == "from" else "last"
        raise PeriodError(field, f"Enter the {which} month as YYYY-MM, like 2026-07")
    return date(year, month, 1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """From the first day of `first` to the end of `last` (whole months)."""

    first: date
    last: date

    @classmethod
    def of_months(cls, start: str, end: str | None = None) -> Period:
        first = parse_month(start, "from")
        last = parse_month(end, "to") if end else first
        if last < first:
            raise PeriodError("to", "The last month must be the first month or after it")
        period = cls(first, last)
        if period.months > MAX_MONTHS:
            raise PeriodError("to", f"A report covers at most {MAX_MONTHS} months")
        return period

    @classmethod
    def quarter(cls, year: int, number: int) -> Period:
        """Calendar quarters: Q1 is January to March."""
        first = date(year, 3 * (number - 1) + 1, 1)
        return cls(first, add_months(first, 2))

    @classmethod
    def financial_year(cls, starting: int) -> Period:
        """April `starting` to March the year after."""
        return cls(date(starting, 4, 1), date(starting + 1, 3, 1))

    @property
    def months(self) -> int:
        return (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1

    @property
    def start(self) -> datetime:
        """The first instant, in UTC terms (London midnight)."""
        return datetime.combine(self.first, time(0), LONDON)

    @property
    def end(self) -> datetime:
        """The instant just after the last month (exclusive)."""
        return datetime.combine(add_months(self.last, 1), time(0), LONDON)

    def previous(self) -> Period:
        return Period(add_months(self.first, -self.months), add_months(self.first, -1))

    def year_earlier(self) -> Period:
        return Period(add_months(self.first, -12), add_months(self.last, -12))

    def month_starts(self) -> list[date]:
        return [add_months(self.first, i) for i in range(self.months)]

    @property
    def is_quarter(self) -> bool:
        return self.months == 3 and self.first.month in (1, 4, 7, 10)

    @property
    def is_financial_year(self) -> bool:
        return self.months == 12 and self.first.month == 4

    def quarters(self) -> list[Period]:
        """The calendar quarters of a period made of whole quarters."""
        return [
            Period(add_months(self.first, 3 * i), add_months(self.first, 3 * i + 2))
            for i in range(self.months // 3)
        ]

    @property
    def label(self) -> str:
        if self.months == 1:
            return self.first.strftime("%B %Y")
        if self.months == 3 and self.first.month in (1, 4, 7, 10):
            return f"{self.first.strftime('%b')} to {self.last.strftime('%b %Y')}"
        return f"{self.first.strftime('%b %Y')} to {self.last.strftime('%b %Y')}"

    @property
    def code(self) -> str:
        """`from` and `to` as the API and the CSV name them."""
        return f"{self.first:%Y-%m}..{self.last:%Y-%m}"


def last_quarter(today: date) -> Period:
    """The last whole calendar quarter before `today`."""
    this = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    first = add_months(this, -3)
    return Period(first, add_months(first, 2))
