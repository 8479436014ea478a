"""Passkeys (WebAuthn) for staff, verified by the `webauthn` library: registered from a signed-in session,
then used to sign in without a password. User verification (a PIN or biometric on the device) is required,
so a passkey alone is possession plus knowledge or inherence: a multi-factor sign-in, named "hwk".

Each ceremony starts with options that carry a fresh challenge. Challenges live in the database, are taken
exactly once (deleted in their own transaction, whatever the outcome) and expire after five minutes."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from obhut.access.models import Passkey, PasskeyChallenge, Staff
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.kit.errors import AuthenticationError, ConflictError, NotFoundError
from obhut.kit.ids import new_id

CHALLENGE_SECONDS = 300
RP_NAME = "Obhut"
STALE = "this passkey request is unknown, expired or already used; ask for new options and try again"
FAILED = "the passkey did not verify (wrong site, no user verification, unknown or cloned key); try again"


@dataclass(frozen=True)
class RelyingParty:
    """Who the passkeys are for: the host staff reach Obhut at, and that exact origin."""

    rp_id: str
    origin: str

    @classmethod
    def of(cls, public_url: str) -> RelyingParty:
        parts = urlsplit(public_url)
        return cls(parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}")


@dataclass(frozen=True)
class Options:
    challenge_id: str  # sent back with the authenticator's response
    public_key: dict[str, Any]  # for navigator.credentials.create() or .get(), base64url-encoded


def passkey_id(passkey: Passkey) -> str:
    return bytes_to_base64url(passkey.credential_id)


def owned(session: Session, staff: Staff) -> list[Passkey]:
    query = select(Passkey).where(Passkey.workspace_id == staff.workspace_id, Passkey.staff_id == staff.staff_id)
    return list(session.scalars(query.order_by(Passkey.created_at)))


def has_second_factor(session: Session, staff: Staff) -> bool:
    return staff.totp_confirmed or bool(owned(session, staff))


def _challenge(session: Session, workspace_id: str, staff_id: str | None) -> PasskeyChallenge:
    moment = now()
    session.execute(
        delete(PasskeyChallenge).where(
            PasskeyChallenge.workspace_id == workspace_id, PasskeyChallenge.expires_at < moment
        )
    )
    row = PasskeyChallenge(
        workspace_id=workspace_id,
        challenge_id=new_id(),
        challenge=secrets.token_bytes(32),
        staff_id=staff_id,
        expires_at=moment + timedelta(seconds=CHALLENGE_SECONDS),
    )
    session.add(row)
    session.flush()
    return row


def take_challenge(
    sessions: sessionmaker[Session], workspace_id: str, challenge_id: str, staff_id: str | None
) -> bytes:
    """The challenge, removed in a transaction of its own: a failed attempt cannot be retried with it."""
    with unit_of_work(sessions) as session:
        row = session.execute(
            delete(PasskeyChallenge)
            .where(PasskeyChallenge.workspace_id == workspace_id, PasskeyChallenge.challenge_id == challenge_id)
            .returning(PasskeyChallenge.challenge, PasskeyChallenge.staff_id, PasskeyChallenge.expires_at)
        ).one_or_none()
    if row is None or row.staff_id != staff_id or row.expires_at <= now():
        raise AuthenticationError(STALE)
    return bytes(row.challenge)


def registration_options(session: Session, rp: RelyingParty, staff: Staff) -> Options:
    challenge = _challenge(session, staff.workspace_id, staff.staff_id)
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=RP_NAME,
        user_name=staff.username,
        user_id=staff.staff_id.encode(),
        user_display_name=staff.display_name,
        challenge=challenge.challenge,
        timeout=CHALLENGE_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.REQUIRED
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id) for p in owned(session, staff)],
    )
    return Options(challenge.challenge_id, json.loads(options_to_json(options)))


def register(
    session: Session, rp: RelyingParty, staff: Staff, challenge: bytes, credential: dict[str, Any], label: str
) -> Passkey:
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise AuthenticationError(FAILED) from None
    if session.get(Passkey, (staff.workspace_id, verified.credential_id)) is not None:
        raise ConflictError("this passkey is registered already")
    passkey = Passkey(
        workspace_id=staff.workspace_id,
        credential_id=verified.credential_id,
        staff_id=staff.staff_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        label=label.strip() or "passkey",
        backed_up=verified.credential_backed_up,
        created_at=now(),
        last_used_at=None,
    )
    session.add(passkey)
    session.flush()
    return passkey


def sign_in_options(session: Session, rp: RelyingParty, workspace_id: str) -> Options:
    """Options for a discoverable passkey: the browser offers the staff member's own, no username needed."""
    challenge = _challenge(session, workspace_id, None)
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge.challenge,
        timeout=CHALLENGE_SECONDS * 1000,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return Options(challenge.challenge_id, json.loads(options_to_json(options)))


def credential_key(credential: dict[str, Any]) -> bytes:
    """The credential ID a response claims, for finding the passkey (and throttling per passkey)."""
    raw = credential.get("rawId") or credential.get("id")
    try:
        return base64url_to_bytes(raw) if isinstance(raw, str) and 0 < len(raw) <= 1400 else b""  # noqa: PLR2004
    except ValueError:
        return b""


def authenticate(
    session: Session, rp: RelyingParty, workspace_id: str, challenge: bytes, credential: dict[str, Any]
) -> Staff:
    """The staff member whose passkey signed the challenge. The same error for every failure."""
    passkey = session.get(Passkey, (workspace_id, credential_key(credential)))
    staff = session.get(Staff, (workspace_id, passkey.staff_id)) if passkey is not None else None
    if passkey is None or staff is None or staff.disabled_at is not None:
        raise AuthenticationError(FAILED)
    handle = credential.get("response", {}).get("userHandle") if isinstance(credential.get("response"), dict) else None
    if handle and credential_key({"id": handle}) != staff.staff_id.encode():
        raise AuthenticationError(FAILED)
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,  # a counter that goes back means a cloned key
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise AuthenticationError(FAILED) from None
    passkey.sign_count = verified.new_sign_count
    passkey.backed_up = verified.credential_backed_up
    passkey.last_used_at = now()
    return staff


def remove(session: Session, staff: Staff, passkey_id_: str) -> None:
    key = credential_key({"id": passkey_id_})
    passkey = session.get(Passkey, (staff.workspace_id, key))
    if passkey is None or passkey.staff_id != staff.staff_id:
        raise NotFoundError("no such passkey on your account")
    session.delete(passkey)
