"""A hostile 32 MiB body must not cost the web process more than a bounded amount of memory
(issue 9, point 4): the real server (`triage serve`) in its own process, its peak resident
memory read from /proc before and after each body."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import bearer

from triage.devstack import free_port, serve_command, wait_ready

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
GROWTH_LIMIT = 200 * MIB
BATCH_LIMIT = 32 * MIB


def peak_rss(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture(scope="module")
def server(servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "TRIAGE_ENV": "test", "TRIAGE_LOG_FORMAT": "json"}
    log = open(tmp_path_factory.mktemp("memory") / "server.log", "wb")
    process = subprocess.Popen(
        serve_command(port), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _hostile_bodies() -> list[tuple[str, str, bytes]]:
    tiny_items = b'{"referrals": [' + b"1," * (BATCH_LIMIT // 2 - 16) + b"1]}"
    header = b"external_ref,victim.first_name,offence.category\n"
    tiny_rows = header + b"1\n" * ((BATCH_LIMIT - len(header)) // 2)
    strings = b'{"referrals": [' + b'"a",' * (BATCH_LIMIT // 4 - 8) + b'"a"]}'
    half = BATCH_LIMIT // 2 - 16
    deep = b'{"referrals": [' + b"[" * half + b"]" * half + b"]}"
    one_item = b'{"referrals": [[' + b"{}," * (BATCH_LIMIT // 3 - 16) + b"{}]]}"
    per_item = (BATCH_LIMIT - 64) // 10_000 - 2  # each item and its comma
    array_item = b"[" + b"{}," * ((per_item - 3) // 3) + b"{}]"
    arrays = b'{"referrals": [' + b",".join([array_item] * 10_000) + b"]}"
    wide_row = header + b"R1,A,theft" + b"," * (BATCH_LIMIT - len(header) - 16) + b"\n"
    return [
        ("json, one item of 11 million {}", "application/json", one_item),
        ("json, 10,000 items each an array of {}", "application/json", arrays),
        ("csv, one row of 33 million cells", "text/csv", wide_row),
        ("json of 16 million 1s", "application/json", tiny_items),
        ("csv of 16 million two-byte rows", "text/csv", tiny_rows),
        ("json of 8 million strings", "application/json", strings),
        ("json nested 16 million deep", "application/json", deep),
    ]


async def test_hostile_32_mib_bodies_keep_memory_bounded(
    server: tuple[str, int], make_key: Any
) -> None:
    base, pid = server
    _, key = await make_key("police")
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        # Warm up: imports, the catalogue, the pools.
        warm = await http.post(
            "/api/v1/referrals/batch",
            content=b'{"referrals": []}',
            headers={**bearer(key), "Content-Type": "application/json"},
        )
        assert warm.status_code == 200, warm.text
        before = peak_rss(pid)
        for what, media, body in _hostile_bodies():
            assert len(body) <= BATCH_LIMIT, what
            sending = asyncio.create_task(
                http.post(
                    "/api/v1/referrals/batch",
                    content=body,
                    headers={**bearer(key), "Content-Type": media},
                )
            )
            # The event loop is never held for long: the process keeps answering meanwhile.
            slowest = 0.0
            while not sending.done():
                started = time.monotonic()
                assert (await http.get("/healthz")).status_code == 200
                slowest = max(slowest, time.monotonic() - started)
                await asyncio.sleep(0.05)
            response = await sending
            assert slowest < 1.0, f"{what}: /healthz waited {slowest:.2f} s"
            assert response.status_code in (200, 400, 413, 422), (what, response.status_code)
            if response.status_code == 200:  # taken, with every item invalid
                assert response.json()["counts"]["created"] == 0, what
            else:
                assert response.headers["content-type"].startswith("application/problem+json")
            await asyncio.sleep(0)
            growth = peak_rss(pid) - before
            print(f"{what}: {response.status_code}, peak memory +{growth / MIB:.0f} MiB")
            assert growth < GROWTH_LIMIT, f"{what}: peak memory grew {growth / MIB:.0f} MiB"
        # Still answering.
        assert (await http.get("/readyz")).status_code == 200
