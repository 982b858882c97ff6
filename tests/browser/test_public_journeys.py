"""The public referral journeys (issue 11) in real Chromium, as a person would go through them:
the self-referral and the professional referral, each with JavaScript and without (the
JavaScript-off run on a 320 px wide phone screen). On every page, its error state included:
axe (WCAG 2.2 AA) finds nothing, nothing is wider than the screen, and the answer is
`no-store`. The referral arrives, triaged. Screenshots `public-journey-*.png`."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest
from browser_support import assert_no_axe_violations, screenshot, watch
from playwright.async_api import Page, expect
from test_staff_narrow import TOO_WIDE

pytestmark = pytest.mark.integration

NARROW = {"viewport": {"width": 320, "height": 640}}


def _surname() -> str:
    return "Z" + "".join(random.choice(string.ascii_lowercase) for _ in range(9))


async def _check(page: Page, name: str, narrow: bool) -> None:
    await assert_no_axe_violations(page)
    if narrow:
        assert await page.evaluate(TOO_WIDE) == [], name
    await screenshot(page, name)


async def _fill(page: Page, answers: dict[str, Any]) -> None:
    for name, value in answers.items():
        if isinstance(value, list):
            for item in value:
                await page.locator(f'input[name="{name}"][value="{item}"]').check()
        elif name.startswith("radio:"):
            await page.locator(f'input[name="{name[6:]}"][value="{value}"]').check()
        else:
            await page.locator(f'[name="{name}"]').fill(value)
    await page.get_by_role("button", name="Continue").click()


SELF = [
    (
        "about-you",
        {
            "victim.first_name": "Robin",
            "victim.last_name": "SURNAME",
            "victim.date_of_birth-day": "2",
            "victim.date_of_birth-month": "4",
            "victim.date_of_birth-year": "1990",
            "victim.address.postcode": "ME14 1XX",
        },
    ),
    ("what-happened", {"radio:offence.category": "stalking_harassment"}),
    ("support", {"needs": ["emotional", "safety"]}),
    (
        "contact",
        {
            "contact.channels": ["phone"],
            "victim.phone": "07700 900654",
            "radio:contact.voicemail_ok": "no",
            "radio:contact.letter_ok": "no",
        },
    ),
    ("follow-up", {"radio:consent.to_survey": "yes"}),
]
PROFESSIONAL = [
    (
        "about-you",
        {
            "referrer.name": "Dr Ada Jones",
            "referrer.organisation": "High Street Surgery",
            "referrer.role": "GP",
            "referrer.phone": "01632 960001",
            "referrer.email": "ada.jones@example.org",
        },
    ),
    ("victim", SELF[0][1]),
    ("consent", {"radio:consent.to_referral": "yes"}),
    *SELF[1:],
]


@pytest.mark.parametrize("journey", ["self", "professional"])
@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js-320px"])
async def test_a_referral_from_start_to_reference(
    new_page: Any, triage_url: str, sessions: Any, journey: str, javascript: bool
) -> None:
    from helpers import scalar

    base = "/refer" if journey == "self" else "/refer/professional"
    steps = SELF if journey == "self" else PROFESSIONAL
    shots = f"public-journey-{journey}-{'js' if javascript else 'nojs'}"
    narrow = not javascript
    surname = _surname()
    page: Page = await new_page(java_script_enabled=javascript, **(NARROW if narrow else {}))
    problems = watch(page)
    await page.goto(triage_url + base)
    await page.get_by_role("button", name="Start now").click()
    for index, (slug, answers) in enumerate(steps):
        await expect(page).to_have_url(f"{triage_url}{base}/{slug}")
        await _check(page, f"{shots}-{slug}", narrow)
        if index == 0:
            # The error state first: nothing answered.
            await page.get_by_role("button", name="Continue").click()
            await expect(page.locator(".govuk-error-summary")).to_be_visible()
            await _check(page, f"{shots}-{slug}-error", narrow)
        await _fill(page, {k: (surname if v == "SURNAME" else v) for k, v in answers.items()})
    await expect(page.get_by_role("heading", name="Check your answers")).to_be_visible()
    await _check(page, f"{shots}-check", narrow)
    await page.get_by_role("button", name="Send referral").click()
    await expect(page.locator(".govuk-panel__title")).to_have_text("Referral sent")
    await _check(page, f"{shots}-done", narrow)
    reference = (await page.locator(".govuk-panel__body strong").inner_text()).strip()
    # The back button finds nothing of it: the session ended with the confirmation.
    await page.go_back()
    assert surname not in await page.content()
    status = await scalar(
        sessions, "SELECT status FROM referrals WHERE reference = :r", r=reference
    )
    assert status == "triaged"
    unexpected = [p for p in problems.error_responses if not p.startswith("HTTP 400: POST")]
    assert not unexpected, unexpected
    assert not problems.failed_requests, problems.failed_requests
    assert not problems.page_errors, problems.page_errors
