"""Single sign-on over HTTP. An administrator configures the workspace's OpenID provider (the client secret
goes in sealed and never comes out); staff open `.../auth/sso/start`, sign in at the provider and come back
to `.../auth/sso/callback`, which answers a session token as JSON. The start also sets a short-lived cookie
that only the callback path receives, so a sign-in cannot be completed in a browser other than the one
that began it. Errors are problem details that never repeat a code, token or secret."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.routing import NoMatchFound

from obhut.access import sso
from obhut.access.dependencies import CurrentPrincipal, policies
from obhut.access.rules import Permission
from obhut.access.service import MFA_METHODS, Principal
from obhut.access.sso_models import SsoProvider
from obhut.audit.dependencies import record_apart, trail_for
from obhut.audit.rules import LOGIN
from obhut.audit.service import Event
from obhut.container import container_of
from obhut.kit.clock import now
from obhut.kit.errors import AuthenticationError, FieldErrors, NotFoundError, ObhutError
from obhut.kit.web import DbSession

router = APIRouter(prefix="/workspaces/{workspace_id}")
CALLBACK = "sso_callback"
CONSOLE_CALLBACK = "console_sso_callback"  # the staff console's own callback route, where it is installed
COOKIE_PREFIX = "obhut_sso_"  # + a digest of the state: the cookie that binds a sign-in to its browser
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,100}")  # RFC 6749 scope-token
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
_lock = threading.Lock()


def sso_service(request: Request) -> sso.SsoService:
    """One relying party per application, made on first use: it holds the pending sign-ins and the
    providers' cached documents, so every request of the app must see the same one."""
    state = request.app.state
    with _lock:
        found = getattr(state, "sso", None)
        if found is None:
            found = state.sso = sso.SsoService()
    assert isinstance(found, sso.SsoService)
    return found


Sso = Annotated[sso.SsoService, Depends(sso_service)]


class SsoConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(max_length=300, description="The provider's issuer URL, exactly as its ID tokens name it")
    client_id: str = Field(min_length=1, max_length=255)
    client_secret: SecretStr | None = Field(
        None,
        max_length=1000,
        description="Omit to keep the stored secret; an empty string makes Obhut a public client (PKCE alone)",
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"], max_length=20)
    role_claim: str | None = Field(
        None, min_length=1, max_length=100, description="The claim with roles or groups: 'roles', 'realm_access.roles'"
    )
    role_map: dict[str, str] = Field(
        default_factory=dict, max_length=100, description="Provider role or group -> Obhut role; the first match wins"
    )
    default_role: str | None = Field(None, description="For new accounts that map to no role; none refuses them")
    trust_amr: bool = Field(default=False, description="Take the provider's amr and acr as second-factor evidence")
    auto_provision: bool = Field(default=False, description="Create an account at an unknown subject's first sign-in")


class SsoConfigOut(BaseModel):
    issuer: str
    client_id: str
    client_secret_set: bool
    scopes: list[str]
    role_claim: str | None
    role_map: dict[str, str]
    default_role: str | None
    trust_amr: bool
    auto_provision: bool
    redirect_uri: str = Field(description="Register this redirect URI with the provider")
    console_redirect_uri: str | None = Field(
        description="Register this one too for sign-in at the staff console (none where the console is off)"
    )
    updated_by: str
    updated_at: datetime


class SsoSessionOut(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'; shown once")
    expires_at: datetime
    staff_id: str
    role: str
    amr: list[str] = Field(description="How you authenticated: sso, plus the provider's factors where trusted")
    mfa_required: bool = Field(description="Whether your role needs a second factor this session lacks")
    provisioned: bool = Field(description="Whether this sign-in created your account")


def _callback_path(request: Request, workspace_id: str, to: str = "api") -> str:
    """Where the provider sends the browser back: this API's callback (it answers JSON), or the console's
    (it opens a console session). `NoMatchFound` where the console is not installed."""
    return str(request.app.url_path_for(CONSOLE_CALLBACK if to == "console" else CALLBACK, workspace_id=workspace_id))


def _redirect_uri(request: Request, workspace_id: str, to: str = "api") -> str:
    return container_of(request).settings.public_url.rstrip("/") + _callback_path(request, workspace_id, to)


def _console_redirect_uri(request: Request, workspace_id: str) -> str | None:
    try:
        return _redirect_uri(request, workspace_id, "console")
    except NoMatchFound:
        return None


def _cookie(state: str) -> str:
    return COOKIE_PREFIX + sso.digest(state)[:16]  # one per sign-in: two tabs do not overwrite each other


def _out(request: Request, row: SsoProvider) -> SsoConfigOut:
    return SsoConfigOut(
        issuer=row.issuer,
        client_id=row.client_id,
        client_secret_set=row.client_secret_sealed is not None,
        scopes=row.scopes.split(),
        role_claim=row.role_claim,
        role_map=row.roles_by_group,
        default_role=row.default_role,
        trust_amr=row.trust_amr,
        auto_provision=row.auto_provision,
        redirect_uri=_redirect_uri(request, row.workspace_id),
        console_redirect_uri=_console_redirect_uri(request, row.workspace_id),
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def _check(body: SsoConfigIn, roles: dict[str, frozenset[Permission]]) -> None:
    """Every problem with a configuration at once; the messages never repeat a value."""
    errors = FieldErrors()
    known = f"unknown role; known roles: {', '.join(sorted(roles))}"
    if not sso.is_safe_url(body.issuer) or "?" in body.issuer:
        errors.add("issuer", "must be an https URL without query or fragment (http only for localhost)")
    for position, scope in enumerate(body.scopes):
        if not _SCOPE.fullmatch(scope):
            errors.add(f"scopes/{position}", "is not a valid OAuth scope")
    if body.role_map and body.role_claim is None:
        errors.add("role_claim", "is needed to map the provider's roles or groups")
    for name, role in body.role_map.items():
        if role not in roles or not 1 <= len(name) <= 200:  # noqa: PLR2004
            errors.add(f"role_map/{name[:200]}", known if role not in roles else "must be 1-200 characters")
    if body.default_role is not None and body.default_role not in roles:
        errors.add("default_role", known)
    if body.auto_provision and body.default_role is None and not body.role_map:
        errors.add("auto_provision", "needs a default_role or a role_map to give new accounts a role")
    errors.raise_if_any()


def _save(request: Request, session: DbSession, principal: Principal, body: SsoConfigIn) -> SsoProvider:
    """Creates or replaces the workspace's provider; the client secret is sealed by the vault."""
    workspace_id = principal.workspace_id
    row = session.get(SsoProvider, workspace_id)
    if row is None:
        row = SsoProvider(workspace_id=workspace_id, client_secret_sealed=None)
        session.add(row)
    if body.client_secret is not None:
        secret = body.client_secret.get_secret_value().encode()
        keyring = container_of(request).vault.open(session, workspace_id)
        row.client_secret_sealed = keyring.seal_secret(sso.secret_context(workspace_id), secret) if secret else None
    row.issuer = body.issuer
    row.client_id = body.client_id.strip()
    row.scopes = " ".join(dict.fromkeys(("openid", *body.scopes)))
    row.role_claim = body.role_claim
    row.role_map = json.dumps(body.role_map)
    row.default_role = body.default_role
    row.trust_amr = body.trust_amr
    row.auto_provision = body.auto_provision
    row.updated_by = principal.actor
    row.updated_at = now()
    session.flush()
    return row


@router.put("/sso", tags=["sso"])
def configure_sso(
    workspace_id: str, body: SsoConfigIn, request: Request, session: DbSession, principal: CurrentPrincipal
) -> SsoConfigOut:
    """Sets the workspace's OpenID provider. Needs staff-management rights (and so a second factor)."""
    principal.require(Permission.STAFF_MANAGE)
    _check(body, policies(request).snapshot(session, workspace_id).roles)
    return _out(request, _save(request, session, principal, body))


@router.get("/sso", tags=["sso"])
def get_sso(
    workspace_id: str, request: Request, session: DbSession, principal: CurrentPrincipal, service: Sso
) -> SsoConfigOut:
    """The workspace's provider, without its client secret (only whether one is set)."""
    principal.require(Permission.STAFF_MANAGE)
    return _out(request, service.provider(session, workspace_id))


@router.get("/auth/sso/start", tags=["auth"], response_class=RedirectResponse, status_code=302)
def start_sso(
    workspace_id: str,
    request: Request,
    session: DbSession,
    service: Sso,
    to: Annotated[Literal["api", "console"], Query(description="Come back to the API (JSON) or the console")] = "api",
) -> RedirectResponse:
    """Redirects the browser to the provider; the sign-in must come back within 10 minutes."""
    if to == "console" and _console_redirect_uri(request, workspace_id) is None:
        raise NotFoundError("the staff console is not installed on this server")
    started = service.begin(session, workspace_id, _redirect_uri(request, workspace_id, to))
    response = RedirectResponse(started.url, status_code=302, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        _cookie(started.state),
        started.browser_key,
        max_age=int(sso.PENDING_SECONDS),
        path=_callback_path(request, workspace_id, to),
        secure=container_of(request).settings.public_url.startswith("https://"),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/auth/sso/callback", name=CALLBACK, tags=["auth"])
def finish_sso(
    workspace_id: str,
    request: Request,
    response: Response,
    session: DbSession,
    service: Sso,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=4096)] = "",
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> SsoSessionOut:
    """Where the provider sends the browser back: checks everything, then answers a session token."""
    if error is not None or not code:
        service.pending.take(state)  # the attempt is over either way
        reason = error if error is not None and _ERROR_CODE.fullmatch(error) else "no code"
        raise AuthenticationError(f"the identity provider did not sign you in ({reason}); start again")
    container = container_of(request)
    snapshot = policies(request).snapshot(session, workspace_id)
    try:
        done = service.complete(
            session,
            container.vault,
            workspace_id,
            state=state,
            code=code,
            browser_key=request.cookies.get(_cookie(state)),
            roles=snapshot.roles,
            minutes=container.settings.session_minutes,
        )
    except ObhutError:
        record_apart(request, workspace_id, Event(LOGIN, "failed", requested=["sso"]))
        raise
    trail = trail_for(request, session, workspace_id, f"staff:{done.staff.staff_id}", done.staff.role)
    trail.record(Event(LOGIN, target=f"session:{done.token.token_id}", requested=sorted(done.amr)))
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(_cookie(state), path=_callback_path(request, workspace_id), httponly=True, samesite="lax")
    assert done.token.expires_at is not None
    return SsoSessionOut(
        token=done.token.token,
        expires_at=done.token.expires_at,
        staff_id=done.staff.staff_id,
        role=done.staff.role,
        amr=sorted(done.amr),
        mfa_required=snapshot.requires_mfa(done.staff.role) and not (done.amr & MFA_METHODS),
        provisioned=done.provisioned,
    )
