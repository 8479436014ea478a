"""Password sign-in with throttling per account name and per source address. Failures are counted in
their own transaction (the request itself rolls back), keyed by hashes, so the table names nobody."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from obhut.access import mfa, passkeys, service
from obhut.access.models import LoginThrottle, Staff
from obhut.access.service import IssuedToken
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.kit.errors import AuthenticationError, TooManyRequestsError
from obhut.kit.settings import Settings
from obhut.vault.keyring import Keyring

WRONG = "the username or password is wrong, or the second factor did not match"


@dataclass(frozen=True)
class Attempt:
    workspace_id: str
    username: str
    password: str
    address: str
    totp_code: str | None = None
    recovery_code: str | None = None

    def __repr__(self) -> str:
        return f"Attempt({self.workspace_id!r}, from={self.address!r})"


@dataclass(frozen=True)
class SignedIn:
    token: IssuedToken
    staff: Staff
    amr: frozenset[str]
    mfa_enrolled: bool


def _keys(attempt: Attempt) -> dict[str, int]:
    def digest(kind: str, value: str) -> str:
        return hashlib.sha256(f"{kind}\x00{attempt.workspace_id}\x00{value}".encode()).hexdigest()

    return {digest("account", attempt.username.strip().lower()): 0, digest("address", attempt.address): 1}


class Throttle:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._limits = (settings.login_max_failures, settings.address_max_failures)
        self._lock = timedelta(minutes=settings.login_lock_minutes)

    def check(self, attempt: Attempt) -> None:
        moment = now()
        with self._sessions() as session:
            for key in _keys(attempt):
                row = session.get(LoginThrottle, (attempt.workspace_id, key))
                if row is not None and row.locked_until is not None and row.locked_until > moment:
                    raise _locked(row.locked_until)

    def failed(self, attempt: Attempt) -> None:
        moment = now()
        with unit_of_work(self._sessions) as session:
            for key, kind in _keys(attempt).items():
                row = session.get(LoginThrottle, (attempt.workspace_id, key))
                if row is None or row.window_started < moment - self._lock:
                    row = row or LoginThrottle(workspace_id=attempt.workspace_id, key_hash=key)
                    row.failures, row.window_started, row.locked_until = 0, moment, None
                    session.add(row)
                row.failures += 1
                if row.failures >= self._limits[kind]:
                    row.locked_until = moment + self._lock

    def succeeded(self, session: Session, attempt: Attempt) -> None:
        account = next(iter(_keys(attempt)))
        row = session.get(LoginThrottle, (attempt.workspace_id, account))
        if row is not None:
            session.delete(row)


def _locked(until: datetime) -> TooManyRequestsError:
    return TooManyRequestsError(
        f"too many failed sign-ins; try again after {until:%H:%M} UTC or ask an administrator for help"
    )


def sign_in(session: Session, keyring: Keyring, throttle: Throttle, attempt: Attempt, minutes: int) -> SignedIn:
    """A session for the right password. A second factor given with it is checked too; without one the
    session is password-only and may step up later (roles that need MFA can do nothing else until then)."""
    throttle.check(attempt)
    staff = service.staff_by_username(session, attempt.workspace_id, attempt.username)
    ok = service.password_matches(staff.password_hash if staff else None, attempt.password)
    amr = {"pwd"}
    if ok and staff is not None and (attempt.totp_code or attempt.recovery_code):
        if attempt.totp_code and staff.totp_confirmed and mfa.verify_totp(keyring, staff, attempt.totp_code):
            amr.add("otp")
        elif attempt.recovery_code and mfa.use_recovery_code(session, staff, attempt.recovery_code):
            amr.add("rec")
        else:
            ok = False
    if not ok or staff is None or staff.disabled_at is not None:
        throttle.failed(attempt)
        raise AuthenticationError(WRONG)
    throttle.succeeded(session, attempt)
    token = service.open_session(session, staff, amr, minutes)
    return SignedIn(token, staff, frozenset(amr), passkeys.has_second_factor(session, staff))
