"""The relay to the real NATS JetStream server on 127.0.0.1:4222, on SQLite and PostgreSQL: every event on its
subject with its idempotency key, a redelivery dropped by the server, a server that is down costing nothing,
and a relay killed (SIGKILL) in the middle of 10,000 changes and restarted: every event arrives at NATS and
at a webhook, none is lost, and every duplicate carries the same key and body."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import insert, update

from obhut.consent import service as consent
from obhut.consent.models import ConsentNotice, ConsentPurpose
from obhut.consent.rules import Channel, Kind, LegalBasis
from obhut.container import Container, consent_allows
from obhut.customers.models import Customer
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.kit.ids import new_id
from obhut.kit.settings import Settings
from obhut.outbox import service
from obhut.outbox.adapters.nats import NatsPublisher
from obhut.outbox.adapters.webhook import WebhookSender
from obhut.outbox.models import OutboxCursor
from obhut.outbox.tasks import Relay, RelayConfig
from tests.conftest import WORKSPACE
from tests.outbox.receiver import receiving
from tests.services import unavailable

NATS_URL = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class Stream:
    url: str
    name: str
    prefix: str


async def _account(url: str) -> None:
    client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        await client.jetstream().account_info()
    finally:
        await client.close()


async def _delete(stream: Stream) -> None:
    client = await nats.connect(stream.url)
    try:
        await client.jetstream().delete_stream(stream.name)
    except NotFoundError:
        pass  # nothing was published
    finally:
        await client.close()


async def _messages(stream: Stream) -> list[tuple[str, str, bytes]]:
    """Every message in the stream: (Nats-Msg-Id, subject, body)."""
    client = await nats.connect(stream.url)
    found: list[tuple[str, str, bytes]] = []
    try:
        js = client.jetstream()
        subscription = await js.pull_subscribe(f"{stream.prefix}.>", stream=stream.name)
        while True:
            try:
                batch = await subscription.fetch(1000, timeout=1)
            except TimeoutError:  # nats' own subclass, or the plain one when its deadline runs out between requests
                return found
            for message in batch:
                found.append((message.headers["Nats-Msg-Id"], message.subject, message.data))  # type: ignore[index]
                await message.ack()
    finally:
        await client.close()


async def _count(stream: Stream) -> int:
    client = await nats.connect(stream.url)
    try:
        return int((await client.jetstream().stream_info(stream.name)).state.messages)
    finally:
        await client.close()


@pytest.fixture
def stream() -> Iterator[Stream]:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
        asyncio.run(_account(NATS_URL))
    except Exception as error:  # noqa: BLE001 - any failure means there is no usable JetStream
        unavailable("NATS JetStream", f"{NATS_URL}: {type(error).__name__} (start nats-server -js)")
    suffix = uuid.uuid4().hex[:10]
    made = Stream(NATS_URL, f"T_{suffix}".upper(), f"t{suffix}")
    yield made
    asyncio.run(_delete(made))


def _relay(container: Container, stream: Stream, url: str | None = None) -> int:
    return asyncio.run(_relay_to(container, NatsPublisher(url or stream.url, stream.name, stream.prefix, timeout=5)))


def _catalogue(container: Container) -> None:
    with unit_of_work(container.sessions) as session:
        session.add(
            ConsentPurpose(
                workspace_id=WORKSPACE, key="newsletter", title_en="Newsletter", title_de="Newsletter",
                description_en="Offers by email", description_de="Angebote per E-Mail",
                legal_basis=LegalBasis.CONSENT.value, categories="contact", recipients="", retention="",
                sale_or_sharing=False, updated_at=now(),
            )
        )  # fmt: skip
        session.add(
            ConsentNotice(
                workspace_id=WORKSPACE, purpose_key="newsletter", version="1.0", language="de", major=1,
                text="Wir schicken Ihnen Angebote.", text_hash="0" * 64, published_at=now(),
            )
        )  # fmt: skip


def _grants(container: Container, customers: list[str], rounds: int, per_transaction: int = 250) -> list[str]:
    """`rounds` grants per customer, committed `per_transaction` at a time; the ledger event ids."""
    change = consent.Change("newsletter", Kind.GRANTED, Channel.API, "customer", notice_version="1.0")
    pending = [c for _ in range(rounds) for c in customers]
    ids: list[str] = []
    for start in range(0, len(pending), per_transaction):
        with unit_of_work(container.sessions) as session:
            keyring = container.vault.open(session, WORKSPACE)
            batch = pending[start : start + per_transaction]
            keyring.subjects(sorted(set(batch)))  # their data keys in one go, as an import would
            ids.extend(consent.append(session, keyring, WORKSPACE, c, change).event_id for c in batch)
    return ids


def _customers(container: Container, count: int) -> list[str]:
    """Customers with a data key and a (field-less) row: the relay sends grants only for live customers."""
    ids = [new_id() for _ in range(count)]
    with unit_of_work(container.sessions) as session:
        container.vault.open(session, WORKSPACE).new_subjects(ids)
        rows = [{"workspace_id": WORKSPACE, "id": c, "created_at": now(), "updated_at": now()} for c in ids]
        session.execute(insert(Customer), rows)
    return ids


def test_events_reach_jetstream_once_even_when_relayed_twice(container: Container, stream: Stream) -> None:
    _catalogue(container)
    ids = _grants(container, _customers(container, 5), rounds=2)
    assert _relay(container, stream) == 10
    with unit_of_work(container.sessions) as session:  # as if the relay died before moving its cursor
        session.execute(update(OutboxCursor).where(OutboxCursor.destination == "nats").values(position=0))
    assert _relay(container, stream) == 10  # published again ...
    messages = asyncio.run(_messages(stream))
    assert [m[0] for m in messages] == ids  # ... and dropped by the server as duplicates of the same keys
    assert {m[1] for m in messages} == {f"{stream.prefix}.{WORKSPACE}.consent.granted"}
    assert b'"purpose":"newsletter"' in messages[0][2]


def test_nats_down_holds_the_place_and_loses_nothing(container: Container, stream: Stream) -> None:
    _catalogue(container)
    ids = _grants(container, _customers(container, 3), rounds=1)
    assert _relay(container, stream, url="nats://127.0.0.1:1") == 0  # nothing listens there
    with unit_of_work(container.sessions) as session:
        held = session.get(OutboxCursor, (WORKSPACE, "nats"))
        assert held is not None
        assert (held.position, held.attempts, held.last_error) == (0, 1, "NoServersError")
        assert held.next_attempt_at is not None
        assert held.next_attempt_at > now()
        held.next_attempt_at = now()  # the backoff has passed
    assert _relay(container, stream) == 3
    assert [m[0] for m in asyncio.run(_messages(stream))] == ids


@dataclass
class Worker:
    """An `obhut worker` process; what it says goes to a file (a pipe nobody reads could block it)."""

    process: subprocess.Popen[bytes]
    log: Path

    def said(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_ready(self, timeout: float = 60) -> None:
        """Until its first line ("relaying the outbox ..."): its start-up writes are done."""
        deadline = time.monotonic() + timeout
        while "relaying" not in self.said():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"the worker did not start: {self.said()}")
            time.sleep(0.02)

    def stop(self, signal_number: int = signal.SIGTERM) -> int:
        self.process.send_signal(signal_number)
        return self.process.wait(timeout=30)


def _worker(settings: Settings, stream: Stream, log: Path) -> Worker:
    env = {
        **os.environ,
        "OBHUT_DATA_DIR": str(settings.data_dir),
        "OBHUT_KEY_FILE": str(settings.resolved_key_file),
        "OBHUT_DATABASE_URL": settings.resolved_database_url,
        "OBHUT_KEYSTORE_URL": settings.resolved_keystore_url,
        "OBHUT_KEY_SHARDS": str(settings.key_shards),
        "OBHUT_NATS_URL": stream.url,
        "OBHUT_NATS_STREAM": stream.name,
        "OBHUT_NATS_SUBJECT_PREFIX": stream.prefix,
        "OBHUT_AUDIT_SEQUENCE_SECONDS": "0",
        "OBHUT_OUTBOX_BATCH": "250",
    }
    command = [sys.executable, "-m", "obhut", "worker", "--idle", "0.05"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    return Worker(process, log)


def test_a_relay_killed_mid_stream_loses_nothing(
    container: Container, settings: Settings, stream: Stream, tmp_path: Path
) -> None:
    _catalogue(container)
    customers = _customers(container, 1000)
    with receiving() as receiver:
        with unit_of_work(container.sessions) as session:
            service.register(
                session, container.vault.open(session, WORKSPACE), WORKSPACE, name="CRM", role="processor",
                url=receiver.url, topics=["consent"], purposes=["newsletter"], categories=["contact"],
            )  # fmt: skip
        produced: list[str] = []
        producer = threading.Thread(target=lambda: produced.extend(_grants(container, customers, rounds=10)))
        first = _worker(settings, stream, tmp_path / "first.log")
        workers = [first]
        try:
            first.wait_ready()  # its start-up writes (the default workspace) done before the stream of changes
            producer.start()
            try:
                receiver.wait_for(1500)
            except AssertionError as error:
                raise AssertionError(f"{error}; the worker said: {first.said()}") from None
            first.stop(signal.SIGKILL)  # mid-stream: no chance to move a cursor or close
            killed_at = len(set(receiver.ids()))
            workers.append(_worker(settings, stream, tmp_path / "second.log"))
            producer.join()
            receiver.wait_for(10_000, timeout=180)
            _wait_for_stream(stream, 10_000)
        finally:
            producer.join()
            codes = [w.stop() if w.process.poll() is None else w.process.returncode for w in workers]
        assert codes[-1] == 0, workers[-1].said()
    assert killed_at < 10_000
    assert len(produced) == 10_000
    assert set(receiver.ids()) == set(produced)  # every change arrived at the webhook ...
    bodies: dict[str, bytes] = {}
    for delivery in receiver.received:  # ... and a duplicate is the same event under the same key
        assert bodies.setdefault(delivery.headers["webhook-id"], delivery.body) == delivery.body
    messages = asyncio.run(_messages(stream))
    assert sorted(m[0] for m in messages) == sorted(produced)  # NATS: all of them, each once


def _wait_for_stream(stream: Stream, count: int) -> None:
    for _ in range(600):
        if asyncio.run(_count(stream)) >= count:
            return
        threading.Event().wait(0.1)
    raise AssertionError(f"the stream holds {asyncio.run(_count(stream))} of {count} messages")


def test_messages_no_stream_takes_are_refused_and_held(container: Container, stream: Stream) -> None:
    _catalogue(container)
    _grants(container, _customers(container, 2), rounds=1)
    asyncio.run(_relay_to(container, NatsPublisher(stream.url, stream.name, stream.prefix)))  # makes the stream
    _grants(container, _customers(container, 2), rounds=1)
    elsewhere = NatsPublisher(stream.url, stream.name, f"x{stream.prefix}")  # the stream exists, not for these
    assert asyncio.run(_relay_to(container, elsewhere)) == 0
    with container.sessions() as session:
        held = session.get(OutboxCursor, (WORKSPACE, "nats"))
        assert held is not None
        assert (held.position, held.last_error) == (2, "PublishRefusedError")


async def _relay_to(container: Container, publisher: NatsPublisher) -> int:
    worker = Relay(container.sessions, container.vault, consent_allows, publisher, WebhookSender(), RelayConfig())
    try:
        return await worker.drain()
    finally:
        await worker.close()
