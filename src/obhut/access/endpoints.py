"""Sign-in, sign-out and second factors for staff. Passkeys and SSO have their own routers."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from obhut.access import mfa, service
from obhut.access.dependencies import Authenticated, policies
from obhut.access.login import Attempt, sign_in
from obhut.access.models import Staff
from obhut.access.schemas import SessionOut
from obhut.audit.dependencies import record_apart, trail_for
from obhut.audit.rules import LOGIN, MFA, action
from obhut.audit.service import Event
from obhut.container import container_of
from obhut.kit.errors import AuthenticationError, TooManyRequestsError
from obhut.kit.web import DbSession

router = APIRouter(prefix="/workspaces/{workspace_id}/auth", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    totp_code: str | None = Field(None, max_length=10, description="A current code, if TOTP is set up")
    recovery_code: str | None = Field(None, max_length=40, description="One of the recovery codes, used once")


class MeOut(BaseModel):
    actor: str
    role: str
    permissions: list[str]
    amr: list[str]
    mfa_required: bool


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=10)


class TotpEnrolmentOut(BaseModel):
    secret: str = Field(description="Base32 seed for the authenticator app; shown once")
    otpauth_uri: str


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="Each works once instead of a TOTP code; shown once")


@router.post("/login")
def login(workspace_id: str, body: LoginIn, request: Request, session: DbSession) -> SessionOut:
    """Password sign-in, with a TOTP or recovery code where set up. Answers the same way for unknown
    accounts; locks an account name or source address for a while after repeated failures."""
    container = container_of(request)
    attempt = Attempt(
        workspace_id,
        body.username,
        body.password,
        request.client.host if request.client else "unknown",
        body.totp_code,
        body.recovery_code,
    )
    keyring = container.vault.open(session, workspace_id)
    try:
        done = sign_in(session, keyring, container.throttle, attempt, container.settings.session_minutes)
    except (AuthenticationError, TooManyRequestsError):
        refused = Event(LOGIN, "failed", search_kind="account name", search_term=body.username)
        record_apart(request, workspace_id, refused)
        raise
    trail = trail_for(request, session, workspace_id, f"staff:{done.staff.staff_id}", done.staff.role)
    trail.record(Event(LOGIN, target=f"session:{done.token.token_id}", requested=sorted(done.amr)), keyring)
    snapshot = policies(request).snapshot(session, workspace_id)
    return SessionOut.of(done.token, done.amr, snapshot.requires_mfa(done.staff.role), enrolled=done.mfa_enrolled)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, session: DbSession, principal: Authenticated) -> Response:
    service.close_session(session, principal)
    trail = trail_for(request, session, principal.workspace_id, principal.actor, principal.role)
    trail.record(Event(action("api", "session", "logout"), target=f"session:{principal.session_id}"))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me")
def me(request: Request, session: DbSession, principal: Authenticated) -> MeOut:
    snapshot = policies(request).snapshot(session, principal.workspace_id)
    return MeOut(
        actor=principal.actor,
        role=principal.role,
        permissions=sorted(principal.permissions),
        amr=sorted(principal.amr),
        mfa_required=snapshot.requires_mfa(principal.role) and not principal.has_mfa,
    )


def _staff_of(session: DbSession, principal: Authenticated) -> Staff:
    if principal.staff_id is None:
        raise AuthenticationError("second factors belong to staff accounts; sign in as a staff member")
    return service.get_staff(session, principal.workspace_id, principal.staff_id)


@router.post("/totp")
def enrol_totp(request: Request, session: DbSession, principal: Authenticated) -> TotpEnrolmentOut:
    """Starts TOTP set-up: add the seed to an authenticator app, then confirm with a code."""
    staff = _staff_of(session, principal)
    enrolment = mfa.begin_totp(container_of(request).vault.open(session, principal.workspace_id), staff)
    return TotpEnrolmentOut(secret=enrolment.secret, otpauth_uri=enrolment.uri)


@router.post("/totp/confirm")
def confirm_totp(body: CodeIn, request: Request, session: DbSession, principal: Authenticated) -> RecoveryCodesOut:
    staff = _staff_of(session, principal)
    keyring = container_of(request).vault.open(session, principal.workspace_id)
    codes = mfa.confirm_totp(session, keyring, staff, body.code)
    service.add_factor(session, principal, "otp")
    trail = trail_for(request, session, principal.workspace_id, principal.actor, principal.role)
    trail.record(Event(action("api", "totp", "enrol"), target=f"staff:{staff.staff_id}", requested=["otp"]))
    return RecoveryCodesOut(recovery_codes=codes)


@router.post("/mfa/totp", status_code=status.HTTP_204_NO_CONTENT)
def verify_totp(body: CodeIn, request: Request, session: DbSession, principal: Authenticated) -> Response:
    """Steps a password-only session up with a TOTP code. A code is accepted once only."""
    staff = _staff_of(session, principal)
    container = container_of(request)
    attempt = Attempt(principal.workspace_id, staff.username, "", request.client.host if request.client else "unknown")
    container.throttle.check(attempt)  # six digits must not be guessable by a stolen password session
    keyring = container.vault.open(session, principal.workspace_id)
    if not staff.totp_confirmed or not mfa.verify_totp(keyring, staff, body.code):
        container.throttle.failed(attempt)
        record_apart(request, principal.workspace_id, Event(MFA, "failed", target=principal.actor))
        raise AuthenticationError("the code does not match, was used already, or TOTP is not set up")
    service.add_factor(session, principal, "otp")
    trail_for(request, session, principal.workspace_id, principal.actor, principal.role).record(
        Event(MFA, target=f"session:{principal.session_id}", requested=["otp"])
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/recovery-codes")
def renew_recovery_codes(request: Request, session: DbSession, principal: Authenticated) -> RecoveryCodesOut:
    """Replaces all recovery codes; needs a session that already has a second factor."""
    if not principal.has_mfa:
        raise AuthenticationError("verify a second factor first")
    staff = _staff_of(session, principal)
    trail = trail_for(request, session, principal.workspace_id, principal.actor, principal.role)
    trail.record(Event(action("api", "recovery-codes", "renew"), target=f"staff:{staff.staff_id}"))
    return RecoveryCodesOut(recovery_codes=mfa.new_recovery_codes(session, staff))
