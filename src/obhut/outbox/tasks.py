"""The relay: sequences what committed, then moves each destination's cursor forward by delivering a batch.

Delivery is at least once. The cursor moves only after the destination took the batch, so a relay killed in
between delivers those events again on restart, with the same idempotency key (NATS drops the duplicate by
its `Nats-Msg-Id`; a webhook receiver sees the same `webhook-id`). NATS takes a batch or nothing and its
cursor waits with backoff; a webhook answers per event, and a failed event is retried on its own with
backoff until it is dead, so one bad event never holds up the rest."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.outbox import rules, service
from obhut.outbox.models import OutboxRecipient
from obhut.outbox.ports import Gate, Publisher, Sender
from obhut.outbox.rules import Outgoing, Subscription
from obhut.vault.service import Vault

log = logging.getLogger("obhut.outbox")


@dataclass(frozen=True)
class RelayConfig:
    batch: int = 1000
    retry_seconds: float = 10.0  # the first webhook retry; doubles each time, at most an hour
    max_attempts: int = 8  # then the delivery is dead, until replayed


@dataclass(frozen=True)
class _Plan:
    destination: str
    url: str
    secret: str
    events: list[Outgoing]
    start: int = 0  # the cursor before this batch
    end: int = 0  # and after it


class Relay:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: Vault,
        gate: Gate,
        publisher: Publisher | None,
        sender: Sender,
        config: RelayConfig | None = None,
    ) -> None:
        self._sessions, self._vault, self._gate = sessions, vault, gate
        self._publisher, self._sender = publisher, sender
        self.config = config or RelayConfig()

    async def step(self) -> int:
        """One round: sequence, then one batch to each destination and the due retries; how many events
        moved (0: nothing waiting)."""
        with self._sessions() as session:
            waiting = service.waiting_workspaces(session)
        for workspace_id in waiting:
            with unit_of_work(self._sessions) as session:
                service.sequence(session, workspace_id)
        with self._sessions() as session:
            workspaces = service.workspaces(session)
        moved = 0
        for workspace_id in workspaces:
            if self._publisher is not None:
                moved += await self._publish(workspace_id, self._publisher)
            moved += await self._webhooks(workspace_id)
            moved += await self._retry(workspace_id)
        return moved

    async def drain(self) -> int:
        """Steps until nothing moves; how many events moved."""
        total = 0
        while moved := await self.step():
            total += moved
        return total

    async def _publish(self, workspace_id: str, publisher: Publisher) -> int:
        with unit_of_work(self._sessions) as session:
            cursor = service.cursor(session, workspace_id, publisher.name)
            if cursor.next_attempt_at is not None and cursor.next_attempt_at > now():
                return 0
            batch = service.batch_from(session, workspace_id, cursor.position, self.config.batch)
        if not batch:
            return 0
        try:
            await publisher.publish(batch)
        except Exception as error:  # noqa: BLE001 - the server is down or refused: keep the place, back off
            log.warning("outbox of '%s' not published to %s: %s", workspace_id, publisher.name, type(error).__name__)
            with unit_of_work(self._sessions) as session:
                reason = rules.describe_failure(error)
                service.hold(session, workspace_id, publisher.name, reason, self.config.retry_seconds)
            return 0
        with unit_of_work(self._sessions) as session:
            service.advance(session, workspace_id, publisher.name, batch[-1].position + 1)
        return len(batch)

    def _chosen(self, session: Session, subscription: Subscription, events: Sequence[Outgoing]) -> list[Outgoing]:
        """What this recipient gets of `events` now: types and purposes it is registered for, and of the
        events that use data, those whose customer allows the purpose at this moment (one check for all)."""
        wanted = [e for e in events if subscription.wants(e)]
        asking = {(e.customer_id or "", e.purpose or "") for e in wanted if subscription.needs_permission(e)}
        allowed = self._gate(session, events[0].workspace_id, asking) if asking else set()
        return [
            e for e in wanted
            if not subscription.needs_permission(e) or (e.customer_id or "", e.purpose or "") in allowed
        ]  # fmt: skip

    async def _webhooks(self, workspace_id: str) -> int:
        plans: list[_Plan] = []
        with unit_of_work(self._sessions) as session:
            found = service.recipients(session, workspace_id, active_only=True)
            keyring = None  # opened only once a recipient has something to receive: the relay idles every second
            start = service.length(session, workspace_id) if found else 0
            for recipient in found:
                destination = rules.WEBHOOK + recipient.recipient_id
                cursor = service.cursor(session, workspace_id, destination, start=start)
                if cursor.next_attempt_at is not None and cursor.next_attempt_at > now():
                    continue  # it refused a whole batch a moment ago: wait for its backoff
                batch = service.batch_from(session, workspace_id, cursor.position, self.config.batch)
                if not batch:
                    continue
                wanted = self._chosen(session, _subscription(recipient), batch)
                keyring = keyring or self._vault.open(session, workspace_id)
                secret = service.secret_of(keyring, recipient)
                plans.append(_Plan(destination, recipient.url, secret, wanted, cursor.position, batch[-1].position + 1))
        if not plans:
            return 0
        results = await asyncio.gather(*(self._sender.send(p.url, p.secret, p.events) for p in plans))
        moved = 0
        with unit_of_work(self._sessions) as session:
            for plan, outcome in zip(plans, results, strict=True):
                if plan.events and all(result is not None for result in outcome):  # down, not one bad event
                    reason = rules.describe_failure(next(r for r in outcome if r is not None))
                    service.hold(session, workspace_id, plan.destination, reason, self.config.retry_seconds)
                    continue
                self._settle(session, workspace_id, plan, outcome)
                service.advance(session, workspace_id, plan.destination, plan.end)
                moved += plan.end - plan.start
        return moved

    def _settle(
        self, session: Session, workspace_id: str, plan: _Plan, outcome: Sequence[BaseException | int | None]
    ) -> None:
        failures = [
            service.Failure(plan.destination, event.event_id, rules.describe_failure(result))
            for event, result in zip(plan.events, outcome, strict=True)
            if result is not None
        ]
        service.failed(session, workspace_id, failures, self.config.retry_seconds, self.config.max_attempts)
        done = [e.event_id for e, result in zip(plan.events, outcome, strict=True) if result is None]
        service.delivered(session, workspace_id, plan.destination, done)

    async def _retry(self, workspace_id: str) -> int:
        plans: list[_Plan] = []
        with unit_of_work(self._sessions) as session:
            due = service.due(session, workspace_id)
            if not due:
                return 0
            keyring = self._vault.open(session, workspace_id)
            by_destination: dict[str, list[str]] = defaultdict(list)
            for row in due:
                by_destination[row.destination].append(row.event_id)
            for destination, event_ids in by_destination.items():
                recipient = session.get(OutboxRecipient, (workspace_id, destination.removeprefix(rules.WEBHOOK)))
                if recipient is None or not recipient.active:
                    continue
                events = service.events(session, workspace_id, event_ids)
                wanted = self._chosen(session, _subscription(recipient), events) if events else []
                dropped = {e.event_id for e in events} - {e.event_id for e in wanted}
                service.delivered(session, workspace_id, destination, sorted(dropped))  # no longer allowed
                secret = service.secret_of(keyring, recipient)
                plans.append(_Plan(destination, recipient.url, secret, wanted))
        results = await asyncio.gather(*(self._sender.send(p.url, p.secret, p.events) for p in plans))
        with unit_of_work(self._sessions) as session:
            for plan, outcome in zip(plans, results, strict=True):
                self._settle(session, workspace_id, plan, outcome)
        return sum(len(p.events) for p in plans)

    async def close(self) -> None:
        if self._publisher is not None:
            await self._publisher.close()
        await self._sender.close()


def _subscription(recipient: OutboxRecipient) -> Subscription:
    return Subscription(recipient.topics.split(), recipient.purposes.split())


async def run(relay: Relay, stop: threading.Event, idle: float) -> None:
    """Relays until `stop` is set, resting `idle` seconds whenever nothing was waiting."""
    try:
        while not stop.is_set():
            try:
                moved = await relay.step()
            except Exception as error:  # noqa: BLE001 - keep going: the events wait in the outbox
                log.error("the outbox relay failed: %s", type(error).__name__)  # noqa: TRY400 - no traceback: it could hold data
                moved = 0
            if not moved:
                await asyncio.sleep(idle)
    finally:
        await relay.close()


def prune_all(sessions: sessionmaker[Session], keep_days: float) -> int:
    """Every workspace's delivered outbox events older than `keep_days`, one transaction each; how many."""
    with sessions() as session:
        found = service.workspaces(session)
    total = 0
    for workspace_id in found:
        with unit_of_work(sessions) as session:
            total += service.prune(session, workspace_id, now() - timedelta(days=keep_days))
    return total


class RelayThread(threading.Thread):
    """The relay beside the API in `obhut serve` (a separate `obhut worker` can take over)."""

    def __init__(self, relay: Relay, idle: float) -> None:
        super().__init__(name="obhut-outbox-relay", daemon=True)
        self._relay, self._idle = relay, idle
        self._halt = threading.Event()

    def run(self) -> None:
        asyncio.run(run(self._relay, self._halt, self._idle))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
