"""The satisfaction survey (issue 12) in real Chromium, as a victim on a phone would answer it:
with JavaScript and without (the JavaScript-off run on a 320 px wide screen). The page, its
error state (an answer too long), the thank-you page and the neutral page a used link opens:
axe (WCAG 2.2 AA) finds nothing on any, nothing is wider than the screen, and every answer is
`no-store`. The answers arrive on the case. Screenshots `survey-*.png`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from browser_support import assert_no_axe_violations, screenshot, watch
from playwright.async_api import Page, expect
from test_staff_narrow import TOO_WIDE

pytestmark = pytest.mark.integration

NARROW = {"viewport": {"width": 320, "height": 640}}


async def _check(page: Page, name: str, narrow: bool) -> None:
    await assert_no_axe_violations(page)
    if narrow:
        assert await page.evaluate(TOO_WIDE) == [], name
    await screenshot(page, name)


async def _police(sessions: Any) -> dict[str, str]:
    import uuid

    from triage.services.api_keys import create_client, create_key
    from triage.settings import get_settings

    name = f"test-police-{uuid.uuid4().hex[:8]}"
    async with sessions() as db:
        await create_client(db, name, "police")
    async with sessions() as db:
        key = await create_key(db, get_settings().secret_key, name)
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
async def test_a_survey_from_the_link_to_thank_you(
    new_page: Any, triage_url: str, sessions: Any, javascript: bool
) -> None:
    from contact_support import reset_clock
    from helpers import scalar
    from survey_support import invitation, invited

    from triage.services.notifier import OutboxNotifier

    shots = f"survey-{'js' if javascript else 'nojs'}"
    narrow = not javascript
    try:
        async with httpx.AsyncClient(base_url=triage_url) as web:
            made, link = await invited(
                web, sessions, await _police(sessions), OutboxNotifier(sessions)
            )
        page: Page = await new_page(java_script_enabled=javascript, **(NARROW if narrow else {}))
        problems = watch(page)
        answer = await page.goto(triage_url + link)
        assert answer is not None and answer.headers["cache-control"] == "no-store"
        await expect(page.get_by_role("heading", name="Your feedback")).to_be_visible()
        await _check(page, f"{shots}-page", narrow)
        # The error state: an answer too long (typed past the limit; the character count
        # warns with JavaScript, the server refuses either way).
        await page.locator('[name="comments"]').fill("x" * 2001)
        await page.locator('input[name="satisfaction"][value="4"]').check()
        await page.get_by_role("button", name="Send your answers").click()
        await expect(page.locator(".govuk-error-summary")).to_be_visible()
        await _check(page, f"{shots}-error", narrow)
        # The answer chosen came back; put right, it goes.
        assert await page.locator('input[name="satisfaction"][value="4"]').is_checked()
        await page.locator('[name="comments"]').fill("Thank you for listening.")
        await page.locator('input[name="recommend"][value="yes"]').check()
        await page.locator('input[name="wellbeing"][value="5"]').check()
        await page.get_by_role("button", name="Send your answers").click()
        await expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
        await _check(page, f"{shots}-thank-you", narrow)
        # Used: the link opens the neutral page only.
        await page.goto(triage_url + link)
        await expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
        await _check(page, f"{shots}-used", narrow)
        done = await invitation(sessions, made["id"])
        assert done.status == "completed"
        answers = await scalar(
            sessions, "SELECT answers FROM survey_responses WHERE invitation_id = :i", i=done.id
        )
        assert answers == {"satisfaction": 4, "recommend": "yes", "wellbeing": 5}
        unexpected = [
            p
            for p in problems.error_responses
            if not p.startswith(("HTTP 400: POST", "HTTP 404: GET"))
        ]
        assert not unexpected, unexpected
        assert not problems.failed_requests, problems.failed_requests
        assert not problems.page_errors, problems.page_errors
    finally:
        await reset_clock(sessions)
