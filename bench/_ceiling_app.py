"""The ceiling for bench/http.py: a minimal Litestar endpoint that decodes the same body and
does one insert. Run by the bench as `uvicorn bench._ceiling_app:app`."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, Request, get, post


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
    app.state.pool = await asyncpg.create_pool(
        os.environ["CEILING_DATABASE_URL"], min_size=4, max_size=10
    )
    yield
    await app.state.pool.close()


@post("/referrals", status_code=201)
async def create(request: Request[Any, Any, Any]) -> dict[str, str]:
    body = msgspec.json.decode(await request.body())
    referral_id = uuid.uuid4()
    async with request.app.state.pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO ceiling_referrals (id, external_ref, body) VALUES ($1, $2, $3::jsonb)",
            referral_id,
            body["external_ref"],
            msgspec.json.encode(body).decode(),
        )
    return {"id": str(referral_id)}


@get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar([create, ready], lifespan=[lifespan])
