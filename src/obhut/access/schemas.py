"""Shapes shared by the sign-in endpoints (password, passkey)."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from datetime import datetime

from pydantic import BaseModel, Field

from obhut.access.service import MFA_METHODS, IssuedToken


class SessionOut(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'; shown once")
    expires_at: datetime
    amr: list[str] = Field(description="How you authenticated: pwd, otp, hwk, rec, sso")
    mfa_required: bool = Field(description="Whether your role needs a second factor before anything else")
    mfa_enrolled: bool

    @classmethod
    def of(cls, token: IssuedToken, amr: AbstractSet[str], role_needs_mfa: bool, *, enrolled: bool) -> SessionOut:
        assert token.expires_at is not None  # sessions always expire
        return cls(
            token=token.token,
            expires_at=token.expires_at,
            amr=sorted(amr),
            mfa_required=role_needs_mfa and not (amr & MFA_METHODS),
            mfa_enrolled=enrolled,
        )
