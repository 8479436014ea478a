"""The pure parts of staff access: policy resolution, masks and TOTP (RFC 6238's own test vectors)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import ClassVar

import pytest

from obhut.access import masks, mfa
from obhut.access.policies import FIELD_CATEGORIES
from obhut.access.rules import (
    DEFAULT_PURPOSES,
    DEFAULT_RULES,
    CompiledPolicy,
    Effect,
    MaskStyle,
    Rule,
    parse_rules,
)
from obhut.kit.errors import ValidationFailedError

PURPOSES = list(DEFAULT_PURPOSES)


def _policy(*rules: Rule) -> CompiledPolicy:
    return CompiledPolicy(1, rules, FIELD_CATEGORIES, PURPOSES)


class TestDecisions:
    def test_default_deny_for_unknown_roles_fields_and_unruled_fields(self) -> None:
        policy = _policy(Rule("agent", "category:contact", "support", Effect.REVEAL))
        assert policy.decide("stranger", "email", "support").effect is Effect.DENY
        assert policy.decide("agent", "no_such_field", "support").effect is Effect.DENY
        assert policy.decide("agent", "iban", "support").effect is Effect.DENY
        assert policy.decide("agent", "email", "support").effect is Effect.REVEAL
        assert policy.decide("agent", "email", "billing").effect is Effect.DENY

    def test_the_most_specific_rule_wins(self) -> None:
        policy = _policy(
            Rule("agent", "*", "*", Effect.REVEAL),
            Rule("agent", "category:financial", "*", Effect.MASK),
            Rule("agent", "field:iban", "billing", Effect.REVEAL),
            Rule("agent", "field:card", "*", Effect.DENY),
        )
        assert policy.decide("agent", "email", "support").effect is Effect.REVEAL
        assert policy.decide("agent", "iban", "support").effect is Effect.MASK
        assert policy.decide("agent", "iban", "billing").effect is Effect.REVEAL
        assert policy.decide("agent", "card", "billing").effect is Effect.DENY

    def test_at_equal_specificity_the_more_restrictive_rule_wins(self) -> None:
        policy = _policy(
            Rule("agent", "field:email", "support", Effect.REVEAL),
            Rule("agent", "field:email", "support", Effect.MASK, MaskStyle.HASH),
        )
        decision = policy.decide("agent", "email", "support")
        assert (decision.effect, decision.mask) == (Effect.MASK, MaskStyle.HASH)

    def test_without_a_purpose_only_masked_values_of_fields_some_purpose_allows(self) -> None:
        policy = _policy(
            Rule("agent", "category:contact", "support", Effect.REVEAL),
            Rule("agent", "field:iban", "billing", Effect.MASK, MaskStyle.HASH),
        )
        plan = policy.plan("agent", None)
        assert {f: d.effect for f, d in plan.items() if d.effect is not Effect.DENY} == {
            "email": Effect.MASK,
            "phone": Effect.MASK,
            "postal_address": Effect.MASK,
            "iban": Effect.MASK,
        }
        assert plan["email"].mask is MaskStyle.PARTIAL
        assert plan["iban"].mask is MaskStyle.HASH

    def test_the_default_support_agent_sees_the_last_digits_of_an_iban_not_the_iban(self) -> None:
        policy = _policy(*DEFAULT_RULES)
        assert policy.decide("support_agent", "iban", "support").effect is Effect.MASK
        assert policy.decide("support_agent", "email", "support").effect is Effect.REVEAL
        assert policy.decide("support_agent", "iban", "billing").effect is Effect.REVEAL
        assert policy.reveals_sensitive("support_agent")
        assert not policy.reveals_sensitive("auditor")

    def test_a_policy_document_is_checked_rule_by_rule(self) -> None:
        raw = [
            {"role": "agent", "target": "field:email", "purpose": "support", "effect": "reveal"},
            {"role": "ghost", "target": "field:shoe_size", "purpose": "gossip", "effect": "peek", "mask": "blur"},
        ]
        with pytest.raises(ValidationFailedError) as caught:
            parse_rules(raw, ["agent"], FIELD_CATEGORIES, PURPOSES)
        assert sorted(e.field for e in caught.value.errors) == [
            "rules/1/effect",
            "rules/1/mask",
            "rules/1/purpose",
            "rules/1/role",
            "rules/1/target",
        ]
        assert parse_rules(raw[:1], ["agent"], FIELD_CATEGORIES, PURPOSES) == [
            Rule("agent", "field:email", "support", Effect.REVEAL)
        ]


class TestMasks:
    mask = masks.Masker(b"k" * 32)

    @pytest.mark.parametrize(
        ("field", "value", "masked"),
        [
            ("email", "jane.musterfrau@example.com", "j***@example.com"),
            ("phone", "+4930901820567", "+49 *** ****567"),
            ("iban", "DE89370400440532013400", "DE** **** **** **** **34 00"),
            ("birth_date", "1985-04-12", "1985"),
            ("given_name", "Jane Ann", "J. A."),
            ("family_name", "Musterfrau", "M."),
            ("notes", "Prefers email contact", masks.REDACTED),
            (
                "card",
                {"token": "tok_x", "brand": "visa", "last4": "1111"},
                {"token": None, "brand": "visa", "last4": "1111"},
            ),
        ],
    )
    def test_partial_masks_keep_what_the_task_needs(self, field: str, value: object, masked: object) -> None:
        assert self.mask(field, MaskStyle.PARTIAL, value) == masked

    def test_hash_is_keyed_stable_and_hides_the_value(self) -> None:
        first = self.mask("email", MaskStyle.HASH, "jane@example.com")
        assert first == self.mask("email", MaskStyle.HASH, "jane@example.com")
        assert first != self.mask("email", MaskStyle.HASH, "john@example.com")
        assert first != masks.Masker(b"o" * 32)("email", MaskStyle.HASH, "jane@example.com")
        assert "jane" not in first
        assert self.mask("email", MaskStyle.REDACT, "jane@example.com") == masks.REDACTED


class TestTotp:
    # RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890", 8 digits.
    SEEDS: ClassVar[dict[str, bytes]] = {
        "sha1": b"12345678901234567890",
        "sha256": b"12345678901234567890123456789012",
        "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
    }
    VECTORS: ClassVar[list[tuple[int, dict[str, str]]]] = [
        (59, {"sha1": "94287082", "sha256": "46119246", "sha512": "90693936"}),
        (1111111109, {"sha1": "07081804", "sha256": "68084774", "sha512": "25091201"}),
        (1111111111, {"sha1": "14050471", "sha256": "67062674", "sha512": "99943326"}),
        (1234567890, {"sha1": "89005924", "sha256": "91819424", "sha512": "93441116"}),
        (2000000000, {"sha1": "69279037", "sha256": "90698825", "sha512": "38618901"}),
        (20000000000, {"sha1": "65353130", "sha256": "77737706", "sha512": "47863826"}),
    ]

    @pytest.mark.parametrize(("seconds", "codes"), VECTORS)
    def test_rfc_6238_vectors(self, seconds: int, codes: dict[str, str]) -> None:
        for digest, code in codes.items():
            secret = base64.b32encode(self.SEEDS[digest]).decode()
            assert mfa.totp_code(secret, seconds // mfa.STEP_SECONDS, digits=8, digest=digest) == code

    def test_a_code_is_accepted_once_and_only_near_its_time(self) -> None:
        secret = base64.b32encode(b"12345678901234567890").decode()
        at = datetime.fromtimestamp(1111111111, UTC)
        step = 1111111111 // mfa.STEP_SECONDS
        code = mfa.totp_code(secret, step)
        assert mfa.matching_step(secret, code, at, last_step=0) == step
        assert mfa.matching_step(secret, code, at, last_step=step) is None  # replay
        assert mfa.matching_step(secret, mfa.totp_code(secret, step - 1), at, 0) == step - 1  # drift
        assert mfa.matching_step(secret, mfa.totp_code(secret, step - 3), at, 0) is None
        assert mfa.matching_step(secret, "000000" if code != "000000" else "111111", at, 0) is None
