"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive, one request in flight
per connection). httpx spends more CPU per request than the servers it measures on a 2-core
machine; this keeps the client's share small so the figures are the servers'."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    marked_ms: list[float] = field(default_factory=list)  # latencies inside the marked window
    batch_seconds: float = 0.0  # how long the marked window (a batch) lasted

    def add(self, other: LoadResult) -> None:
        """Another turn of the same server: its requests and time added to these."""
        self.latencies_ms += other.latencies_ms
        self.marked_ms += other.marked_ms
        self.elapsed += other.elapsed
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed if self.elapsed else 0.0


class Bodies(Sequence[bytes]):
    """Bodies handed out in order across every turn, each once: `bodies[i]` is the next one
    whatever i is (the load generator asks by its own counter)."""

    def __init__(self, bodies: list[bytes]):
        self._bodies = bodies
        self._next = 0

    def __len__(self) -> int:
        return len(self._bodies)

    def __getitem__(self, _: Any) -> Any:
        body = self._bodies[self._next % len(self._bodies)]
        self._next += 1
        return body


def request_bytes(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def run_load(
    port: int,
    path: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    window: Callable[[], tuple[float, float]] | None = None,
) -> LoadResult:
    result = LoadResult()
    counter = 0
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal counter
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                body = bodies[counter % len(bodies)]
                counter += 1
                started = time.perf_counter()
                writer.write(request_bytes(path, body, headers))
                status = await _read_response(reader)
                finished = time.perf_counter()
                ms = (finished - started) * 1000
                result.latencies_ms.append(ms)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if window is not None:
                    low, high = window()
                    if low <= started and finished <= high:
                        result.marked_ms.append(ms)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result
