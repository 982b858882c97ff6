"""The contact plan run by a real Celery worker process (contacts.md, lifecycle.md).

The worker and the tests share the database, so they share the service clock: the tests move
it forward to the moments that matter (no sleeping for days) and ask the worker for a sweep
(`triage.sweep`), then poll the database until it shows the result. Staff call outcomes are
recorded through the service function, as the staff UI does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from contact_support import (
    ENGLAND,
    LONDON,
    all_rows,
    at_priority,
    celery_worker,
    eventually,
    is_working_day,
    london,
    messages_of,
    move_clock_to,
    one,
    open_step,
    outbox_of,
    plain,
    quiet_monday,
    record,
    reset_clock,
    service_time,
    steps_of,
    submit,
    working_days_after,
)

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.fixture(scope="module")
def worker(servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with celery_worker(log) as process:
        yield process
    assert process.returncode is not None


@pytest.fixture(autouse=True)
async def clock(sessions: Any, worker: Any) -> AsyncIterator[None]:
    """Every test starts and ends with the shared clock at the system time."""
    await reset_clock(sessions)
    yield
    assert worker.poll() is None, "the Celery worker died during the test"
    await reset_clock(sessions)


# Helpers -------------------------------------------------------------------------------------


async def referral_row(sessions: Any, referral_id: str) -> Any:
    return await one(sessions, "SELECT * FROM referrals WHERE id = :r", r=referral_id)


async def cases_of(sessions: Any, referral_id: str) -> list[Any]:
    return await all_rows(sessions, "SELECT * FROM cases WHERE referral_id = :r", r=referral_id)


async def alerts_of(sessions: Any, referral_id: str) -> dict[str, Any]:
    rows = await all_rows(sessions, "SELECT * FROM alerts WHERE referral_id = :r", r=referral_id)
    return {row.kind: row for row in rows}


async def step_is(sessions: Any, referral_id: str, number: int, status: str) -> Any:
    step = await open_step(sessions, referral_id)
    return step if step is not None and step.number == number and step.status == status else None


async def all_due(sessions: Any, referral_ids: list[str], number: int) -> list[Any]:
    """Sweep until the open step `number` of every referral is due (in the calls-due list)."""

    async def check() -> list[Any] | None:
        steps = [await step_is(sessions, r, number, "due") for r in referral_ids]
        return steps if all(steps) else None

    return await eventually(check, sweep=True, what=f"step {number} to be due")


async def messages_settled(sessions: Any, referral_ids: list[str], template: str) -> list[Any]:
    """Sweep until every `template` message of these referrals has left `queued`/`sending`."""

    async def check() -> list[Any] | None:
        found = []
        for referral_id in referral_ids:
            found += [m for m in await messages_of(sessions, referral_id) if m.template == template]
        if found and all(m.status not in ("queued", "sending") for m in found):
            return found
        return None

    return await eventually(check, sweep=True, what=f"the {template} messages to be sent")


async def calls_due_now(sessions: Any) -> list[dict[str, Any]]:
    from dataclasses import replace

    from triage.domain.principals import OPERATOR
    from triage.services.clock import service_now
    from triage.services.staff_views import calls_due

    as_hub = replace(OPERATOR, roles=frozenset({"hub"}))
    async with sessions() as db:
        return (await calls_due(db, as_hub, await service_now(db), limit=100_000)).rows


async def pause(sessions: Any, referral_id: str) -> None:
    from triage.services.clock import service_now
    from triage.services.contact_plan import pause_contact

    async with sessions() as db:
        await pause_contact(db, uuid.UUID(referral_id), "staff:test", await service_now(db))
        await db.commit()


async def resume(sessions: Any, referral_id: str) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.clock import service_now
    from triage.services.contact_plan import resume_contact

    async with sessions() as db:
        await resume_contact(
            db, uuid.UUID(referral_id), "staff:test", current_catalogue(), await service_now(db)
        )
        await db.commit()


async def receipt(sessions: Any, message_id: Any, status: str) -> str:
    from triage.services.receipts import apply_receipt
    from triage.services.units import in_session

    return await in_session(sessions, apply_receipt, uuid.UUID(str(message_id)), status)


async def monday_10am(sessions: Any) -> date:
    monday = quiet_monday(await service_time(sessions))
    await move_clock_to(sessions, london(monday, 10))
    return monday


# The whole plan, at each priority -----------------------------------------------------------

DEADLINE = {"P1": "24 hours", "P2": "end of the next working day", "P3": "end of 2 working days"}


@pytest.mark.parametrize("priority", ["P1", "P2", "P3"])
async def test_the_whole_plan_to_unable_to_contact_and_to_reached(
    priority: str, client: Any, police: dict[str, str], sessions: Any
) -> None:
    monday = await monday_10am(sessions)
    tuesday, thursday = monday + timedelta(days=1), monday + timedelta(days=3)
    # Three victims: one never reached who allows letters, one never reached who does not,
    # one reached on the second call.
    gone = await submit(
        client,
        police,
        at_priority(
            priority, **{"contact.channels": ["phone", "sms", "letter"], "contact.letter_ok": True}
        ),
    )
    no_letter = await submit(
        client, police, at_priority(priority, **{"contact.channels": ["phone", "email"]})
    )
    found = await submit(
        client, police, at_priority(priority, **{"contact.channels": ["phone", "sms"]})
    )
    ids = [gone["id"], no_letter["id"], found["id"]]
    unreached = ids[:2]
    for answer in (gone, no_letter, found):
        assert answer["triage"]["priority"] == priority
    received = {r: (await referral_row(sessions, r)).received_at for r in ids}
    deadline = {
        r: {
            "P1": received[r] + timedelta(hours=24),
            "P2": london(tuesday, 17),
            "P3": london(monday + timedelta(days=2), 17),
        }[priority]
        for r in ids
    }
    for referral_id in ids:
        row = await referral_row(sessions, referral_id)
        assert row.contact_due_by == deadline[referral_id], DEADLINE[priority]

    # Step 1: a call due at the first safe moment, which is now (10:00 is inside the default
    # 08:00 to 20:00), with the introduction by the victim's first message channel.
    first = {}
    for referral_id in ids:
        [step] = await steps_of(sessions, referral_id)
        assert (step.number, step.kind, step.channel) == (1, "call", "phone")
        assert step.due_at == received[referral_id]
        first[referral_id] = step
    await all_due(sessions, ids, 1)
    intros = await messages_settled(sessions, ids, "introduction")
    assert sorted((m.channel, m.status) for m in intros) == [
        ("email", "accepted"),
        ("sms", "accepted"),
        ("sms", "accepted"),
    ]
    assert all(m.due_at == first[str(m.referral_id)].due_at for m in intros)
    sent = await outbox_of(sessions, [m.id for m in intros])
    assert sorted(s.reference for s in sent) == sorted(m.id for m in intros)  # once each
    due_list = {row["step_id"] for row in await calls_due_now(sessions)}
    assert {first[r].id for r in ids} <= due_list

    # No answer on a morning call: step 2 is the next working day in the afternoon.
    for referral_id in ids:
        result = await record(sessions, first[referral_id].id, "no_answer")
        assert result.next_step is not None and result.next_step.number == 2
        step = await open_step(sessions, referral_id)
        assert (step.number, step.kind, step.status) == (2, "call", "scheduled")
        assert step.due_at == london(tuesday, 13)
        assert step.message_template is None
    due_list = {row["step_id"] for row in await calls_due_now(sessions)}
    assert not {first[r].id for r in ids} & due_list

    await move_clock_to(sessions, london(tuesday, 13) + timedelta(seconds=30))
    second = {s.referral_id: s for s in await all_due(sessions, ids, 2)}
    result = await record(sessions, second[uuid.UUID(found["id"])].id, "reached")
    assert result.next_step is None
    for referral_id in unreached:
        await record(sessions, second[uuid.UUID(referral_id)].id, "no_answer")

    # Reached: contact, the plan ends, the cases wait for support.
    step2 = second[uuid.UUID(found["id"])]
    done = await one(sessions, "SELECT * FROM contact_steps WHERE id = :i", i=step2.id)
    assert (done.status, done.outcome) == ("done", "reached")
    row = await referral_row(sessions, found["id"])
    assert (row.status, row.first_contact_at) == ("in_contact", done.attempted_at)
    for case in await cases_of(sessions, found["id"]):
        assert (case.status, case.first_contact_at) == ("awaiting_contact", row.first_contact_at)
    assert await open_step(sessions, found["id"]) is None

    # Step 3: two working days after step 2, with "please contact us" by the next channel.
    third = {}
    for referral_id in unreached:
        step = await open_step(sessions, referral_id)
        attempted = next(s for s in await steps_of(sessions, referral_id) if s.number == 2)
        assert (step.number, step.kind) == (3, "call")
        assert step.due_at == attempted.attempted_at + timedelta(days=2)
        assert step.due_at.astimezone(LONDON).date() == thursday
        third[referral_id] = step
    await move_clock_to(sessions, max(s.due_at for s in third.values()) + timedelta(seconds=30))
    await all_due(sessions, unreached, 3)
    please = await messages_settled(sessions, unreached, "please_contact_us")
    by_referral = {str(m.referral_id): m for m in please}
    assert (by_referral[gone["id"]].channel, by_referral[gone["id"]].status) == ("sms", "accepted")
    assert by_referral[no_letter["id"]].channel == "email"
    assert by_referral[no_letter["id"]].status == "accepted"
    for referral_id, message in by_referral.items():
        assert message.due_at == third[referral_id].due_at
        [entry] = await outbox_of(sessions, [message.id])
        assert (entry.channel, entry.template) == (message.channel, "please_contact_us")

    # Step 4: ten working days after step 1, the cases close; a letter only with letter_ok.
    for referral_id in unreached:
        await record(sessions, third[referral_id].id, "no_answer")
        step = await open_step(sessions, referral_id)
        assert (step.number, step.kind, step.closure_reason) == (4, "close", "unable_to_contact")
        assert step.due_at == first[referral_id].due_at + timedelta(days=14)
        assert working_days_after(monday, 10) == monday + timedelta(days=14)
    closing = [m for m in await messages_of(sessions, gone["id"]) if m.template == "closing_letter"]
    assert [(m.channel, m.status) for m in closing] == [("letter", "queued")]
    assert not [
        m for m in await messages_of(sessions, no_letter["id"]) if m.template == "closing_letter"
    ]
    close_due = max([(await open_step(sessions, r)).due_at for r in unreached])
    await move_clock_to(sessions, close_due + timedelta(seconds=30))

    async def closed() -> bool:
        rows = [await referral_row(sessions, r) for r in unreached]
        return all(r.status == "closed" for r in rows)

    await eventually(closed, sweep=True, what="the cases to close")
    for referral_id in unreached:
        cases = await cases_of(sessions, referral_id)
        assert cases and all(c.status == "closed" for c in cases)
        assert {c.closure_reason for c in cases} == {"unable_to_contact"}
        last = (await steps_of(sessions, referral_id))[-1]
        assert (last.number, last.status, last.outcome) == (4, "done", "plan_ended")
        assert (await referral_row(sessions, referral_id)).first_contact_at is None
    [letter] = await messages_settled(sessions, [gone["id"]], "closing_letter")
    assert (letter.channel, letter.status) == ("letter", "accepted")
    [entry] = await outbox_of(sessions, [letter.id])
    assert (entry.channel, entry.template) == ("letter", "closing_letter")
    assert "Sam" in entry.body and "Taylor" in entry.recipient  # the address, not the text

    # Every message reached the outbox exactly once.
    for referral_id in ids:
        messages = [m for m in await messages_of(sessions, referral_id) if m.status == "accepted"]
        sent = await outbox_of(sessions, [m.id for m in messages])
        assert sorted(s.reference for s in sent) == sorted(m.id for m in messages)

    # The deadline passed without contact for the two never reached: breaches. The one reached
    # on Tuesday afternoon made the P2 and P3 deadlines, not P1's (24 hours).
    async def alerts_settled() -> dict[str, dict[str, Any]] | None:
        every = {r: await alerts_of(sessions, r) for r in ids}
        pending = [a for alerts in every.values() for a in alerts.values() if a.status == "pending"]
        return None if pending else every

    alerts = await eventually(alerts_settled, sweep=True, what="the alerts to be settled")
    for referral_id in unreached:
        breach = alerts[referral_id]["deadline_breach"]
        assert (breach.status, breach.reason) == ("raised", "missed")
        assert breach.due_at == deadline[referral_id] <= breach.raised_at
    breach = alerts[found["id"]]["deadline_breach"]
    if priority == "P1":
        assert (breach.status, breach.reason) == ("raised", "missed")
        for referral_id in ids:  # not reached 4 hours after receipt
            p1 = alerts[referral_id]["p1_not_reached"]
            assert p1.status == "raised"
            assert p1.due_at == received[referral_id] + timedelta(hours=4)
    else:
        assert breach.status == "resolved"
        assert all("p1_not_reached" not in a for a in alerts.values())


# Step timing, outcomes ----------------------------------------------------------------------


async def test_first_step_waits_for_the_first_safe_moment_and_unsafe_to_talk_moves_on(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    monday = await monday_10am(sessions)
    body = at_priority(
        "P1",
        **{"contact.safe_times": [{"days": EVERY_DAY[:5], "from": "14:00", "to": "16:00"}]},
    )
    created = await submit(client, police, body)
    # P1 is "at once", but never before the victim's first safe moment.
    assert created["triage"]["first_contact_step"]["due_at"] == "{}Z".format(
        london(monday, 14).strftime("%Y-%m-%dT%H:%M:%S")
    )
    [step] = await steps_of(sessions, created["id"])
    assert step.due_at == london(monday, 14)
    [intro] = await messages_of(sessions, created["id"])
    assert (intro.due_at, intro.status) == (london(monday, 14), "queued")

    # Swept at 13:59: nothing yet.
    await move_clock_to(sessions, london(monday, 13, 59))
    canary = await submit(client, police, plain())
    await all_due(sessions, [canary["id"]], 1)
    assert (await open_step(sessions, created["id"])).status == "scheduled"
    assert (await messages_of(sessions, created["id"]))[0].status == "queued"

    await move_clock_to(sessions, london(monday, 14, 5))
    [due] = await all_due(sessions, [created["id"]], 1)
    [intro] = await messages_settled(sessions, [created["id"]], "introduction")
    assert intro.status == "accepted" and intro.sent_at >= london(monday, 14)

    # Unsafe to talk: the next try is in the next safe window, not days later.
    result = await record(sessions, due.id, "unsafe_to_talk")
    assert result.next_step is not None
    step = await open_step(sessions, created["id"])
    assert (step.number, step.due_at) == (2, london(monday + timedelta(days=1), 14))


async def test_steps_skip_bank_holidays(client: Any, police: dict[str, str], sessions: Any) -> None:
    """A try on the working day before a bank holiday: the next call is on the next working day
    after the holiday (in the other half of the day), and step 3's message is sent two working
    days after that, never on the holiday."""
    now = await service_time(sessions)
    holiday = min(d for d in ENGLAND if d > now.date() + timedelta(days=2) and d.weekday() < 5)
    eve = holiday - timedelta(days=1)
    while not is_working_day(eve):
        eve -= timedelta(days=1)
    assert eve > now.date()
    await move_clock_to(sessions, london(eve, 14))
    created = await submit(client, police, plain())
    [first] = await all_due(sessions, [created["id"]], 1)
    await record(sessions, first.id, "no_answer")  # an afternoon try

    after = working_days_after(eve, 1)
    assert after > holiday and all(
        not is_working_day(eve + timedelta(days=i)) for i in range(1, (after - eve).days)
    )
    step = await open_step(sessions, created["id"])
    assert (step.number, step.due_at) == (2, london(after, 8))  # the morning, first safe moment

    await move_clock_to(sessions, london(after, 8, 1))
    [second] = await all_due(sessions, [created["id"]], 2)
    await record(sessions, second.id, "no_answer")
    attempted = await one(sessions, "SELECT * FROM contact_steps WHERE id = :i", i=second.id)
    step = await open_step(sessions, created["id"])
    third_day = working_days_after(after, 2)
    assert step.number == 3
    assert step.due_at.astimezone(LONDON).date() == third_day
    wall = attempted.attempted_at.astimezone(LONDON).time()
    assert step.due_at.astimezone(LONDON).time() == wall
    [message] = [
        m for m in await messages_of(sessions, created["id"]) if m.template != "introduction"
    ]
    assert message.due_at == step.due_at

    await move_clock_to(sessions, step.due_at + timedelta(seconds=30))
    [message] = await messages_settled(sessions, [created["id"]], "please_contact_us")
    assert message.status == "accepted"
    assert is_working_day(message.sent_at.astimezone(LONDON).date())


async def test_reached_sets_first_contact_and_cancels_pending_messages(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    await monday_10am(sessions)
    created = await submit(client, police, at_priority("P1"))
    [step] = await all_due(sessions, [created["id"]], 1)
    [intro] = await messages_settled(sessions, [created["id"]], "introduction")
    # The provider could not deliver it yet: a new copy is queued for later.
    assert await receipt(sessions, intro.id, "temporary-failure") == "failed"
    [resend] = [m for m in await messages_of(sessions, created["id"]) if m.status == "queued"]
    assert resend.due_at > (await service_time(sessions))

    result = await record(sessions, step.id, "reached")
    assert result.next_step is None
    row = await referral_row(sessions, created["id"])
    done = await one(sessions, "SELECT * FROM contact_steps WHERE id = :i", i=step.id)
    assert (row.status, row.first_contact_at) == ("in_contact", done.attempted_at)
    assert all(c.first_contact_at == done.attempted_at for c in await cases_of(sessions, row.id))
    assert all(c.status == "awaiting_contact" for c in await cases_of(sessions, row.id))
    statuses = {m.id: m.status for m in await messages_of(sessions, created["id"])}
    assert statuses[resend.id] == "cancelled"
    assert await open_step(sessions, created["id"]) is None
    # Contact within 4 hours and before the deadline: both alerts resolved, none raised.
    alerts = await alerts_of(sessions, created["id"])
    assert {k: a.status for k, a in alerts.items()} == {
        "p1_not_reached": "resolved",
        "deadline_breach": "resolved",
    }
    await move_clock_to(sessions, row.contact_due_by + timedelta(minutes=1))
    canary = await submit(client, police, plain())
    await all_due(sessions, [canary["id"]], 1)
    assert {a.status for a in (await alerts_of(sessions, created["id"])).values()} == {"resolved"}
    assert not await outbox_of(sessions, [resend.id])


async def test_declined_closes_the_cases_as_declined(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    await monday_10am(sessions)
    created = await submit(client, police, at_priority("P2"))
    [step] = await all_due(sessions, [created["id"]], 1)
    result = await record(sessions, step.id, "declined")
    assert result.next_step is None
    row = await referral_row(sessions, created["id"])
    assert row.status == "closed" and row.first_contact_at is not None  # declining is contact
    cases = await cases_of(sessions, created["id"])
    assert cases and all((c.status, c.closure_reason) == ("closed", "declined") for c in cases)
    assert await open_step(sessions, created["id"]) is None
    assert (await alerts_of(sessions, created["id"]))["deadline_breach"].status == "resolved"
    assert {m.status for m in await messages_of(sessions, created["id"])} <= {
        "accepted",
        "cancelled",
    }


async def test_wrong_number_stops_calls_and_sms(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    monday = await monday_10am(sessions)
    created = await submit(client, police, plain())  # phone, sms, email
    [step] = await all_due(sessions, [created["id"]], 1)
    [intro] = await messages_settled(sessions, [created["id"]], "introduction")
    assert intro.channel == "sms"
    await receipt(sessions, intro.id, "temporary-failure")  # a second SMS queued for later
    [resend] = [m for m in await messages_of(sessions, created["id"]) if m.status == "queued"]

    result = await record(sessions, step.id, "wrong_number")
    statuses = {m.id: m.status for m in await messages_of(sessions, created["id"])}
    assert statuses[resend.id] == "cancelled"
    # No more calls: step 2 (a call only) is passed over; step 3's message goes by email, at
    # the time step 3 would have had.
    assert result.next_step is not None
    step = await open_step(sessions, created["id"])
    assert (step.number, step.kind, step.channel) == (3, "message", "email")
    assert step.due_at == london(monday + timedelta(days=3), 13)
    [message] = [m for m in await messages_of(sessions, created["id"]) if m.status == "queued"]
    assert (message.channel, message.template) == ("email", "please_contact_us")

    await move_clock_to(sessions, step.due_at + timedelta(seconds=30))
    [message] = await messages_settled(sessions, [created["id"]], "please_contact_us")
    assert message.status == "accepted"

    async def plan_moved_on() -> Any:
        step = await open_step(sessions, created["id"])
        return step if step is not None and step.number == 4 else None

    close = await eventually(plan_moved_on, sweep=True, what="the close step")
    assert close.kind == "close"
    done = next(s for s in await steps_of(sessions, created["id"]) if s.number == 3)
    assert (done.status, done.outcome) == ("done", "message_queued")
    sms = [m for m in await messages_of(sessions, created["id"]) if m.channel == "sms"]
    assert {m.id: m.status for m in sms} == {intro.id: "failed", resend.id: "cancelled"}
    assert [e.reference for e in await outbox_of(sessions, [m.id for m in sms])] == [intro.id]


async def test_unknown_outcome_is_refused(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    await monday_10am(sessions)
    created = await submit(client, police, plain())
    [step] = await all_due(sessions, [created["id"]], 1)
    with pytest.raises(ValueError, match="unknown call outcome"):
        await record(sessions, step.id, "answered_by_partner")
    assert (await open_step(sessions, created["id"])).status == "due"


async def test_calls_due_by_priority_then_due_time(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    monday = await monday_10am(sessions)
    made = []
    for minute, priority in enumerate(["P3", "P2", "P1", "P2", "P3"]):
        await move_clock_to(sessions, london(monday, 10, minute + 1))
        made.append((priority, (await submit(client, police, at_priority(priority)))["id"]))
    await all_due(sessions, [r for _, r in made], 1)
    listed = await calls_due_now(sessions)
    mine = [
        str(row["referral_id"])
        for row in listed
        if str(row["referral_id"]) in dict((r, p) for p, r in made)
    ]
    expected = [r for _, r in sorted(made, key=lambda pr: (pr[0], made.index(pr)))]
    assert mine == expected
    keys = [(row["priority"], row["due_at"]) for row in listed]
    assert keys == sorted(keys)


# Alerts -------------------------------------------------------------------------------------


async def test_p1_not_reached_in_4_hours_and_deadline_breach(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    await monday_10am(sessions)
    created = await submit(client, police, at_priority("P1"))
    received = (await referral_row(sessions, created["id"])).received_at
    alerts = await alerts_of(sessions, created["id"])
    assert {k: (a.status, a.due_at) for k, a in alerts.items()} == {
        "p1_not_reached": ("pending", received + timedelta(hours=4)),
        "deadline_breach": ("pending", received + timedelta(hours=24)),
    }
    await move_clock_to(sessions, received + timedelta(hours=4, seconds=-30))
    canary = await submit(client, police, plain())
    await all_due(sessions, [canary["id"]], 1)
    assert (await alerts_of(sessions, created["id"]))["p1_not_reached"].status == "pending"

    await move_clock_to(sessions, received + timedelta(hours=4, seconds=30))

    async def raised(kind: str) -> Any:
        alert = (await alerts_of(sessions, created["id"]))[kind]
        return alert if alert.status == "raised" else None

    p1 = await eventually(lambda: raised("p1_not_reached"), sweep=True, what="the P1 alert")
    assert p1.raised_at >= received + timedelta(hours=4)
    assert (await alerts_of(sessions, created["id"]))["deadline_breach"].status == "pending"

    await move_clock_to(sessions, received + timedelta(hours=24, seconds=30))
    breach = await eventually(lambda: raised("deadline_breach"), sweep=True, what="a breach")
    assert breach.reason == "missed"


async def test_contact_after_the_p1_alert_time_still_raises_it(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    """Reached 5 hours after receipt, before any sweep looked at the alert: it is raised all
    the same (the victim was not reached in 4 hours); the deadline was met."""
    await monday_10am(sessions)
    created = await submit(client, police, at_priority("P1"))
    [step] = await all_due(sessions, [created["id"]], 1)
    received = (await referral_row(sessions, created["id"])).received_at
    await move_clock_to(sessions, received + timedelta(hours=5))
    await record(sessions, step.id, "reached")

    async def settled() -> dict[str, Any] | None:
        alerts = await alerts_of(sessions, created["id"])
        return None if any(a.status == "pending" for a in alerts.values()) else alerts

    alerts = await eventually(settled, sweep=True, what="the alerts to settle")
    assert alerts["p1_not_reached"].status == "raised"
    assert alerts["deadline_breach"].status == "resolved"


async def test_breach_while_paused_has_reason_paused(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    await monday_10am(sessions)
    created = await submit(client, police, at_priority("P3"))
    await pause(sessions, created["id"])
    due_by = (await referral_row(sessions, created["id"])).contact_due_by
    await move_clock_to(sessions, due_by + timedelta(seconds=30))

    async def raised() -> Any:
        alert = (await alerts_of(sessions, created["id"]))["deadline_breach"]
        return alert if alert.status == "raised" else None

    breach = await eventually(raised, sweep=True, what="the breach")
    assert breach.reason == "paused"


async def test_safe_window_after_the_deadline_is_raised_at_once(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    monday = await monday_10am(sessions)
    body = at_priority(
        "P1", **{"contact.safe_times": [{"days": ["sun"], "from": "10:00", "to": "12:00"}]}
    )
    created = await submit(client, police, body)
    assert "safe_window_after_deadline" in created["triage"]["flags"]
    [step] = await steps_of(sessions, created["id"])
    assert step.due_at == london(monday + timedelta(days=6), 10)  # safety beats the deadline

    async def raised() -> Any:
        alert = (await alerts_of(sessions, created["id"]))["safe_window_after_deadline"]
        return alert if alert.status == "raised" else None

    alert = await eventually(raised, sweep=True, what="the safe-window alert")
    assert alert.raised_at < london(monday, 10, 5)  # at once, the clock never moved


# Pause, resume, consent ---------------------------------------------------------------------


async def test_pause_stops_everything_and_resume_reschedules(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    monday = await monday_10am(sessions)
    tuesday = monday + timedelta(days=1)
    evenings = {"contact.safe_times": [{"days": EVERY_DAY, "from": "18:00", "to": "20:00"}]}
    paused = await submit(client, police, plain(**evenings))
    other = await submit(client, police, plain(**evenings))
    [queued] = await messages_of(sessions, paused["id"])
    assert (queued.status, queued.due_at) == ("queued", london(monday, 18))

    await pause(sessions, paused["id"])
    step = await open_step(sessions, paused["id"])
    assert step.status == "paused"
    [cancelled] = await messages_of(sessions, paused["id"])
    assert cancelled.status == "cancelled"
    assert (await referral_row(sessions, paused["id"])).contact_paused

    # The sweep runs at 18:30: the other referral's call and message go, nothing of this one.
    await move_clock_to(sessions, london(monday, 18, 30))
    await all_due(sessions, [other["id"]], 1)
    await messages_settled(sessions, [other["id"]], "introduction")
    assert (await open_step(sessions, paused["id"])).status == "paused"
    assert [m.status for m in await messages_of(sessions, paused["id"])] == ["cancelled"]
    assert not await outbox_of(sessions, [cancelled.id])
    listed = {str(row["referral_id"]) for row in await calls_due_now(sessions)}
    assert paused["id"] not in listed and other["id"] in listed

    # Resumed at 20:30, outside the safe times: the step moves to tomorrow's 18:00 with a fresh
    # message (a new reference); the cancelled one stays cancelled.
    await move_clock_to(sessions, london(monday, 20, 30))
    await resume(sessions, paused["id"])
    step = await open_step(sessions, paused["id"])
    assert (step.status, step.due_at) == ("scheduled", london(tuesday, 18))
    messages = {m.id: m for m in await messages_of(sessions, paused["id"])}
    [fresh] = [m for m in messages.values() if m.id != cancelled.id]
    assert (fresh.status, fresh.due_at, fresh.template) == (
        "queued",
        london(tuesday, 18),
        "introduction",
    )
    assert messages[cancelled.id].status == "cancelled"

    await move_clock_to(sessions, london(tuesday, 18, 5))
    await all_due(sessions, [paused["id"]], 1)
    sent = await messages_settled(sessions, [paused["id"]], "introduction")
    assert {m.id: m.status for m in sent} == {cancelled.id: "cancelled", fresh.id: "accepted"}
    assert [e.reference for e in await outbox_of(sessions, [cancelled.id, fresh.id])] == [fresh.id]

    # Paused and resumed after its message went: the step comes back, the message is not sent
    # a second time.
    await pause(sessions, other["id"])
    await resume(sessions, other["id"])
    step = await open_step(sessions, other["id"])
    assert step.status == "scheduled" and step.due_at >= london(tuesday, 18, 5)
    assert [m.status for m in await messages_of(sessions, other["id"])] == ["accepted"]


async def test_no_plan_without_contact_consent(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    await monday_10am(sessions)
    created = await submit(client, police, plain(**{"consent.to_contact": False}))
    assert created["triage"]["first_contact_step"] is None
    assert created["triage"]["contact_due_by"] is None
    assert "no_contact_consent" in created["triage"]["flags"]
    canary = await submit(client, police, plain())
    await all_due(sessions, [canary["id"]], 1)
    for table in ("contact_steps", "messages", "alerts"):
        rows = await all_rows(
            sessions, f"SELECT * FROM {table} WHERE referral_id = :r", r=created["id"]
        )
        assert rows == [], table
    assert (await referral_row(sessions, created["id"])).status == "triaged"


async def test_voicemail_needs_the_victims_permission(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    await monday_10am(sessions)
    refused = await submit(client, police, plain(**{"contact.voicemail_ok": False}))
    [step] = await all_due(sessions, [refused["id"]], 1)
    with pytest.raises(ValueError, match="voicemail"):
        await record(sessions, step.id, "voicemail_left")
    assert (await open_step(sessions, refused["id"])).status == "due"
    allowed = await submit(client, police, plain(**{"contact.voicemail_ok": True}))
    [step] = await all_due(sessions, [allowed["id"]], 1)
    await record(sessions, step.id, "voicemail_left")
    assert (await open_step(sessions, allowed["id"])).number == 2
