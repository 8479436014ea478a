"""Who may see what: roles, permissions, and the policy that maps role x field x purpose to an effect.
Pure: no database, no web, no keys. Policies are compiled once into a table, so a decision is a lookup."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from obhut.kit.errors import FieldErrors

ADMIN_TOKEN_PREFIX = "obhut_adm_"  # noqa: S105 - public prefixes let secret scanners recognise leaked tokens
SESSION_PREFIX = "obhut_ses_"
API_TOKEN_PREFIX = "obhut_tok_"  # noqa: S105
TOKEN_PREFIX = ADMIN_TOKEN_PREFIX  # the bootstrap token's prefix, as before staff accounts existed
ANY = "*"
SENSITIVE_CATEGORIES = frozenset({"identity", "financial", "biometric"})
_NAME = re.compile(r"[a-z][a-z0-9_]{1,39}")


class Effect(IntEnum):
    """Ordered from most to least restrictive: at equal specificity the more restrictive rule wins."""

    DENY = 0
    MASK = 1
    REVEAL = 2


class MaskStyle(StrEnum):
    PARTIAL = "partial"  # keeps what the task needs: initials, last digits, the email's domain
    HASH = "hash"  # a keyed digest: equal values compare equal, nothing else shows
    REDACT = "redact"  # nothing at all


class Permission(StrEnum):
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    CUSTOMERS_DELETE = "customers:delete"
    BREAK_GLASS = "customers:break-glass"
    STAFF_MANAGE = "staff:manage"
    POLICY_MANAGE = "policy:manage"
    KEYS_MANAGE = "keys:manage"
    TOKENS_MANAGE = "tokens:manage"
    OVERSIGHT = "oversight:read"  # break-glass reviews and, later, the access log
    RIGHTS_MANAGE = "rights:manage"  # verify and answer data-subject requests, retention and legal holds


ALL_PERMISSIONS = frozenset(Permission)
_READ_WRITE = frozenset({Permission.CUSTOMERS_READ, Permission.CUSTOMERS_WRITE})
BUILTIN_ROLES: dict[str, frozenset[Permission]] = {
    "owner": ALL_PERMISSIONS,
    "admin": ALL_PERMISSIONS - {Permission.OVERSIGHT},
    "privacy_officer": _READ_WRITE
    | {Permission.CUSTOMERS_DELETE, Permission.OVERSIGHT, Permission.BREAK_GLASS, Permission.RIGHTS_MANAGE},
    "support_agent": _READ_WRITE,
    "analyst": frozenset({Permission.CUSTOMERS_READ}),
    "auditor": frozenset({Permission.CUSTOMERS_READ, Permission.OVERSIGHT}),
}
DEFAULT_PURPOSES = {
    "support": "Customer support",
    "billing": "Billing and payments",
    "fraud_prevention": "Fraud prevention",
    "marketing": "Marketing",
    "privacy_request": "Answering a data-subject request",
}


@dataclass(frozen=True)
class Rule:
    """`target` is '*', 'category:<name>' or 'field:<name>'; `purpose` is '*' or a purpose key."""

    role: str
    target: str
    purpose: str
    effect: Effect
    mask: MaskStyle = MaskStyle.PARTIAL

    def as_dict(self) -> dict[str, str]:
        return {
            "role": self.role,
            "target": self.target,
            "purpose": self.purpose,
            "effect": self.effect.name.lower(),
            "mask": self.mask.value,
        }


def _rule(role: str, target: str, purpose: str, effect: Effect, mask: MaskStyle = MaskStyle.PARTIAL) -> Rule:
    return Rule(role, target, purpose, effect, mask)


DEFAULT_RULES: tuple[Rule, ...] = (
    _rule("owner", ANY, ANY, Effect.REVEAL),
    _rule("admin", ANY, ANY, Effect.MASK),
    _rule("privacy_officer", ANY, ANY, Effect.MASK),
    _rule("privacy_officer", ANY, "privacy_request", Effect.REVEAL),
    _rule("support_agent", "category:identity", "support", Effect.REVEAL),
    _rule("support_agent", "field:birth_date", "support", Effect.MASK),
    _rule("support_agent", "category:contact", "support", Effect.REVEAL),
    _rule("support_agent", "category:financial", "support", Effect.MASK),
    _rule("support_agent", "category:notes", "support", Effect.REVEAL),
    _rule("support_agent", "category:financial", "billing", Effect.REVEAL),
    _rule("support_agent", "field:card", "billing", Effect.MASK),
    _rule("support_agent", "category:identity", "billing", Effect.MASK),
    _rule("analyst", "category:contact", ANY, Effect.MASK, MaskStyle.HASH),
    _rule("auditor", ANY, ANY, Effect.MASK, MaskStyle.REDACT),
)


def token_hash(token: str) -> str:
    # A plain hash suffices: tokens carry 256 bits of entropy, so there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = ADMIN_TOKEN_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def is_valid_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


@dataclass(frozen=True)
class FieldDecision:
    effect: Effect
    mask: MaskStyle = MaskStyle.REDACT


DENIED = FieldDecision(Effect.DENY)


class CompiledPolicy:
    """One policy version as a table: (role, purpose) -> {field: decision}. Built once per version."""

    def __init__(self, version: int, rules: Sequence[Rule], fields: Mapping[str, str], purposes: Iterable[str]) -> None:
        self.version = version
        self.rules = tuple(rules)
        self.fields = dict(fields)  # field -> category
        self.purposes = frozenset(purposes)
        by_role: dict[str, list[Rule]] = {}
        for rule in self.rules:
            by_role.setdefault(rule.role, []).append(rule)
        self._table: dict[tuple[str, str | None], dict[str, FieldDecision]] = {}
        for role, role_rules in by_role.items():
            for purpose in self.purposes:
                self._table[role, purpose] = {f: _resolve(role_rules, f, c, purpose) for f, c in self.fields.items()}
            self._table[role, None] = _without_purpose([self._table[role, p] for p in self.purposes], self.fields)

    def decide(self, role: str, field: str, purpose: str | None) -> FieldDecision:
        table = self._table.get((role, purpose))
        return DENIED if table is None else table.get(field, DENIED)

    def plan(self, role: str, purpose: str | None) -> dict[str, FieldDecision]:
        """Every field's decision for one role and purpose (default deny for unknown roles or fields)."""
        table = self._table.get((role, purpose))
        return dict.fromkeys(self.fields, DENIED) if table is None else dict(table)

    def reveals_sensitive(self, role: str) -> bool:
        """Whether any purpose lets this role read identity, financial or biometric data in the clear."""
        return any(
            self.decide(role, f, p).effect is Effect.REVEAL
            for f, category in self.fields.items()
            if category in SENSITIVE_CATEGORIES
            for p in self.purposes
        )


def _resolve(rules: Sequence[Rule], field: str, category: str, purpose: str) -> FieldDecision:
    best: tuple[int, int] | None = None
    decision = DENIED
    for rule in rules:
        if rule.purpose not in (ANY, purpose):
            continue
        if rule.target == f"field:{field}":
            rank = 4
        elif rule.target == f"category:{category}":
            rank = 2
        elif rule.target == ANY:
            rank = 0
        else:
            continue
        specificity = rank + (rule.purpose != ANY)
        key = (specificity, -rule.effect)
        if best is None or key > best:
            best, decision = key, FieldDecision(rule.effect, rule.mask)
    return decision


def _without_purpose(tables: list[dict[str, FieldDecision]], fields: Mapping[str, str]) -> dict[str, FieldDecision]:
    """No stated purpose: masked values only, and only of fields some purpose would let the role see."""
    out = {}
    for name in fields:
        seen = [t[name] for t in tables if t[name].effect is not Effect.DENY]
        if not seen:
            out[name] = DENIED
        elif any(d.mask is MaskStyle.PARTIAL or d.effect is Effect.REVEAL for d in seen):
            out[name] = FieldDecision(Effect.MASK, MaskStyle.PARTIAL)
        else:
            style = MaskStyle.HASH if any(d.mask is MaskStyle.HASH for d in seen) else MaskStyle.REDACT
            out[name] = FieldDecision(Effect.MASK, style)
    return out


def parse_rules(
    raw: Sequence[Mapping[str, Any]], roles: Iterable[str], fields: Mapping[str, str], purposes: Iterable[str]
) -> list[Rule]:
    """Rules from a policy document, with every problem reported at once, by rule position."""
    known_roles, known_purposes = set(roles), set(purposes)
    targets = {ANY} | {f"field:{f}" for f in fields} | {f"category:{c}" for c in set(fields.values())}
    errors = FieldErrors()
    out = []
    for position, item in enumerate(raw):
        where = f"rules/{position}"
        role, target = str(item.get("role", "")), str(item.get("target", ANY))
        purpose, effect, mask = str(item.get("purpose", ANY)), str(item.get("effect", "")), item.get("mask")
        problems = len(errors.errors)
        if role not in known_roles:
            errors.add(f"{where}/role", f"unknown role; known roles: {', '.join(sorted(known_roles))}")
        if target not in targets:
            errors.add(f"{where}/target", "must be '*', 'category:<category>' or 'field:<field>' of a known one")
        if purpose != ANY and purpose not in known_purposes:
            errors.add(f"{where}/purpose", f"unknown purpose; known: {', '.join(sorted(known_purposes))} or '*'")
        if effect not in ("reveal", "mask", "deny"):
            errors.add(f"{where}/effect", "must be reveal, mask or deny")
        if mask is not None and mask not in {m.value for m in MaskStyle}:
            errors.add(f"{where}/mask", "must be partial, hash or redact")
        if len(errors.errors) == problems:
            out.append(Rule(role, target, purpose, Effect[effect.upper()], MaskStyle(mask or MaskStyle.PARTIAL)))
    errors.raise_if_any()
    return out


_DISCLOSED = {Effect.REVEAL: "revealed", Effect.MASK: "masked", Effect.DENY: "withheld"}


@dataclass(frozen=True)
class ReadPlan:
    """What one read may return, decided before anything is decrypted: field -> reveal, mask or deny."""

    role: str
    purpose: str | None
    ticket: str | None
    policy_version: int
    decisions: Mapping[str, FieldDecision]
    break_glass: bool = False
    _disclosures: dict[tuple[str, ...], dict[str, str]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def decision(self, field: str) -> FieldDecision:
        return self.decisions.get(field, DENIED)

    def disclosure(self, fields: tuple[str, ...]) -> dict[str, str]:
        """Each of `fields` as this plan shows it: revealed, masked or withheld (worked out once per plan, for
        the many records one read may show). The caller gets it to read, not to change."""
        found = self._disclosures.get(fields)
        if found is None:
            found = self._disclosures[fields] = {name: _DISCLOSED[self.decision(name).effect] for name in fields}
        return found

    def outcome(self) -> str:
        effects = {d.effect for d in self.decisions.values()}
        if Effect.REVEAL in effects:
            return "revealed"
        return "masked" if Effect.MASK in effects else "denied"
