"""The console's other ways in, in a real browser: a passkey added on the account page (Chromium's virtual
authenticator, through the DevTools protocol) and then used to sign in; single sign-on through an OpenID
provider on another site, which must end in a working session although the browser comes back cross-site."""

from __future__ import annotations

import re

import httpx2
from playwright.sync_api import Page, expect

from obhut.cli.demo import WORKSPACE
from tests.access.idp import CLIENT_ID, GROUPS, QUIET, SECRET, Idp, idp
from tests.browser.conftest import Server, accessible, shot, sign_in

pytestmark = QUIET
__all__ = ["idp"]  # the fixture, for pytest

AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


def test_a_passkey_added_on_the_account_page_signs_in(page: Page, server: Server) -> None:
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    sign_in(page, server, "agent")
    page.goto(f"{server.url}/console/account")
    expect(page.locator("#no-passkeys")).to_be_visible()
    page.fill("#passkey-label", "Virtual key")
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url(f"{server.url}/console/account?done=added")
    expect(page.locator("#passkeys")).to_contain_text("Virtual key")
    accessible(page)
    shot(page, "console-account-passkeys")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server.url}/console/sign-in?reason=out")
    expect(page.locator("#workspace")).to_have_value(WORKSPACE)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{server.url}/console")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("support agent")


def admin_token(server: Server) -> str:
    body = {"username": "admin", "password": server.logins["admin"].password, "totp_code": server.code("admin")}
    if not body["totp_code"].isdigit():
        body["recovery_code"] = body.pop("totp_code")
    answer = httpx2.post(f"{server.url}/api/v1/workspaces/{WORKSPACE}/auth/login", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def test_single_sign_on_comes_back_from_another_site_signed_in(page: Page, server: Server, idp: Idp) -> None:
    settings = {"issuer": idp.url, "client_id": CLIENT_ID, "client_secret": SECRET, "role_claim": "groups",
                "role_map": GROUPS, "auto_provision": True, "trust_amr": True}  # fmt: skip
    configured = httpx2.put(f"{server.url}/api/v1/workspaces/{WORKSPACE}/sso", json=settings,
                            headers={"Authorization": f"Bearer {admin_token(server)}"})  # fmt: skip
    assert configured.status_code == 200, configured.text
    idp.user("u-7001", email="lena.vorbild@example.com", groups=["cdp-support"], amr=["pwd", "otp"])

    page.goto(f"{server.url}/console/sign-in")
    page.get_by_role("button", name="Sign in with single sign-on").click()
    page.wait_for_url(f"{idp.url}/oauth2/authorize?**")  # the provider: another site (127.0.0.1, not localhost)
    page.fill("input[name=sub]", "u-7001")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{server.url}/console")  # the SameSite=Strict session cookie went along
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("support agent")


def test_sign_in_and_search_with_the_keyboard_alone(page: Page, server: Server) -> None:
    """No mouse: the skip link comes first, every control is reached with Tab, forms are sent with Enter."""
    page.goto(f"{server.url}/console/sign-in")
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    page.focus("#workspace")  # the start of the form; from here on only keys
    page.keyboard.press("Tab")
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type("agent")
    page.keyboard.press("Tab")
    page.keyboard.type(server.logins["agent"].password)
    page.keyboard.press("Tab")
    page.keyboard.type(server.code("agent"))
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/console")
    page.goto(f"{server.url}/console/customers")
    page.focus("#key")
    page.keyboard.press("Tab")
    expect(page.locator("#term")).to_be_focused()
    page.keyboard.type("Anna Beispiel")  # the demo's first customer, by name (the select starts on name)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="1 found")).to_be_visible()
    for _ in range(40):  # on through the page in Tab order until the result's link
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('tbody a') !== null"):
            break
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/console/customers/[0-9a-f-]{36}$"))
    expect(page.locator("#fields")).to_be_visible()
