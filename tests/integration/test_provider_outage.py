"""A provider that refuses our settings is an outage, not the victim's failure (issue 9,
point 9): a bad API key (403) or a template that is not ours leaves the messages queued, alerts
the duty lead once (an alert of no referral), and sending resumes when the settings are fixed;
a worker refuses to start without a template id for every message the catalogue uses."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from contact_support import (
    london,
    messages_of,
    move_clock_to,
    one,
    plain,
    quiet_monday,
    reset_clock,
    service_time,
    submit,
)
from helpers import rows
from notify_stub_support import PYTHON, ROOT, Stub, stub_settings

LEASE = timedelta(seconds=120)
KEY = f"outage_test-{uuid.uuid4()}-{uuid.uuid4()}"
TEMPLATES = {"sms": str(uuid.uuid4()), "email": str(uuid.uuid4()), "letter": str(uuid.uuid4())}


@pytest.fixture(autouse=True)
async def clock(sessions: Any) -> AsyncIterator[None]:
    await reset_clock(sessions)
    yield
    await reset_clock(sessions)


def notify_settings(stub_url: str, templates: dict[str, str] = TEMPLATES) -> Any:
    return stub_settings(stub_url, KEY, templates)


@pytest.fixture
def notifier(stub: Stub, sessions: Any) -> Any:
    from triage.services.catalogues import current_catalogue
    from triage.services.notifier import make_notifier

    return make_notifier(notify_settings(stub.url), sessions, current_catalogue())


async def send_due(sessions: Any, notifier: Any, *ids: uuid.UUID) -> dict[uuid.UUID, str]:
    """Claim and send these messages (when due), as a sweep would: only these, so that what
    other tests left queued never reaches this test's provider."""
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_message, deliver
    from triage.services.units import in_session

    results: dict[uuid.UUID, str] = {}
    for message_id in ids:
        claimed = await in_session(sessions, claim_message, message_id, LEASE)
        if claimed is not None:
            results[message_id] = await deliver(sessions, notifier, current_catalogue(), claimed)
    return results


async def open_outage_alerts(sessions: Any) -> list[Any]:
    return await rows(
        sessions,
        "SELECT * FROM alerts WHERE kind = 'provider_outage' AND status = 'raised'",
    )


@pytest.mark.parametrize("refusal", ["auth", "template"])
async def test_our_settings_refused_is_an_outage_not_a_failure(
    client: Any, police: dict[str, str], sessions: Any, stub: Stub, notifier: Any, refusal: str
) -> None:
    await move_clock_to(sessions, london(quiet_monday(await service_time(sessions)), 10))
    first = await submit(client, police, plain())
    [intro] = await messages_of(sessions, first["id"])
    stub.control(fail=refusal, times=None)

    assert (await send_due(sessions, notifier, intro.id))[intro.id] == "outage"
    row = await one(sessions, "SELECT * FROM messages WHERE id = :i", i=intro.id)
    assert (row.status, row.attempts, row.call_started_at) == ("queued", 0, None)
    assert row.failure_reason is None and row.final_at is None
    assert len(await messages_of(sessions, first["id"])) == 1  # no next channel, no resend
    [alert] = await open_outage_alerts(sessions)
    assert alert.referral_id is None and alert.raised_at is not None

    # Still refused a minute later, with another referral's message too: one alert only.
    second = await submit(client, police, plain())
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=2))
    [second_intro] = await messages_of(sessions, second["id"])
    results = await send_due(sessions, notifier, intro.id, second_intro.id)
    assert results[intro.id] == results[second_intro.id] == "outage"
    assert len(await open_outage_alerts(sessions)) == 1

    # Settings fixed (here: the provider takes them again): both go, once each.
    stub.control(fail="none")
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=2))
    results = await send_due(sessions, notifier, intro.id, second_intro.id)
    assert results[intro.id] == "accepted" and results[second_intro.id] == "accepted"
    assert await open_outage_alerts(sessions) == []
    ours = {str(intro.id), str(second_intro.id)}
    sent = [s["reference"] for s in stub.sends() if s["reference"] in ours]
    assert sorted(sent) == sorted(ours)  # each once


async def test_the_recipients_own_refusal_is_still_permanent(
    client: Any, police: dict[str, str], sessions: Any, stub: Stub, notifier: Any
) -> None:
    await move_clock_to(sessions, london(quiet_monday(await service_time(sessions)), 10))
    created = await submit(client, police, plain())
    [intro] = await messages_of(sessions, created["id"])
    stub.control(fail="permanent", times=1)  # "Can't send to this recipient"
    assert (await send_due(sessions, notifier, intro.id))[intro.id] == "permanent"
    after = await messages_of(sessions, created["id"])
    assert [(m.channel, m.status) for m in after] == [("sms", "failed"), ("email", "queued")]
    assert await open_outage_alerts(sessions) == []


def test_a_notifier_without_every_template_is_refused() -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.notifier import check_notifier_settings

    problem = check_notifier_settings(
        notify_settings("http://127.0.0.1:9", {"sms": "x"}), current_catalogue()
    )
    assert problem is not None and "introduction.email" in problem
    assert (
        check_notifier_settings(notify_settings("http://127.0.0.1:9"), current_catalogue()) is None
    )


def test_production_refuses_a_base_url_that_is_not_https() -> None:
    """A set-up email carries a live link: in production it must point at the service's
    https address, never the default localhost."""

    from triage.services.catalogues import current_catalogue
    from triage.services.notifier import check_notifier_settings

    production = dataclasses.replace(notify_settings("http://127.0.0.1:9"), env="production")
    for base in ("http://localhost:8000", "http://triage.example.org"):
        problem = check_notifier_settings(
            dataclasses.replace(production, base_url=base), current_catalogue()
        )
        assert problem is not None and "TRIAGE_BASE_URL" in problem
    fine = dataclasses.replace(production, base_url="https://triage.example.org")
    assert check_notifier_settings(fine, current_catalogue()) is None


def test_a_worker_refuses_to_start_without_every_template(servers: Any) -> None:
    env = {
        **os.environ,
        "TRIAGE_NOTIFIER": "notify",
        "NOTIFY_API_KEY": KEY,
        "NOTIFY_TEMPLATE_IDS": json.dumps({"sms": str(uuid.uuid4())}),
    }
    done = subprocess.run(
        [PYTHON, "-m", "triage.cli", "worker", "--concurrency", "1", "--loglevel", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert b"NOTIFY_TEMPLATE_IDS has no template id for" in done.stdout + done.stderr


async def test_our_key_refused_on_a_lookup_is_an_outage_too(
    client: Any, police: dict[str, str], sessions: Any, stub: Stub, notifier: Any
) -> None:
    """A send whose answer was lost is looked up before anything else; if our key is refused
    there, that is an outage, never "no answer" counted against the message until it fails."""
    await move_clock_to(sessions, london(quiet_monday(await service_time(sessions)), 10))
    created = await submit(client, police, plain())
    [intro] = await messages_of(sessions, created["id"])
    stub.control(fail="timeout", times=1, timeout_seconds=15)
    assert (await send_due(sessions, notifier, intro.id))[intro.id] == "unsure"
    stub.control(fail="auth", times=None, lookup_fail="auth")
    for _ in range(8):  # more than the attempts a message is allowed
        await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=2))
        assert (await send_due(sessions, notifier, intro.id)).get(intro.id) in ("outage", None)
    row = await one(sessions, "SELECT * FROM messages WHERE id = :i", i=intro.id)
    assert row.status == "queued" and row.final_at is None
    assert len(await open_outage_alerts(sessions)) == 1
    stub.control(fail="none", lookup_fail=False)
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=2))
    assert (await send_due(sessions, notifier, intro.id))[intro.id] == "accepted"
    assert [s["reference"] for s in stub.sends()].count(str(intro.id)) == 1  # the timed-out one


async def test_a_working_channel_never_hides_a_refused_one(
    client: Any, police: dict[str, str], sessions: Any, stub: Stub, notifier: Any
) -> None:
    await move_clock_to(sessions, london(quiet_monday(await service_time(sessions)), 10))
    by_email = await submit(client, police, plain(**{"contact.channels": ["email"]}))
    by_sms = await submit(client, police, plain(**{"contact.channels": ["sms"]}))
    [email] = await messages_of(sessions, by_email["id"])
    [sms] = await messages_of(sessions, by_sms["id"])
    stub.control(fail="template", times=None, fail_types=["email"])
    assert (await send_due(sessions, notifier, email.id))[email.id] == "outage"
    assert (await send_due(sessions, notifier, sms.id))[sms.id] == "accepted"
    [alert] = await open_outage_alerts(sessions)  # still open: texts going is no fix for email
    assert alert.reason.startswith("email:")
    stub.control(fail="none", fail_types=None)
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=2))
    assert (await send_due(sessions, notifier, email.id))[email.id] == "accepted"
    assert await open_outage_alerts(sessions) == []
