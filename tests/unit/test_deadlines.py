"""First-contact deadlines (triage-policy.md, "Priority"): end of the Nth working day after the
day of receipt at 17:00 Europe/London; P1 24 hours elapsed. Bank holidays: England and Wales."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from triage.domain.decision import Decision, iso_z

Decide = Callable[..., Decision]

P1: dict[str, Any] = {"offence.category": "burglary", "risk.level": "high"}
P2: dict[str, Any] = {"offence.category": "burglary", "flags": ["serious_crime"]}
P3: dict[str, Any] = {"offence.category": "burglary"}
PRIORITY = {"P1": P1, "P2": P2, "P3": P3}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def due(decide: Decide, priority: str, received: str) -> str | None:
    decision = decide(PRIORITY[priority], received_at=utc(received))
    assert decision.priority == priority
    return iso_z(decision.contact_due_by)


@pytest.mark.parametrize(
    ("priority", "received", "deadline"),
    [
        # The policy's example: Thursday 24 December 2026 10:00 (GMT). Friday 25 and Monday 28
        # (Boxing Day's substitute) are bank holidays: P3 -> Wednesday 30, P2 -> Tuesday 29.
        ("P3", "2026-12-24T10:00:00+00:00", "2026-12-30T17:00:00Z"),
        ("P2", "2026-12-24T10:00:00+00:00", "2026-12-29T17:00:00Z"),
        ("P1", "2026-12-24T10:00:00+00:00", "2026-12-25T10:00:00Z"),
        # Easter 2027: Good Friday 26 March, Easter Monday 29 March; BST from 28 March, so the
        # 17:00 deadline is 16:00Z.
        ("P2", "2027-03-25T10:00:00+00:00", "2027-03-30T16:00:00Z"),
        ("P3", "2027-03-25T10:00:00+00:00", "2027-03-31T16:00:00Z"),
        ("P2", "2027-03-26T11:00:00+00:00", "2027-03-30T16:00:00Z"),  # on Good Friday
        ("P3", "2027-03-29T11:00:00+01:00", "2027-03-31T16:00:00Z"),  # on Easter Monday
        # Summer (BST): Wednesday 15 July 2026 10:00 BST.
        ("P2", "2026-07-15T10:00:00+01:00", "2026-07-16T16:00:00Z"),
        ("P3", "2026-07-15T10:00:00+01:00", "2026-07-17T16:00:00Z"),
        # Ordinary week, winter: Wednesday 18 November 2026.
        ("P2", "2026-11-18T10:00:00Z", "2026-11-19T17:00:00Z"),
        ("P3", "2026-11-18T10:00:00Z", "2026-11-20T17:00:00Z"),
        # Friday receipt runs over the weekend.
        ("P2", "2026-11-20T16:00:00Z", "2026-11-23T17:00:00Z"),
        ("P3", "2026-11-20T16:00:00Z", "2026-11-24T17:00:00Z"),
        # Saturday and Sunday receipt: the next working days are Monday and Tuesday.
        ("P2", "2026-11-21T10:00:00Z", "2026-11-23T17:00:00Z"),
        ("P3", "2026-11-21T10:00:00Z", "2026-11-24T17:00:00Z"),
        ("P2", "2026-11-22T23:00:00Z", "2026-11-23T17:00:00Z"),
        # 23:59 receipt: the day of receipt never counts, whatever the hour.
        ("P2", "2026-11-18T23:59:00Z", "2026-11-19T17:00:00Z"),
        ("P3", "2026-11-18T23:59:00Z", "2026-11-20T17:00:00Z"),
        # Before 17:00 on a working day still does not count that day.
        ("P2", "2026-11-18T00:01:00Z", "2026-11-19T17:00:00Z"),
        # 23:59 BST on Wednesday 15 July is 22:59Z: still Wednesday in London.
        ("P2", "2026-07-15T22:59:00Z", "2026-07-16T16:00:00Z"),
        # 00:30 BST on Thursday 16 July is 23:30Z on Wednesday: the London day is Thursday.
        ("P2", "2026-07-15T23:30:00Z", "2026-07-17T16:00:00Z"),
        # Spring bank holiday (Monday 25 May 2026) and August bank holiday (31 August 2026).
        ("P2", "2026-05-22T12:00:00+01:00", "2026-05-26T16:00:00Z"),
        ("P3", "2026-08-28T12:00:00+01:00", "2026-09-02T16:00:00Z"),
        # New Year's Day 2027 (Friday).
        ("P2", "2026-12-31T12:00:00Z", "2027-01-04T17:00:00Z"),
    ],
)
def test_deadline_table(decide: Decide, priority: str, received: str, deadline: str) -> None:
    assert due(decide, priority, received) == deadline


def test_policy_example_in_london_time(decide: Decide) -> None:
    decision = decide(P3, received_at=utc("2026-12-24T10:00:00+00:00"))
    assert decision.contact_due_by is not None
    local = decision.contact_due_by.astimezone(ZoneInfo("Europe/London"))
    assert (local.year, local.month, local.day, local.hour, local.minute) == (2026, 12, 30, 17, 0)
    assert local.strftime("%A") == "Wednesday"


@pytest.mark.parametrize(
    ("received", "deadline"),
    [
        # Autumn: clocks go back at 02:00 BST on Sunday 25 October 2026; 24 h elapsed.
        ("2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z"),
        # Spring: clocks go forward on Sunday 29 March 2026.
        ("2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z"),
        # Any day: Christmas Day and a Saturday.
        ("2026-12-25T03:00:00Z", "2026-12-26T03:00:00Z"),
        ("2026-11-21T10:00:00Z", "2026-11-22T10:00:00Z"),
    ],
)
def test_p1_is_24_hours_elapsed(decide: Decide, received: str, deadline: str) -> None:
    assert due(decide, "P1", received) == deadline
    assert utc(deadline) - utc(received) == timedelta(hours=24)


def test_p1_across_autumn_change_is_not_the_same_wall_clock(decide: Decide) -> None:
    # 13:00 BST Saturday -> 12:00 GMT Sunday: 24 real hours, not "same time tomorrow".
    decision = decide(P1, received_at=utc("2026-10-24T13:00:00+01:00"))
    assert decision.contact_due_by == utc("2026-10-25T12:00:00+00:00")


def test_deadline_from_receipt_not_referred_at(decide: Decide) -> None:
    # The referrer's time is kept for reports only; the service's receipt time sets the clock.
    decision = decide(
        {**P2, "referred_at": "2026-11-16T09:00:00Z"},
        received_at=utc("2026-11-18T10:00:00Z"),
    )
    assert iso_z(decision.contact_due_by) == "2026-11-19T17:00:00Z"


def test_naive_receipt_time_is_refused(decide: Decide) -> None:
    with pytest.raises(ValueError):
        decide(P3, received_at=datetime(2026, 11, 18, 10, 0))
