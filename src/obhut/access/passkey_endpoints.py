"""Passkeys over HTTP. A signed-in staff member asks for registration options, lets the browser create a
passkey (navigator.credentials.create) and sends it back; later the sign-in options and the browser's
assertion (navigator.credentials.get) open a session without a password. Options carry a `challenge_id`
that goes back with the response; every failure answers alike and names no account."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from obhut.access import passkeys, service
from obhut.access.dependencies import Authenticated, policies
from obhut.access.login import Attempt
from obhut.access.models import Passkey, Staff
from obhut.access.schemas import SessionOut
from obhut.access.service import Principal
from obhut.audit.dependencies import record_apart, trail_for
from obhut.audit.rules import LOGIN, action
from obhut.audit.service import Event
from obhut.container import container_of
from obhut.kit.errors import AuthenticationError, ForbiddenError
from obhut.kit.web import DbSession

router = APIRouter(prefix="/workspaces/{workspace_id}/auth/passkeys", tags=["auth"])


class OptionsOut(BaseModel):
    challenge_id: str = Field(description="Send back with the authenticator's response; valid 5 minutes, once")
    public_key: dict[str, Any] = Field(description="The publicKey options, binary values base64url-encoded")


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_id: str = Field(max_length=36)
    credential: dict[str, Any] = Field(description="The PublicKeyCredential's toJSON()")
    label: str = Field("passkey", max_length=100, description="To tell your passkeys apart: 'YubiKey', 'laptop'")


class AssertionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_id: str = Field(max_length=36)
    credential: dict[str, Any] = Field(description="The PublicKeyCredential's toJSON()")


class PasskeyOut(BaseModel):
    passkey_id: str
    label: str
    backed_up: bool = Field(description="Whether the passkey is synced between devices")
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: Passkey) -> PasskeyOut:
        return cls(
            passkey_id=passkeys.passkey_id(row),
            label=row.label,
            backed_up=row.backed_up,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
        )


def _rp(request: Request) -> passkeys.RelyingParty:
    return passkeys.RelyingParty.of(container_of(request).settings.public_url)


def _own(session: DbSession, principal: Principal) -> Staff:
    if principal.staff_id is None:
        raise ForbiddenError("passkeys belong to staff accounts; sign in as a staff member")
    return service.get_staff(session, principal.workspace_id, principal.staff_id)


def _may_change(session: DbSession, principal: Principal, staff: Staff) -> None:
    """A stolen password alone must not add or remove factors on an account that has one."""
    if passkeys.has_second_factor(session, staff) and not principal.has_mfa:
        raise ForbiddenError("verify a second factor first: this account has one already")


@router.post("/options")
def registration_options(request: Request, session: DbSession, principal: Authenticated) -> OptionsOut:
    """Options for navigator.credentials.create(): a discoverable passkey with user verification."""
    staff = _own(session, principal)
    _may_change(session, principal, staff)
    options = passkeys.registration_options(session, _rp(request), staff)
    return OptionsOut(challenge_id=options.challenge_id, public_key=options.public_key)


@router.post("", status_code=status.HTTP_201_CREATED)
def register(body: RegisterIn, request: Request, session: DbSession, principal: Authenticated) -> PasskeyOut:
    """Stores the passkey the browser created; this session counts as verified by it from now on."""
    staff = _own(session, principal)
    _may_change(session, principal, staff)
    challenge = passkeys.take_challenge(
        container_of(request).sessions, staff.workspace_id, body.challenge_id, staff.staff_id
    )
    row = passkeys.register(session, _rp(request), staff, challenge, body.credential, body.label)
    service.add_factor(session, principal, "hwk")
    trail = trail_for(request, session, principal.workspace_id, principal.actor, principal.role)
    trail.record(Event(action("api", "passkey", "register"), target=f"staff:{staff.staff_id}", requested=["hwk"]))
    return PasskeyOut.of(row)


@router.get("")
def list_passkeys(session: DbSession, principal: Authenticated) -> list[PasskeyOut]:
    return [PasskeyOut.of(row) for row in passkeys.owned(session, _own(session, principal))]


@router.delete("/{passkey_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_passkey(passkey_id: str, session: DbSession, principal: Authenticated) -> Response:
    staff = _own(session, principal)
    _may_change(session, principal, staff)
    passkeys.remove(session, staff, passkey_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/sign-in/options")
def sign_in_options(workspace_id: str, request: Request, session: DbSession) -> OptionsOut:
    """Options for navigator.credentials.get(); no username: the browser offers the passkeys it holds."""
    options = passkeys.sign_in_options(session, _rp(request), workspace_id)
    return OptionsOut(challenge_id=options.challenge_id, public_key=options.public_key)


@router.post("/sign-in")
def sign_in(workspace_id: str, body: AssertionIn, request: Request, session: DbSession) -> SessionOut:
    """A session from a passkey assertion. Failures are throttled per passkey and per source address."""
    container = container_of(request)
    key = passkeys.credential_key(body.credential).hex()
    attempt = Attempt(workspace_id, f"passkey:{key}", "", request.client.host if request.client else "unknown")
    container.throttle.check(attempt)
    challenge = passkeys.take_challenge(container.sessions, workspace_id, body.challenge_id, None)
    try:
        staff = passkeys.authenticate(session, _rp(request), workspace_id, challenge, body.credential)
    except AuthenticationError:
        container.throttle.failed(attempt)
        record_apart(request, workspace_id, Event(LOGIN, "failed", requested=["hwk"]))
        raise
    container.throttle.succeeded(session, attempt)
    token = service.open_session(session, staff, {"hwk"}, container.settings.session_minutes)
    trail = trail_for(request, session, workspace_id, f"staff:{staff.staff_id}", staff.role)
    trail.record(Event(LOGIN, target=f"session:{token.token_id}", requested=["hwk"]))
    needs = policies(request).snapshot(session, workspace_id).requires_mfa(staff.role)
    return SessionOut.of(token, {"hwk"}, needs, enrolled=True)
