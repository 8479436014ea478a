"""Staff in a real browser: sign-in with TOTP, search, the masked view of a support agent, reveal for a
purpose; every page passes an axe-core accessibility check and is photographed."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, accessible, shot, sign_in

ANNA = "anna.beispiel.0@example.com"  # the demo seed's first invented customer


def find_anna(page: Page, server: Server, email: str = ANNA) -> str:
    """Searches by email (posted, never in the URL) and opens the one match; answers its detail URL."""
    page.goto(f"{server.url}/console/customers")
    page.select_option("#key", "email")
    page.fill("#term", email)
    page.click("form[role=search] button")
    expect(page.get_by_role("heading", name="1 found")).to_be_visible()
    assert email not in page.url
    page.locator("tbody a").first.click()
    page.wait_for_url(re.compile(r"/console/customers/[0-9a-f-]{36}$"))
    return page.url


def test_sign_in_with_totp_search_and_masked_view(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/console/sign-in")
    expect(page.locator("#workspace")).to_have_value("demo")
    accessible(page)
    shot(page, "console-sign-in")
    sign_in(page, server, "agent")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.goto(f"{server.url}/console/customers")
    accessible(page)
    shot(page, "console-customers")
    find_anna(page, server)
    fields = page.locator("#fields")
    expect(fields).not_to_contain_text("Beispiel")  # a support agent sees names masked without a purpose
    expect(fields).not_to_contain_text(ANNA)
    expect(fields.locator(".tag.masked").first).to_be_visible()
    accessible(page)
    shot(page, "console-customer-masked")


def test_reveal_asks_for_a_purpose_and_shows_only_what_policy_allows(page: Page, server: Server) -> None:
    sign_in(page, server, "agent")
    find_anna(page, server)
    page.select_option("#purpose", "support")
    page.fill("#ticket", "SUP-1234")
    page.click("form[action$='/reveal'] button")
    fields = page.locator("#fields")
    expect(page.get_by_role("heading", name=re.compile("Shown for the purpose"))).to_be_visible()
    expect(fields).to_contain_text("Beispiel")  # identity is revealed for support
    expect(fields.locator("dd", has_text="DE").first).to_be_visible()
    iban = fields.locator("dd[data-field='IBAN']")
    expect(iban).not_to_have_text(re.compile(r"^DE\d{20}$"))  # financial data stays masked for support
    assert "purpose" not in page.url
    accessible(page)
    shot(page, "console-customer-revealed")
