"""Staff identities, their credentials and sessions, roles, purposes and versioned policies.
Secrets are stored hashed (tokens, passwords, recovery codes) or sealed by the vault (TOTP seeds)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from obhut.kit.db import Base, Blob, UTCDateTime


class AdminToken(Base):
    """A bootstrap admin token. Only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "access_admin_tokens"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)  # "*" = every workspace
    token_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"AdminToken({self.token_id!r}, {self.label!r})"


class Staff(Base):
    """A member of the business's staff. The username is an account name, not customer data."""

    __tablename__ = "access_staff"
    __table_args__ = (
        UniqueConstraint("workspace_id", "username"),
        UniqueConstraint("workspace_id", "sso_issuer", "sso_subject"),
    )

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40))
    password_hash: Mapped[str | None] = mapped_column(String(200))  # None: SSO only
    totp_sealed: Mapped[bytes | None] = mapped_column(Blob())
    totp_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)  # a code is accepted once only
    sso_issuer: Mapped[str | None] = mapped_column(String(300))
    sso_subject: Mapped[str | None] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"Staff({self.staff_id!r}, role={self.role!r})"


class RecoveryCode(Base):
    __tablename__ = "access_recovery_codes"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Passkey(Base):
    __tablename__ = "access_passkeys"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    credential_id: Mapped[bytes] = mapped_column(Blob(), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(36), index=True)
    public_key: Mapped[bytes] = mapped_column(Blob())
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str] = mapped_column(String(100))
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)  # synced passkey (BS flag)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"Passkey(staff={self.staff_id!r}, {self.label!r})"


class PasskeyChallenge(Base):
    """A WebAuthn challenge handed out with registration or sign-in options: used once, within minutes.
    Kept in the database so that any process of the service can finish what another one started."""

    __tablename__ = "access_passkey_challenges"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    challenge_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    challenge: Mapped[bytes] = mapped_column(Blob())
    staff_id: Mapped[str | None] = mapped_column(String(36))  # set for a registration
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class StaffSession(Base):
    """A signed-in session. `amr` lists how the staff member authenticated (pwd, otp, hwk, sso...)."""

    __tablename__ = "access_sessions"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[str] = mapped_column(String(36))
    amr: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"StaffSession({self.session_id!r}, staff={self.staff_id!r})"


class ApiToken(Base):
    """A machine client's token: a role, scopes narrowing its permissions, and an expiry."""

    __tablename__ = "access_api_tokens"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    token_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40))
    scopes: Mapped[str] = mapped_column(Text)  # space-separated permissions
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"ApiToken({self.token_id!r}, {self.label!r})"


class LoginThrottle(Base):
    """Failed sign-ins per account name or source address, both kept only as hashes."""

    __tablename__ = "access_login_throttle"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Role(Base):
    __tablename__ = "access_roles"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    permissions: Mapped[str] = mapped_column(Text)  # space-separated
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)


class Purpose(Base):
    __tablename__ = "access_purposes"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))


class PolicyVersion(Base):
    """Policies are never edited in place: each change is a new version, with who made it."""

    __tablename__ = "access_policy_versions"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rules: Mapped[str] = mapped_column(Text)  # JSON list of rules
    require_mfa_all: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BreakGlass(Base):
    """A reveal beyond policy. The justification is sealed: staff may write personal data into it."""

    __tablename__ = "access_break_glass"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(String(36))
    purpose: Mapped[str] = mapped_column(String(40))
    justification_sealed: Mapped[bytes] = mapped_column(Blob())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by: Mapped[str | None] = mapped_column(String(80))
