"""What leaves Obhut, to whom, and when to try again. Pure: no database, web or network.

An outbox event is written in the same transaction as the change it reports (a consent change, later an
erasure or a rectification) and carries no personal data: pseudonymous ids, purpose keys, kinds and times.
Its `event_id` is the idempotency key every destination sees, however often it is delivered."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from json.encoder import encode_basestring as _quote  # a JSON string literal (C-accelerated)

NATS = "nats"
WEBHOOK = "webhook:"  # + recipient id
TOPIC = re.compile(r"^[a-z][a-z0-9_-]{0,30}(\.[a-z][a-z0-9_-]{0,30}){1,3}$")

# Events that tell a recipient to stop or forget: they reach every recipient of the purpose whatever the
# customer's consent says now (GDPR Art. 19). The others carry a use of data and go only while it is allowed.
STOPS = frozenset(
    {"consent.denied", "consent.withdrawn", "consent.expired", "consent.objected", "customer.erased",
     "customer.restricted"}
)  # fmt: skip


class TopicError(ValueError):
    pass


def check_topic(topic: str) -> str:
    if not TOPIC.match(topic):
        raise TopicError(f"'{topic}' is not an event type: use lower-case words joined by dots (consent.withdrawn)")
    return topic


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event as the relay hands it to a destination. `data` is the stored JSON object, as text."""

    event_id: str
    workspace_id: str
    position: int
    topic: str
    customer_id: str | None
    purpose: str | None
    occurred_at: datetime
    data: str

    def body(self) -> bytes:
        """The JSON every destination receives (the Standard Webhooks payload shape: type, timestamp, data).
        Assembled around the stored data's text: parsing and dumping it again per event would cost more
        than the rest of the relay's own work."""
        customer = "null" if self.customer_id is None else _quote(self.customer_id)
        purpose = "null" if self.purpose is None else _quote(self.purpose)
        rest = self.data.strip()
        data = f'{{"customer":{customer},"purpose":{purpose}{"" if rest == "{}" else "," + rest[1:-1]}}}'
        stamp = self.occurred_at.isoformat(timespec="microseconds")
        return (
            f'{{"id":{_quote(self.event_id)},"type":{_quote(self.topic)},"timestamp":"{stamp}",'
            f'"workspace":{_quote(self.workspace_id)},"position":{int(self.position)},"data":{data}}}'
        ).encode()

    def subject(self, prefix: str) -> str:
        """The NATS subject: `<prefix>.<workspace>.<type>`, so consumers can filter by either."""
        return f"{prefix}.{self.workspace_id}.{self.topic}"


@dataclass(frozen=True)
class Subscription:
    """What a recipient (a processor or third party) is registered to receive."""

    topics: Collection[str]  # prefixes: "consent" takes every consent.* event
    purposes: Collection[str]  # the purposes it receives data for

    def wants(self, event: Outgoing) -> bool:
        if not any(event.topic == t or event.topic.startswith(f"{t}.") for t in self.topics):
            return False
        return event.purpose is None or event.purpose in self.purposes

    def needs_permission(self, event: Outgoing) -> bool:
        """Whether the customer must allow the event's purpose right now for it to be sent."""
        return event.purpose is not None and event.topic not in STOPS


def retry_delay(attempts: int, base: float, cap: float = 3600.0) -> timedelta:
    """Exponential backoff after `attempts` failed tries: base, 2 base, 4 base, ... at most `cap` seconds."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def describe_failure(error: BaseException | int) -> str:
    """What a dead letter says went wrong: an HTTP status or the error's kind, never a message that could
    quote a payload or a URL with credentials in it."""
    if isinstance(error, int):
        return f"HTTP {error}"
    return type(error).__name__
