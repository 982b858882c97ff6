"""Disclosure control (reports.md, issue 13 point 4): what the commissioner's figures show, and
an attacker who knows every published figure and the rules, trying to recover a count under 5
by differencing (totals minus parts, all services minus the others, a quarter minus its
months) on hand-built figures. The attack enumerates every exact table of counts that the
published figures allow; a suppressed count is safe when it can take two values or more."""

from __future__ import annotations

import itertools

import pytest

from triage.domain.disclosure import count, percentage, rounded, statistic


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "<5"),
        (1, "<5"),
        (4, "<5"),
        (5, "5"),
        (7, "5"),
        (8, "10"),
        (12, "10"),
        (13, "15"),
        (1234, "1,235"),
    ],
)
def test_counts_for_the_commissioner(n: int, text: str) -> None:
    assert count(n, exact=False).text == text
    assert count(n, exact=True).text == f"{n:,}"


def test_percentages_and_statistics() -> None:
    # Staff: exact.
    assert percentage(7, 13, exact=True).text == "53.8%"
    # The commissioner: from the rounded counts, whole percents, and only with 10 people
    # behind it and a part of at least 5.
    assert percentage(7, 13, exact=False).text == "33%"  # 5 of 15
    assert percentage(4, 40, exact=False).suppressed
    assert percentage(6, 9, exact=False).suppressed
    assert percentage(91, 100, exact=False).text == "90%"
    assert percentage(0, 0, exact=True).suppressed
    assert statistic(12.34, 9, exact=False).suppressed
    assert statistic(12.34, 10, exact=False).text == "12.3 h"
    assert statistic(12.34, 3, exact=True).text == "12.3 h"


def _candidates(shown: str) -> list[int]:
    """Every exact count that shows as `shown`, found by the rules themselves (an attacker
    knows them)."""
    top = 5 if shown == "<5" else int(shown.replace(",", "")) + 10
    return [n for n in range(top + 1) if count(n, exact=False).text == shown]


# Referrals per service (rows) and month of one quarter (columns), with counts under 5 in
# places an attacker would aim at: a row total and a column total each have one small cell.
TABLE = [
    [3, 12, 9],  # service A
    [14, 2, 26],  # service B
    [8, 6, 4],  # service C
]


def _published(table: list[list[int]]) -> dict[str, str]:
    shown = {}
    for s, row in enumerate(table):
        for m, n in enumerate(row):
            shown[f"cell {s} {m}"] = count(n, exact=False).text
        shown[f"service {s} quarter"] = count(sum(row), exact=False).text
    for m in range(len(table[0])):
        shown[f"all services month {m}"] = count(sum(r[m] for r in table), exact=False).text
    shown["all services quarter"] = count(sum(map(sum, table)), exact=False).text
    return shown


def _consistent_tables(published: dict[str, str]) -> list[tuple[int, ...]]:
    """Every exact 3 x 3 table whose published figures are exactly these: rows that fit
    their cells and their quarter total first, then tables of those rows that fit the month
    totals and the grand total."""
    rows = []
    for s in range(3):
        cells = [_candidates(published[f"cell {s} {m}"]) for m in range(3)]
        total = published[f"service {s} quarter"]
        rows.append(
            [r for r in itertools.product(*cells) if count(sum(r), exact=False).text == total]
        )
    found = []
    for table in itertools.product(*rows):
        months = [sum(row[m] for row in table) for m in range(3)]
        if (
            all(
                count(months[m], exact=False).text == published[f"all services month {m}"]
                for m in range(3)
            )
            and count(sum(months), exact=False).text == published["all services quarter"]
        ):
            found.append(tuple(itertools.chain(*table)))
    return found


def test_no_count_under_5_is_recovered_by_differencing() -> None:
    published = _published(TABLE)
    # The attacks, each on its own: the quarter minus the other months; all services minus
    # the other services; then everything at once (every table the figures allow).
    for s, row in enumerate(TABLE):
        for m, n in enumerate(row):
            if n >= 5:
                continue
            others = [k for k in range(3) if k != m]
            quarter_minus_months = {
                q - a - b
                for q in _candidates(published[f"service {s} quarter"])
                for a in _candidates(published[f"cell {s} {others[0]}"])
                for b in _candidates(published[f"cell {s} {others[1]}"])
            } & set(range(5))
            assert len(quarter_minus_months) >= 2, (s, m, quarter_minus_months)
            rest = [k for k in range(3) if k != s]
            all_minus_others = {
                t - a - b
                for t in _candidates(published[f"all services month {m}"])
                for a in _candidates(published[f"cell {rest[0]} {m}"])
                for b in _candidates(published[f"cell {rest[1]} {m}"])
            } & set(range(5))
            assert len(all_minus_others) >= 2, (s, m, all_minus_others)
    tables = _consistent_tables(published)
    assert tuple(itertools.chain(*TABLE)) in tables  # the truth is among them
    for index, n in enumerate(itertools.chain(*TABLE)):
        if n < 5:
            possible = {t[index] for t in tables}
            assert len(possible) >= 2, (index, possible)


def test_rounding_is_to_the_nearest_5() -> None:
    assert [rounded(n) for n in range(5, 16)] == [5, 5, 5, 10, 10, 10, 10, 10, 15, 15, 15]


def test_months_beside_their_quarter_would_give_a_count_away() -> None:
    """Why the commissioner never sees months: `<5`, `5`, `5` beside a quarter of `20` leave
    one table only, 4, 7 and 7 (so the rule keeps months off the commissioner's reports)."""
    shown = [count(n, exact=False).text for n in (4, 7, 7)]
    quarter = count(18, exact=False).text
    assert (shown, quarter) == (["<5", "5", "5"], "20")
    fits = [
        parts
        for parts in itertools.product(*(_candidates(t) for t in shown))
        if count(sum(parts), exact=False).text == quarter
    ]
    assert fits == [(4, 7, 7)]


def test_a_year_of_four_quarters_never_gives_a_count_under_5_away() -> None:
    """Every year of four quarters (each 0 to 14 referrals): the published quarters and year
    always leave each quarter under 5 with at least two possible values."""
    texts = {n: count(n, exact=False).text for n in range(0, 80)}
    for quarters in itertools.product(range(15), repeat=4):
        shown = [texts[n] for n in quarters]
        if "<5" not in shown:
            continue
        year = texts[sum(quarters)]
        options = [_candidates(t) for t in shown]
        for index, n in enumerate(quarters):
            if n >= 5:
                continue
            others = [o for i, o in enumerate(options) if i != index]
            lows = sum(min(o) for o in others)
            highs = sum(max(o) for o in others)
            possible = {
                v
                for v in options[index]
                if any(texts.get(v + rest) == year for rest in range(lows, highs + 1))
            }
            assert len(possible) >= 2, (quarters, index, possible)


def test_a_breakdown_with_a_count_under_5_is_suppressed_whole() -> None:
    from triage.domain.disclosure import SUPPRESSED, suppress_groups

    rows = [[count(n, exact=False) for n in period] for period in ([3, 20], [12, 30], [6, 2])]
    [police, professional, self_] = suppress_groups({"source": rows})["source"]
    # The first period has a 3, the second a 2: both columns hidden for every part.
    assert all(value is SUPPRESSED for value in (*police, *professional, *self_))
    untouched = suppress_groups({"age": [[count(9, exact=False)], [count(12, exact=False)]]})
    assert [row[0].text for row in untouched["age"]] == ["10", "10"]
