"""No personal data in logs, in Redis, or in any error body (issue 4, section 7).

Referrals with recognisable personal data go through every route (single, batch JSON and CSV,
invalid, conflicting, searched by crime number, Appropriate Adult requests); then the app's
log output (JSON lines on stdout), every Redis key and value, and every error body are searched
for any of it."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from helpers import bearer, referral
from redis.asyncio import Redis

FIRST, LAST = "Wilhelmina", "Strawbridge-Nkemelu"
PHONE = "07700 900314"
PHONE_DIGITS = ("900314", "+447700900314")
EMAIL = "w.strawbridge@example.net"
LINE1, TOWN, POSTCODE = "31 Marrowbone Row", "Faversham", "ME13 8AA"
NOTES = "the neighbour at number 33 is the suspect's cousin"
CONTACT_NOTES = "never before noon, uses a blue phone"
DESCRIPTION = "threats painted on the garage door"
REFERRER_NAME = "DC Ottoline Pemberton-Yau"
DOB = "1983-07-19"


def crime_number() -> str:
    return f"46/{uuid.uuid4().int % 10**6:06d}/26"


def personal(crime: str, **changes: Any) -> dict[str, Any]:
    return referral(
        **{
            "external_ref": crime,
            "victim.first_name": FIRST,
            "victim.last_name": LAST,
            "victim.phone": PHONE,
            "victim.email": EMAIL,
            "victim.date_of_birth": DOB,
            "victim.address.line1": LINE1,
            "victim.address.town": TOWN,
            "victim.address.postcode": POSTCODE,
            "contact.notes": CONTACT_NOTES,
            "offence.description": DESCRIPTION,
            "referrer.name": REFERRER_NAME,
            "notes": NOTES,
            **changes,
        }
    )


SECRETS = (
    FIRST,
    LAST,
    *PHONE_DIGITS,
    EMAIL,
    "Marrowbone",
    TOWN,
    POSTCODE,
    "ME138AA",
    NOTES,
    "number 33",
    CONTACT_NOTES,
    "blue phone",
    DESCRIPTION,
    "Pemberton",
    DOB,
)


def leaks(text: str, extra: tuple[str, ...] = ()) -> list[str]:
    lowered = text.lower()
    return [s for s in (*SECRETS, *extra) if s.lower() in lowered]


async def exercise(client: Any, key: str, crimes: list[str]) -> list[Any]:
    """Every route, with personal data; returns the error answers."""
    errors = []
    single = personal(crimes[0])
    assert (
        await client.post("/api/v1/referrals", json=single, headers=bearer(key))
    ).status_code == 201
    assert (
        await client.post("/api/v1/referrals", json=single, headers=bearer(key))
    ).status_code == 200
    conflict = await client.post(
        "/api/v1/referrals", json=dict(single, notes=NOTES + " again"), headers=bearer(key)
    )
    assert conflict.status_code == 409
    errors.append(conflict)
    invalid = personal(
        crimes[1],
        **{
            "victim.phone": PHONE + "99999",
            "victim.address.postcode": POSTCODE + "Z",
            "victim.email": "w.strawbridge at example.net",
            "victim.gender": FIRST,
            "flags": [LAST],
            "referred_at": "2026-11-20T14:05:00",
        },
    )
    response = await client.post("/api/v1/referrals", json=invalid, headers=bearer(key))
    assert response.status_code == 422
    errors.append(response)
    malformed = json.dumps(invalid).encode()[:-10]
    response = await client.post(
        "/api/v1/referrals",
        content=malformed,
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    errors.append(response)
    response = await client.post(
        "/api/v1/referrals",
        content=malformed,
        headers={**bearer(key), "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    errors.append(response)
    batch = await client.post(
        "/api/v1/referrals/batch",
        json={"referrals": [personal(crimes[2]), invalid, dict(single, notes="changed")]},
        headers=bearer(key),
    )
    assert [i["status"] for i in batch.json()["items"]] == ["created", "invalid", "conflict"]
    errors.append(batch)  # its per-item errors are error bodies too
    header = (
        "external_ref,victim.first_name,victim.last_name,victim.phone,contact.channels,"
        "offence.category,notes"
    )
    csv_text = (
        f"{header},victim.favourite_colour\n"
        f'{crimes[3]},{FIRST},{LAST},{PHONE},phone,theft,"{NOTES}",red\n'
    )
    response = await client.post(
        "/api/v1/referrals/batch",
        content=csv_text.encode(),
        headers={**bearer(key), "Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    errors.append(response)
    csv_text = f'{header}\n{crimes[3]},{FIRST},{LAST},{PHONE},phone,theft,"{NOTES}"\n'
    csv_text += f"{crimes[4]},{FIRST},{LAST},{PHONE}1234,phone,theft,{NOTES[:20]}\n"
    response = await client.post(
        "/api/v1/referrals/batch",
        content=csv_text.encode(),
        headers={**bearer(key), "Content-Type": "text/csv"},
    )
    assert [i["status"] for i in response.json()["items"]] == ["created", "invalid"]
    errors.append(response)
    found = await client.get(
        "/api/v1/referrals", params={"external_ref": crimes[0]}, headers=bearer(key)
    )
    assert len(found.json()["items"]) == 1
    bad_query = await client.get(
        "/api/v1/referrals", params={"updated_since": FIRST, "cursor": LAST}, headers=bearer(key)
    )
    assert bad_query.status_code == 422
    errors.append(bad_query)
    aa = {
        "external_ref": crimes[5],
        "custody_suite": "Margate",
        "person": {"first_name": FIRST, "last_name": LAST, "date_of_birth": DOB},
        "requester": {"name": REFERRER_NAME, "phone": "01632 960314"},
        "needed_at": "2027-01-13T22:00:00Z",
    }
    ok = await client.post("/api/v1/appropriate-adult-requests", json=aa, headers=bearer(key))
    assert ok.status_code == 201, ok.text
    bad_aa = dict(aa, custody_suite=TOWN, external_ref=crimes[6])
    response = await client.post(
        "/api/v1/appropriate-adult-requests", json=bad_aa, headers=bearer(key)
    )
    assert response.status_code == 422
    errors.append(response)
    unauthorised = await client.post(
        "/api/v1/referrals", json=single, headers=bearer("trg_abcdefgh_" + "z" * 32)
    )
    assert unauthorised.status_code == 401
    errors.append(unauthorised)
    # Successful answers carry no more than was sent: of the personal data, nothing at all.
    for answer in (ok, found):
        assert not leaks(answer.text), answer.text
    return errors


@pytest.fixture
def app_log_records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def test_no_personal_data_in_logs_redis_or_errors(
    client: Any,
    make_key: Any,
    capfd: pytest.CaptureFixture[str],
    app_log_records: pytest.LogCaptureFixture,
) -> None:
    _, key = await make_key("police")
    crimes = [crime_number() for _ in range(7)]
    # A crime number may reach a log as it was in a URL, percent-encoded.
    crimes += [quote(crime, safe="") for crime in crimes]
    capfd.readouterr()  # start from a clean capture
    errors = await exercise(client, key, crimes)
    out, err = capfd.readouterr()

    # 1. Error bodies (and their headers).
    for response in errors:
        text = response.text + json.dumps(dict(response.headers))
        assert not leaks(text), (response.status_code, leaks(text), response.text)

    # 2. The app's logs: JSON lines on stdout, one access line per request, with request ids.
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "request"]
    assert len(access) >= 14, out
    assert all(len(line["request_id"]) == 32 for line in access)
    assert {line["status"] for line in access} >= {200, 201, 400, 401, 409, 415, 422}
    assert all("?" not in line["path"] for line in access)  # no query strings
    assert not leaks(out, tuple(crimes)), leaks(out, tuple(crimes))
    # stderr and stdlib log records, except the test client's own request lines (httpx logs
    # the URL it was asked for; that is the test's side, not the service's).
    assert not leaks(err.replace("\n", " ")) or all(
        "httpx" in line for line in err.splitlines() if leaks(line)
    )
    for record in app_log_records.records:
        if record.name.startswith("httpx"):
            continue
        message = record.getMessage()
        assert not leaks(message, tuple(crimes)), (record.name, message)

    # 3. Redis: every key and every value.
    redis = Redis.from_url(client.app.state.settings.redis_url)
    try:
        seen = 0
        async for raw_key in redis.scan_iter(count=1000):
            seen += 1
            name = raw_key.decode(errors="replace")
            assert not leaks(name, tuple(crimes)), name
            value = await _redis_value(redis, raw_key)
            assert not leaks(value, tuple(crimes)), (name, value[:200])
        assert seen >= 1  # the rate-limit counters at least
    finally:
        await redis.aclose()


async def _redis_value(redis: Redis, key: bytes) -> str:
    kind = (await redis.type(key)).decode()
    value: Any
    if kind == "string":
        value = await redis.get(key)
    elif kind == "hash":
        value = await redis.hgetall(key)
    elif kind == "list":
        value = await redis.lrange(key, 0, -1)
    elif kind == "set":
        value = await redis.smembers(key)
    elif kind == "zset":
        value = await redis.zrange(key, 0, -1, withscores=True)
    elif kind == "stream":
        value = await redis.xrange(key)
    else:
        value = b""
    return repr(value)


# -- worker and beat logs (issue 9, point 10) -------------------------------------------------

FAIL_RENDERING = """
CREATE FUNCTION refuse_rendering() RETURNS trigger AS $$
BEGIN
    IF NEW.body IS NOT NULL AND OLD.body IS NULL THEN
        RAISE EXCEPTION 'rendering refused by the test';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_rendering BEFORE UPDATE ON messages
FOR EACH ROW EXECUTE FUNCTION refuse_rendering();
"""


def start_triage(args: list[str], env: dict[str, str], log_path: Any) -> Any:
    """`triage ARGS` in its own process group, its output in `log_path`."""
    import subprocess

    from notify_stub_support import PYTHON, ROOT

    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [PYTHON, "-m", "triage.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def test_no_personal_data_in_worker_and_beat_logs(servers: Any, tmp_path: Any) -> None:
    """Real worker and beat processes send a referral's messages while the database refuses the
    statement that carries the rendered text and the recipient (so the error, retried, is
    logged); then the refusal is lifted and the message goes. Their logs hold none of it."""
    import asyncio
    import dataclasses
    import os
    import subprocess
    import time

    import asyncpg
    from litestar.testing import AsyncTestClient
    from notify_stub_support import stop_process
    from sqlalchemy import text

    from db.engine import make_engine, make_sessionmaker, plain_url
    from db.migrate import upgrade
    from db.roles import app_role
    from triage.app import create_app
    from triage.devstack import as_role, create_database, drop_database
    from triage.services.api_keys import create_client, create_key
    from triage.services.catalogues import forget_recorded
    from triage.services.references import forget_sequences
    from triage.settings import get_settings

    url = await asyncio.to_thread(create_database, servers.owner_url, "triage_logs")
    app_url = as_role(url, app_role())
    processes: list[subprocess.Popen[bytes]] = []
    engine = None
    try:
        await asyncio.to_thread(upgrade, url)
        admin = await asyncpg.connect(plain_url(url))
        try:
            await admin.execute(FAIL_RENDERING)
        finally:
            await admin.close()
        # This process has made sure of the year's reference sequence and recorded the
        # catalogue in the suite's database: not in this one.
        forget_sequences()
        forget_recorded()
        settings = dataclasses.replace(get_settings(), database_url=app_url)
        engine = make_engine(app_url, null_pool=True)
        sessions = make_sessionmaker(engine)
        async with sessions() as db:
            await create_client(db, "log-test", "police")
            key = await create_key(db, settings.secret_key, "log-test")
        body = personal(
            crime_number(),
            **{
                "contact.channels": ["sms", "email"],
                "contact.safe_times": [
                    {
                        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "from": "00:00",
                        "to": "00:00",
                    }
                ],
            },
        )
        async with AsyncTestClient(app=create_app(settings)) as app_client:
            created = await app_client.post("/api/v1/referrals", json=body, headers=bearer(key))
            assert created.status_code == 201, created.text
        env = {
            **os.environ,
            "DATABASE_URL": app_url,
            "TRIAGE_ENV": "test",
            "TRIAGE_NOTIFIER": "outbox",
            # Claims taken again at once, so that the retry meets the same refusal.
            "TRIAGE_CLAIM_LEASE_SECONDS": "0",
            # Give up after one retry, so that the error is logged as Celery logs a task
            # that failed for good (with its traceback), not only as a retry.
            "TRIAGE_TASK_MAX_RETRIES": "1",
        }
        logs = {name: tmp_path / f"{name}.log" for name in ("worker", "beat")}
        commands = {
            "worker": ["worker", "--concurrency", "1", "--loglevel", "INFO"],
            "beat": ["beat", "--schedule", str(tmp_path / "beat"), "--loglevel", "INFO"],
        }
        for name, args in commands.items():
            processes.append(start_triage(args, env, logs[name]))

        async def message_states() -> list[Any]:
            async with sessions() as db:
                return list(
                    await db.execute(
                        text("SELECT status, attempts FROM messages WHERE referral_id = :r"),
                        {"r": created.json()["id"]},
                    )
                )

        deadline = time.monotonic() + 40
        while "raised unexpected" not in logs["worker"].read_text(errors="replace"):
            assert time.monotonic() < deadline, logs["worker"].read_text(errors="replace")[-3000:]
            await asyncio.sleep(0.5)
        admin = await asyncpg.connect(plain_url(url))
        try:
            await admin.execute("DROP TRIGGER refuse_rendering ON messages")
        finally:
            await admin.close()
        while not any(state.status == "accepted" for state in await message_states()):
            assert time.monotonic() < deadline, await message_states()
            await asyncio.sleep(0.5)
    finally:
        for process in processes:
            stop_process(process, grace=5)
        if engine is not None:
            await engine.dispose()
        await asyncio.to_thread(drop_database, url)
        forget_sequences()
        forget_recorded()
    for name, path in logs.items():
        text_logged = path.read_text(errors="replace")
        assert not leaks(text_logged), (name, leaks(text_logged))
    assert "raised unexpected" in logs["worker"].read_text()  # the error path was exercised
