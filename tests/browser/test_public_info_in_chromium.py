"""The public pages that ask nothing (issue 11) in real Chromium: axe (WCAG 2.2 AA) finds no
violation on any of them, with JavaScript and without; at 320 px wide nothing scrolls
sideways; "Exit this page" leaves for the neutral site on three presses of Shift (GOV.UK
Frontend's JavaScript) and as a plain link without JavaScript. The neutral site is a tiny
app on another local port, as the real one is another origin. Screenshots `public-*.png`."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from browser_support import assert_no_axe_violations, screenshot, watch
from litestar import Litestar, MediaType, get
from playwright.async_api import Page
from test_staff_narrow import TOO_WIDE

pytestmark = pytest.mark.integration

PAGES = {
    "/refer": "start",
    "/refer/professional": "start-professional",
    "/accessibility": "accessibility",
    "/privacy": "privacy",
    "/cover-your-tracks": "cover-your-tracks",
    "/refer/no-such-page": "not-found",
}
NARROW = {"viewport": {"width": 320, "height": 640}}


@get("/weather", media_type=MediaType.HTML)
async def weather() -> str:
    return "<!DOCTYPE html><html lang='en'><title>Weather</title><h1>Weather</h1></html>"


@pytest.fixture(scope="module")
def neutral_url(serve_app: Any) -> str:
    return serve_app(Litestar(route_handlers=[weather])) + "/weather"


@pytest.fixture(scope="module")
def public_url(serve_app: Any, app_settings: Any, neutral_url: str) -> str:
    from triage.app import create_app

    return serve_app(create_app(dataclasses.replace(app_settings, exit_url=neutral_url)))


async def _goto(page: Page, url: str) -> None:
    problems = watch(page)
    response = await page.goto(url)
    assert response is not None
    assert response.headers["cache-control"] == "no-store"
    if not url.endswith("no-such-page"):
        problems.assert_none()  # no CSP refusal, no failed asset, no script error


@pytest.mark.parametrize("path", PAGES)
async def test_public_page_has_no_axe_violations_with_and_without_javascript(
    new_page: Any, public_url: str, path: str
) -> None:
    page: Page = await new_page()
    await _goto(page, public_url + path)
    # GOV.UK Frontend's JavaScript ran: the Exit this page module is initialised.
    await page.wait_for_selector("body.govuk-frontend-supported")
    await page.wait_for_selector(
        '[data-module="govuk-exit-this-page"][data-govuk-exit-this-page-init]'
    )
    await screenshot(page, f"public-{PAGES[path]}")
    await assert_no_axe_violations(page)
    without_js: Page = await new_page(java_script_enabled=False)
    await _goto(without_js, public_url + path)
    await assert_no_axe_violations(without_js)


@pytest.mark.parametrize("path", PAGES)
async def test_public_page_at_320_px_never_scrolls_sideways(
    new_page: Any, public_url: str, path: str
) -> None:
    page: Page = await new_page(**NARROW)
    await _goto(page, public_url + path)
    await screenshot(page, f"public-narrow-{PAGES[path]}")
    await assert_no_axe_violations(page)
    assert await page.evaluate(TOO_WIDE) == [], path
    assert await page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    ), path


async def test_three_presses_of_shift_leave_for_the_neutral_site(
    page: Page, public_url: str, neutral_url: str
) -> None:
    await _goto(page, public_url + "/refer")
    await page.wait_for_selector("[data-govuk-exit-this-page-init]")
    async with page.expect_navigation(url=neutral_url):
        for _ in range(3):
            await page.keyboard.press("Shift")
    assert await page.title() == "Weather"


async def test_the_exit_button_works_without_javascript(
    page_without_js: Page, public_url: str, neutral_url: str
) -> None:
    await _goto(page_without_js, public_url + "/privacy")
    await page_without_js.get_by_role("button", name="Exit this page").click()
    await page_without_js.wait_for_url(neutral_url)
    assert await page_without_js.title() == "Weather"


async def test_the_exit_button_works_with_javascript(
    page: Page, public_url: str, neutral_url: str
) -> None:
    await _goto(page, public_url + "/refer/professional")
    await page.get_by_role("button", name="Exit this page").click()
    await page.wait_for_url(neutral_url)
