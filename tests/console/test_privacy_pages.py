"""The privacy centre over HTTP: the link becomes a cookie, the words follow the browser's language, an
erasure needs the typed confirmation, and a page without a link says what to do."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from obhut.console.privacy import LINK_COOKIE
from tests.conftest import WORKSPACE, jane
from tests.console.conftest import csrf

pytestmark = pytest.mark.usefixtures("backend")
CONSENT = f"/api/v1/workspaces/{WORKSPACE}/consent"


def _opened(browser: TestClient, client: TestClient) -> str:
    customer_id = str(client.post(f"/api/v1/workspaces/{WORKSPACE}/customers", json=jane()).json()["id"])
    link = client.post(f"{CONSENT}/customers/{customer_id}/preference-link").json()
    answer = browser.get(link["url"].split("8000", 1)[1], follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/privacy")
    assert browser.cookies.get(LINK_COOKIE) == link["token"]
    return customer_id


def test_without_a_link_the_page_says_to_open_it(browser: TestClient) -> None:
    answer = browser.get("/privacy", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert answer.status_code == 401
    assert "Please open the link we sent you" in answer.text


def test_language_follows_the_browser_and_the_switch(browser: TestClient, client: TestClient) -> None:
    _opened(browser, client)
    german = browser.get("/privacy", headers={"Accept-Language": "de-DE"})
    assert '<html lang="de">' in german.text
    assert "Ihre Daten und Einwilligungen" in german.text
    browser.get("/privacy/language/en")
    english = browser.get("/privacy", headers={"Accept-Language": "de-DE"})
    assert '<html lang="en">' in english.text
    assert "Your data and your consents" in english.text


def test_erasure_needs_the_typed_word_and_then_opens_a_request(browser: TestClient, client: TestClient) -> None:
    customer_id = _opened(browser, client)
    browser.get("/privacy/language/en")
    page = browser.get("/privacy/data")
    assert "Nothing: no retention duty applies" in page.text
    refused = browser.post("/privacy/requests", data={"csrf": csrf(browser), "right": "erasure", "confirm": "no"})
    assert refused.status_code == 422
    requests = client.get(f"/api/v1/workspaces/{WORKSPACE}/requests").json()["requests"]
    assert [r for r in requests if r["customer_id"] == customer_id] == []
    asked = browser.post("/privacy/requests", data={"csrf": csrf(browser), "right": "erasure", "confirm": "DELETE"})
    assert "Your request has arrived" in asked.text
    requests = client.get(f"/api/v1/workspaces/{WORKSPACE}/requests").json()["requests"]
    assert [(r["right"], r["status"]) for r in requests if r["customer_id"] == customer_id] == [("erasure", "verified")]
