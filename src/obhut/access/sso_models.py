"""Single sign-on: one OpenID Connect provider per workspace, and what its configuration makes of an ID
token's claims (which role, which authentication methods). The client secret is sealed by the workspace's
vault keys, so a copy of the database alone does not let anyone act as Obhut at the provider."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from obhut.kit.db import Base, Blob, UTCDateTime

# RFC 8176's registered amr values only: nothing else (such as our own "rec") can be smuggled into a session.
IDP_AMR = frozenset({"face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop", "pwd", "rba"})
IDP_AMR |= {"retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia"}
_PAPE = "http://schemas.openid.net/pape/policies/2007/06/"
# acr values that name a multi-factor level: OpenID PAPE, REFEDS, Okta, FIDO phishing-resistant (+ hardware)
MFA_ACR = frozenset({_PAPE + "multi-factor", _PAPE + "multi-factor-physical", "https://refeds.org/profile/mfa"})
MFA_ACR |= {"urn:okta:loa:2fa:any", "phr", "phrh"}


class SsoProvider(Base):
    """How a workspace's staff sign in through the business's identity provider (IdP).

    `role_map` is a JSON object from IdP role or group names (found in the claim `role_claim`) to Obhut
    role names; its first entry the staff member holds wins, so list the most privileged first.
    Without `default_role` a subject whose claims map to no role is refused."""

    __tablename__ = "access_sso_providers"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_sealed: Mapped[bytes | None] = mapped_column(Blob())  # None: a public client (PKCE only)
    scopes: Mapped[str] = mapped_column(String(500))  # space-separated, always with "openid"
    role_claim: Mapped[str | None] = mapped_column(String(100))
    role_map: Mapped[str] = mapped_column(Text, default="{}")
    default_role: Mapped[str | None] = mapped_column(String(40))
    trust_amr: Mapped[bool] = mapped_column(Boolean, default=False)  # take the IdP's amr/acr as MFA evidence
    auto_provision: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"SsoProvider({self.workspace_id!r}, issuer={self.issuer!r})"

    @property
    def roles_by_group(self) -> dict[str, str]:
        found: dict[str, str] = json.loads(self.role_map)
        return found

    def role_for(self, claims: Mapping[str, Any]) -> str | None:
        """The first role of `role_map` that the role claim names. The claim may be a nested path
        ('realm_access.roles'); a name with dots (a namespaced URL claim) is tried whole first."""
        if self.role_claim is None:
            return None
        value: Any = claims.get(self.role_claim)
        if value is None:
            value = claims
            for part in self.role_claim.split("."):
                value = value.get(part) if isinstance(value, dict) else None
        held = {value} if isinstance(value, str) else set()
        if isinstance(value, list):
            held = {v for v in value if isinstance(v, str)}
        return next((role for name, role in self.roles_by_group.items() if name in held), None)

    def amr_for(self, claims: Mapping[str, Any]) -> set[str]:
        """{"sso"}; where the workspace trusts the provider also its registered amr values, and "mfa" for an
        acr naming a multi-factor level. Only these make `Principal.has_mfa` true for an SSO session."""
        amr = {"sso"}
        if self.trust_amr:
            given = claims.get("amr")
            if isinstance(given, list):
                amr |= {v for v in given if isinstance(v, str) and v in IDP_AMR}
            acr = claims.get("acr")
            if isinstance(acr, str) and acr in MFA_ACR:
                amr.add("mfa")
        return amr
