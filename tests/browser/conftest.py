"""End-to-end fixtures: the real service (uvicorn, SQLite, the demo seed) on a free port, driven by Debian's
Chromium through Playwright. Screenshots go to `test-artifacts/screenshots/` (not committed)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
import uvicorn
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

from obhut import migrations
from obhut.api.app import create_app
from obhut.cli import demo
from obhut.container import build
from obhut.kit.clock import now
from obhut.kit.settings import Settings
from tests.services import unavailable

CHROMIUM = Path(os.environ.get("OBHUT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("OBHUT_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


@dataclass
class Server:
    url: str
    logins: dict[str, demo.DemoLogin]
    used: dict[str, int] = field(default_factory=dict)

    def code(self, username: str) -> str:
        """A second factor for the next sign-in: the next TOTP step first (the seed used the current one),
        then recovery codes, each once."""
        login, times = self.logins[username], self.used.get(username, 0)
        self.used[username] = times + 1
        if times == 0:
            return pyotp.TOTP(login.totp_secret).at(now() + timedelta(seconds=30))
        return login.recovery_codes[times]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("browser")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    url = f"http://localhost:{listener.getsockname()[1]}"  # a host name: WebAuthn refuses IP addresses
    settings = Settings(data_dir=folder / "var", key_shards=8, public_url=url, audit_sequence_seconds=0)
    migrations.upgrade(settings)
    built = build(settings)
    logins = {login.username: login for login in demo.seed(built, customers=24)}
    app = create_app(container=built)
    app.state.console_workspace = demo.WORKSPACE
    service = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=service.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not service.started and thread.is_alive():
        threading.Event().wait(0.02)  # start-up, not a timing assumption: we wait for the flag
    yield Server(url, logins)
    service.should_exit = True
    thread.join(timeout=10)
    built.close()


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """Package scope: sync Playwright keeps an event loop running while it is open, which would break every
    later test that calls `asyncio.run` (the outbox relay's)."""
    if not CHROMIUM.exists():
        unavailable("Chromium", f"{CHROMIUM} is missing; install Debian's chromium (scripts/install-system-deps.sh)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


def _person(chromium: Browser) -> Iterator[Page]:
    """A browser of one's own (cookies, downloads), with a German locale."""
    context = chromium.new_context(locale="de-DE", accept_downloads=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    yield from _person(chromium)


@pytest.fixture
def other_page(chromium: Browser) -> Iterator[Page]:
    """A second person at another browser (the customer, while staff use `page`)."""
    yield from _person(chromium)


def shot(page: Page, name: str) -> None:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def accessible(page: Page) -> None:
    """axe-core over the page as it is now: no violation of any rule (WCAG 2 A/AA and best practice)."""
    results = Axe().run(page)
    found: list[dict[str, Any]] = results.response["violations"]
    assert not found, results.generate_report()


def sign_in(page: Page, server: Server, username: str) -> None:
    page.goto(f"{server.url}/console/sign-in")
    page.fill("#username", username)
    page.fill("#password", server.logins[username].password)
    page.fill("#code", server.code(username))
    page.click("form[action='/console/sign-in'] button")
    page.wait_for_url(f"{server.url}/console")
