"""Group commit for single referrals: requests that arrive while a write is in flight share
the next statement.

Each referral is still all-or-nothing (its rows are in one statement with the others), and a
request is answered only after the statement that holds it has committed. Under light load a
referral goes alone at once; under heavy load the writers take whatever has queued, so the
database does one statement and one commit for many referrals instead of one each. If a
shared statement fails, its referrals are written again one by one, so one bad referral
never fails the others.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from db.errors import out_of_reach
from db.pool import connection
from triage.services.referral_rows import RowSet
from triage.services.referral_writes import write_referrals

MAX_GROUP = 64  # referrals in one statement
# One writer per process makes the biggest groups (least database work per referral); more
# are started only while every writer has been on one statement for STUCK_AFTER (waiting on
# a lock, say), so one slow statement never holds up every referral behind it.
WRITERS = 4
STUCK_AFTER = 0.05  # seconds
MAX_QUEUE = 2000  # referrals waiting in one process; beyond it, 503 and Retry-After


class WriterBusy(RuntimeError):
    """The database is not keeping up: the client should try again shortly."""


@dataclass(frozen=True)
class Numbering:
    """Where the references come from: the same for every referral in one statement."""

    sequence: str
    prefix: str
    digits: int


@dataclass
class _Pending:
    numbering: Numbering
    rows: RowSet
    future: asyncio.Future[dict[uuid.UUID, str]]


class GroupWriter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        writers: int = WRITERS,
        max_group: int = MAX_GROUP,
        max_queue: int = MAX_QUEUE,
    ):
        self.pool = pool
        self._writers = writers
        self._max_group = max_group
        self._max_queue = max_queue
        self._queue: list[_Pending] = []
        self._running: set[asyncio.Task[None]] = set()
        self._busy_since: dict[asyncio.Task[Any], float] = {}  # writer -> its statement's start

    async def write(self, rows: RowSet, numbering: Numbering) -> dict[uuid.UUID, str]:
        """Write `rows` (one referral's); the ids the unique index let in, with references."""
        if len(self._queue) >= self._max_queue:
            raise WriterBusy("too many referrals waiting to be written")
        future: asyncio.Future[dict[uuid.UUID, str]] = asyncio.get_running_loop().create_future()
        # If the requester has gone, nobody reads the outcome: take it here, so an error
        # is not reported as "never retrieved".
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._queue.append(_Pending(numbering, rows, future))
        if self._needs_writer():
            task = asyncio.create_task(self._drain())
            self._running.add(task)
            self._busy_since[task] = time.monotonic()
            task.add_done_callback(self._finished)
        # A request that goes away (client gone) leaves its write to finish: the referral is
        # there when the client sends it again, and is then answered `existing`.
        return await asyncio.shield(future)

    def _needs_writer(self) -> bool:
        if not self._running:
            return True
        if len(self._running) >= self._writers:
            return False
        now = time.monotonic()
        return all(now - started > STUCK_AFTER for started in self._busy_since.values())

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._busy_since.pop(task, None)

    async def _drain(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        try:
            while self._queue:
                self._busy_since[me] = time.monotonic()
                numbering = self._queue[0].numbering
                group = [p for p in self._queue if p.numbering == numbering][: self._max_group]
                taken = {id(p) for p in group}
                self._queue = [p for p in self._queue if id(p) not in taken]
                try:
                    await self._write_group(numbering, group)
                except BaseException as stopped:  # cancelled at shutdown: answer, never hang
                    for pending in group:
                        _settle(pending, error=stopped)
                    raise
        finally:
            # Off the list in the same step that found the queue empty: a write queued after
            # this (before a done-callback would run) must start a writer of its own.
            self._finished(me)

    async def _write_group(self, numbering: Numbering, group: list[_Pending]) -> None:
        rows = RowSet()
        for pending in group:
            rows.extend(pending.rows)
        try:
            won = await self._statement(rows, numbering)
        except Exception as error:
            if len(group) == 1 or out_of_reach(error):
                # Out of reach: one by one would only fail slower. Every request answers 503.
                for pending in group:
                    _settle(pending, error=error)
                return
            # Nothing of the shared statement was written (a bad row, a lock waited on too
            # long, a deadlock): try each on its own.
            for pending in group:
                try:
                    _settle(pending, await self._statement(pending.rows, numbering))
                except Exception as single_error:
                    _settle(pending, error=single_error)
            return
        for pending in group:
            _settle(pending, won)

    async def _statement(self, rows: RowSet, numbering: Numbering) -> dict[uuid.UUID, str]:
        async with connection(self.pool) as db:
            return await write_referrals(
                db,
                rows,
                sequence=numbering.sequence,
                prefix=numbering.prefix,
                digits=numbering.digits,
            )


def _settle(
    pending: _Pending,
    won: dict[uuid.UUID, str] | None = None,
    *,
    error: BaseException | None = None,
) -> None:
    if pending.future.done():
        return
    if error is not None:
        pending.future.set_exception(error)
        return
    assert won is not None
    mine = {row["id"] for row in pending.rows.referrals}
    pending.future.set_result({i: ref for i, ref in won.items() if i in mine})
