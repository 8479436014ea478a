"""Who is asking: bootstrap admin tokens, staff accounts and their sessions, API tokens for machines.
Every credential is stored as a hash; every failure answers the same way, whether the account exists or not."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import argon2
from sqlalchemy import select
from sqlalchemy.orm import Session

from obhut.access import rules
from obhut.access.models import AdminToken, ApiToken, Staff, StaffSession
from obhut.access.rules import Permission
from obhut.kit.clock import now
from obhut.kit.errors import AuthenticationError, ConflictError, FieldErrors, ForbiddenError, NotFoundError
from obhut.kit.ids import new_id

ALL_WORKSPACES = "*"
MFA_METHODS = frozenset({"otp", "hwk", "rec", "mfa"})  # RFC 8176 names; "rec" = a recovery code
_hasher = argon2.PasswordHasher()  # argon2id with the library's (RFC 9106) defaults
_DUMMY_HASH = _hasher.hash("obhut: equal work for unknown accounts")
MIN_PASSWORD = 12


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    token: str
    expires_at: datetime | None = None

    def __repr__(self) -> str:
        return f"IssuedToken({self.token_id!r})"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    workspace_id: str  # "*" for an all-workspace bootstrap token
    actor: str  # "staff:<id>", "token:<id>" or "admin:<id>": what the access log names
    role: str
    permissions: frozenset[Permission]
    amr: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None
    staff_id: str | None = None

    @property
    def has_mfa(self) -> bool:
        return bool(self.amr & MFA_METHODS)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if permission not in self.permissions:
            raise ForbiddenError(f"your role '{self.role}' lacks the permission '{permission.value}'")

    def covers(self, workspace_id: str) -> bool:
        return self.workspace_id in (ALL_WORKSPACES, workspace_id)


# --- bootstrap admin tokens ---------------------------------------------------------------------------
def create_admin_token(session: Session, label: str, workspace_id: str = ALL_WORKSPACES) -> IssuedToken:
    token = rules.new_token(rules.ADMIN_TOKEN_PREFIX)
    row = AdminToken(
        workspace_id=workspace_id,
        token_id=new_id(),
        token_hash=rules.token_hash(token),
        label=label,
        created_at=now(),
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    return IssuedToken(row.token_id, token)


def revoke_admin_token(session: Session, token_id: str) -> str:
    """Revokes the token; answers the workspace it was for ("*": every one)."""
    row = session.scalar(select(AdminToken).where(AdminToken.token_id == token_id))
    if row is None:
        raise NotFoundError(f"no admin token {token_id}")
    row.revoked_at = now()
    return row.workspace_id


def has_admin_tokens(session: Session) -> bool:
    return session.scalar(select(AdminToken.token_id).where(AdminToken.revoked_at.is_(None)).limit(1)) is not None


def unauthenticated() -> AuthenticationError:
    return AuthenticationError(
        "a valid credential is required: send 'Authorization: Bearer <token>' with a session token from "
        "POST /api/v1/workspaces/{workspace_id}/auth/login, an API token, or an admin token"
    )


def authenticate(session: Session, token: str | None, roles: dict[str, frozenset[Permission]]) -> Principal:
    """The caller behind a bearer token; the same error for unknown, expired, revoked and malformed ones."""
    if not token:
        raise unauthenticated()
    digest = rules.token_hash(token)
    moment = now()
    if token.startswith(rules.ADMIN_TOKEN_PREFIX):
        admin = session.scalar(select(AdminToken).where(AdminToken.token_hash == digest))
        if admin is not None and admin.revoked_at is None:
            return Principal(
                admin.workspace_id, f"admin:{admin.token_id}", "owner", rules.ALL_PERMISSIONS, frozenset({"mfa"})
            )
    elif token.startswith(rules.SESSION_PREFIX):
        found = session.execute(
            select(StaffSession, Staff)
            .join(Staff, (Staff.workspace_id == StaffSession.workspace_id) & (Staff.staff_id == StaffSession.staff_id))
            .where(StaffSession.token_hash == digest)
        ).one_or_none()
        if found is not None:
            live, staff = found
            if live.revoked_at is None and live.expires_at > moment and staff.disabled_at is None:
                return Principal(
                    staff.workspace_id,
                    f"staff:{staff.staff_id}",
                    staff.role,
                    roles.get(staff.role, frozenset()),
                    frozenset(live.amr.split()),
                    live.session_id,
                    staff.staff_id,
                )
    elif token.startswith(rules.API_TOKEN_PREFIX):
        api = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if api is not None and api.revoked_at is None and api.expires_at > moment:
            scopes = frozenset(Permission(s) for s in api.scopes.split()) & roles.get(api.role, frozenset())
            # A machine holds no second factor; an MFA-verified admin issued it, and it is narrow and expiring.
            return Principal(api.workspace_id, f"token:{api.token_id}", api.role, scopes, frozenset({"mfa"}))
    raise unauthenticated()


# --- staff accounts -----------------------------------------------------------------------------------
def check_password(password: str, errors: FieldErrors, name: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        errors.add(name, f"must be at least {MIN_PASSWORD} characters")
    elif len(set(password)) < 5:  # noqa: PLR2004 - rejects 'aaaaaaaaaaaa' and the like
        errors.add(name, "is too simple: use more different characters")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Verifies in constant work: an account without a password costs the same as a wrong password."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        return False


def create_staff(
    session: Session,
    workspace_id: str,
    *,
    username: str,
    display_name: str,
    role: str,
    roles: dict[str, frozenset[Permission]],
    password: str | None = None,
    sso: tuple[str, str] | None = None,
) -> Staff:
    errors = FieldErrors()
    login = username.strip().lower()
    if not 3 <= len(login) <= 254 or any(c.isspace() for c in login):  # noqa: PLR2004
        errors.add("username", "must be 3-254 characters without spaces (an email address works well)")
    if role not in roles:
        errors.add("role", f"unknown role; known roles: {', '.join(sorted(roles))}")
    if password is not None:
        check_password(password, errors)
    elif sso is None:
        errors.add("password", "a password is required for accounts that do not sign in through SSO")
    errors.raise_if_any()
    if session.scalar(select(Staff.staff_id).where(Staff.workspace_id == workspace_id, Staff.username == login)):
        raise ConflictError("a staff account with this username already exists in the workspace")
    staff = Staff(
        workspace_id=workspace_id,
        staff_id=new_id(),
        username=login,
        display_name=display_name.strip() or login,
        role=role,
        password_hash=hash_password(password) if password is not None else None,
        totp_sealed=None,
        totp_confirmed=False,
        totp_last_step=0,
        sso_issuer=sso[0] if sso else None,
        sso_subject=sso[1] if sso else None,
        disabled_at=None,
        created_at=now(),
    )
    session.add(staff)
    session.flush()
    return staff


def staff_by_username(session: Session, workspace_id: str, username: str) -> Staff | None:
    login = username.strip().lower()
    return session.scalar(select(Staff).where(Staff.workspace_id == workspace_id, Staff.username == login))


def get_staff(session: Session, workspace_id: str, staff_id: str) -> Staff:
    staff = session.get(Staff, (workspace_id, staff_id))
    if staff is None:
        raise NotFoundError(f"no staff member {staff_id} in workspace '{workspace_id}'")
    return staff


def change_staff(
    session: Session,
    workspace_id: str,
    staff_id: str,
    *,
    role: str | None,
    disabled: bool | None,
    roles: dict[str, frozenset[Permission]],
) -> Staff:
    """Changes a role or disables an account; disabling ends its sessions at once."""
    staff = get_staff(session, workspace_id, staff_id)
    if role is not None:
        if role not in roles:
            errors = FieldErrors()
            errors.add("role", f"unknown role; known roles: {', '.join(sorted(roles))}")
            errors.raise_if_any()
        staff.role = role
    if disabled is not None:
        staff.disabled_at = (staff.disabled_at or now()) if disabled else None
    return staff


def list_staff(session: Session, workspace_id: str) -> list[Staff]:
    return list(session.scalars(select(Staff).where(Staff.workspace_id == workspace_id).order_by(Staff.username)))


# --- sessions -------------------------------------------------------------------------------------------
def open_session(session: Session, staff: Staff, amr: set[str], minutes: int) -> IssuedToken:
    token = rules.new_token(rules.SESSION_PREFIX)
    started = now()
    row = StaffSession(
        workspace_id=staff.workspace_id,
        session_id=new_id(),
        token_hash=rules.token_hash(token),
        staff_id=staff.staff_id,
        amr=" ".join(sorted(amr)),
        created_at=started,
        expires_at=started + timedelta(minutes=minutes),
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    return IssuedToken(row.session_id, token, row.expires_at)


def add_factor(session: Session, principal: Principal, method: str) -> None:
    """Records a second factor on the caller's session (step-up after a password sign-in)."""
    if principal.session_id is None:
        raise ForbiddenError("a second factor can be added to a staff session only")
    row = session.get(StaffSession, (principal.workspace_id, principal.session_id))
    if row is None:
        raise AuthenticationError("the session has ended; sign in again")
    row.amr = " ".join(sorted({*row.amr.split(), method}))


def close_session(session: Session, principal: Principal) -> None:
    if principal.session_id is None:
        raise ForbiddenError("only a staff session can be signed out; revoke tokens instead")
    row = session.get(StaffSession, (principal.workspace_id, principal.session_id))
    if row is not None and row.revoked_at is None:
        row.revoked_at = now()


# --- API tokens ------------------------------------------------------------------------------------------
def issue_api_token(
    session: Session,
    principal: Principal,
    *,
    label: str,
    role: str,
    scopes: list[str],
    days: int,
    roles: dict[str, frozenset[Permission]],
) -> IssuedToken:
    errors = FieldErrors()
    granted = roles.get(role)
    if granted is None:
        errors.add("role", f"unknown role; known roles: {', '.join(sorted(roles))}")
    known = {p.value for p in Permission}
    for position, scope in enumerate(scopes):
        if scope not in known:
            errors.add(f"scopes/{position}", f"unknown scope; known: {', '.join(sorted(known))}")
        elif granted is not None and Permission(scope) not in granted:
            errors.add(f"scopes/{position}", f"the role '{role}' does not have this permission")
        elif Permission(scope) not in principal.permissions:
            errors.add(f"scopes/{position}", "you cannot grant a permission you do not hold")
    if not 1 <= days <= 365:  # noqa: PLR2004
        errors.add("expires_in_days", "must be between 1 and 365")
    errors.raise_if_any()
    token = rules.new_token(rules.API_TOKEN_PREFIX)
    created = now()
    row = ApiToken(
        workspace_id=principal.workspace_id,
        token_id=new_id(),
        token_hash=rules.token_hash(token),
        label=label,
        role=role,
        scopes=" ".join(sorted(set(scopes))),
        created_by=principal.actor,
        created_at=created,
        expires_at=created + timedelta(days=days),
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    return IssuedToken(row.token_id, token, row.expires_at)


def revoke_api_token(session: Session, workspace_id: str, token_id: str) -> None:
    row = session.get(ApiToken, (workspace_id, token_id))
    if row is None:
        raise NotFoundError(f"no API token {token_id} in workspace '{workspace_id}'")
    row.revoked_at = row.revoked_at or now()


def list_api_tokens(session: Session, workspace_id: str) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.workspace_id == workspace_id).order_by(ApiToken.created_at)
    return list(session.scalars(query))
