"""The admin's pages in real Chromium: every page and its error states pass axe (WCAG 2.2 AA),
with screenshots; creating an account and an API key works with JavaScript disabled, and the
set-up link and the key are on the page that made them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from browser_support import assert_no_axe_violations, screenshot, watch
from playwright.async_api import Page, expect
from staff_support import make_staff
from test_staff_journeys import _sign_in

pytestmark = pytest.mark.integration


async def _check(page: Page, name: str) -> None:
    await assert_no_axe_violations(page)
    await screenshot(page, name)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_admin_pages_pass_axe_and_work_without_javascript(
    new_page: Any, triage_url: str, sessions: Any, javascript: bool
) -> None:
    page: Page = await new_page(java_script_enabled=javascript)
    problems = watch(page)
    admin = await make_staff(sessions, ("admin",))
    await _sign_in(page, triage_url, admin)
    await expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    shots = f"admin-{'js' if javascript else 'no-js'}"
    await _check(page, f"{shots}-users")

    # Create an account: the errors first, then the link on the page that made it.
    await page.get_by_role("button", name="Create a user").click()
    await expect(page.get_by_role("heading", name="Create a user")).to_be_visible()
    await _check(page, f"{shots}-user-new")
    await page.get_by_label("Email address").fill("not an email")
    await page.get_by_label("Caseworker: the cases of their services").check()
    await page.get_by_role("button", name="Create the account").click()
    await expect(page.locator(".govuk-error-summary")).to_be_visible()
    await _check(page, f"{shots}-user-new-error")
    await page.get_by_role("link", name="Enter an email address, like name@example.org").click()
    await page.get_by_label("Email address").fill(f"browser-{uuid.uuid4().hex[:8]}@example.org")
    await page.get_by_label("Independent Sexual Violence Adviser (isva)").check()
    await page.get_by_role("button", name="Create the account").click()
    await expect(page.get_by_role("heading", name="Account created")).to_be_visible()
    await expect(page.locator("#setup-link")).to_contain_text("/staff/set-up/")
    await _check(page, f"{shots}-user-created")
    await page.get_by_role("link", name="Go to the account").click()
    await expect(page.get_by_role("button", name="Disable the account")).to_be_visible()
    await _check(page, f"{shots}-user")

    # An API client and a key.
    await page.goto(f"{triage_url}/staff/admin/clients/new")
    await page.get_by_role("button", name="Create the client").click()
    await expect(page.locator(".govuk-error-summary")).to_be_visible()
    await _check(page, f"{shots}-client-new-error")
    await page.get_by_label("Name").fill(f"Browser client {uuid.uuid4().hex[:6]}")
    await page.get_by_label("Police system").check()
    await page.get_by_role("button", name="Create the client").click()
    await expect(page.get_by_text("Client created")).to_be_visible()
    await _check(page, f"{shots}-client")
    await page.get_by_role("button", name="Create a key").click()
    await expect(page.locator("#api-key")).to_contain_text("trg_")
    await _check(page, f"{shots}-key")
    await page.goto(f"{triage_url}/staff/admin/clients")
    await _check(page, f"{shots}-clients")

    await page.goto(f"{triage_url}/staff/admin/catalogue")
    await _check(page, f"{shots}-catalogue")

    # The audit trail, a filter error, and the chain check.
    await page.goto(f"{triage_url}/staff/admin/audit")
    await expect(page.locator("#events")).to_be_visible()
    await _check(page, f"{shots}-audit")
    await page.get_by_label("Record id").fill("not an id")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator(".govuk-error-summary")).to_be_visible()
    await _check(page, f"{shots}-audit-error")
    await page.get_by_role("button", name="Verify the chain").click()
    await expect(page.get_by_role("heading", name="Audit chain check")).to_be_visible()
    await _check(page, f"{shots}-audit-verify")
    # Pages answered 400 on purpose above; nothing else failed, nothing the CSP refused.
    assert [p for p in problems.all() if "400" not in p] == []
