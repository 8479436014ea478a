"""The console's other ways in: single sign-on through a real OpenID provider in this process, and passkeys
with a software authenticator, each ending in a console session, and each refusal shown without one."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from fastapi.testclient import TestClient

from obhut.console.desk import SESSION_COOKIE
from obhut.console.web import CSRF_HEADER
from obhut.container import Container
from tests.access.authenticator import SoftwareAuthenticator
from tests.access.idp import QUIET, Idp, configure, idp
from tests.conftest import WORKSPACE
from tests.console.conftest import csrf

pytestmark = QUIET
__all__ = ["idp"]  # the fixture, for pytest


def start_sso(browser: TestClient, workspace: str = WORKSPACE) -> httpx2.Response:
    browser.get("/console/sign-in")
    return browser.post("/console/sso", data={"csrf": csrf(browser), "workspace": workspace})


def onward(page: httpx2.Response) -> str:
    """Where a page that moves on by itself (meta refresh) goes."""
    return page.text.split('<meta http-equiv="refresh" content="0; url=')[1].split('">')[0].replace("&amp;", "&")


def at_provider(location: str, sub: str) -> str:
    """Signs `sub` in at the provider; the console path and query it sends the browser back to."""
    response = httpx2.post(location, data={"sub": sub})
    assert response.status_code == 302, response.text
    target = urlsplit(response.headers["location"])
    return f"{target.path}?{target.query}"


class TestSingleSignOn:
    def test_a_provider_sign_in_ends_in_a_console_session(self, browser: TestClient, client: TestClient,
                                                          idp: Idp) -> None:  # fmt: skip
        configured = configure(client, idp)
        idp.user("u-2001", email="grete.muster@example.com", groups=["cdp-admins"])
        started = start_sso(browser)
        assert started.status_code == 200
        location = onward(started)
        assert location.startswith(f"{idp.url}/oauth2/authorize?")
        redirect_uri = parse_qs(urlsplit(location).query)["redirect_uri"][0]
        assert redirect_uri == configured["console_redirect_uri"]
        bound = [name for name in browser.cookies if name.startswith("obhut_sso_")]
        assert len(bound) == 1  # the API's cookie binding the sign-in to this browser, passed on by the console

        callback = at_provider(location, "u-2001")
        assert callback.startswith(f"/console/sso/{WORKSPACE}/callback?")
        landed = browser.get(callback)
        assert landed.status_code == 200, landed.text
        # admins need a second factor that a plain SSO sign-in does not bring: the next page asks for it
        assert onward(landed) == "/console/mfa"
        assert browser.cookies.get(SESSION_COOKIE)
        assert not [name for name in browser.cookies if name.startswith("obhut_sso_")]
        me = browser.get("/console/mfa")
        assert me.status_code == 200

    def test_the_providers_trusted_second_factor_goes_straight_to_the_console(
        self, browser: TestClient, client: TestClient, idp: Idp
    ) -> None:
        configure(client, idp, trust_amr=True)
        idp.user("u-2002", email="jonas.probe@example.com", groups=["cdp-support"], amr=["pwd", "otp"])
        landed = browser.get(at_provider(onward(start_sso(browser)), "u-2002"))
        assert onward(landed) == "/console"
        dashboard = browser.get("/console")
        assert dashboard.status_code == 200
        assert "support agent · " + WORKSPACE in dashboard.text

    def test_a_callback_from_another_browser_is_refused_without_a_session(
        self, browser: TestClient, client: TestClient, idp: Idp, container: Container
    ) -> None:
        configure(client, idp)
        idp.user("u-2003", groups=["cdp-support"])
        callback = at_provider(onward(start_sso(browser)), "u-2003")
        for name in [n for n in browser.cookies if n.startswith("obhut_sso_")]:
            browser.cookies.delete(name)  # the attacker's browser never had the binding cookie
        refused = browser.get(callback)
        assert refused.status_code == 401
        assert "Sign in to the console" in refused.text
        assert not browser.cookies.get(SESSION_COOKIE)

    def test_without_a_configured_provider_the_sign_in_page_says_so(self, browser: TestClient) -> None:
        refused = start_sso(browser)
        assert refused.status_code == 404
        assert "single sign-on is not configured" in refused.text
        assert 'value="' + WORKSPACE + '"' in refused.text  # the workspace stays filled in

    def test_an_empty_workspace_is_asked_for(self, browser: TestClient) -> None:
        refused = start_sso(browser, workspace=" ")
        assert refused.status_code == 400
        assert "Enter your workspace" in refused.text


def send(browser: TestClient, path: str, body: dict[str, Any], token: str | None = None) -> httpx2.Response:
    """What passkeys.js sends: JSON with the page's CSRF token in a header."""
    return browser.post(path, json=body, headers={CSRF_HEADER: csrf(browser) if token is None else token})


def add_passkey(agent: TestClient, device: SoftwareAuthenticator, label: str) -> httpx2.Response:
    options = send(agent, "/console/account/passkeys/options", {})
    assert options.status_code == 200, options.text
    answer = options.json()
    credential = device.create(answer["public_key"])
    return send(agent, "/console/account/passkeys", {"challenge_id": answer["challenge_id"], "credential": credential,
                                                     "label": label})  # fmt: skip


def passkey_sign_in(browser: TestClient, device: SoftwareAuthenticator) -> httpx2.Response:
    browser.get("/console/sign-in")
    options = send(browser, "/console/passkeys/options", {"workspace": WORKSPACE})
    assert options.status_code == 200, options.text
    answer = options.json()
    assertion = device.get(answer["public_key"])
    return send(browser, "/console/passkeys/sign-in", {"workspace": WORKSPACE, "challenge_id": answer["challenge_id"],
                                                       "credential": assertion})  # fmt: skip


class TestPasskeys:
    def test_added_on_the_account_page_then_used_to_sign_in(self, agent: TestClient) -> None:
        page = agent.get("/console/account")
        assert page.status_code == 200
        assert "You have no passkey yet" in page.text
        device = SoftwareAuthenticator()
        added = add_passkey(agent, device, "Laptop of the agent")
        assert added.status_code == 200, added.text
        assert added.json() == {"to": "/console/account?done=added"}
        listed = agent.get("/console/account?done=added").text
        assert "Your passkey is added" in listed
        assert "Laptop of the agent" in listed

        agent.post("/console/sign-out", data={"csrf": csrf(agent)})
        assert not agent.cookies.get(SESSION_COOKIE)
        signed_in = passkey_sign_in(agent, device)
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json() == {"to": "/console"}  # a passkey is two factors: no second step
        assert agent.cookies.get(SESSION_COOKIE)
        assert "support agent · " + WORKSPACE in agent.get("/console").text

    def test_a_passkey_for_another_site_is_refused_without_a_session(self, agent: TestClient) -> None:
        device = SoftwareAuthenticator()
        assert add_passkey(agent, device, "phone").status_code == 200
        agent.post("/console/sign-out", data={"csrf": csrf(agent)})
        device.origin = "https://obhut.example.invalid"  # a phishing page relaying the ceremony
        refused = passkey_sign_in(agent, device)
        assert refused.status_code == 401
        assert "did not verify" in refused.json()["detail"]
        assert not agent.cookies.get(SESSION_COOKIE)

    def test_scripts_must_repeat_the_csrf_token(self, agent: TestClient) -> None:
        agent.get("/console/account")
        refused = send(agent, "/console/account/passkeys/options", {}, token="forged")
        assert refused.status_code == 403
        assert "reload the page" in refused.json()["detail"]
        no_workspace = send(agent, "/console/passkeys/options", {"workspace": ""})
        assert no_workspace.status_code == 400

    def test_a_passkey_is_removed_from_the_account_page(self, agent: TestClient) -> None:
        assert add_passkey(agent, SoftwareAuthenticator(), "old key").status_code == 200
        page = agent.get("/console/account").text
        passkey_id = page.split("/console/account/passkeys/")[1].split("/remove")[0]
        removed = agent.post(f"/console/account/passkeys/{passkey_id}/remove", data={"csrf": csrf(agent)})
        assert removed.status_code == 200
        assert "The passkey is removed" in removed.text
        assert "You have no passkey yet" in removed.text
