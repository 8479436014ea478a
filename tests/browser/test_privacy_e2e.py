"""The customer in a real browser: the privacy centre opened from the link staff created, in German by the
browser's language and switchable; a withdrawal that the staff view shows at once; the data export download."""

from __future__ import annotations

import json
import re
import zipfile

from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, accessible, shot, sign_in
from tests.browser.test_console_e2e import find_anna


def open_centre(staff: Page, customer: Page, server: Server, username: str) -> str:
    """Staff create Anna's privacy-centre link; Anna opens it. Answers her detail URL in the console."""
    sign_in(staff, server, username)
    detail = find_anna(staff, server)
    staff.click("form[action$='/preference-link'] button")
    link = staff.locator("#privacy-link").inner_text()
    customer.goto(link)
    customer.wait_for_url(f"{server.url}/privacy")  # the token left the address bar for a cookie
    return detail


def test_withdrawal_in_the_privacy_centre_shows_in_the_staff_view(page: Page, other_page: Page, server: Server) -> None:
    detail = open_centre(page, other_page, server, "agent")
    customer = other_page
    expect(customer.locator("html")).to_have_attribute("lang", "de")
    expect(customer.get_by_role("heading", name="Ihre Daten und Einwilligungen")).to_be_visible()
    accessible(customer)
    shot(customer, "privacy-centre-de")
    newsletter = customer.locator("section[data-purpose='newsletter']")
    if newsletter.locator("[data-state]").get_attribute("data-state") == "denied":
        newsletter.get_by_role("button", name="Ich willige ein").click()
        expect(customer.locator("#flash")).to_contain_text("Einwilligung")
    newsletter = customer.locator("section[data-purpose='newsletter']")
    newsletter.get_by_role("button", name="Einwilligung widerrufen").click()
    expect(customer.locator("#flash")).to_contain_text("nicht mehr verwendet für: Newsletter")
    expect(customer.locator("section[data-purpose='newsletter'] [data-state]")).to_have_attribute(
        "data-state", "denied"
    )
    customer.get_by_role("link", name="English").click()
    expect(customer.get_by_role("heading", name="Your data and your consents")).to_be_visible()
    shot(customer, "privacy-centre-en")

    page.goto(f"{detail}/consent")
    last = page.locator("#consent-ledger tbody tr").last
    expect(last).to_contain_text("newsletter")
    expect(last).to_contain_text("withdrawn")
    expect(page.locator("#consent-now tr", has_text="newsletter")).to_contain_text("no")
    accessible(page)
    shot(page, "console-consent-history")


def test_customer_downloads_their_data(page: Page, other_page: Page, server: Server) -> None:
    open_centre(page, other_page, server, "agent")
    customer = other_page
    customer.get_by_role("link", name="Ihre Daten", exact=True).click()
    accessible(customer)
    customer.get_by_role("button", name="Kopie anfordern").click()
    expect(customer.locator("#flash")).to_contain_text("Ihre Anfrage ist eingegangen")
    row = customer.locator("#requests tr[data-right='access']").first
    with customer.expect_download() as waiting:
        row.get_by_role("link", name="Meine Daten herunterladen").click()
    path = waiting.value.path()
    with zipfile.ZipFile(path) as bundle:
        assert {"data.json", "schema.json", "report.html"} <= set(bundle.namelist())
        data = json.loads(bundle.read("data.json"))
    assert re.search(r"anna\.beispiel\.0@example\.com", json.dumps(data))
    shot(customer, "privacy-your-data")
    customer.get_by_role("link", name="Wer hat meine Daten angesehen?").click()
    expect(customer.locator("#who-looked tbody tr").first).not_to_contain_text("Niemand")
    accessible(customer)
