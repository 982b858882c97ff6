"""Disclosure control for the commissioner's figures (reports.md): what a report may show of a
count, a percentage, a median or a percentile when its reader may see no personal data.

- A count under 5 shows as `<5`; every other count is rounded to the nearest 5.
- A percentage is computed from the counts as shown (both rounded), and shows only when at
  least 10 people stand behind it and its part is not under 5: a percentage of exact counts
  would give the exact counts back (7 of 13 is the only fraction near 53.8% with a
  denominator near 15), and with them every difference the rounding hides; one of rounded
  counts says nothing the rounded counts do not.
- A median or a percentile shows only when at least 10 people stand behind it (it is a time,
  not a count: it says nothing of how many).

Staff roles see exact figures (`exact=True`): they may see personal data anyway.

Rounding alone does not stop differencing where published parts add up to a published whole:
three months shown as `<5`, `5`, `5` beside a quarter of `20` force the months to be 4, 7 and
7 (a `<5` is at most 4, a `5` at most 7, a `20` at least 18). So, for the commissioner:

- periods are whole calendar quarters or financial years only, and a report's breakdown over
  time is by quarter (a financial year of four quarters: four parts whose bounds never meet a
  total's exactly, whatever is suppressed; checked in the test), never by month;
- a breakdown (by source, priority, age band, offence, area, closure reason, ...) whose parts
  include a count under 5 in a period is suppressed whole in that period (secondary
  suppression), so its parts never stand beside the total they add up to.

tests/unit/test_disclosure.py tries the attacks (totals minus parts, all services minus the
others, a year minus its quarters) by enumerating every exact data set the published figures
allow, including the month counter-example above, which the quarter-only rule keeps from ever
being published.
"""

from __future__ import annotations

from dataclasses import dataclass

SMALL = 5  # a count under this is never shown
ROUND_TO = 5
MIN_PEOPLE = 10  # behind a percentage, a median or a percentile


@dataclass(frozen=True)
class Shown:
    """A figure as a report shows it: `value` for charts and sorting (None when suppressed or
    under 5), `text` for tables and CSV."""

    value: float | None
    text: str

    @property
    def suppressed(self) -> bool:
        return self.value is None


SUPPRESSED = Shown(None, "suppressed")
UNDER_FIVE = Shown(None, f"<{SMALL}")


def rounded(n: int) -> int:
    """To the nearest 5, halves up (an integer count is never a half away)."""
    return ROUND_TO * ((n + ROUND_TO // 2) // ROUND_TO)


def count(n: int, *, exact: bool) -> Shown:
    if exact:
        return Shown(n, f"{n:,}")
    if n < SMALL:
        return UNDER_FIVE
    shown = rounded(n)
    return Shown(shown, f"{shown:,}")


def percentage(part: int, whole: int, *, exact: bool) -> Shown:
    """`part` of `whole` as a percentage, to one decimal place for staff, whole percents for
    the commissioner (from the rounded counts)."""
    if whole <= 0:
        return SUPPRESSED
    if exact:
        value = 100 * part / whole
        return Shown(round(value, 1), f"{value:.1f}%")
    # "At least 10 people": the exact count (reports.md). Whether a percentage shows does
    # narrow a count shown as 10 (8 to 12) to 8 or 9, or 10 to 12: never to one value.
    if whole < MIN_PEOPLE or part < SMALL:
        return SUPPRESSED
    value = 100 * rounded(part) / rounded(whole)
    return Shown(round(value), f"{round(value)}%")


def statistic(value: float | None, people: int, *, exact: bool, unit: str = "h") -> Shown:
    """A median or a percentile of `people` values."""
    if value is None or people <= 0:
        return SUPPRESSED
    if not exact and people < MIN_PEOPLE:
        return SUPPRESSED
    return Shown(round(value, 1), f"{value:,.1f} {unit}")


def suppress_groups(
    groups: dict[str, list[list[Shown]]],
) -> dict[str, list[list[Shown]]]:
    """Secondary suppression: for each group of rows that are parts of one whole, in each
    column (period), every part is suppressed when any is under 5 (`groups` maps a group's
    name to its rows, each a list of one Shown per column)."""
    out: dict[str, list[list[Shown]]] = {}
    for name, rows in groups.items():
        columns = len(rows[0]) if rows else 0
        hidden = [any(row[c] is UNDER_FIVE for row in rows) for c in range(columns)]
        out[name] = [[SUPPRESSED if hidden[c] else row[c] for c in range(columns)] for row in rows]
    return out
