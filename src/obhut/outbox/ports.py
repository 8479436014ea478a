"""Where outbox events go: a message bus that takes a batch or nothing (NATS JetStream), and webhooks that
answer per event. Both are given the idempotency key with every event."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from sqlalchemy.orm import Session

from obhut.outbox.rules import Outgoing


class Publisher(Protocol):
    name: str

    async def publish(self, events: Sequence[Outgoing]) -> None:
        """Publishes every event durably, in order, or raises: the relay then keeps its place and retries."""

    async def close(self) -> None: ...


class Sender(Protocol):
    async def send(self, url: str, secret: str, events: Sequence[Outgoing]) -> list[BaseException | int | None]:
        """POSTs each event (signed in the Standard Webhooks style); per event: None when the receiver took
        it (2xx), else the HTTP status or the error."""

    async def close(self) -> None: ...


# Which of the (customer, purpose) pairs of a workspace the customers allow right now: consent's check for
# a batch, handed in by the composition root so that the outbox does not depend on the domains that write to it.
Gate = Callable[[Session, str, Collection[tuple[str, str]]], set[tuple[str, str]]]
