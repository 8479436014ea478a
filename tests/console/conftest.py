"""Console fixtures: a browser-like client (HTTPS, cookies kept) signed in through the sign-in form."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient

from obhut.api.app import create_app
from obhut.console.web import CSRF_COOKIE
from obhut.container import Container
from obhut.kit.clock import now
from tests.access.staff import PASSWORD, add_staff, enrol_totp, login
from tests.conftest import WORKSPACE


def csrf(page: TestClient) -> str:
    """The CSRF token a page gave this browser (the cookie the forms repeat)."""
    token = page.cookies.get(CSRF_COOKIE)
    assert token, "a page must set the CSRF cookie before a form is sent"
    return token


def sign_in(page: TestClient, username: str, code: str = "") -> None:
    page.get("/console/sign-in")
    form = {"csrf": csrf(page), "workspace": WORKSPACE, "username": username, "password": PASSWORD, "code": code}
    answer = page.post("/console/sign-in", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text


@pytest.fixture
def browser(container: Container) -> Iterator[TestClient]:
    """A client without the admin token: it is whoever signs in through the pages."""
    with TestClient(create_app(container=container), base_url="https://testserver") as page:
        yield page


def enrolled(browser: TestClient, container: Container, username: str, role: str) -> pyotp.TOTP:
    """A staff member with TOTP set up (through the API, as they would on their first day)."""
    add_staff(container, username, role)
    totp, _ = enrol_totp(browser, login(browser, username)["token"])
    return totp


def next_code(totp: pyotp.TOTP) -> str:
    return totp.at(now() + timedelta(seconds=30))  # each code works once: enrolment used this step's


@pytest.fixture
def agent(browser: TestClient, container: Container) -> TestClient:
    """A support agent signed in with password and TOTP code through the sign-in form."""
    sign_in(browser, "agent", next_code(enrolled(browser, container, "agent", "support_agent")))
    return browser
