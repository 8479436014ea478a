"""The one policy decision point: roles, purposes, versioned policies, read plans and break-glass.
Each request reads the current policy version (one small query), so no decision outlives a change."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from obhut.access import rules
from obhut.access.models import BreakGlass, PolicyVersion, Purpose, Role
from obhut.access.rules import CompiledPolicy, Effect, FieldDecision, MaskStyle, Permission, ReadPlan
from obhut.access.service import Principal
from obhut.customers.rules import FIELDS
from obhut.kit.clock import now
from obhut.kit.errors import (
    ConflictError,
    FieldError,
    FieldErrors,
    ForbiddenError,
    NotFoundError,
    ValidationFailedError,
)
from obhut.kit.ids import new_id
from obhut.vault.keyring import Keyring

_NAME_RULE = "must be 2-40 lower-case letters, digits or '_', starting with a letter"
FIELD_CATEGORIES = {name: spec.category.value for name, spec in FIELDS.items()}
_ADMIN_PERMISSIONS = frozenset(
    {Permission.POLICY_MANAGE, Permission.STAFF_MANAGE, Permission.KEYS_MANAGE, Permission.BREAK_GLASS}
)


class MfaRequiredError(ForbiddenError):
    kind = "mfa-required"
    title = "A second factor is required"


@dataclass(frozen=True)
class Snapshot:
    """A workspace's access configuration at one policy version."""

    policy: CompiledPolicy
    roles: dict[str, frozenset[Permission]]
    require_mfa_all: bool

    def requires_mfa(self, role: str) -> bool:
        return (
            self.require_mfa_all
            or self.policy.reveals_sensitive(role)
            or bool(self.roles.get(role, frozenset()) & _ADMIN_PERMISSIONS)
        )


class PolicyService:
    def __init__(self) -> None:
        self._compiled: dict[tuple[str, int], Snapshot] = {}

    # --- set-up and configuration ------------------------------------------------------------------
    def seed(self, session: Session, workspace_id: str, created_by: str = "system") -> None:
        """Built-in roles, the default purposes and policy version 1 for a new workspace."""
        for name, permissions in rules.BUILTIN_ROLES.items():
            session.add(
                Role(
                    workspace_id=workspace_id,
                    name=name,
                    title=name.replace("_", " ").capitalize(),
                    permissions=" ".join(sorted(permissions)),
                    builtin=True,
                )
            )
        session.add_all(Purpose(workspace_id=workspace_id, key=k, title=t) for k, t in rules.DEFAULT_PURPOSES.items())
        session.add(_version(workspace_id, 1, rules.DEFAULT_RULES, require_mfa_all=False, created_by=created_by))
        session.flush()

    def snapshot(self, session: Session, workspace_id: str) -> Snapshot:
        version = session.scalar(
            select(func.max(PolicyVersion.version)).where(PolicyVersion.workspace_id == workspace_id)
        )
        if version is None:  # a workspace created before staff access existed
            self.seed(session, workspace_id)
            version = 1
        cached = self._compiled.get((workspace_id, version))
        if cached is None:
            row = session.get(PolicyVersion, (workspace_id, version))
            assert row is not None
            roles = self.roles(session, workspace_id)
            parsed = rules.parse_rules(
                json.loads(row.rules), roles, FIELD_CATEGORIES, self.purposes(session, workspace_id)
            )
            policy = CompiledPolicy(version, parsed, FIELD_CATEGORIES, self.purposes(session, workspace_id))
            cached = self._compiled[workspace_id, version] = Snapshot(policy, roles, row.require_mfa_all)
        return cached

    def roles(self, session: Session, workspace_id: str) -> dict[str, frozenset[Permission]]:
        rows = session.scalars(select(Role).where(Role.workspace_id == workspace_id))
        return {r.name: frozenset(Permission(p) for p in r.permissions.split()) for r in rows}

    def purposes(self, session: Session, workspace_id: str) -> dict[str, str]:
        rows = session.scalars(select(Purpose).where(Purpose.workspace_id == workspace_id).order_by(Purpose.key))
        return {p.key: p.title for p in rows}

    def add_role(
        self, session: Session, principal: Principal, name: str, title: str, permissions: Sequence[str]
    ) -> None:
        self._guard(principal)
        errors = FieldErrors()
        if not rules.is_valid_name(name):
            errors.add("name", _NAME_RULE)
        known = {p.value for p in Permission}
        for position, permission in enumerate(permissions):
            if permission not in known:
                errors.add(f"permissions/{position}", f"unknown permission; known: {', '.join(sorted(known))}")
        errors.raise_if_any()
        if session.get(Role, (principal.workspace_id, name)) is not None:
            raise ConflictError(f"the role '{name}' already exists")
        session.add(
            Role(workspace_id=principal.workspace_id, name=name, title=title, permissions=" ".join(sorted(permissions)))
        )
        self._bump(session, principal)  # a new role changes what the policy can say: a new version

    def add_purpose(self, session: Session, principal: Principal, key: str, title: str) -> None:
        self._guard(principal)
        if not rules.is_valid_name(key):
            raise ValidationFailedError([FieldError("key", _NAME_RULE)])
        if session.get(Purpose, (principal.workspace_id, key)) is not None:
            raise ConflictError(f"the purpose '{key}' already exists")
        session.add(Purpose(workspace_id=principal.workspace_id, key=key, title=title))
        self._bump(session, principal)

    def set_policy(
        self, session: Session, principal: Principal, raw_rules: Sequence[Mapping[str, Any]], *, require_mfa_all: bool
    ) -> int:
        """A new policy version; needs policy rights and a second factor. Returns the version number."""
        self._guard(principal)
        workspace_id = principal.workspace_id
        parsed = rules.parse_rules(
            raw_rules, self.roles(session, workspace_id), FIELD_CATEGORIES, self.purposes(session, workspace_id)
        )
        current = self.snapshot(session, workspace_id).policy.version
        session.add(
            _version(workspace_id, current + 1, parsed, require_mfa_all=require_mfa_all, created_by=principal.actor)
        )
        session.flush()
        return current + 1

    def _bump(self, session: Session, principal: Principal) -> None:
        session.flush()
        current = self.snapshot(session, principal.workspace_id)
        session.add(
            _version(
                principal.workspace_id,
                current.policy.version + 1,
                current.policy.rules,
                require_mfa_all=current.require_mfa_all,
                created_by=principal.actor,
            )
        )
        session.flush()

    @staticmethod
    def _guard(principal: Principal) -> None:
        principal.require(Permission.POLICY_MANAGE)
        if not principal.has_mfa:
            raise MfaRequiredError("changing roles, purposes or policies needs a session with a second factor")

    def history(self, session: Session, workspace_id: str) -> list[PolicyVersion]:
        query = select(PolicyVersion).where(PolicyVersion.workspace_id == workspace_id).order_by(PolicyVersion.version)
        return list(session.scalars(query))

    # --- decisions -----------------------------------------------------------------------------------
    def check_mfa(self, session: Session, principal: Principal) -> Snapshot:
        snapshot = self.snapshot(session, principal.workspace_id)
        if not principal.has_mfa and snapshot.requires_mfa(principal.role):
            raise MfaRequiredError(
                f"the role '{principal.role}' needs a second factor: verify a TOTP code or a passkey for this "
                "session (POST .../auth/mfa/totp, or sign in with a passkey), or set one up first"
            )
        return snapshot

    def plan(self, session: Session, principal: Principal, purpose: str | None, ticket: str | None) -> ReadPlan:
        principal.require(Permission.CUSTOMERS_READ)
        snapshot = self.check_mfa(session, principal)
        if purpose is not None and purpose not in snapshot.policy.purposes:
            known = ", ".join(sorted(snapshot.policy.purposes))
            raise ValidationFailedError([FieldError("purpose", f"unknown purpose; this workspace's purposes: {known}")])
        decisions = snapshot.policy.plan(principal.role, purpose)
        return ReadPlan(principal.role, purpose, ticket, snapshot.policy.version, decisions)

    def break_glass(
        self,
        session: Session,
        keyring: Keyring,
        principal: Principal,
        customer_id: str,
        purpose: str,
        justification: str,
    ) -> ReadPlan:
        """Reveals every field beyond policy, for a privileged role with a written reason; recorded and flagged."""
        principal.require(Permission.BREAK_GLASS)
        plan = self.plan(session, principal, purpose, None)
        if len(justification.strip()) < 20:  # noqa: PLR2004
            raise ValidationFailedError(
                [FieldError("justification", "explain in at least 20 characters why this is needed")]
            )
        event_id = new_id()
        session.add(
            BreakGlass(
                workspace_id=principal.workspace_id,
                event_id=event_id,
                staff_id=principal.actor,
                role=principal.role,
                customer_id=customer_id,
                purpose=purpose,
                justification_sealed=keyring.seal_secret(f"break-glass:{event_id}", justification.strip().encode()),
                created_at=now(),
            )
        )
        revealed = dict.fromkeys(plan.decisions, FieldDecision(Effect.REVEAL, MaskStyle.PARTIAL))
        return ReadPlan(principal.role, purpose, None, plan.policy_version, revealed, break_glass=True)

    def break_glass_events(
        self, session: Session, keyring: Keyring, principal: Principal
    ) -> list[tuple[BreakGlass, str]]:
        principal.require(Permission.OVERSIGHT)
        rows = session.scalars(
            select(BreakGlass).where(BreakGlass.workspace_id == principal.workspace_id).order_by(BreakGlass.created_at)
        )
        return [(r, keyring.open_secret(f"break-glass:{r.event_id}", r.justification_sealed).decode()) for r in rows]

    def review_break_glass(self, session: Session, principal: Principal, event_id: str) -> None:
        principal.require(Permission.OVERSIGHT)
        row = session.get(BreakGlass, (principal.workspace_id, event_id))
        if row is None:
            raise NotFoundError(f"no break-glass event {event_id}")
        row.reviewed_at, row.reviewed_by = now(), principal.actor


def _version(
    workspace_id: str, version: int, parsed: Sequence[rules.Rule], *, require_mfa_all: bool, created_by: str
) -> PolicyVersion:
    return PolicyVersion(
        workspace_id=workspace_id,
        version=version,
        rules=json.dumps([r.as_dict() for r in parsed]),
        require_mfa_all=require_mfa_all,
        created_by=created_by,
        created_at=now(),
    )
