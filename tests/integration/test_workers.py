"""Sending messages: safe times at the moment of sending (midnight, weekends, bank holidays,
the autumn clock change), never sent twice, retention, and `triage outbox list --json`.

Sends go through the service functions the workers run (messaging.claim_messages, then
messaging.deliver) with the outbox notifier, at chosen instants of the shared service clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from contact_support import (
    ENGLAND,
    ROOT,
    local,
    london,
    messages_of,
    move_clock_to,
    next_autumn_change,
    one,
    outbox_of,
    plain,
    reset_clock,
    service_time,
    steps_of,
    submit,
)
from sqlalchemy import text

LEASE = timedelta(seconds=120)
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


@pytest.fixture(autouse=True)
async def clock(sessions: Any) -> AsyncIterator[None]:
    await reset_clock(sessions)
    yield
    await reset_clock(sessions)


@pytest.fixture
def notifier(sessions: Any) -> Any:
    from triage.services.notifier import OutboxNotifier

    return OutboxNotifier(sessions)


async def send_due(sessions: Any, notifier: Any) -> dict[uuid.UUID, str]:
    """One worker's pass: claim every due message, deliver each; what became of each."""
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_messages, deliver
    from triage.services.units import in_session

    results = {}
    for claimed in await in_session(sessions, claim_messages, 10_000, LEASE):
        results[claimed.id] = await deliver(sessions, notifier, current_catalogue(), claimed)
    return results


async def add_message(
    sessions: Any, referral_id: str, due_at: datetime, channel: str = "sms"
) -> uuid.UUID:
    """A queued message of the referral's first step, due at `due_at` (as a resend after a
    failure receipt, or the next channel, is due whenever the receipt came)."""
    [step] = (await steps_of(sessions, referral_id))[:1]
    message_id = uuid.uuid4()
    async with sessions() as db:
        await db.execute(
            text("""INSERT INTO messages (id, referral_id, contact_step_id, purpose, channel,
                                          template, status, due_at)
                    VALUES (:id, :r, :s, 'contact', :channel, 'please_contact_us', 'queued',
                            :due)"""),
            {"id": message_id, "r": referral_id, "s": step.id, "channel": channel, "due": due_at},
        )
        await db.commit()
    return message_id


async def add_messages(
    sessions: Any, referral_id: str, due_at: datetime, count: int
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    [step] = (await steps_of(sessions, referral_id))[:1]
    async with sessions() as db:
        await db.execute(
            text("""INSERT INTO messages (id, referral_id, contact_step_id, purpose, channel,
                                          template, status, due_at)
                    SELECT id, :r, :s, 'contact', 'sms', 'please_contact_us', 'queued', :due
                    FROM unnest(CAST(:ids AS uuid[])) AS id"""),
            {"ids": ids, "r": referral_id, "s": step.id, "due": due_at},
        )
        await db.commit()
    return ids


async def message(sessions: Any, message_id: uuid.UUID) -> Any:
    return await one(sessions, "SELECT * FROM messages WHERE id = :i", i=message_id)


async def sent_once(sessions: Any, message_id: uuid.UUID) -> bool:
    row = await message(sessions, message_id)
    entries = await outbox_of(sessions, [message_id])
    return row.status == "accepted" and [e.reference for e in entries] == [message_id]


async def not_sent(sessions: Any, message_id: uuid.UUID, due_at: datetime) -> bool:
    row = await message(sessions, message_id)
    return (
        row.status == "queued"
        and row.due_at == due_at
        and row.sent_at is None
        and not await outbox_of(sessions, [message_id])
    )


def first_friday_after(instant: datetime) -> date:
    day = instant.date() + timedelta(days=1)
    return day + timedelta(days=(4 - day.weekday()) % 7)


# Safe times at the moment of sending --------------------------------------------------------


async def test_a_window_across_midnight(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    friday = first_friday_after(await service_time(sessions))
    saturday, next_friday = friday + timedelta(days=1), friday + timedelta(days=7)
    await move_clock_to(sessions, london(friday, 12))
    nights = {"contact.safe_times": [{"days": ["fri"], "from": "22:00", "to": "02:00"}]}
    created = await submit(client, police, plain(**nights))
    inside = await add_message(sessions, created["id"], london(saturday, 0, 30))
    after = await add_message(sessions, created["id"], london(saturday, 2, 15))

    await move_clock_to(sessions, london(saturday, 1))  # Friday's window runs past midnight
    results = await send_due(sessions, notifier)
    assert results[inside] == "accepted" and await sent_once(sessions, inside)
    assert after not in results

    await move_clock_to(sessions, london(saturday, 2, 30))  # the window closed at 02:00
    assert (await send_due(sessions, notifier))[after] == "moved"
    assert await not_sent(sessions, after, london(next_friday, 22))

    await move_clock_to(sessions, london(next_friday, 21, 59))
    assert after not in await send_due(sessions, notifier)  # never early
    await move_clock_to(sessions, london(next_friday, 22, 0))
    assert (await send_due(sessions, notifier))[after] == "accepted"
    assert await sent_once(sessions, after)


async def test_a_weekend_waits_for_monday(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    friday = first_friday_after(await service_time(sessions))
    saturday, monday = friday + timedelta(days=1), friday + timedelta(days=3)
    await move_clock_to(sessions, london(friday, 10))
    mornings = {"contact.safe_times": [{"days": WEEKDAYS, "from": "09:00", "to": "12:00"}]}
    created = await submit(client, police, plain(**mornings))
    queued = await add_message(sessions, created["id"], london(saturday, 10))

    await move_clock_to(sessions, london(saturday, 10, 5))
    assert (await send_due(sessions, notifier))[queued] == "moved"
    assert await not_sent(sessions, queued, london(monday, 9))
    await move_clock_to(sessions, london(monday, 8, 59))
    assert queued not in await send_due(sessions, notifier)
    await move_clock_to(sessions, london(monday, 9) + timedelta(seconds=30))
    assert (await send_due(sessions, notifier))[queued] == "accepted"
    assert await sent_once(sessions, queued)


async def test_a_bank_holiday_is_still_the_victims_day(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    """Safe times are the victim's days and hours: a Monday bank holiday is a Monday. A message
    due on the Friday afternoon before waits for the holiday morning, not for Tuesday."""
    now = await service_time(sessions)
    holiday = min(d for d in ENGLAND if d > now.date() + timedelta(days=4) and d.weekday() == 0)
    friday = holiday - timedelta(days=3)
    await move_clock_to(sessions, london(friday, 10))
    mornings = {"contact.safe_times": [{"days": WEEKDAYS, "from": "09:00", "to": "12:00"}]}
    created = await submit(client, police, plain(**mornings))
    queued = await add_message(sessions, created["id"], london(friday, 13))

    await move_clock_to(sessions, london(friday, 13, 5))
    assert (await send_due(sessions, notifier))[queued] == "moved"
    assert await not_sent(sessions, queued, london(holiday, 9))
    await move_clock_to(sessions, london(holiday, 9, 1))
    assert (await send_due(sessions, notifier))[queued] == "accepted"
    assert await sent_once(sessions, queued)


async def test_the_autumn_clock_change(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    """The last Sunday of October: 01:00 to 02:00 happens twice (BST, then GMT). 08:00 that
    day is 08:00 UTC, not 07:00; a window opening at 01:30 is closed while the clock shows
    01:00 to 01:29 for the second time."""
    sunday = next_autumn_change(await service_time(sessions))
    midnight_utc = datetime.combine(sunday, time(0), UTC)

    def at(hour: int, minute: int = 0) -> datetime:  # UTC on the Sunday
        return midnight_utc + timedelta(hours=hour, minutes=minute)

    assert london(sunday, 1, 30) == at(0, 30)  # the first 01:30 is BST
    assert london(sunday, 8) == at(8)  # 08:00 is GMT
    await move_clock_to(sessions, london(sunday - timedelta(days=1), 12))
    default = await submit(client, police, plain())
    small_hours = await submit(
        client,
        police,
        plain(**{"contact.safe_times": [{"days": ["sun"], "from": "01:30", "to": "03:00"}]}),
    )
    early = await add_message(sessions, default["id"], at(0, 30))  # 01:30 BST
    first_pass = await add_message(sessions, small_hours["id"], at(0, 40))  # 01:40 BST
    second_pass = await add_message(sessions, small_hours["id"], at(1, 10))  # 01:10 GMT

    await move_clock_to(sessions, at(0, 45))
    results = await send_due(sessions, notifier)
    assert results[early] == "moved"
    assert await not_sent(sessions, early, at(8))
    assert results[first_pass] == "accepted" and await sent_once(sessions, first_pass)

    await move_clock_to(sessions, at(1, 12))  # the clock shows 01:12 for the second time
    assert (await send_due(sessions, notifier))[second_pass] == "moved"
    assert await not_sent(sessions, second_pass, at(1, 30))
    await move_clock_to(sessions, at(1, 29))
    assert second_pass not in await send_due(sessions, notifier)
    await move_clock_to(sessions, at(1, 30) + timedelta(seconds=30))
    assert (await send_due(sessions, notifier))[second_pass] == "accepted"

    await move_clock_to(sessions, at(7, 59))  # 07:59 GMT: an hour after 08:00 BST would be
    assert early not in await send_due(sessions, notifier)
    await move_clock_to(sessions, at(8) + timedelta(seconds=30))
    assert (await send_due(sessions, notifier))[early] == "accepted"
    assert await sent_once(sessions, early)


# Never sent twice ---------------------------------------------------------------------------


async def daytime_referral(client: Any, police: dict[str, str], sessions: Any) -> dict[str, Any]:
    """A referral made at a safe moment (default safe times), the clock left there."""
    friday = first_friday_after(await service_time(sessions))
    await move_clock_to(sessions, london(friday, 10))
    return await submit(client, police, plain())


async def test_deliver_twice_on_the_same_claim_sends_once(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_messages, deliver
    from triage.services.units import in_session

    created = await daytime_referral(client, police, sessions)
    queued = await add_message(sessions, created["id"], await service_time(sessions))
    [claim] = [
        c for c in await in_session(sessions, claim_messages, 10_000, LEASE) if c.id == queued
    ]
    assert await deliver(sessions, notifier, current_catalogue(), claim) == "accepted"
    assert await deliver(sessions, notifier, current_catalogue(), claim) != "accepted"
    assert await sent_once(sessions, queued)
    # And claimed again by a later sweep: nothing left to claim.
    assert queued not in await send_due(sessions, notifier)
    assert await sent_once(sessions, queued)


async def test_two_sessions_never_claim_the_same_row(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_messages, deliver_all
    from triage.services.units import in_session

    created = await daytime_referral(client, police, sessions)
    now = await service_time(sessions)
    ids = await add_messages(sessions, created["id"], now, 40)
    held = ids[:10]

    # A worker holds ten rows (mid-claim, its transaction open): another sweep skips them
    # at once instead of waiting, and takes the rest.
    async with sessions() as holder:
        await holder.execute(
            text("SELECT id FROM messages WHERE id = ANY(:ids) FOR UPDATE"), {"ids": held}
        )
        others = await asyncio.wait_for(
            in_session(sessions, claim_messages, 10_000, LEASE), timeout=10
        )
        taken = {c.id for c in others}
        assert not taken & set(held)
        assert set(ids[10:]) <= taken
        await holder.rollback()
    later = await in_session(sessions, claim_messages, 10_000, LEASE)
    assert set(held) <= {c.id for c in later} and not {c.id for c in later} & taken

    # Two sweeps at once over twenty new rows: disjoint, and every row claimed by one of them.
    fresh = await add_messages(sessions, created["id"], now, 20)
    first, second = await asyncio.gather(
        in_session(sessions, claim_messages, 10_000, LEASE),
        in_session(sessions, claim_messages, 10_000, LEASE),
    )
    a, b = {c.id for c in first}, {c.id for c in second}
    assert not a & b and set(fresh) <= a | b

    # Every claim delivered by two "workers" at once (a sweep's batch delivery each): each
    # reference reaches the outbox once.
    mine = set(ids) | set(fresh)
    claims = [*others, *later, *first, *second]
    assert sorted(c.id for c in claims if c.id in mine) == sorted(mine)
    catalogue = current_catalogue()

    await asyncio.gather(
        deliver_all(sessions, notifier, catalogue, claims[::2]),
        deliver_all(sessions, notifier, catalogue, claims[1::2]),
    )
    entries = await outbox_of(sessions, list(mine))
    assert sorted(e.reference for e in entries) == sorted(mine)
    statuses = await one(
        sessions,
        "SELECT array_agg(DISTINCT status) AS s FROM messages WHERE id = ANY(:ids)",
        ids=list(mine),
    )
    assert statuses.s == ["accepted"]


async def test_a_row_stuck_in_sending_is_looked_up_not_sent_again(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    from triage.services.messaging import claim_messages
    from triage.services.notifier import Outgoing
    from triage.services.units import in_session

    created = await daytime_referral(client, police, sessions)
    now = await service_time(sessions)
    reached, lost = [await add_message(sessions, created["id"], now) for _ in range(2)]
    claimed = {c.id: c for c in await in_session(sessions, claim_messages, 10_000, LEASE)}
    assert claimed[reached].attempts == 1 and claimed[lost].attempts == 1
    # The provider took one of them, then the worker died before recording it; the other
    # never left. Both rows stay `sending` until the lease runs out.
    await notifier.send(Outgoing(reached, "sms", "please_contact_us", "+447700900123", None, "x"))
    assert (await message(sessions, reached)).status == "sending"
    assert reached not in await send_due(sessions, notifier)  # still under its lease

    await move_clock_to(sessions, now + LEASE + timedelta(minutes=1))
    results = await send_due(sessions, notifier)
    assert results[reached] == "accepted" and results[lost] == "accepted"
    for message_id in (reached, lost):
        row = await message(sessions, message_id)
        assert (row.status, row.attempts) == ("accepted", 2)
        assert await sent_once(sessions, message_id)


async def test_a_stuck_row_of_a_paused_referral_is_looked_up_before_it_is_cancelled(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    """Contact paused while a send may already be at the provider: the record says what
    happened (accepted when the provider has it), and nothing more is sent."""
    from triage.services.contact_plan import pause_contact
    from triage.services.messaging import claim_messages
    from triage.services.notifier import Outgoing
    from triage.services.units import in_session

    created = await daytime_referral(client, police, sessions)
    now = await service_time(sessions)
    reached, lost = [await add_message(sessions, created["id"], now) for _ in range(2)]
    await in_session(sessions, claim_messages, 10_000, LEASE)
    # The worker re-checked `reached` and started its call (as messaging.BEGIN_CALL records),
    # the provider took it, then the worker died; `lost` never got that far.
    async with sessions() as db:
        await db.execute(
            text("UPDATE messages SET call_started_at = now() WHERE id = :i"), {"i": reached}
        )
        await db.commit()
    await notifier.send(Outgoing(reached, "sms", "please_contact_us", "+447700900123", None, "x"))
    async with sessions() as db:
        await pause_contact(db, uuid.UUID(created["id"]), "staff:test", now)
        await db.commit()
    # The pause cancels at once what never reached the provider; the one whose call was under
    # way is left to the worker's lookup, marked as stopped during its call.
    assert (await message(sessions, lost)).status == "cancelled"
    assert (await message(sessions, reached)).stopped_at is not None
    await move_clock_to(sessions, now + LEASE + timedelta(minutes=1))
    results = await send_due(sessions, notifier)
    assert results[reached] == "accepted" and lost not in results
    assert (await message(sessions, reached)).status == "accepted"
    lost_row = await message(sessions, lost)
    assert (lost_row.status, lost_row.failure_reason) == ("cancelled", "paused")
    assert await sent_once(sessions, reached)
    assert not [e async for e in _outbox_entries(sessions, lost)]


async def _outbox_entries(sessions: Any, reference: Any) -> Any:
    for entry in await outbox_of(sessions, [reference]):
        yield entry


# Retention ----------------------------------------------------------------------------------


async def test_rendered_bodies_and_recipients_go_7_days_after_the_final_status(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    from triage.services.receipts import apply_receipt
    from triage.services.sweeper import purge_rendered
    from triage.services.units import in_session

    created = await daytime_referral(client, police, sessions)
    now = await service_time(sessions)
    delivered, pending = [await add_message(sessions, created["id"], now) for _ in range(2)]
    results = await send_due(sessions, notifier)
    assert results[delivered] == results[pending] == "accepted"
    assert await in_session(sessions, apply_receipt, delivered, "delivered") == "delivered"
    final_at = (await message(sessions, delivered)).final_at
    before = await message(sessions, delivered)
    assert before.body and before.recipient == "+447700900123"

    await move_clock_to(sessions, final_at + timedelta(days=7) - timedelta(minutes=1))
    await in_session(sessions, purge_rendered)
    assert (await message(sessions, delivered)).body == before.body

    await move_clock_to(sessions, final_at + timedelta(days=7, minutes=1))
    assert await in_session(sessions, purge_rendered) >= 1
    after = await message(sessions, delivered)
    assert after.body is None and after.recipient is None
    kept = ("channel", "template", "status", "provider_status", "sent_at", "final_at", "due_at")
    assert [getattr(after, k) for k in kept] == [getattr(before, k) for k in kept]
    assert after.status == "delivered" and after.provider_status == "delivered"
    [entry] = await outbox_of(sessions, [delivered])
    assert entry.body == "" and entry.recipient == ""
    assert (entry.channel, entry.template) == ("sms", "please_contact_us")
    # Accepted but never receipted: counted from its acceptance (Notify's copy is gone by
    # then too), so it does not keep a victim's number for ever.
    assert (await message(sessions, pending)).body is None


# The outbox command -------------------------------------------------------------------------


async def test_outbox_list_json(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    from triage.services.notifier import Outgoing

    created = await daytime_referral(client, police, sessions)
    queued = await add_message(sessions, created["id"], await service_time(sessions))
    assert (await send_due(sessions, notifier))[queued] == "accepted"
    twice = uuid.uuid4()
    outgoing = Outgoing(twice, "email", "introduction", "sam@example.org", "Hello", "Body")
    await notifier.send(outgoing)
    await notifier.send(outgoing)  # a send made twice appears twice

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "triage.cli", "outbox", "list", "--json"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    sends = json.loads(result.stdout)
    assert isinstance(sends, list) and sends
    for send in sends:
        assert set(send) == {"reference", "channel", "template", "sent_at"}
        assert send["sent_at"].endswith("Z")
        datetime.fromisoformat(send["sent_at"].replace("Z", "+00:00"))
    mine = [s for s in sends if s["reference"] in (str(queued), str(twice))]
    assert [(s["reference"], s["channel"], s["template"]) for s in mine] == [
        (str(queued), "sms", "please_contact_us"),
        (str(twice), "email", "introduction"),
        (str(twice), "email", "introduction"),
    ]
    assert "Sam" not in result.stdout and "07700" not in result.stdout  # no personal data


async def test_messages_of_a_referral_are_rows_first(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    """Every message is a row (`queued`) written with its cause, before anything is sent."""
    created = await daytime_referral(client, police, sessions)
    [intro] = await messages_of(sessions, created["id"])
    assert (intro.status, intro.template, intro.channel) == ("queued", "introduction", "sms")
    assert intro.body is None and intro.recipient is None and intro.sent_at is None


# -- stop means stop (issue 9, point 2) ---------------------------------------------------------


class _Gate:
    """An outbox notifier that holds every send at one point until released: in the rate
    limit's wait (`where="turn"`, before the re-check) or inside the provider call itself
    (`where="send"`, after it)."""

    def __init__(self, sessions: Any, where: str) -> None:
        from triage.services.notifier import OutboxNotifier

        self.inner = OutboxNotifier(sessions)
        self.timeout = self.inner.timeout
        self.where = where
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def _hold(self) -> None:
        self.reached.set()
        await self.release.wait()

    async def wait_for_turn(self) -> None:
        if self.where == "turn":
            await self._hold()

    async def send(self, outgoing: Any) -> str:
        if self.where == "send":
            await self._hold()
        return await self.inner.send(outgoing)

    async def lookup(self, reference: uuid.UUID) -> str | None:
        return await self.inner.lookup(reference)


async def _stop(
    how: str, client: Any, police: dict[str, str], sessions: Any, created: dict[str, Any]
) -> None:
    """One of the stops that must keep a claimed message from the provider."""
    from triage.services.catalogues import current_catalogue
    from triage.services.contact_plan import pause_contact, process_due_step, record_outcome

    referral_id = uuid.UUID(created["id"])
    url = f"/api/v1/referrals/{created['id']}"
    if how == "pause":
        async with sessions() as db:
            await pause_contact(db, referral_id, "staff:test", await service_time(sessions))
            await db.commit()
    elif how == "withdraw":
        answer = await client.post(f"{url}/withdraw", json={"reason": "asked"}, headers=police)
        assert answer.status_code == 200, answer.text
    elif how == "no_contact_consent":
        answer = await client.patch(url, json={"consent": {"to_contact": False}}, headers=police)
        assert answer.status_code == 200, answer.text
    else:  # a call outcome: declined, wrong_number
        [step] = await steps_of(sessions, created["id"])
        async with sessions() as db:
            now = await service_time(sessions)
            await process_due_step(db, step.id, current_catalogue(), now)
            await record_outcome(db, step.id, how, "staff:test", current_catalogue(), now)
            await db.commit()


STOPS = ["pause", "withdraw", "no_contact_consent", "declined", "wrong_number"]


@pytest.mark.parametrize("how", STOPS)
async def test_a_stop_while_a_send_waits_for_its_turn_keeps_it_from_the_provider(
    client: Any, police: dict[str, str], sessions: Any, how: str
) -> None:
    """The worker claimed and rendered the introduction, then waits for the provider's rate
    limit; staff stop contact meanwhile. Released, it must not send: the row is cancelled."""
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_messages, deliver
    from triage.services.units import in_session

    created = await daytime_referral(client, police, sessions)
    [intro] = await messages_of(sessions, created["id"])
    assert intro.channel == "sms"
    [claim] = [
        c for c in await in_session(sessions, claim_messages, 10_000, LEASE) if c.id == intro.id
    ]
    gate = _Gate(sessions, "turn")
    sending = asyncio.create_task(deliver(sessions, gate, current_catalogue(), claim))
    await asyncio.wait_for(gate.reached.wait(), 10)
    assert (await message(sessions, intro.id)).status == "sending"
    await _stop(how, client, police, sessions, created)
    row = await message(sessions, intro.id)
    assert row.status == "cancelled", (how, row.status)  # cancelled by the stop itself
    gate.release.set()
    result = await asyncio.wait_for(sending, 10)
    assert result != "accepted", result
    assert await outbox_of(sessions, [intro.id]) == []  # it never reached the provider
    row = await message(sessions, intro.id)
    assert row.status == "cancelled" and row.call_started_at is None


async def test_a_stop_during_the_provider_call_is_recorded_as_sent_after_the_stop(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_messages, deliver
    from triage.services.units import in_session

    created = await daytime_referral(client, police, sessions)
    [intro] = await messages_of(sessions, created["id"])
    [claim] = [
        c for c in await in_session(sessions, claim_messages, 10_000, LEASE) if c.id == intro.id
    ]
    gate = _Gate(sessions, "send")
    sending = asyncio.create_task(deliver(sessions, gate, current_catalogue(), claim))
    await asyncio.wait_for(gate.reached.wait(), 10)
    await _stop("pause", client, police, sessions, created)
    row = await message(sessions, intro.id)
    assert row.status == "sending" and row.stopped_at is not None  # not cancelled: it may be out
    gate.release.set()
    assert await asyncio.wait_for(sending, 10) == "accepted"
    row = await message(sessions, intro.id)
    assert row.status == "accepted" and row.stopped_at is not None
    assert row.call_started_at is not None and row.call_started_at <= row.stopped_at
    assert await sent_once(sessions, intro.id)


async def test_the_safe_window_is_judged_again_after_the_rate_limit_wait(
    client: Any, police: dict[str, str], sessions: Any, notifier: Any
) -> None:
    """Checked at 19:59, released at 20:01 (default safe times end at 20:00): not sent now,
    back in the queue for the next safe moment, never cancelled."""
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_messages, deliver
    from triage.services.units import in_session

    friday = first_friday_after(await service_time(sessions))
    await move_clock_to(sessions, london(friday, 19, 59))
    created = await submit(client, police, plain())
    [intro] = await messages_of(sessions, created["id"])
    [claim] = [
        c for c in await in_session(sessions, claim_messages, 10_000, LEASE) if c.id == intro.id
    ]
    gate = _Gate(sessions, "turn")
    sending = asyncio.create_task(deliver(sessions, gate, current_catalogue(), claim))
    await asyncio.wait_for(gate.reached.wait(), 10)
    await move_clock_to(sessions, london(friday, 20, 1))
    gate.release.set()
    assert await asyncio.wait_for(sending, 10) == "rechecked"
    assert await outbox_of(sessions, [intro.id]) == []
    assert (await message(sessions, intro.id)).status == "queued"
    # The next sweep looks it up (never sent) and moves it to Saturday 08:00.
    results = await send_due(sessions, notifier)
    assert results[intro.id] == "moved"
    row = await message(sessions, intro.id)
    assert (row.status, local(row.due_at).hour) == ("queued", 8)
