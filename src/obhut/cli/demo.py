"""A demo workspace for a newcomer's first `make run`: invented staff and customers, purposes with notices and
consents, so the console shows something at once. Everything goes through the API in-process, with its
validation and access-log entries, under a bootstrap token that is revoked at the end. Never in production."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pyotp
from schwifty import IBAN

from obhut.access import service as access
from obhut.container import Container
from obhut.kit.db import unit_of_work

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

WORKSPACE = "demo"
STAFF = (("admin", "Demo Admin", "owner"), ("privacy", "Demo Privacy Officer", "privacy_officer"),
         ("agent", "Demo Support Agent", "support_agent"))  # fmt: skip
GIVEN = ("Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Lena", "Malte")
FAMILY = ("Beispiel", "Musterfrau", "Mustermann", "Probe", "Testmann", "Fiktiv", "Erdacht", "Platzhalter")
CARDS = ("4111111111111111", "5555555555554444", "4012888888881881", "378282246310005")
PURPOSES: dict[str, dict[str, Any]] = {
    "newsletter": {"title_en": "Newsletter", "title_de": "Newsletter", "legal_basis": "consent",
                   "description_en": "A monthly email with news and offers.",
                   "description_de": "Eine monatliche E-Mail mit Neuigkeiten und Angeboten.",
                   "categories": ["contact"], "recipients": "Our mailing service", "retention": "until withdrawn"},
    "marketing": {"title_en": "Personal offers", "title_de": "Persönliche Angebote", "legal_basis": "consent",
                  "description_en": "Offers chosen for you from what you bought.",
                  "description_de": "Angebote, die wir aus Ihren Einkäufen für Sie auswählen.",
                  "categories": ["identity", "contact"], "recipients": "", "retention": "2 years"},
    "partners": {"title_en": "Sharing with partners", "title_de": "Weitergabe an Partner", "legal_basis": "consent",
                 "description_en": "Your contact data goes to selected partners for their offers.",
                 "description_de": "Ihre Kontaktdaten gehen für deren Angebote an ausgewählte Partner.",
                 "categories": ["contact"], "recipients": "Partner shops", "retention": "1 year",
                 "sale_or_sharing": True},
    "fraud_prevention": {"title_en": "Fraud prevention", "title_de": "Betrugsvorbeugung",
                         "legal_basis": "legitimate_interest",
                         "description_en": "We check payments for signs of fraud.",
                         "description_de": "Wir prüfen Zahlungen auf Anzeichen von Betrug.",
                         "categories": ["financial"], "recipients": "", "retention": "6 months"},
}  # fmt: skip


@dataclass
class DemoLogin:
    username: str
    role: str
    password: str
    totp_secret: str
    recovery_codes: list[str] = field(default_factory=list)


def seed(built: Container, customers: int = 40) -> list[DemoLogin]:
    """Creates the demo workspace; answers the staff logins to print. Refused in production mode."""
    if built.settings.is_production:
        raise RuntimeError("the demo workspace is for development machines only")
    from fastapi.testclient import TestClient  # noqa: PLC0415 - the web stack loads only when seeding

    from obhut.api.app import create_app  # noqa: PLC0415

    with unit_of_work(built.sessions) as session:
        issued = access.create_admin_token(session, "demo seed")
    try:
        with TestClient(create_app(container=built), base_url="http://demo.invalid") as api:
            api.headers["Authorization"] = f"Bearer {issued.token}"
            about = {"workspace_id": WORKSPACE, "name": "Demo shop (invented data)"}
            _call(api, "POST", "/workspaces", about | {"key_provider": built.settings.key_provider})
            logins = [_staff(api, *member) for member in STAFF]
            _purposes(api)
            _customers(api, customers)
    finally:
        with unit_of_work(built.sessions) as session:
            access.revoke_admin_token(session, issued.token_id)
    return logins


def _call(api: TestClient, method: str, path: str, body: Any = None, **headers: str) -> Any:
    answer = api.request(method, "/api/v1" + path, json=body, headers=headers or None)
    if answer.status_code >= 400:  # noqa: PLR2004 - any error: the seed is wrong, say where
        raise RuntimeError(f"demo seed: {method} {path} answered {answer.status_code}: {answer.text}")
    return answer.json() if answer.content else None


def _staff(api: TestClient, username: str, name: str, role: str) -> DemoLogin:
    base = f"/workspaces/{WORKSPACE}"
    password = secrets.token_urlsafe(12)
    _call(api, "POST", f"{base}/staff", {"username": username, "display_name": name, "role": role,
                                         "password": password})  # fmt: skip
    token = _call(api, "POST", f"{base}/auth/login", {"username": username, "password": password})["token"]
    bearer = f"Bearer {token}"
    secret = _call(api, "POST", f"{base}/auth/totp", Authorization=bearer)["secret"]
    confirmed = _call(
        api, "POST", f"{base}/auth/totp/confirm", {"code": pyotp.TOTP(secret).now()}, Authorization=bearer
    )
    _call(api, "POST", f"{base}/auth/logout", Authorization=bearer)
    return DemoLogin(username, role, password, secret, confirmed["recovery_codes"])


def _purposes(api: TestClient) -> None:
    for key, about in PURPOSES.items():
        _call(api, "PUT", f"/workspaces/{WORKSPACE}/consent/purposes/{key}", about)
        for language, title in (("de", about["title_de"]), ("en", about["title_en"])):
            description = about[f"description_{language}"]
            text = f"{title}. {description} " + ("Widerruf jederzeit möglich." if language == "de" else
                                                 "You can withdraw at any time.")  # fmt: skip
            body = {"version": "1.0", "language": language, "text": text}
            _call(api, "POST", f"/workspaces/{WORKSPACE}/consent/purposes/{key}/notices", body)


def _customers(api: TestClient, count: int) -> None:
    chance = random.Random(7)  # the same demo every time  # noqa: S311 - not for secrets
    for n in range(count):
        given, family = GIVEN[n % len(GIVEN)], FAMILY[(n * 5 + n // len(GIVEN)) % len(FAMILY)]
        born = date(1950, 1, 1) + timedelta(days=chance.randrange(0, 54 * 365))
        body = {
            "external_ref": f"D-{1001 + n}",
            "given_name": given,
            "family_name": family,
            "birth_date": born.isoformat(),
            "email": f"{given}.{family}.{n}@example.com".lower(),
            "phone": f"+49 30 {2000000 + n * 37}",
            "postal_address": {"line1": f"Beispielweg {n + 1}", "postal_code": "10115", "city": "Berlin",
                               "country": "DE"},
            "iban": str(IBAN.generate("DE", bank_code="37040044", account_code=str(532013000 + n))),
        }  # fmt: skip
        if n % 3 == 0:
            body["card_number"] = CARDS[n % len(CARDS)]
        customer = _call(api, "POST", f"/workspaces/{WORKSPACE}/customers", body)
        for purpose in ("newsletter", "marketing", "partners"):
            if chance.random() < {"newsletter": 0.7, "marketing": 0.5, "partners": 0.2}[purpose]:
                kind = "withdrawn" if chance.random() < 0.15 else "granted"  # noqa: PLR2004
                grant = {
                    "purpose": purpose,
                    "kind": "granted",
                    "channel": "web",
                    "language": "de",
                    "notice_version": "1.0",
                }
                path = f"/workspaces/{WORKSPACE}/consent/customers/{customer['id']}/events"
                _call(api, "POST", path, grant)
                if kind == "withdrawn":
                    _call(api, "POST", path, grant | {"kind": "withdrawn"})


def show(logins: list[DemoLogin], url: str) -> list[str]:
    """The lines `serve` prints: where to sign in, and each demo login with its second factor."""
    lines = [f"Demo workspace '{WORKSPACE}' with invented customers (development only). Sign in at {url}/console"]
    lines += [
        f"  {login.role:<16} username {login.username:<8} password {login.password}  "
        f"TOTP secret {login.totp_secret} (or recovery code {login.recovery_codes[0]})"
        for login in logins
    ]
    return lines
