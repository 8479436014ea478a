"""Single sign-on for staff: Obhut as an OpenID Connect relying party of the business's identity provider.

`begin` keeps state, nonce and a PKCE (S256) verifier on the server and answers the provider's authorization
URL; `complete` takes that state back exactly once, exchanges the code with the verifier, verifies the ID
token (signature against the provider's JWKS; iss, aud, azp, exp, iat, nonce), then finds the staff member by
(issuer, subject) or provisions one with the mapped role, and opens a session whose amr names "sso" plus, where
the workspace trusts them, the provider's own factors, so that a multi-factor sign-in there counts here.

Pending sign-ins live in this process's memory (10 minutes, single use): run one process, or route a
browser's requests to the same one; a restart only means starting the sign-in again."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from obhut.access import service
from obhut.access.models import Staff
from obhut.access.rules import Permission
from obhut.access.service import IssuedToken
from obhut.access.sso_models import SsoProvider
from obhut.kit.errors import (
    AuthenticationError,
    ConfigurationError,
    ForbiddenError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
)
from obhut.vault.service import Vault

PENDING_SECONDS = 600.0  # how long a started sign-in may take at the provider
METADATA_SECONDS = 600.0  # how long discovery documents and key sets are reused
LEEWAY_SECONDS = 60  # clock skew tolerated on exp and iat
MAX_DOCUMENT = 512 * 1024
SIGNING_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"})
STALE = "this sign-in is unknown, expired or already used, or was started in another browser; start again"
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def secret_context(workspace_id: str) -> str:
    return f"sso-client-secret:{workspace_id}"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def is_safe_url(url: str) -> bool:
    """https, or http to this machine only (a provider in development); no fragment, no credentials."""
    parts = urlsplit(url)
    if parts.fragment or parts.username or parts.password or not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)


@dataclass(frozen=True)
class Pending:
    """A started sign-in. `browser` is the hash of a cookie set on the browser that started it."""

    workspace_id: str
    issuer: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    browser: str
    expires: float  # time.monotonic()

    def __repr__(self) -> str:
        return f"Pending({self.workspace_id!r})"


@dataclass(frozen=True)
class Started:
    url: str  # the provider's authorization URL with state, nonce and code_challenge
    state: str
    browser_key: str  # goes into a cookie; only its hash is kept

    def __repr__(self) -> str:
        return "Started(...)"


@dataclass(frozen=True)
class SignedIn:
    token: IssuedToken
    staff: Staff
    amr: frozenset[str]
    provisioned: bool


@dataclass(frozen=True)
class Metadata:
    """The parts of a provider's discovery document that the code flow needs."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]


class PendingSignIns:
    """State -> pending sign-in, in memory: each state is taken once, and only within its lifetime."""

    def __init__(self, seconds: float = PENDING_SECONDS, capacity: int = 10_000) -> None:
        self._seconds = seconds
        self._capacity = capacity
        self._items: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def deadline(self) -> float:
        return time.monotonic() + self._seconds

    def add(self, state: str, pending: Pending) -> None:
        with self._lock:
            if len(self._items) >= self._capacity:
                moment = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v.expires > moment}
                if len(self._items) >= self._capacity:
                    raise TooManyRequestsError("too many sign-ins are under way; try again in a few minutes")
            self._items[state] = pending

    def take(self, state: str) -> Pending | None:
        with self._lock:
            found = self._items.pop(state, None)
        return found if found is not None and found.expires > time.monotonic() else None


class SsoService:
    """The relying party: the code flow, and the providers' discovery documents and key sets (cached)."""

    def __init__(self, timeout: float = 5.0, pending: PendingSignIns | None = None) -> None:
        self._timeout = httpx2.Timeout(timeout, connect=min(timeout, 3.0))
        self.pending = pending or PendingSignIns()
        self._metadata: dict[str, tuple[float, Metadata]] = {}
        self._keys: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()

    def provider(self, session: Session, workspace_id: str) -> SsoProvider:
        found = session.get(SsoProvider, workspace_id)
        if found is None:
            raise NotFoundError(f"single sign-on is not configured for workspace '{workspace_id}'")
        return found

    # --- the code flow ---------------------------------------------------------------------------------
    def begin(self, session: Session, workspace_id: str, redirect_uri: str) -> Started:
        provider = self.provider(session, workspace_id)
        metadata = self.metadata(provider.issuer)
        state, nonce, browser_key = (secrets.token_urlsafe(32) for _ in range(3))
        verifier = secrets.token_urlsafe(64)  # RFC 7636: 43-128 characters of [A-Za-z0-9-._~]
        pending = Pending(
            workspace_id, provider.issuer, nonce, verifier, redirect_uri, digest(browser_key), self.pending.deadline()
        )
        self.pending.add(state, pending)
        url = prepare_grant_uri(
            metadata.authorization_endpoint,
            client_id=provider.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=provider.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return Started(str(url), state, browser_key)

    def complete(
        self,
        session: Session,
        vault: Vault,
        workspace_id: str,
        *,
        state: str,
        code: str,
        browser_key: str | None,
        roles: dict[str, frozenset[Permission]],
        minutes: int,
    ) -> SignedIn:
        """A session for the staff member the provider vouches for; the state is used up either way."""
        pending = self.pending.take(state)
        if (
            pending is None
            or pending.workspace_id != workspace_id
            or not hmac.compare_digest(pending.browser, digest(browser_key or ""))
        ):
            raise AuthenticationError(STALE)
        provider = self.provider(session, workspace_id)
        if provider.issuer != pending.issuer:  # the configuration changed while the sign-in was under way
            raise AuthenticationError(STALE)
        metadata = self.metadata(provider.issuer)
        id_token = self._exchange(session, vault, provider, metadata, code, pending)
        claims = self._verify(id_token, provider, metadata, pending.nonce)
        staff, provisioned = self._staff_for(session, provider, claims, roles)
        amr = provider.amr_for(claims)
        return SignedIn(service.open_session(session, staff, amr, minutes), staff, frozenset(amr), provisioned)

    def _exchange(
        self, session: Session, vault: Vault, provider: SsoProvider, metadata: Metadata, code: str, pending: Pending
    ) -> str:
        secret = None
        if provider.client_secret_sealed is not None:
            keyring = vault.open(session, provider.workspace_id)
            secret = keyring.open_secret(secret_context(provider.workspace_id), provider.client_secret_sealed).decode()
        client = OAuth2Client(
            client_id=provider.client_id,
            client_secret=secret,
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            timeout=self._timeout,
            follow_redirects=False,
        )
        try:
            with client:
                token = client.fetch_token(
                    metadata.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    redirect_uri=pending.redirect_uri,
                    code_verifier=pending.code_verifier,
                )
        except OAuthError as error:
            reason = error.error if isinstance(error.error, str) and _ERROR_CODE.fullmatch(error.error) else "error"
            raise AuthenticationError(f"the identity provider did not accept the sign-in ({reason})") from None
        except (httpx2.HTTPError, ValueError):
            raise ServiceUnavailableError("the identity provider's token endpoint failed; try again") from None
        id_token = token.get("id_token") if isinstance(token, dict) else None
        if not isinstance(id_token, str):
            raise AuthenticationError("the identity provider sent no ID token; is 'openid' among its scopes?")
        return id_token

    def _verify(self, id_token: str, provider: SsoProvider, metadata: Metadata, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature, issuer, audience, lifetime and nonce check out."""
        try:
            try:
                decoded = jwt.decode(id_token, self.keys(metadata), algorithms=metadata.algorithms)
            except InvalidKeyIdError:  # the provider may have rotated its keys since we fetched them
                decoded = jwt.decode(id_token, self.keys(metadata, refresh=True), algorithms=metadata.algorithms)
        except (JoseError, ValueError):
            raise AuthenticationError("the ID token's signature does not verify") from None
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": provider.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise AuthenticationError("the ID token has expired; sign in again") from None
        except ClaimError as error:
            raise AuthenticationError(f"the ID token's '{error.claim}' claim is missing or wrong") from None
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != provider.client_id:
            raise AuthenticationError("the ID token's 'azp' claim is missing or wrong")
        given = claims.get("nonce")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
            raise AuthenticationError("the ID token's 'nonce' claim is missing or wrong")
        if len(claims["sub"]) > 255:  # noqa: PLR2004 - the column's width
            raise AuthenticationError("the ID token's 'sub' claim is too long")
        return claims

    def _staff_for(
        self,
        session: Session,
        provider: SsoProvider,
        claims: Mapping[str, Any],
        roles: dict[str, frozenset[Permission]],
    ) -> tuple[Staff, bool]:
        """The account linked to (issuer, subject), its role kept in step with the provider's mapping;
        or a new one where the workspace provisions and a role applies."""
        subject: str = claims["sub"]
        role = provider.role_for(claims)
        staff = session.scalar(
            select(Staff).where(
                Staff.workspace_id == provider.workspace_id,
                Staff.sso_issuer == provider.issuer,
                Staff.sso_subject == subject,
            )
        )
        if staff is not None:
            if staff.disabled_at is not None:
                raise ForbiddenError("this staff account is disabled; ask an administrator")
            if role is not None and role in roles:
                staff.role = role
            return staff, False
        if not provider.auto_provision:
            raise ForbiddenError("no staff account is linked to this identity here; ask an administrator")
        role = role or provider.default_role
        if role is None or role not in roles:
            raise ForbiddenError("the identity provider grants you no role in this workspace")
        username = _username(session, provider, claims)
        name = claims.get("name")
        staff = service.create_staff(
            session,
            provider.workspace_id,
            username=username,
            display_name=name[:200] if isinstance(name, str) else username,
            role=role,
            roles=roles,
            sso=(provider.issuer, subject),
        )
        return staff, True

    # --- the provider's documents ----------------------------------------------------------------------
    def metadata(self, issuer: str) -> Metadata:
        """The provider's discovery document, checked: it must name the configured issuer exactly."""
        with self._lock:
            cached = self._metadata.get(issuer)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        document = self._fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if document.get("issuer") != issuer:
            raise ConfigurationError("the provider's discovery document names another issuer; check the issuer URL")
        endpoints = [document.get(k) for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")]
        offered = document.get("id_token_signing_alg_values_supported", ["RS256"])
        algorithms = tuple(a for a in offered if a in SIGNING_ALGORITHMS) if isinstance(offered, list) else ()
        if not all(isinstance(e, str) and is_safe_url(e) for e in endpoints) or not algorithms:
            raise ConfigurationError("the provider's discovery document lacks usable endpoints or signing algorithms")
        found = Metadata(str(endpoints[0]), str(endpoints[1]), str(endpoints[2]), algorithms)
        with self._lock:
            self._metadata[issuer] = (time.monotonic() + METADATA_SECONDS, found)
        return found

    def keys(self, metadata: Metadata, *, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._keys.get(metadata.jwks_uri)
        if cached is not None and cached[0] > time.monotonic() and not refresh:
            return cached[1]
        try:
            found = KeySet.import_key_set(self._fetch(metadata.jwks_uri))  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError):
            raise ConfigurationError("the provider's key set (jwks_uri) holds no usable keys") from None
        with self._lock:
            self._keys[metadata.jwks_uri] = (time.monotonic() + METADATA_SECONDS, found)
        return found

    def _fetch(self, url: str) -> dict[str, Any]:
        try:
            with httpx2.Client(timeout=self._timeout, follow_redirects=False) as http:
                response = http.get(url, headers={"Accept": "application/json"})
        except httpx2.HTTPError:
            raise ServiceUnavailableError("the identity provider cannot be reached; try again later") from None
        if response.status_code != 200 or len(response.content) > MAX_DOCUMENT:  # noqa: PLR2004
            raise ServiceUnavailableError(f"the identity provider answered {response.status_code}; try again later")
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ServiceUnavailableError("the identity provider did not answer with a JSON object")
        return document


def _username(session: Session, provider: SsoProvider, claims: Mapping[str, Any]) -> str:
    """The provider's preferred_username or email if usable and free, else a name derived from the subject.
    Names are labels only: an SSO account is found by (issuer, subject) and has no password."""
    taken = select(Staff.staff_id).where(Staff.workspace_id == provider.workspace_id)
    for claim in ("preferred_username", "email"):
        value = claims.get(claim)
        login = value.strip().lower() if isinstance(value, str) else ""
        usable = 3 <= len(login) <= 254 and not any(c.isspace() for c in login)  # noqa: PLR2004
        if usable and session.scalar(taken.where(Staff.username == login)) is None:
            return login
    return "sso-" + digest(f"{provider.issuer}\x00{claims['sub']}")[:16]
