"""A new or reset staff account's set-up link emailed in production (issue 10): the row is
written with its cause (a failed creation writes none), a sweep or a task sends exactly one
email however often it runs, the token is in no task argument, Redis message or log line, the
emailed link sets the account up once and an earlier link stops working, a lost answer is
looked up rather than sent again, and a terminal failure is recorded and shown to the admin.
In dev (the outbox notifier) the link is printed and shown as before, and nothing is emailed."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from contact_support import (
    celery_worker,
    eventually,
    move_clock_to,
    reset_clock,
    send_sweep,
    service_time,
)
from helpers import rows, scalar
from litestar.testing import AsyncTestClient
from notify_stub_support import PYTHON, ROOT, Stub, stub_settings
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from staff_support import PASSWORD, Browser, csrf_of, make_staff, once_of, sign_in, soup

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=120)
KEY = f"setup_test-{uuid.uuid4()}-{uuid.uuid4()}"
TEMPLATES = {"sms": str(uuid.uuid4()), "email": str(uuid.uuid4()), "letter": str(uuid.uuid4())}
LINK = re.compile(r"(\S+/staff/set-up/([A-Za-z0-9_-]+))")


@pytest.fixture(autouse=True)
async def clock(sessions: Any) -> AsyncIterator[None]:
    await reset_clock(sessions)
    yield
    await reset_clock(sessions)


def notify_settings(stub_url: str = "http://127.0.0.1:9") -> Any:
    """Production's choice of notifier (a real provider), at a local stub."""
    return stub_settings(stub_url, KEY, TEMPLATES)


@pytest.fixture(scope="module")
async def production_web(servers: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app as production runs it: TRIAGE_NOTIFIER=notify, so set-up links are emailed."""
    from triage.app import create_app

    app = create_app(notify_settings())
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as test_client:
        yield test_client


def links() -> Any:
    from triage.services.setup_emails import SetupLinks
    from triage.settings import get_settings

    settings = get_settings()
    return SetupLinks(settings.secret_key, settings.base_url)


def new_email() -> str:
    return f"setup-{uuid.uuid4().hex[:10]}@example.org"


async def create(sessions: Any, email: str, *, email_link: bool = True) -> Any:
    from triage.domain.principals import OPERATOR
    from triage.services.catalogues import current_catalogue
    from triage.services.staff_accounts import create_account
    from triage.settings import get_settings

    known = frozenset(current_catalogue().services)
    async with sessions() as db:
        return await create_account(
            db,
            OPERATOR,
            get_settings().secret_key,
            email,
            ["hub"],
            [],
            known,
            email_link=email_link,
        )


async def reset(sessions: Any, user_id: uuid.UUID, *, email_link: bool = True) -> str | None:
    from triage.domain.principals import OPERATOR
    from triage.services.staff_accounts import admin_action
    from triage.settings import get_settings

    async with sessions() as db:
        return await admin_action(
            db,
            OPERATOR,
            get_settings().secret_key,
            user_id,
            "reset_two_factor",
            email_link=email_link,
        )


async def emails_of(sessions: Any, user_id: uuid.UUID) -> list[Any]:
    return await rows(
        sessions,
        "SELECT * FROM staff_setup_emails WHERE user_id = :u ORDER BY created_at",
        u=user_id,
    )


async def email_row(sessions: Any, email_id: uuid.UUID) -> Any:
    [row] = await rows(sessions, "SELECT * FROM staff_setup_emails WHERE id = :i", i=email_id)
    return row


async def outbox_for(sessions: Any, email_id: uuid.UUID) -> list[Any]:
    return await rows(sessions, "SELECT * FROM outbox WHERE reference = :r ORDER BY id", r=email_id)


async def send(sessions: Any, notifier: Any, email_id: uuid.UUID) -> str:
    """What the task does, in this process: claim the row by id, then send it."""
    from triage.services.setup_emails import send_setup_email

    return await send_setup_email(sessions, notifier, links(), email_id, LEASE)


def outbox_notifier(sessions: Any) -> Any:
    from triage.services.notifier import OutboxNotifier

    return OutboxNotifier(sessions)


def link_in(body: str) -> str:
    found = LINK.search(body)
    assert found, body
    return found.group(1)


async def link_opens(web: Any, link: str) -> bool:
    from triage.settings import get_settings

    page = await Browser(web).get(link.removeprefix(get_settings().base_url))
    assert page.status_code in (200, 404), page.text
    return bool(page.status_code == 200)


async def set_up_with(web: Any, sessions: Any, link: str, user_id: uuid.UUID) -> None:
    """The person follows the link: a password, then a code from the new authenticator."""
    from triage.settings import get_settings

    person = Browser(web)
    path = link.removeprefix(get_settings().base_url)
    page = await person.get(path)
    assert page.status_code == 200, page.text
    done = await person.post(
        path, {"csrf_token": csrf_of(page.text), "password": PASSWORD, "confirm": PASSWORD}
    )
    assert done.status_code in (302, 303), done.text
    page = await person.get(path + "/two-factor")
    secret = await scalar(sessions, "SELECT totp_secret FROM staff_users WHERE id = :i", i=user_id)
    codes = await person.post(
        path + "/two-factor", {"csrf_token": csrf_of(page.text), "code": pyotp.TOTP(secret).now()}
    )
    assert codes.status_code == 200 and "recovery codes" in codes.text


# The row, with its cause ---------------------------------------------------------------------


async def test_creating_an_account_in_production_queues_its_email_and_makes_no_token(
    sessions: Any,
) -> None:
    email = new_email()
    account = await create(sessions, email)
    assert account.setup_token is None and account.setup_email_id is not None
    [row] = await emails_of(sessions, account.user_id)
    assert (row.id, row.status, row.attempts) == (account.setup_email_id, "queued", 0)
    assert row.due_at <= await service_time(sessions)
    # No link exists until the worker sends one: nothing of it is stored anywhere.
    assert (
        await scalar(
            sessions, "SELECT count(*) FROM staff_tokens WHERE user_id = :u", u=account.user_id
        )
        == 0
    )


async def test_a_failed_creation_queues_no_email(sessions: Any, owner_sessions: Any) -> None:
    """The account, its set-up email and its audit event are one transaction: the audit insert
    (the last of them) refused by the database leaves no account and no email."""
    from triage.domain.principals import staff
    from triage.services.catalogues import current_catalogue
    from triage.services.staff_accounts import create_account
    from triage.settings import get_settings

    admin = staff(uuid.uuid4(), frozenset({"admin"}), frozenset())
    name = f"refuse_{uuid.uuid4().hex[:8]}"
    async with owner_sessions() as db:
        await db.execute(
            text(f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.actor = '{admin.actor}' THEN RAISE EXCEPTION 'refused by the test';
                    END IF;
                    RETURN NEW;
                END $$""")
        )
        await db.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON audit_events "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        )
        await db.commit()
    email = new_email()
    before = await scalar(sessions, "SELECT count(*) FROM staff_setup_emails")
    try:
        async with sessions() as db:
            with pytest.raises(DBAPIError, match="refused by the test"):
                await create_account(
                    db,
                    admin,
                    get_settings().secret_key,
                    email,
                    ["hub"],
                    [],
                    frozenset(current_catalogue().services),
                    email_link=True,
                )
    finally:
        async with owner_sessions() as db:
            await db.execute(text(f"DROP TRIGGER {name} ON audit_events"))
            await db.execute(text(f"DROP FUNCTION {name}()"))
            await db.commit()
    assert await scalar(sessions, "SELECT count(*) FROM staff_users WHERE email = :e", e=email) == 0
    assert await scalar(sessions, "SELECT count(*) FROM staff_setup_emails") == before
    # The same creation without the refusal writes both.
    account = await create(sessions, email)
    assert [r.status for r in await emails_of(sessions, account.user_id)] == ["queued"]


async def test_a_reset_queues_a_new_email_ends_earlier_links_and_replaces_a_waiting_email(
    sessions: Any,
) -> None:
    email = new_email()
    shown = await create(sessions, email, email_link=False)  # a link printed (dev, or --print-link)
    first = await reset(sessions, shown.user_id)
    assert first is None
    second = await reset(sessions, shown.user_id)
    assert second is None
    waiting, newest = await emails_of(sessions, shown.user_id)
    assert (waiting.status, waiting.failure_reason) == (
        "cancelled",
        "replaced by a newer set-up link",
    )
    assert newest.status == "queued"
    # The printed link no longer works: only the email's, when it is made, will.
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM staff_tokens WHERE user_id = :u AND used_at IS NULL",
            u=shown.user_id,
        )
        == 0
    )
    # A link printed now (--print-link) cancels the email still waiting: it would end it.
    printed = await reset(sessions, shown.user_id, email_link=False)
    assert printed
    assert [r.status for r in await emails_of(sessions, shown.user_id)] == ["cancelled"] * 2


# Sending, in this process (the task's own function) ---------------------------------------------


async def test_sending_twice_sends_once_and_the_link_works_once(web: Any, sessions: Any) -> None:
    notifier = outbox_notifier(sessions)
    account = await create(sessions, new_email())
    email_id = account.setup_email_id
    assert await send(sessions, notifier, email_id) == "sent"
    assert await send(sessions, notifier, email_id) == "not_due"
    [entry] = await outbox_for(sessions, email_id)
    row = await email_row(sessions, email_id)
    assert (row.status, row.attempts) == ("sent", 1) and row.sent_at is not None
    user_email = await scalar(
        sessions, "SELECT email FROM staff_users WHERE id = :u", u=account.user_id
    )
    assert (entry.channel, entry.template, entry.recipient) == ("email", "staff_setup", user_email)
    subject, _, body = entry.body.partition("\n\n")
    assert subject == "Set up your triage account"
    assert "works once, for 3 days" in body and "did not expect this email" in body
    link = link_in(body)
    from triage.settings import get_settings

    assert link.startswith(f"{get_settings().base_url}/staff/set-up/")
    admin = await sign_in(web, await make_staff(sessions, ("admin",)))
    before = await admin.get(f"/staff/admin/users/{account.user_id}")
    assert "its link works once" in soup(before.text).find(id="setup-email").get_text()
    await set_up_with(web, sessions, link, account.user_id)
    assert not await link_opens(web, link)  # used up
    # The admin's page no longer says the link works: the account was set up with it.
    after = await admin.get(f"/staff/admin/users/{account.user_id}")
    shown = soup(after.text).find(id="setup-email").get_text(" ", strip=True)
    assert "set up since" in shown and "works" not in shown
    events = await rows(
        sessions,
        "SELECT actor, action FROM audit_events WHERE record_id = :r ORDER BY id",
        r=str(account.user_id),
    )
    assert [e.action for e in events if e.actor == "system:setup-email"] == [
        "user.setup_link_issued",
        "user.setup_email_sent",
    ]


async def test_two_sends_at_once_send_one_email(sessions: Any) -> None:
    import asyncio

    notifier = outbox_notifier(sessions)
    account = await create(sessions, new_email())
    results = await asyncio.gather(
        *(send(sessions, notifier, account.setup_email_id) for _ in range(4))
    )
    assert sorted(results) == ["not_due"] * 3 + ["sent"]
    assert len(await outbox_for(sessions, account.setup_email_id)) == 1


async def test_an_email_for_an_account_disabled_or_set_up_meanwhile_is_cancelled(
    sessions: Any,
) -> None:
    from triage.domain.principals import OPERATOR
    from triage.services.staff_accounts import admin_action
    from triage.settings import get_settings

    notifier = outbox_notifier(sessions)
    disabled = await create(sessions, new_email())
    async with sessions() as db:
        await admin_action(db, OPERATOR, get_settings().secret_key, disabled.user_id, "disable")
    assert await send(sessions, notifier, disabled.setup_email_id) == "cancelled"
    row = await email_row(sessions, disabled.setup_email_id)
    assert (row.status, row.failure_reason) == ("cancelled", "account disabled")
    assert await outbox_for(sessions, disabled.setup_email_id) == []
    assert (
        await scalar(
            sessions, "SELECT count(*) FROM staff_tokens WHERE user_id = :u", u=disabled.user_id
        )
        == 0
    )


async def test_a_later_email_ends_the_earlier_link(web: Any, sessions: Any) -> None:
    notifier = outbox_notifier(sessions)
    account = await create(sessions, new_email())
    assert await send(sessions, notifier, account.setup_email_id) == "sent"
    [first] = await outbox_for(sessions, account.setup_email_id)
    earlier = link_in(first.body)
    assert await link_opens(web, earlier)
    await reset(sessions, account.user_id)  # lost it: the admin resets, a new email goes
    _, again = await emails_of(sessions, account.user_id)
    assert not await link_opens(web, earlier)  # the reset ended it at once
    assert await send(sessions, notifier, again.id) == "sent"
    [second] = await outbox_for(sessions, again.id)
    later = link_in(second.body)
    assert later != earlier and not await link_opens(web, earlier)
    await set_up_with(web, sessions, later, account.user_id)


# Against the provider (the Notify-compatible stub) ----------------------------------------------


def stub_bodies(stub: Stub, reference: uuid.UUID) -> list[str]:
    """The bodies the stub took for a reference (read from its own storage)."""
    port = stub.url.rsplit(":", 1)[1]
    with sqlite3.connect(stub.log.parent / f"stub-{port}.db") as db:
        found = db.execute(
            "SELECT body FROM notifications WHERE reference = ? ORDER BY seq", (str(reference),)
        ).fetchall()
    return [body for (body,) in found]


async def test_a_lost_answer_is_looked_up_not_sent_again_and_its_link_works(
    web: Any, sessions: Any, stub: Stub
) -> None:
    from triage.services.notifier import NotifyNotifier

    notifier = NotifyNotifier(notify_settings(stub.url), TEMPLATES, timeout=1)
    account = await create(sessions, new_email())
    email_id = account.setup_email_id
    stub.control(fail="timeout", times=1, timeout_seconds=3)
    assert await send(sessions, notifier, email_id) == "unsure"
    row = await email_row(sessions, email_id)
    assert (row.status, row.attempts) == ("sending", 1)
    assert await send(sessions, notifier, email_id) == "not_due"  # its short lease holds
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=1))
    assert await send(sessions, notifier, email_id) == "sent"  # found at the provider
    assert (await email_row(sessions, email_id)).status == "sent"
    [body] = stub_bodies(stub, email_id)
    [sent] = [s for s in stub.sends() if s["reference"] == str(email_id)]
    assert (sent["type"], sent["template_id"]) == ("email", TEMPLATES["email"])
    # No second link was issued: the one in the email that did arrive works.
    assert (
        await scalar(
            sessions, "SELECT count(*) FROM staff_tokens WHERE user_id = :u", u=account.user_id
        )
        == 1
    )
    await set_up_with(web, sessions, link_in(body), account.user_id)


async def test_a_retry_after_a_failed_send_issues_a_new_link(
    web: Any, sessions: Any, stub: Stub
) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.notifier import make_notifier

    notifier = make_notifier(notify_settings(stub.url), sessions, current_catalogue())
    account = await create(sessions, new_email())
    email_id = account.setup_email_id
    stub.control(fail="temporary", times=1)
    assert await send(sessions, notifier, email_id) == "temporary"
    row = await email_row(sessions, email_id)
    assert row.status == "queued" and row.due_at > await service_time(sessions)
    await move_clock_to(sessions, row.due_at + timedelta(seconds=1))
    assert await send(sessions, notifier, email_id) == "sent"
    [body] = stub_bodies(stub, email_id)
    tokens = await rows(
        sessions, "SELECT used_at FROM staff_tokens WHERE user_id = :u", u=account.user_id
    )
    # Two links issued, one per try: the first (never delivered) ended by the second.
    assert sorted(t.used_at is None for t in tokens) == [False, True]
    await set_up_with(web, sessions, link_in(body), account.user_id)


async def test_retries_run_out_and_the_admin_sees_it(
    sessions: Any, stub: Stub, production_web: Any
) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import MAX_ATTEMPTS
    from triage.services.notifier import make_notifier

    notifier = make_notifier(notify_settings(stub.url), sessions, current_catalogue())
    email = new_email()
    account = await create(sessions, email)
    email_id = account.setup_email_id
    stub.control(fail="temporary", times=None)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result = await send(sessions, notifier, email_id)
        assert result == "temporary", attempt
        await move_clock_to(sessions, await service_time(sessions) + timedelta(hours=1))
    row = await email_row(sessions, email_id)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert row.final_at is not None and row.failure_reason.startswith("tries ran out")
    assert await send(sessions, notifier, email_id) == "not_due"  # terminal
    assert stub.sends() == []
    # The admin sees it, on the account's page and in the list.
    admin = await make_staff(sessions, ("admin",))
    browser = await sign_in(production_web, admin)
    page = await browser.get(f"/staff/admin/users/{account.user_id}")
    shown = soup(page.text).find(id="setup-email").get_text(" ", strip=True)
    assert "could not be sent" in shown and "--print-link" in shown and email in shown
    listing = await browser.get("/staff/admin/users")
    line = next(tr for tr in soup(listing.text).select("tbody tr") if email in tr.get_text())
    assert "Set-up email not sent" in line.get_text()
    events = await rows(
        sessions,
        "SELECT action FROM audit_events WHERE record_id = :r AND action = :a",
        r=str(account.user_id),
        a="user.setup_email_failed",
    )
    assert len(events) == 1


async def test_a_refused_address_fails_at_once(sessions: Any, stub: Stub) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.notifier import make_notifier

    notifier = make_notifier(notify_settings(stub.url), sessions, current_catalogue())
    account = await create(sessions, new_email())
    stub.control(fail="permanent", times=1)
    assert await send(sessions, notifier, account.setup_email_id) == "permanent"
    row = await email_row(sessions, account.setup_email_id)
    assert (row.status, row.failure_reason) == (
        "failed",
        "the email provider refused the address",
    )


async def test_our_settings_refused_raise_the_outage_alert_until_an_email_goes(
    sessions: Any, stub: Stub
) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.notifier import make_notifier

    notifier = make_notifier(notify_settings(stub.url), sessions, current_catalogue())
    account = await create(sessions, new_email())
    email_id = account.setup_email_id
    stub.control(fail="auth", times=1)
    assert await send(sessions, notifier, email_id) == "outage"
    assert (await email_row(sessions, email_id)).status == "queued"
    outage = "SELECT count(*) FROM alerts WHERE kind = 'provider_outage' AND status = 'raised'"
    assert await scalar(sessions, outage) == 1
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=5))
    assert await send(sessions, notifier, email_id) == "sent"
    assert await scalar(sessions, outage) == 0


async def test_an_outage_never_uses_up_an_emails_attempts(sessions: Any, stub: Stub) -> None:
    """Our settings refused for longer than all the backoffs together: the email stays
    queued, retried every minute with its attempt given back, and goes once they are fixed.
    Counting them failed every pending account's email for good in a quarter of an hour."""
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import MAX_ATTEMPTS
    from triage.services.notifier import make_notifier

    notifier = make_notifier(notify_settings(stub.url), sessions, current_catalogue())
    account = await create(sessions, new_email())
    email_id = account.setup_email_id
    stub.control(fail="auth", times=None)
    for _ in range(MAX_ATTEMPTS + 3):
        assert await send(sessions, notifier, email_id) == "outage"
        row = await email_row(sessions, email_id)
        assert (row.status, row.attempts) == ("queued", 0)
        assert row.due_at - await service_time(sessions) <= timedelta(minutes=1)
        await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=9))
    stub.control(fail="none")
    assert await send(sessions, notifier, email_id) == "sent"


async def test_a_set_up_email_outage_alert_is_its_own(sessions: Any, stub: Stub) -> None:
    """Set-up emails use their own template: their outage alert names them, and a victim's
    email taken does not close it (nor a set-up email taken one about victims' emails)."""
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import RAISE_OUTAGE, RESOLVE_OUTAGE
    from triage.services.notifier import make_notifier

    notifier = make_notifier(notify_settings(stub.url), sessions, current_catalogue())
    account = await create(sessions, new_email())
    stub.control(fail="template", times=1)
    assert await send(sessions, notifier, account.setup_email_id) == "outage"
    reason = "SELECT reason FROM alerts WHERE kind = 'provider_outage' AND status = 'raised'"
    assert await scalar(sessions, reason) == "staff_setup_email: settings refused"
    # A victim's email accepted (what the messages' sender runs then): the alert stays.
    async with sessions() as db:
        await db.execute(RESOLVE_OUTAGE, {"channels": ["email"]})
        await db.commit()
    assert await scalar(sessions, reason) == "staff_setup_email: settings refused"
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=2))
    assert await send(sessions, notifier, account.setup_email_id) == "sent"
    assert await scalar(sessions, reason) is None
    # The other way: an alert about victims' emails outlives a set-up email taken.
    async with sessions() as db:
        await db.execute(
            RAISE_OUTAGE, {"id": uuid.uuid4(), "now": datetime.now(UTC), "reason": "email: x"}
        )
        await db.commit()
    other = await create(sessions, new_email())
    assert await send(sessions, notifier, other.setup_email_id) == "sent"
    assert await scalar(sessions, reason) == "email: x"
    async with sessions() as db:
        await db.execute(RESOLVE_OUTAGE, {"channels": ["email"]})
        await db.commit()


async def test_a_printed_link_outlives_an_email_caught_mid_send(
    web: Any, sessions: Any, stub: Stub
) -> None:
    """A worker claimed the email and died (or its answer was lost); the operator then prints
    a link. The email is cancelled with the print, so its retry issues no link that would
    end the printed one."""
    from triage.services.notifier import NotifyNotifier
    from triage.services.setup_emails import claim_setup_email
    from triage.services.units import in_session
    from triage.settings import get_settings

    notifier = NotifyNotifier(notify_settings(stub.url), TEMPLATES, timeout=1)
    account = await create(sessions, new_email())
    email_id = account.setup_email_id
    assert await in_session(sessions, claim_setup_email, email_id, LEASE) is not None
    token = await reset(sessions, account.user_id, email_link=False)
    printed = f"{get_settings().base_url}/staff/set-up/{token}"
    assert (await email_row(sessions, email_id)).status == "cancelled"
    await move_clock_to(sessions, await service_time(sessions) + LEASE + timedelta(seconds=5))
    assert await send(sessions, notifier, email_id) == "not_due"
    assert await link_opens(web, printed)


# The pages ----------------------------------------------------------------------------------------


async def test_in_production_the_admin_is_told_the_link_was_emailed_never_shown(
    sessions: Any, production_web: Any
) -> None:
    admin = await make_staff(sessions, ("admin",))
    browser = await sign_in(production_web, admin)
    page = await browser.get("/staff/admin/users/new")
    email = new_email()
    created = await browser.post(
        "/staff/admin/users",
        {
            "csrf_token": csrf_of(page.text),
            "once": once_of(page.text),
            "email": email,
            "roles": ["hub"],
        },
    )
    assert created.status_code == 200, created.text
    html = soup(created.text)
    assert html.find(id="setup-link") is None and "/staff/set-up/" not in created.text
    assert email in html.find(id="setup-emailed").get_text()
    user_id = await scalar(sessions, "SELECT id FROM staff_users WHERE email = :e", e=email)
    [row] = await emails_of(sessions, user_id)
    assert row.status in ("queued", "sending", "sent")  # a woken worker may be quick
    page = await browser.get(f"/staff/admin/users/{user_id}")
    assert soup(page.text).find(id="setup-email") is not None
    assert "emailed to them" in page.text

    # A reset: emailed too, the link never on the page.
    reset_page = await browser.post(
        f"/staff/admin/users/{user_id}/actions",
        {
            "csrf_token": csrf_of(page.text),
            "once": once_of(page.text),
            "action": "reset_two_factor",
        },
    )
    assert reset_page.status_code == 200, reset_page.text
    assert soup(reset_page.text).find(id="setup-link") is None
    assert "/staff/set-up/" not in reset_page.text
    assert len(await emails_of(sessions, user_id)) == 2


async def test_in_dev_the_link_is_shown_and_nothing_is_emailed(sessions: Any, web: Any) -> None:
    admin = await make_staff(sessions, ("admin",))
    browser = await sign_in(web, admin)
    page = await browser.get("/staff/admin/users/new")
    email = new_email()
    created = await browser.post(
        "/staff/admin/users",
        {
            "csrf_token": csrf_of(page.text),
            "once": once_of(page.text),
            "email": email,
            "roles": ["hub"],
        },
    )
    assert created.status_code == 200, created.text
    assert soup(created.text).find(id="setup-link") is not None
    user_id = await scalar(sessions, "SELECT id FROM staff_users WHERE email = :e", e=email)
    assert await emails_of(sessions, user_id) == []


# The command ----------------------------------------------------------------------------------


def triage_command(*args: str, notifier: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRIAGE_NOTIFIER": notifier}
    return subprocess.run(
        [PYTHON, "-m", "triage.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def queued_tasks(servers: Any, name: str) -> list[tuple[bytes, list[Any], dict[str, Any]]]:
    """The Celery messages waiting in Redis for task `name`: (raw, args, kwargs)."""
    import redis

    found = []
    for raw in redis.Redis.from_url(servers.redis_url).lrange("triage", 0, -1):
        message = json.loads(raw)
        if message["headers"].get("task") == name:
            args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            found.append((raw, args, kwargs))
    return found


async def test_the_command_prints_in_dev_and_emails_in_production(
    servers: Any, sessions: Any
) -> None:
    import redis

    dev_email = new_email()
    done = triage_command("users", "create", dev_email, "--role", "hub", notifier="outbox")
    assert done.returncode == 0, done.stderr
    assert "/staff/set-up/" in done.stdout
    dev_user = await scalar(sessions, "SELECT id FROM staff_users WHERE email = :e", e=dev_email)
    assert await emails_of(sessions, dev_user) == []

    email = new_email()
    done = triage_command("users", "create", email, "--role", "hub", notifier="notify")
    assert done.returncode == 0, done.stderr
    assert "/staff/set-up/" not in done.stdout + done.stderr
    assert "being emailed" in done.stderr
    # Nor the address: a job's logs keep what the command printed.
    assert email not in done.stdout + done.stderr
    user_id = await scalar(sessions, "SELECT id FROM staff_users WHERE email = :e", e=email)
    [row] = await emails_of(sessions, user_id)
    # The wake-up carries the row's id and nothing else: no address, no link, no token.
    [(raw, args, kwargs)] = [
        found
        for found in queued_tasks(servers, "triage.send_setup_email")
        if str(row.id).encode() in found[0]
    ]
    assert (args, kwargs) == ([str(row.id)], {})
    assert email.encode() not in raw and b"set-up" not in raw
    redis.Redis.from_url(servers.redis_url).lrem("triage", 0, raw)

    # --print-link: a link printed, and the email still waiting cancelled (it would end it).
    done = triage_command(
        "users", "reset", email, "--action", "reset_two_factor", "--print-link", notifier="notify"
    )
    assert done.returncode == 0, done.stderr
    assert "/staff/set-up/" in done.stdout
    assert [r.status for r in await emails_of(sessions, user_id)] == ["cancelled"]


# A real worker --------------------------------------------------------------------------------


async def test_the_worker_sends_one_email_however_often_it_is_asked(
    web: Any, sessions: Any, tmp_path: Path
) -> None:
    from workers.celery_app import celery_app

    first = await create(sessions, new_email())
    log = tmp_path / "worker.log"
    with celery_worker(log):
        # Asked twice by id and once by a sweep: one email.
        for _ in range(2):
            celery_app.send_task("triage.send_setup_email", args=[str(first.setup_email_id)])
        send_sweep()

        async def sent(email_id: uuid.UUID) -> bool:
            return bool((await email_row(sessions, email_id)).status == "sent")

        await eventually(lambda: sent(first.setup_email_id), within=60, what="the email sent")
        # One more, asked for after those: once it is sent, every earlier ask has been run
        # (one worker process takes its queue in order).
        second = await create(sessions, new_email())
        celery_app.send_task("triage.send_setup_email", args=[str(second.setup_email_id)])
        await eventually(lambda: sent(second.setup_email_id), within=60, what="the second")
    [entry] = await outbox_for(sessions, first.setup_email_id)
    assert (await email_row(sessions, first.setup_email_id)).attempts == 1
    link = link_in(entry.body)
    token = link.rsplit("/", 1)[1]
    # Nothing of the link, or of the address, in what the worker logged.
    logged = log.read_text(errors="replace")
    assert token not in logged and entry.recipient not in logged
    # The emailed link sets the account up, once.
    await set_up_with(web, sessions, link, first.user_id)
    assert not await link_opens(web, link)
