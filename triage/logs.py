"""Structured logs: JSON in production, readable in dev; request ids; no personal data.

Access lines carry the method, the path without its query string (a crime number is not for
logs) and without a link's token (`/survey/…`, `/staff/set-up/…`: whoever reads the logs must
not be able to open someone's survey or set up a staff account), the status and the time taken.
Nothing from a body is ever logged.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
import uuid
from typing import Any

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("triage.access")

# Paths whose next segment is a secret (a link's token): logged as the prefix and an ellipsis.
TOKEN_PATHS = ("/survey/", "/staff/set-up/")


def loggable_path(path: str | None) -> str | None:
    """The path as an access line may carry it: a link's token replaced by `…` (whatever
    follows it too, such as `/two-factor`, is kept)."""
    if not path:
        return path
    for prefix in TOKEN_PATHS:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            _, slash, after = rest.partition("/")
            return f"{prefix}\u2026{slash}{after}"
    return path


def configure_logging(json_logs: bool = True, level: int = logging.INFO) -> None:
    renderer: Any
    if json_logs:
        # One line of JSON per event, encoded by msgspec (anything it cannot encode is
        # written as its str) and written as bytes: an access line on every request.
        encoder = msgspec.json.Encoder(enc_hook=str)
        renderer = structlog.processors.JSONRenderer(
            serializer=lambda event, **_: encoder.encode(event)
        )
        factory: Any = _StdoutLines
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        factory = structlog.PrintLoggerFactory()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


class _StdoutLines:
    """Each event one write of one line to file descriptor 1: whatever sys.stdout is at the
    time, and lines from several processes never interleave (one write under PIPE_BUF)."""

    def __init__(self, *_: Any) -> None:
        pass

    def msg(self, message: bytes) -> None:
        line = memoryview(message + b"\n")
        while line:
            line = line[os.write(1, line) :]

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=loggable_path(scope.get("path")),
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
            structlog.contextvars.clear_contextvars()


def describe_error(error: BaseException) -> dict[str, Any]:
    """What may be logged of an error: its kind, where it happened and the database's code,
    never its text (a database error's text can quote the values of the statement that
    failed, and any message can quote the data that was sent)."""
    frames = [
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}:{frame.name}"
        for frame in traceback.extract_tb(error.__traceback__)
    ][-8:]
    cause = getattr(error, "orig", None) or error.__cause__ or error.__context__
    return {
        "exc_type": type(error).__name__,
        "frames": frames,
        "cause_type": type(cause).__name__ if cause else None,
        "sqlstate": next(
            (
                code
                for seen in (error, cause)
                for code in (getattr(seen, "sqlstate", None), getattr(seen, "pgcode", None))
                if isinstance(code, str)
            ),
            None,
        ),
    }
