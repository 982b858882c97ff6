"""A status table for every record (issue 9, section 3): the transitions of
triage/domain/statuses.py are the database's too, every allowed transition works and every
other one is refused, whoever writes it."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from triage.domain.statuses import LIFECYCLES, Lifecycle, TransitionRefused

pytestmark = pytest.mark.integration

STATUS_TEST = "statuses.test"  # the domain of the staff accounts made here


@pytest.fixture(autouse=True, scope="module")
async def remove_test_rows(sessions: Any) -> AsyncIterator[None]:
    """The rows made here are not referrals anyone made: gone when the module is done."""
    yield
    async with sessions() as db:
        mine = "SELECT id FROM referrals WHERE reference LIKE 'TST-%'"
        for table in ("messages", "survey_invitations", "contact_steps", "cases", "alerts"):
            await db.execute(text(f"DELETE FROM {table} WHERE referral_id IN ({mine})"))
        await db.execute(text("DELETE FROM referrals WHERE reference LIKE 'TST-%'"))
        users = f"SELECT id FROM staff_users WHERE email LIKE '%@{STATUS_TEST}'"
        await db.execute(text(f"DELETE FROM staff_setup_emails WHERE user_id IN ({users})"))
        await db.execute(text(f"DELETE FROM staff_users WHERE email LIKE '%@{STATUS_TEST}'"))
        await db.commit()


async def test_the_database_holds_the_domains_tables(owner_sessions: Any) -> None:
    # Read as the owner: the application's role has no right on status_transitions at all.
    async with owner_sessions() as db:
        for lifecycle in LIFECYCLES.values():
            pairs = {
                (r.from_status, r.to_status)
                for r in await db.execute(
                    text("SELECT from_status, to_status FROM status_transitions WHERE record = :t"),
                    {"t": lifecycle.table},
                )
            }
            assert pairs == set(lifecycle.pairs()), lifecycle.record
            check = (
                await db.execute(
                    text(
                        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :name"
                    ),
                    {"name": f"ck_{lifecycle.table}_status"},
                )
            ).scalar_one()
            for status in lifecycle.statuses:
                assert f"'{status}'" in check, (lifecycle.record, status)


async def _referral(db: Any, status: str = "triaged") -> uuid.UUID:
    referral_id = uuid.uuid4()
    await db.execute(
        text("""INSERT INTO referrals (id, reference, source, status, received_at, content_hash,
                                       facts, referral_consent, priority, area)
                VALUES (:id, :ref, 'police', :status, now(), 'x', '{}', 'given', 'P3',
                        'unknown')"""),
        {"id": referral_id, "ref": "TST-" + referral_id.hex[:12], "status": status},
    )
    return referral_id


async def _row(db: Any, lifecycle: Lifecycle, status: str) -> uuid.UUID | int:
    """A row of the record's table in `status` (inserted as it is: a CHECK, not the trigger,
    guards inserts)."""
    if lifecycle.table == "referrals":
        return await _referral(db, status)
    if lifecycle.table == "staff_setup_emails":
        # A set-up email of an account of its own.
        user_id, row_id = uuid.uuid4(), uuid.uuid4()
        await db.execute(
            text("""INSERT INTO staff_users (id, email, roles)
                    VALUES (:u, :email, ARRAY['hub'])"""),
            {"u": user_id, "email": f"{user_id.hex}@{STATUS_TEST}"},
        )
        await db.execute(
            text("""INSERT INTO staff_setup_emails (id, user_id, status, due_at)
                    VALUES (:id, :u, :status, :later)"""),
            {
                "id": row_id,
                "u": user_id,
                "status": status,
                "later": datetime.now(UTC) + timedelta(days=365 * 50),
            },
        )
        return row_id
    referral_id = await _referral(db)
    if lifecycle.table == "referral_duplicates":
        # A link between two referrals (the rows' empty facts match nothing at intake).
        older = await _referral(db)
        return (
            await db.execute(
                text("""INSERT INTO referral_duplicates (referral_id, duplicate_of, matched_on,
                                                         status)
                        VALUES (:r, :older, 'name_and_dob', :status) RETURNING id"""),
                {"r": referral_id, "older": older, "status": status},
            )
        ).scalar_one()
    row_id = uuid.uuid4()
    if lifecycle.table == "survey_invitations":
        # An invitation of a closed case of its own.
        case_id = uuid.uuid4()
        await db.execute(
            text("""INSERT INTO cases (id, referral_id, service, role, status, opened_at)
                    VALUES (:id, :r, 'core', 'primary', 'closed', now())"""),
            {"id": case_id, "r": referral_id},
        )
        await db.execute(
            text("""INSERT INTO survey_invitations (id, referral_id, case_id, service, status,
                                                    due_at)
                    VALUES (:id, :r, :c, 'core', :status, :later)"""),
            {
                "id": row_id,
                "r": referral_id,
                "c": case_id,
                "status": status,
                "later": datetime.now(UTC) + timedelta(days=365 * 50),
            },
        )
        return row_id
    statements = {
        "cases": """INSERT INTO cases (id, referral_id, service, role, status, opened_at)
                    VALUES (:id, :r, 'core', 'primary', :status, now())""",
        "contact_steps": """INSERT INTO contact_steps (id, referral_id, number, kind, status,
                                                       due_at, priority)
                            VALUES (:id, :r, 1, 'call', :status, :later, 'P3')""",
        "messages": """INSERT INTO messages (id, referral_id, purpose, channel, template,
                                             status, due_at)
                       VALUES (:id, :r, 'contact', 'sms', 'introduction', :status, :later)""",
        "alerts": """INSERT INTO alerts (id, referral_id, kind, status, due_at)
                     VALUES (:id, :r, 'deadline_breach', :status, :later)""",
    }
    # Due far ahead: no sweep of the other tests ever takes these rows.
    later = datetime.now(UTC) + timedelta(days=365 * 50)
    await db.execute(
        text(statements[lifecycle.table]),
        {"id": row_id, "r": referral_id, "status": status, "later": later},
    )
    return row_id


def _every_change() -> list[Any]:
    return [
        pytest.param(lifecycle, a, b, id=f"{lifecycle.table}:{a}->{b}")
        for lifecycle in LIFECYCLES.values()
        for a, b in itertools.permutations(lifecycle.statuses, 2)
    ]


@pytest.mark.parametrize(("lifecycle", "current", "wanted"), _every_change())
async def test_every_change_of_status(
    sessions: Any, lifecycle: Lifecycle, current: str, wanted: str
) -> None:
    async with sessions() as db:
        row_id = await _row(db, lifecycle, current)
        await db.commit()
    allowed = lifecycle.can(current, wanted)
    async with sessions() as db:
        change = text(f"UPDATE {lifecycle.table} SET status = :s WHERE id = :id")
        if allowed:
            await db.execute(change, {"s": wanted, "id": row_id})
            await db.commit()
        else:
            with pytest.raises(IntegrityError, match="status transition refused"):
                await db.execute(change, {"s": wanted, "id": row_id})
            await db.rollback()
    async with sessions() as db:
        now = (
            await db.execute(
                text(f"SELECT status FROM {lifecycle.table} WHERE id = :id"), {"id": row_id}
            )
        ).scalar_one()
    assert now == (wanted if allowed else current)
    if not allowed:
        with pytest.raises(TransitionRefused):
            lifecycle.check(current, wanted)
    else:
        lifecycle.check(current, wanted)
        assert current in lifecycle.sources(wanted)


async def test_the_app_role_cannot_change_the_transitions(sessions: Any) -> None:
    from sqlalchemy.exc import DBAPIError

    async with sessions() as db:
        with pytest.raises(DBAPIError, match="permission denied"):
            await db.execute(
                text("INSERT INTO status_transitions VALUES ('messages', 'cancelled', 'queued')")
            )
        await db.rollback()


@pytest.mark.parametrize("lifecycle", list(LIFECYCLES.values()), ids=lambda lc: lc.table)
async def test_unknown_statuses_are_refused(sessions: Any, lifecycle: Lifecycle) -> None:
    async with sessions() as db:
        with pytest.raises(IntegrityError):
            await _row(db, lifecycle, "nonsense")
        await db.rollback()
