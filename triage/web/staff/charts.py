"""Charts drawn on the server as SVG (reports.md): bars over time and the deadline percentage
against its target. Only geometry is computed here; the template draws it with a <title> and
a <desc>, and the same figures are in a table beside it, so the chart needs no JavaScript and
says nothing a screen reader cannot read elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 640, 240
LEFT, BOTTOM, TOP = 48, 32, 16


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the month
    text: str  # the value as the table shows it


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    axis_y: float  # the baseline
    ticks: list[tuple[float, str]]  # y, label
    target: tuple[float, str] | None  # y, label


def bar_chart(
    points: list[tuple[str, float | None, str]],
    *,
    top: float | None = None,
    target: float | None = None,
) -> Chart:
    """`points`: (label, value or None when suppressed, text). `top`: the scale's maximum
    (100 for percentages), else the largest value rounded up."""
    values = [v for _, v, _ in points if v is not None]
    # At least 10: a scale of 0 to 1 would label its middle "0" (and a count's bars are whole).
    ceiling = top or _nice(max(max(values, default=0), 10))
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(points), 1)
    bars = []
    for index, (label, value, text) in enumerate(points):
        height = 0.0 if value is None else plot_height * min(value, ceiling) / ceiling
        bars.append(
            Bar(
                x=LEFT + index * slot + slot * 0.15,
                y=TOP + plot_height - height,
                width=slot * 0.7,
                height=height,
                label=label,
                text=text,
            )
        )
    ticks = [
        (TOP + plot_height - plot_height * fraction, _format(ceiling * fraction))
        for fraction in (0, 0.5, 1)
    ]
    line = None
    if target is not None:
        line = (TOP + plot_height - plot_height * target / ceiling, f"Target {target:g}%")
    return Chart(WIDTH, HEIGHT, bars, TOP + plot_height, ticks, line)


def _nice(value: float) -> float:
    """The next of 1, 2, 5 times a power of ten at or above `value`."""
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def _format(value: float) -> str:
    return f"{value:,.0f}"
