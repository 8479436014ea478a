"""The customer in a real browser: the privacy centre opened from the link staff created, in German by the
browser's language and switchable; a withdrawal that the staff view shows at once; the data export download."""

from __future__ import annotations

import json
import re
import zipfile

from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, accessible, shot, sign_in
from tests.browser.test_console_e2e import ANNA, find_anna


def open_centre(staff: Page, customer: Page, server: Server, username: str, email: str = ANNA) -> str:
    """Staff create the customer's privacy-centre link; the customer opens it. Answers the detail URL."""
    sign_in(staff, server, username)
    detail = find_anna(staff, server, email)
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


def test_erasure_request_end_to_end(page: Page, other_page: Page, server: Server) -> None:
    """The customer asks for erasure (seeing first what is kept), the privacy officer completes it in the
    console, the certificate is shown, and the customer's record is gone for staff."""
    detail = open_centre(page, other_page, server, "agent", "ben.fiktiv.1@example.com")
    customer = other_page
    customer.goto(f"{server.url}/privacy/data")
    expect(customer.locator("#kept")).to_contain_text("Nichts")
    button = customer.get_by_role("button", name="Löschung beantragen")
    expect(button).to_be_disabled()  # until the word is typed
    customer.fill("#confirm", "LÖSCHEN")
    button.click()
    expect(customer.locator("#flash")).to_contain_text("Ihre Anfrage ist eingegangen")
    expect(customer.locator("#requests tr[data-right='erasure']")).to_contain_text("verified")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server, "privacy")
    accessible(page)
    shot(page, "console-dashboard")
    page.goto(f"{server.url}/console/audit")
    accessible(page)
    shot(page, "console-access-log")
    page.goto(f"{server.url}/console/requests")
    accessible(page)
    shot(page, "console-requests")
    page.locator("tbody tr", has_text="erasure").first.get_by_role("link").click()
    page.fill("#confirm", "ERASE")
    page.get_by_role("button", name="Erase the customer").click()
    expect(page.locator("#certificate")).to_be_visible()
    expect(page.locator("#certificate-jws")).to_have_text(re.compile(r"^[\w-]+\.[\w-]+\.[\w-]+$"))
    kept = page.locator("#certificate-kept")
    expect(kept).to_contain_text("access log")  # kept verifiable, unreadable for this customer
    expect(kept).not_to_contain_text("identity data")  # no retention duty: the profile itself is gone
    accessible(page)
    shot(page, "console-erasure-certificate")
    gone = page.goto(detail)
    assert gone is not None
    assert gone.status in (404, 410)
