"""The access log's words for a customer: an action's subject and verb where they have their own words."""

from __future__ import annotations

from obhut.audit import rules


def test_a_declined_consent_is_not_data_that_was_not_shown() -> None:
    assert rules.describe("de", "api:consent:denied") == "hat Ihre Ablehnung erfasst"
    assert rules.describe("en", "api:consent:withdrawn") == "recorded your withdrawal of consent"
    assert rules.words("en", "denied") == "not shown"  # the outcome keeps its own words


def test_other_actions_are_described_by_their_verb() -> None:
    assert rules.describe("en", "api:customer:read") == "viewed your data"
    assert rules.describe("de", "cli:customer:export") == "hat Ihre Daten exportiert"
    assert rules.describe("fr", "api:something:new") == "an action on your record"
