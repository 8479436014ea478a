from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from obhut.access import rules
from obhut.access.models import AdminToken
from obhut.kit.clock import now
from obhut.kit.errors import AuthenticationError, NotFoundError
from obhut.kit.ids import new_id

ALL_WORKSPACES = "*"


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    token: str

    def __repr__(self) -> str:
        return f"IssuedToken({self.token_id!r})"


def create_admin_token(session: Session, label: str, workspace_id: str = ALL_WORKSPACES) -> IssuedToken:
    token = rules.new_token()
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


def revoke_admin_token(session: Session, token_id: str) -> None:
    row = session.scalar(select(AdminToken).where(AdminToken.token_id == token_id))
    if row is None:
        raise NotFoundError(f"no admin token {token_id}")
    row.revoked_at = now()


def authenticate(session: Session, token: str | None, workspace_id: str | None) -> AdminToken:
    """The token's row if it is valid for the workspace; the same error for unknown, revoked and foreign."""
    failure = AuthenticationError(
        "a valid admin token is required: send 'Authorization: Bearer <token>' "
        "(create one with 'obhut admin token create')"
    )
    if not token or not token.startswith(rules.TOKEN_PREFIX):
        raise failure
    row = session.scalar(select(AdminToken).where(AdminToken.token_hash == rules.token_hash(token)))
    if row is None or row.revoked_at is not None:
        raise failure
    if workspace_id is not None and row.workspace_id not in (ALL_WORKSPACES, workspace_id):
        raise failure
    return row


def has_admin_tokens(session: Session) -> bool:
    return session.scalar(select(AdminToken.token_id).where(AdminToken.revoked_at.is_(None)).limit(1)) is not None
