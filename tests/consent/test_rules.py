"""The consent decision and the ledger's chain, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from obhut.consent.rules import GENESIS, Kind, Latest, LegalBasis, decide, event_hash, parse_version

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("latest", "major", "allowed", "reason"),
    [
        (None, 1, False, "no consent"),
        (Latest(Kind.GRANTED, None, 1), 1, True, "granted"),
        (Latest(Kind.GRANTED, AT + timedelta(seconds=1), 1), 1, True, "granted"),
        (Latest(Kind.GRANTED, AT, 1), 1, False, "expired"),  # ends at that instant
        (Latest(Kind.GRANTED, None, 1), 2, False, "notice changed"),
        (Latest(Kind.WITHDRAWN, None, 1), 1, False, "withdrawn"),
        (Latest(Kind.DENIED, None, 1), 1, False, "denied"),
        (Latest(Kind.OBJECTED, None, None), 1, False, "objected"),
    ],
)
def test_consent_fails_closed(latest: Latest | None, major: int, *, allowed: bool, reason: str) -> None:
    decision = decide(LegalBasis.CONSENT, latest, major, AT)
    assert (decision.allowed, decision.reason) == (allowed, reason)


def test_other_bases_need_no_consent_and_legitimate_interest_honours_an_objection() -> None:
    assert decide(LegalBasis.CONTRACT, None, None, AT).allowed
    assert decide(LegalBasis.LEGITIMATE_INTEREST, Latest(Kind.GRANTED, None, None), None, AT).allowed
    objected = decide(LegalBasis.LEGITIMATE_INTEREST, Latest(Kind.OBJECTED, None, None), None, AT)
    assert (objected.allowed, objected.reason) == (False, "objected")


def test_each_hash_depends_on_the_one_before_and_on_every_field() -> None:
    first = event_hash(GENESIS, {"kind": "granted", "purpose_key": "newsletter"})
    second = event_hash(first, {"kind": "withdrawn", "purpose_key": "newsletter"})
    assert second != event_hash(GENESIS, {"kind": "withdrawn", "purpose_key": "newsletter"})
    assert first != event_hash(GENESIS, {"kind": "granted", "purpose_key": "newsletters"})
    assert len({first, second}) == 2


def test_notice_versions_are_major_dot_minor() -> None:
    assert parse_version("2.1") == (2, 1)
    assert parse_version("3") == (3, 0)
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR"):
        parse_version("v2")
