"""The outbox's pure rules: the payload every destination gets, who wants which event, and backoff."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from obhut.outbox import rules
from obhut.outbox.rules import Outgoing, Subscription

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _event(topic: str = "consent.granted", purpose: str | None = "newsletter", data: str = "{}") -> Outgoing:
    return Outgoing("e-1", "acme", 7, topic, "c-1", purpose, AT, data)


def test_the_body_is_the_envelope_around_the_stored_data() -> None:
    body = json.loads(_event(data='{"kind":"granted","until":null}').body())
    assert body == {
        "id": "e-1", "type": "consent.granted", "timestamp": "2026-11-23T12:00:00.000000+00:00",
        "workspace": "acme", "position": 7,
        "data": {"customer": "c-1", "purpose": "newsletter", "kind": "granted", "until": None},
    }  # fmt: skip
    assert json.loads(_event(data="{}").body())["data"] == {"customer": "c-1", "purpose": "newsletter"}
    assert _event().subject("obhut") == "obhut.acme.consent.granted"


def test_a_recipient_wants_its_types_and_purposes_and_stops_need_no_permission() -> None:
    mailing = Subscription(topics=["consent", "customer.erased"], purposes=["newsletter"])
    assert mailing.wants(_event())
    assert not mailing.wants(_event(purpose="partner_sharing"))
    assert mailing.wants(_event("customer.erased", purpose=None))
    assert not mailing.wants(_event("customer.rectified", purpose=None))
    assert not mailing.wants(_event("consentx.granted"))  # a prefix is a whole word
    assert mailing.needs_permission(_event())
    assert not mailing.needs_permission(_event("consent.withdrawn"))
    assert not mailing.needs_permission(_event("customer.erased", purpose=None))


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [rules.retry_delay(n, 10).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert rules.retry_delay(30, 10) == timedelta(hours=1)
    assert rules.retry_delay(30, 10, cap=300) == timedelta(minutes=5)


def test_failures_are_named_without_their_messages() -> None:
    assert rules.describe_failure(503) == "HTTP 503"
    assert rules.describe_failure(ConnectionError("https://user:secret@crm.example.com")) == "ConnectionError"


@pytest.mark.parametrize("topic", ["consent", "Consent.Granted", "consent granted", "a." + "b" * 40])
def test_event_types_are_dotted_lower_case_words(topic: str) -> None:
    with pytest.raises(rules.TopicError, match="event type"):
        rules.check_topic(topic)
