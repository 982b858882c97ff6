"""The report pages (issue 13) in real Chromium: the commissioner's last-quarter report with its
charts and tables, its error state (a month that is not one), and the duty lead's exact report
with the breaches by reference; with JavaScript and without (320 px wide). axe (WCAG 2.2 AA)
finds nothing on any; nothing is wider than the screen. Screenshots `reports-*.png`."""

from __future__ import annotations

from typing import Any

import pytest
from browser_support import assert_no_axe_violations, screenshot, watch
from playwright.async_api import Page, expect
from staff_support import make_staff
from test_staff_journeys import _sign_in
from test_staff_narrow import TOO_WIDE

pytestmark = pytest.mark.integration

NARROW = {"viewport": {"width": 320, "height": 640}}


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
@pytest.mark.parametrize("role", ["commissioner", "duty_lead"])
async def test_the_report_pages(
    new_page: Any, triage_url: str, sessions: Any, javascript: bool, role: str
) -> None:
    narrow = not javascript
    page: Page = await new_page(java_script_enabled=javascript, **(NARROW if narrow else {}))
    problems = watch(page)
    await _sign_in(page, triage_url, await make_staff(sessions, (role,)))
    await page.goto(f"{triage_url}/staff/reports")
    await expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    await expect(page.locator("svg[role=img]").first).to_be_visible()
    shots = f"reports-{role}-{'js' if javascript else 'nojs'}"

    async def check(name: str) -> None:
        await assert_no_axe_violations(page)
        if narrow:
            assert await page.evaluate(TOO_WIDE) == [], name
        await screenshot(page, f"{shots}-{name}")

    await check("last-quarter")
    text = await page.content()
    assert ("Counts under 5 show as" in text) is (role == "commissioner")
    assert ("Deadlines missed, by referral" in text) is (role == "duty_lead")
    await page.get_by_label("First month").fill("2026-13")
    await page.get_by_role("button", name="Show the report").click()
    await expect(page.locator(".govuk-error-summary")).to_be_visible()
    await check("error")
    unexpected = [p for p in problems.error_responses if not p.startswith("HTTP 400: GET")]
    assert not unexpected, unexpected
    assert not problems.page_errors, problems.page_errors
