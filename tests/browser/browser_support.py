"""Browser-test helpers: Debian's Chromium driven by Playwright's async API, axe-core checks,
full-page screenshots, a recorder of failed requests and console errors, and a Litestar app
served by uvicorn on a background thread.

Async because the tests run on pytest-asyncio's one session loop (pyproject), as the database
fixtures do: a page test can seed rows with `sessions` and drive the browser in one test.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import uvicorn
from playwright.async_api import ConsoleMessage, Page, Request, Response

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling hosts this machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The fixtures' types (conftest.py): `await new_page(**context_options)`, `serve_app(app)`.
NewPage = Callable[..., Awaitable[Page]]
ServeApp = Callable[[Any], str]

AXE_SECONDS = 60
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


# ---------------------------------------------------------------------------------------- axe


@cache
def axe_source() -> str:
    if not AXE_JS.is_file():
        raise FileNotFoundError(
            f"{AXE_JS} is missing: run `make assets` (npm ci installs axe-core, a devDependency)"
        )
    return AXE_JS.read_text(encoding="utf-8")


# A page whose JavaScript is disabled (java_script_enabled=False) runs no timer, event or
# queueMicrotask callback, only promise jobs, and axe.run() waits on timers: it would never
# settle. Before axe goes into such a page (where no script of its own can run) short timers
# become promise jobs and long ones, axe's watchdogs, never fire.
TIMERS_AS_PROMISE_JOBS = """() => {
    window.setTimeout = (callback, delay, ...args) => {
        if (typeof callback === "function" && !(delay > 1)) {
            Promise.resolve().then(() => callback(...args));
        }
        return 0;
    };
    window.clearTimeout = () => {};
    window.queueMicrotask = (callback) => { Promise.resolve().then(callback); };
}"""
# A <noscript> child is parsed as elements only when scripting is off.
SCRIPTING_ENABLED = """() => {
    const probe = document.createElement("div");
    probe.innerHTML = "<noscript><i></i></noscript>";
    return probe.querySelector("noscript i") === null;
}"""
AXE_RUN = """async ([tags, preload]) => {
    const results = await window.axe.run(document, {
        runOnly: {type: "tag", values: tags},
        resultTypes: ["violations"],
        preload: preload,
    });
    return results.violations;
}"""


async def axe_violations(page: Page, tags: list[str] | None = None) -> list[dict[str, Any]]:
    """axe-core's violations for the page as it is now (run it again after each step).

    axe goes in by evaluating its source, not with add_script_tag: Playwright's evaluate is
    not subject to the page's Content-Security-Policy, so a strict `script-src` (as the app
    sends) does not block it. Only `violations` come back, not `incomplete`.

    With JavaScript disabled the page is checked as it renders without it (<noscript>
    shown), but axe cannot fetch the stylesheets (its `preload`, for css-orientation-lock)
    nor enter frames: check the same page with JavaScript too."""
    scripting = await page.evaluate(SCRIPTING_ENABLED)
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        if not scripting:
            await page.evaluate(TIMERS_AS_PROMISE_JOBS)
        await page.evaluate(axe_source())
    try:
        async with asyncio.timeout(AXE_SECONDS):
            violations: list[dict[str, Any]] = await page.evaluate(
                AXE_RUN, [tags or AXE_TAGS, scripting]
            )
    except TimeoutError:
        raise AssertionError(f"axe did not finish within {AXE_SECONDS} s on {page.url}") from None
    return violations


def format_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"{violation['id']} ({violation.get('impact') or 'no impact given'}): "
            f"{violation['help']} [{violation.get('helpUrl', '')}]"
        )
        for node in violation.get("nodes", []):
            target = " >> ".join(_selector(part) for part in node.get("target", []))
            summary = (node.get("failureSummary") or "").replace("\n", " ").strip()
            lines.append(f"    {target}  {node.get('html', '')[:120]}")
            if summary:
                lines.append(f"        {summary[:300]}")
    return "\n".join(lines)


def _selector(part: Any) -> str:
    # A target is one selector per frame; a selector into shadow roots is a list of them.
    return " >>> ".join(part) if isinstance(part, list) else str(part)


async def assert_no_axe_violations(page: Page, tags: list[str] | None = None) -> None:
    violations = await axe_violations(page, tags)
    if violations:
        raise AssertionError(
            f"axe found {len(violations)} accessibility violation(s) on {page.url}:\n"
            + format_violations(violations)
        )


# ---------------------------------------------------------------------------------- screenshots


async def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG at tests/browser/screenshots/<name>.png (git-ignored)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"screenshot name {name!r}: use letters, digits, '_', '-' and '.'")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path


# ------------------------------------------------------------------------------ page problems


@dataclass
class PageProblems:
    """What went wrong while the page loaded: requests that failed (no response), responses
    of 400 and over, console errors (CSP refusals show here) and uncaught exceptions."""

    failed_requests: list[str] = field(default_factory=list)
    error_responses: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)

    def all(self) -> list[str]:
        return self.failed_requests + self.error_responses + self.console_errors + self.page_errors

    def assert_none(self) -> None:
        problems = self.all()
        if problems:
            raise AssertionError("the page had problems:\n  " + "\n  ".join(problems))


def watch(page: Page) -> PageProblems:
    """Start recording a page's problems (call before `goto`)."""
    problems = PageProblems()

    def on_failed(request: Request) -> None:
        problems.failed_requests.append(
            f"request failed: {request.method} {request.url} ({request.failure})"
        )

    def on_response(response: Response) -> None:
        problems.responses.append(response)
        if response.status >= 400:
            problems.error_responses.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.console_errors.append(f"console error: {message.text}")

    def on_page_error(error: Exception) -> None:
        problems.page_errors.append(f"uncaught: {error}")

    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return problems


# --------------------------------------------------------------------------------- live server


class LiveServer:
    """An ASGI app under uvicorn on its own thread (and so its own event loop, where the app's
    lifespan makes its pools) on a free 127.0.0.1 port. One server per app object."""

    def __init__(self, app: Any) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Bound now and handed to uvicorn, so no other process can take the port in between.
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app,
            lifespan="on",
            access_log=False,
            # uvicorn's own logging config would replace the test run's (pytest's capture).
            log_config=None,
            log_level="warning",
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"live-server-{port}",
            daemon=True,
        )

    def start(self, timeout: float = 20.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(
                    f"the app did not start under uvicorn at {self.base_url} (its lifespan "
                    "failed? see the captured log)"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the app did not start within {timeout} s at {self.base_url}")
            time.sleep(0.02)
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()
