"""The staff console over HTTP: sign-in, the headers every page carries, CSRF, and customers masked unless a
purpose reveals them, with the API's own messages and log entries."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from obhut.console.desk import SESSION_COOKIE
from obhut.console.web import CSP
from tests.conftest import WORKSPACE, jane
from tests.console.conftest import csrf

pytestmark = pytest.mark.usefixtures("backend")


def _customer(client: TestClient) -> str:
    created = client.post(f"/api/v1/workspaces/{WORKSPACE}/customers", json=jane())
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_pages_need_a_session_and_carry_strict_headers(browser: TestClient) -> None:
    answer = browser.get("/console/customers", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/sign-in")
    page = browser.get("/console/sign-in")
    assert page.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP
    assert "script-src 'self'" in CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert all(flag in cookie for flag in ("Secure", "HttpOnly", "SameSite=strict"))
    assert "<script>" not in page.text
    assert " style=" not in page.text


def test_sign_in_refuses_a_form_without_its_csrf_token(browser: TestClient, agent: TestClient) -> None:
    del agent  # signed in: the CSRF check is not about the session
    forged = browser.post("/console/sign-out", data={"csrf": "not-the-cookie"}, follow_redirects=False)
    assert forged.status_code == 403
    assert "reload the page" in forged.text
    other_site = browser.post(
        "/console/sign-out", data={"csrf": csrf(browser)}, headers={"Origin": "https://evil.invalid"}
    )
    assert other_site.status_code == 403
    assert browser.get("/console/customers").status_code == 200  # still signed in


def test_wrong_password_says_so_without_a_session(browser: TestClient, container: object) -> None:
    del container
    browser.get("/console/sign-in")
    form = {"csrf": csrf(browser), "workspace": WORKSPACE, "username": "nobody", "password": "wrong"}
    answer = browser.post("/console/sign-in", data=form)
    assert answer.status_code == 401
    assert "the username or password is wrong" in answer.text


def test_agent_sees_masked_values_and_reveals_for_a_purpose(agent: TestClient, client: TestClient) -> None:
    customer_id = _customer(client)
    listed = agent.get("/console/customers")
    assert customer_id in listed.text
    assert "Musterfrau" not in listed.text  # masked in the list
    detail = agent.get(f"/console/customers/{customer_id}")
    assert "Musterfrau" not in detail.text
    assert "masked" in detail.text
    shown = agent.post(f"/console/customers/{customer_id}/reveal", data={"csrf": csrf(agent), "purpose": "support"})
    assert shown.status_code == 200
    assert "Musterfrau" in shown.text  # identity is revealed to support agents for support
    assert "DE89 3704 0044 0532 0130 00" not in shown.text  # the IBAN is not
    assert "DE89370400440532013000" not in shown.text
    entries = client.get(
        f"/api/v1/workspaces/{WORKSPACE}/audit/entries",
        params={"customer_id": customer_id, "action": "api:customer:read", "purpose": "support"},
    ).json()
    assert [e["role"] for e in entries] == ["support_agent"]
    assert entries[0]["user_agent"] == "testclient"  # the browser's, passed on by the console


def test_search_posts_the_term_and_finds_by_email(agent: TestClient, client: TestClient) -> None:
    customer_id = _customer(client)
    found = agent.post(
        "/console/customers/search", data={"csrf": csrf(agent), "key": "email", "term": "jane.musterfrau@example.com"}
    )
    assert found.status_code == 200
    assert customer_id in found.text
    assert "1 found" in found.text


def test_search_finds_by_name_in_another_spelling(agent: TestClient, client: TestClient) -> None:
    customer_id = _customer(client)
    form = {"csrf": csrf(agent), "key": "name", "term": "JANE musterfrau"}
    found = agent.post("/console/customers/search", data=form)
    assert found.status_code == 200
    assert customer_id in found.text
    assert "1 found" in found.text
    assert '<option value="name" selected' in found.text


def test_create_shows_the_api_field_messages(agent: TestClient) -> None:
    form = {"csrf": csrf(agent), "given_name": "Erika", "email": "not-an-email", "iban": "DE00 1234"}
    answer = agent.post("/console/customers/new", data=form)
    assert answer.status_code == 422
    assert re.search(r'id="email-error">[^<]+', answer.text)
    assert re.search(r'id="iban-error">[^<]+', answer.text)
    assert 'value="Erika"' in answer.text  # what was typed stays


def test_an_ended_session_returns_to_sign_in_with_the_reason(agent: TestClient) -> None:
    token = agent.cookies.get(SESSION_COOKIE)
    ended = agent.post(f"/api/v1/workspaces/{WORKSPACE}/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert ended.status_code == 204
    answer = agent.get("/console/customers", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/sign-in?reason=expired")
    assert "Your session has ended" in agent.get(answer.headers["location"]).text
    assert agent.cookies.get(SESSION_COOKIE) is None  # the dead cookie is dropped


def test_sign_out_ends_the_session_in_the_api(agent: TestClient) -> None:
    token = agent.cookies.get(SESSION_COOKIE)
    out = agent.post("/console/sign-out", data={"csrf": csrf(agent)}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/console/sign-in?reason=out")
    me = agent.get(f"/api/v1/workspaces/{WORKSPACE}/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
