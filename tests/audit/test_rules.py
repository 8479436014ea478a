"""The access log's rules: its words for a customer, the canonical body each entry is hashed as, and its leaves."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from obhut.audit import merkle, rules, service


def test_a_declined_consent_is_not_data_that_was_not_shown() -> None:
    assert rules.describe("de", "api:consent:denied") == "hat Ihre Ablehnung erfasst"
    assert rules.describe("en", "api:consent:withdrawn") == "recorded your withdrawal of consent"
    assert rules.words("en", "denied") == "not shown"  # the outcome keeps its own words


def test_other_actions_are_described_by_their_verb() -> None:
    assert rules.describe("en", "api:customer:read") == "viewed your data"
    assert rules.describe("de", "cli:customer:export") == "hat Ihre Daten exportiert"
    assert rules.describe("fr", "api:something:new") == "an action on your record"


def test_an_entry_body_is_the_compact_json_array_of_its_columns_in_order() -> None:
    at = datetime(2026, 11, 24, 6, 0, 0, 1234, tzinfo=UTC)
    values: dict[str, object] = dict.fromkeys(rules.CONTENT_COLUMNS)
    values |= {"entry_id": "e-1", "at": at, "actor": 'staff:"ä"\\\n', "count": 3, "sealed": b"\x00\xff"}
    expected = [values[column] for column in rules.CONTENT_COLUMNS]
    expected[rules.CONTENT_COLUMNS.index("at")] = "2026-11-24T06:00:00.001234+00:00"
    expected[rules.CONTENT_COLUMNS.index("sealed")] = "AP8="
    canonical = json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode()
    assert rules.body_bytes(values) == canonical
    assert rules.body_bytes(values, rules.time_text(at)) == canonical  # a batch formats its time once


def test_entries_written_together_share_their_time_and_have_their_own_ids() -> None:
    context = service.Context("staff:1", "support_agent", "192.0.2.1", "ua", "req-1")
    events = [service.Event("api:customer:read", "masked", count=n) for n in range(300)]
    rows = service.entry_rows(None, "ws", context, events)
    assert len({row["entry_id"] for row in rows}) == 300
    assert all(uuid.UUID(row["entry_id"]).version == 7 for row in rows)
    assert all(uuid.UUID(row["entry_id"]).variant == uuid.RFC_4122 for row in rows)
    assert len({row["at"] for row in rows}) == 1
    assert [json.loads(row["body"])[rules.CONTENT_COLUMNS.index("count")] for row in rows] == list(range(300))
    assert all(row["body"] == rules.body_bytes(row) for row in rows)


def test_a_context_repr_names_no_address_or_browser() -> None:
    context = service.Context("staff:1", "support_agent", "192.0.2.77", "Mozilla/5.0 (Example)", "req-9")
    assert "192.0.2.77" not in repr(context)
    assert "Mozilla" not in repr(context)
    assert "staff:1" in repr(context)


def test_a_leaf_covers_the_position_then_the_body_and_is_hashed_without_joining_them_first() -> None:
    bodies = [b"", b"ab", b'["x"]' * 100]
    assert rules.leaves_data(258, bodies[:2]) == [bytes(6) + b"\x01\x02", bytes(6) + b"\x01\x03ab"]
    by_leaf = [merkle.leaf_hash(data) for data in rules.leaves_data(2**40, bodies)]
    assert rules.leaf_hashes(2**40, bodies) == by_leaf
    assert rules.leaf_hashes(0, []) == []
    with pytest.raises(ValueError, match="zip"):
        merkle.leaf_hashes(bodies, rules.leaf_heads(0, 2))  # one head short
