"""Browser tests: Debian's Chromium (`make chromium`; never `playwright install`) driven by
Playwright's async API, pages served by uvicorn from a background thread.

Fixtures (helpers to import from browser_support: axe_violations, assert_no_axe_violations,
screenshot, watch):
    browser          session: the launched Chromium
    new_page         factory: `await new_page(**context_options)` -> a Page in a fresh context
    page             a Page in a fresh context
    page_without_js  a Page in a fresh context with JavaScript disabled
    serve_app        session factory: `serve_app(app)` -> base URL such as http://127.0.0.1:PORT
                     (the server stops at the end of the session)
    app_settings     session: the test Settings, after `servers` (tests/conftest.py) has started
                     PostgreSQL and Redis and set the environment
    triage_url       session: the real app, create_app(app_settings), served by serve_app
"""

from __future__ import annotations

import sys
from pathlib import Path

# The staff pages' tests make accounts as the integration tests do (staff_support).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, LiveServer, NewPage, ServeApp
from playwright.async_api import Browser, Page, async_playwright


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium); the browser "
            "tests use Debian's Chromium and never download one",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[NewPage]:
    contexts = []

    async def make(**context_options: Any) -> Page:
        context = await browser.new_context(**context_options)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        await context.close()


@pytest.fixture
async def page(new_page: NewPage) -> Page:
    return await new_page()


@pytest.fixture
async def page_without_js(new_page: NewPage) -> Page:
    return await new_page(java_script_enabled=False)


@pytest.fixture(scope="session")
def serve_app() -> Iterator[ServeApp]:
    servers: list[LiveServer] = []

    def serve(app: Any) -> str:
        server = LiveServer(app)
        servers.append(server)
        return server.start()

    yield serve
    for server in reversed(servers):
        server.stop()


@pytest.fixture(scope="session")
def app_settings(servers: Any) -> Any:
    from triage.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def triage_url(serve_app: ServeApp, app_settings: Any) -> str:
    from triage.app import create_app

    return serve_app(create_app(app_settings))
