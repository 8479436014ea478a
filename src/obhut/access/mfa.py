"""Second factors: TOTP (RFC 6238) with a replay guard and hashed recovery codes. Passkeys live in
passkeys.py. TOTP seeds are sealed by the vault, never stored in the clear."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from obhut.access.models import RecoveryCode, Staff
from obhut.kit.clock import now
from obhut.kit.errors import AuthenticationError, ConflictError
from obhut.vault.keyring import Keyring

STEP_SECONDS = 30
DIGITS = 6
RECOVERY_CODES = 10
ISSUER = "Obhut"


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    uri: str

    def __repr__(self) -> str:
        return "TotpEnrolment(secret=***)"


def totp_code(secret_b32: str, step: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """The code for one 30-second step (RFC 6238 over RFC 4226), computed by pyotp."""
    return pyotp.TOTP(secret_b32, digits=digits, digest=getattr(hashlib, digest)).at(step * STEP_SECONDS)


def matching_step(secret_b32: str, code: str, at: datetime, last_step: int) -> int | None:
    """The step a code belongs to, if it is the current one or a neighbour (clock drift) and newer than
    the last accepted one: a code is accepted once only."""
    current = int(at.timestamp()) // STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if step > last_step and hmac.compare_digest(totp_code(secret_b32, step), code.strip()):
            return step
    return None


def _context(staff: Staff) -> str:
    return f"totp:{staff.workspace_id}:{staff.staff_id}"


def begin_totp(keyring: Keyring, staff: Staff) -> TotpEnrolment:
    if staff.totp_confirmed:
        raise ConflictError("TOTP is already set up for this account; remove it before enrolling again")
    secret = pyotp.random_base32()
    staff.totp_sealed = keyring.seal_secret(_context(staff), secret.encode())
    staff.totp_last_step = 0
    uri = pyotp.TOTP(secret).provisioning_uri(name=staff.username, issuer_name=f"{ISSUER} ({staff.workspace_id})")
    return TotpEnrolment(secret, uri)


def verify_totp(keyring: Keyring, staff: Staff, code: str) -> bool:
    if staff.totp_sealed is None:
        return False
    secret = keyring.open_secret(_context(staff), staff.totp_sealed).decode()
    step = matching_step(secret, code, now(), staff.totp_last_step)
    if step is None:
        return False
    staff.totp_last_step = step
    return True


def confirm_totp(session: Session, keyring: Keyring, staff: Staff, code: str) -> list[str]:
    """Completes enrolment with a first code; returns fresh recovery codes (shown once)."""
    if staff.totp_sealed is None:
        raise ConflictError("start TOTP enrolment first")
    if not verify_totp(keyring, staff, code):
        raise AuthenticationError("the code does not match; check the device's clock and try the next code")
    staff.totp_confirmed = True
    return new_recovery_codes(session, staff)


def _code_hash(code: str) -> str:
    # 80 random bits per code: a plain hash cannot be brute-forced.
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


def new_recovery_codes(session: Session, staff: Staff) -> list[str]:
    session.execute(
        delete(RecoveryCode).where(
            RecoveryCode.workspace_id == staff.workspace_id, RecoveryCode.staff_id == staff.staff_id
        )
    )
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    session.add_all(
        RecoveryCode(workspace_id=staff.workspace_id, staff_id=staff.staff_id, code_hash=_code_hash(c), used_at=None)
        for c in codes
    )
    session.flush()
    return codes


def use_recovery_code(session: Session, staff: Staff, code: str) -> bool:
    row = session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.workspace_id == staff.workspace_id,
            RecoveryCode.staff_id == staff.staff_id,
            RecoveryCode.code_hash == _code_hash(code),
        )
    )
    if row is None or row.used_at is not None:
        return False
    row.used_at = now()
    return True
