"""The staff pages in real Chromium: sign in with TOTP, work the queue, open a referral, record
a call outcome, override with a reason, close a case, take a phone referral; axe (WCAG 2.2 AA)
reports no violation on any page, error states included; the same journey works with
JavaScript disabled. Screenshots of each page go to tests/browser/screenshots/."""

from __future__ import annotations

import uuid
from typing import Any

import pyotp
import pytest
from browser_support import assert_no_axe_violations, screenshot, watch
from playwright.async_api import Page, expect
from staff_support import PASSWORD, StaffUser, make_staff

pytestmark = pytest.mark.integration


async def _referral(sessions: Any, triage_url: str) -> dict[str, Any]:
    """A referral through the real API (a police key made for the test), due for a call."""
    import httpx
    from helpers import referral
    from sqlalchemy import text

    from triage.services.api_keys import create_client, create_key
    from triage.settings import get_settings

    name = f"browser-{uuid.uuid4().hex[:8]}"
    async with sessions() as db:
        await create_client(db, name, "police")
        key = await create_key(db, get_settings().secret_key, name, ())
    async with httpx.AsyncClient(base_url=triage_url) as client:
        response = await client.post(
            "/api/v1/referrals",
            json=referral(**{"risk.level": "high"}),
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    async with sessions() as db:
        await db.execute(
            text(
                "UPDATE contact_steps SET status = 'due', kind = 'call', due_at = now() "
                "- interval '1 minute' WHERE referral_id = :r AND status = 'scheduled'"
            ),
            {"r": made["id"]},
        )
        await db.commit()
    return made


async def _check(page: Page, name: str) -> None:
    await assert_no_axe_violations(page)
    await screenshot(page, name)


async def _sign_in(page: Page, base: str, user: StaffUser, shots: str | None = None) -> None:
    await page.goto(f"{base}/staff/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    if shots:
        await _check(page, f"{shots}-sign-in")
        # The error state too: an error summary linked to the field.
        await page.get_by_role("button", name="Continue").click()
        await expect(page.locator(".govuk-error-summary")).to_be_visible()
        await _check(page, f"{shots}-sign-in-error")
    await page.get_by_label("Email address").fill(user.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Enter your security code")).to_be_visible()
    if shots:
        await _check(page, f"{shots}-two-factor")
    await page.get_by_label("Security code").fill(pyotp.TOTP(user.totp_secret).now())
    await page.get_by_role("button", name="Sign in").click()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_hub_works_a_referral_from_the_queue(
    new_page: Any, triage_url: str, sessions: Any, javascript: bool
) -> None:
    shots = "hub" if javascript else "hub-nojs"
    made = await _referral(sessions, triage_url)
    user = await make_staff(sessions, ("hub",))
    page: Page = await new_page(java_script_enabled=javascript)
    problems = watch(page)
    await _sign_in(page, triage_url, user, shots)
    await expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    await page.goto(f"{triage_url}/staff/queue?priority=P1")
    await _check(page, f"{shots}-queue")
    # A filter edited by hand in the address: its error, linked to the field.
    await page.goto(f"{triage_url}/staff/queue?area=atlantis")
    await expect(page.locator(".govuk-error-summary")).to_contain_text(
        "Choose an area from the list"
    )
    await _check(page, f"{shots}-queue-error")
    # Calls due, most urgent first: the referral's first call is there; open it from there.
    await page.goto(f"{triage_url}/staff/calls")
    await _check(page, f"{shots}-calls")
    await page.get_by_role("link", name=made["reference"]).click()
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await _check(page, f"{shots}-referral")
    # Record the call: an error first (nothing chosen), then an outcome.
    await page.get_by_role("button", name="Record the call").click()
    await expect(page.locator(".govuk-error-summary")).to_be_visible()
    await _check(page, f"{shots}-referral-error")
    await page.get_by_label("No answer").check()
    await page.get_by_role("button", name="Record the call").click()
    await expect(page.locator(".govuk-notification-banner")).to_contain_text(
        "Call recorded: no answer"
    )
    # Override with a reason: without one first.
    await page.get_by_label("Change the priority").check()
    await page.get_by_label("New priority").select_option("P2")
    await page.get_by_role("button", name="Override the decision").click()
    await expect(page.locator(".govuk-error-summary")).to_contain_text("Enter the reason")
    await page.get_by_label("Change the priority").check()
    await page.get_by_label("New priority").select_option("P2")
    await page.get_by_label("Reason for the override").fill("police say the risk has gone down")
    await page.get_by_role("button", name="Override the decision").click()
    await expect(page.locator(".govuk-notification-banner")).to_contain_text("Decision overridden")
    await expect(page.get_by_text("police say the risk has gone down")).to_be_visible()
    await _check(page, f"{shots}-referral-overridden")
    # The phone referral page.
    await page.goto(f"{triage_url}/staff/phone-referral/")
    await _check(page, f"{shots}-phone-referral")
    await page.get_by_role("button", name="Take the referral").click()
    await expect(page.locator(".govuk-error-summary")).to_be_visible()
    await _check(page, f"{shots}-phone-referral-error")
    await page.get_by_label("The victim", exact=True).check()
    await page.get_by_label("First name").fill("Robin")
    await page.get_by_label("Last name").fill("Ellis")
    await page.get_by_label("Phone number").fill("07700 900321")
    await page.get_by_label("What happened").select_option("theft")
    await page.get_by_label("Phone call").check()
    await page.locator("#consent\\.to_referral").check()
    await page.get_by_role("button", name="Take the referral").click()
    await expect(page.get_by_role("heading", name="Robin Ellis")).to_be_visible()
    await page.goto(f"{triage_url}/staff/account")
    await _check(page, f"{shots}-account")
    await page.goto(f"{triage_url}/staff/nowhere")
    await _check(page, f"{shots}-not-found")
    # The only error answers are the error states asked for (a form sent incomplete: 400;
    # a page that does not exist: 404); every asset, font and script loaded.
    unexpected = [
        p
        for p in problems.error_responses
        if not (p.startswith("HTTP 400: POST") or "/staff/nowhere" in p or "area=atlantis" in p)
    ]
    assert not unexpected, unexpected
    assert not problems.failed_requests, problems.failed_requests
    assert not [c for c in problems.console_errors if "Failed to load resource" not in c], (
        problems.console_errors
    )
    assert not problems.page_errors, problems.page_errors


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_caseworker_closes_a_case(
    new_page: Any, triage_url: str, sessions: Any, javascript: bool
) -> None:
    from helpers import rows

    shots = "caseworker" if javascript else "caseworker-nojs"
    made = await _referral(sessions, triage_url)
    services = [
        s
        for (s,) in await rows(
            sessions, "SELECT service FROM cases WHERE referral_id = :r", r=made["id"]
        )
    ]
    user = await make_staff(sessions, ("caseworker",), tuple(services))
    page: Page = await new_page(java_script_enabled=javascript)
    await _sign_in(page, triage_url, user)
    await expect(page.get_by_role("heading", name="Caseload")).to_be_visible()
    await _check(page, f"{shots}-caseload")
    await page.goto(f"{triage_url}/staff/referrals/{made['id']}")
    await page.get_by_role("link", name=f"{services[0]} case").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("case")
    await _check(page, f"{shots}-case")
    await page.get_by_role("button", name="Assign to me").click()
    await page.get_by_role("button", name="Start support").click()
    await expect(page.locator(".govuk-error-summary")).to_be_visible()
    await _check(page, f"{shots}-case-error")
    await page.get_by_label("Emotional").check()
    await page.get_by_label("Support plan").fill("weekly calls for a month")
    await page.get_by_role("button", name="Start support").click()
    await expect(page.locator(".govuk-notification-banner")).to_contain_text("Support started")
    await page.get_by_label("Supported").check()
    await page.get_by_role("button", name="Close the case").click()
    await expect(page.locator(".govuk-notification-banner")).to_contain_text("Case closed")
    await expect(page.get_by_role("heading", name="Re-open the case")).to_be_visible()
    await _check(page, f"{shots}-case-closed")


async def test_duty_lead_and_other_roles_pages_pass_axe(
    new_page: Any, triage_url: str, sessions: Any
) -> None:
    page: Page = await new_page()
    lead = await make_staff(sessions, ("duty_lead",))
    await _sign_in(page, triage_url, lead)
    for path, name in (
        ("/staff/alerts", "duty-lead-alerts"),
        ("/staff/caseload/reassign", "duty-lead-reassign"),
    ):
        await page.goto(f"{triage_url}{path}")
        await _check(page, name)
    await page.get_by_role("button", name="Reassign the cases").click()
    await _check(page, "duty-lead-reassign-error")
    other: Page = await new_page()
    commissioner = await make_staff(sessions, ("commissioner",))
    await _sign_in(other, triage_url, commissioner)
    await other.goto(f"{triage_url}/staff/queue")
    await expect(other.get_by_role("heading", level=1)).to_contain_text("permission")
    await _check(other, "commissioner-forbidden")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_hub_searches_and_sees_a_possible_duplicate(
    new_page: Any, triage_url: str, sessions: Any, javascript: bool
) -> None:
    shots = "search" if javascript else "search-nojs"
    first = await _referral(sessions, triage_url)
    second = await _referral(sessions, triage_url)  # the same person: a possible duplicate
    page: Page = await new_page(java_script_enabled=javascript)
    await _sign_in(page, triage_url, await make_staff(sessions, ("hub",)))
    await page.goto(f"{triage_url}/staff/search")
    await _check(page, f"{shots}-empty")
    await page.get_by_label("Search referrals").fill(second["reference"])
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name=second["reference"]).click()
    await expect(page.get_by_role("heading", name="Possible duplicates")).to_be_visible()
    await expect(page.get_by_role("link", name=first["reference"])).to_be_visible()
    await _check(page, f"{shots}-duplicate")
    await page.goto(f"{triage_url}/staff/search?q=%25")
    await expect(page.locator(".govuk-error-summary")).to_be_visible()
    await _check(page, f"{shots}-error")
