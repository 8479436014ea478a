"""An OpenID provider running in this process for the single sign-on tests (oidc-provider-mock, served by
werkzeug on 127.0.0.1). The mock does not enforce PKCE, so a WSGI guard in front of it does: no S256
code_challenge, no code; a code_verifier that does not hash to it, no tokens."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from fastapi.testclient import TestClient
from werkzeug.serving import make_server

from tests.conftest import WORKSPACE

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # the mock still imports authlib.jose
    import oidc_provider_mock

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# The mock provider (a test tool) runs on authlib APIs that warn of their deprecation; Obhut's code does not.
QUIET = [
    pytest.mark.filterwarnings("ignore::authlib.deprecate.AuthlibDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
]

BASE = f"/api/v1/workspaces/{WORKSPACE}"
SSO = f"{BASE}/sso"
START = f"{BASE}/auth/sso/start"
CLIENT_ID = "obhut-acme"
SECRET = "s3cret-from-the-idp-console"
GROUPS = {"cdp-admins": "admin", "cdp-support": "support_agent"}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class PkceGuard:
    """WSGI middleware that makes the provider enforce RFC 7636 with S256, records what the token endpoint
    saw, and can substitute the ID token it answers (to play a token minted for another client or nonce)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.challenges: dict[str, str] = {}  # code -> code_challenge
        self.verified: list[str] = []  # codes exchanged with a matching code_verifier
        self.token_requests = 0
        self.client_auth: list[str] = []  # "client_id:secret" from HTTP Basic
        self.substitute_id_token: str | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/oauth2/authorize" and environ["REQUEST_METHOD"] == "POST":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            challenge = query.get("code_challenge", [""])[0]
            if query.get("code_challenge_method") != ["S256"] or len(challenge) != 43:
                return _answer(start_response, "400 Bad Request", {"error": "invalid_request"})

            def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                for name, value in headers:
                    if name.lower() == "location" and (code := parse_qs(urlsplit(value).query).get("code")):
                        self.challenges[code[0]] = challenge
                return start_response(status, headers, exc_info)

            return self.app(environ, remember)
        if path == "/oauth2/token":
            return self._token(environ, start_response)
        return self.app(environ, start_response)

    def _token(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.token_requests += 1
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        form = parse_qs(body.decode())
        basic = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Basic ")
        self.client_auth.append(base64.b64decode(basic).decode() if basic else "")
        code, verifier = form.get("code", [""])[0], form.get("code_verifier", [""])[0]
        expected = self.challenges.pop(code, None)
        if expected is None or s256(verifier) != expected:
            return _answer(start_response, "400 Bad Request", {"error": "invalid_grant"})
        self.verified.append(code)
        if self.substitute_id_token is None:
            return self.app(environ, start_response)
        seen: list[str] = []
        answer = self.app(environ, lambda status, _headers, _exc=None: seen.append(status) or (lambda _: None))
        tokens = json.loads(b"".join(answer))
        getattr(answer, "close", lambda: None)()
        tokens["id_token"] = self.substitute_id_token
        return _answer(start_response, seen[0], tokens)


def _answer(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


@dataclass
class Idp:
    url: str
    guard: PkceGuard

    def user(self, sub: str, **claims: Any) -> None:
        assert httpx2.put(f"{self.url}/users/{sub}", json=claims).status_code == 204

    def id_token_for(self, client_id: str, nonce: str, sub: str) -> str:
        """A genuine ID token from this provider, minted for `client_id` and `nonce` by another client."""
        verifier = secrets.token_urlsafe(48)
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": "http://127.0.0.1/elsewhere",
            "scope": "openid",
            "state": "theirs",
            "nonce": nonce,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        issued = httpx2.post(f"{self.url}/oauth2/authorize?{urlencode(params)}", data={"sub": sub})
        code = parse_qs(urlsplit(issued.headers["location"]).query)["code"][0]
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
        tokens = httpx2.post(f"{self.url}/oauth2/token", data=form | {"redirect_uri": params["redirect_uri"]},
                             auth=(client_id, "theirs"))  # fmt: skip
        return str(tokens.json()["id_token"])


@pytest.fixture
def idp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Idp]:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the mock speaks plain http, on loopback only
    guard = PkceGuard(oidc_provider_mock.app(require_nonce=True))
    server = make_server("127.0.0.1", 0, guard, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Idp(f"http://127.0.0.1:{server.server_port}", guard)
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def configure(client: TestClient, idp: Idp, **overrides: Any) -> dict[str, Any]:
    body = {
        "issuer": idp.url,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "role_claim": "groups",
        "role_map": GROUPS,
        "auto_provision": True,
    }
    response = client.put(SSO, json=body | overrides)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def start(client: TestClient) -> str:
    """The provider's authorization URL that /start redirects the browser to."""
    response = client.get(START, follow_redirects=False)
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


def authorize(location: str, sub: str, **form: str) -> str:
    """Signs `sub` in at the provider; the callback path and query the provider sends the browser to."""
    response = httpx2.post(location, data={"sub": sub, **form})
    assert response.status_code == 302, response.text
    target = urlsplit(response.headers["location"])
    return f"{target.path}?{target.query}"


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]
