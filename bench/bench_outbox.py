"""Outbox relay throughput, sustained over a backlog of consent events, beside the bare peer library in the
same run: to NATS JetStream (target 10,000 events/s) against nats-py publishing the same messages with no
database, and to a webhook receiver on loopback (target 2,000 events/s) against aiohttp posting the same
bodies unsigned with the same concurrency. The receiver is a separate process, so it does not share the GIL.

Half the events are grants, which the relay checks against the customer's consent before sending."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import httpx2
import nats
from sqlalchemy import insert

from bench_consent import PURPOSES, seed
from common import WORKSPACE, container, databases
from obhut.container import Container, consent_allows
from obhut.customers.models import Customer
from obhut.kit.clock import now
from obhut.kit.db import unit_of_work
from obhut.kit.ids import new_id
from obhut.outbox import service
from obhut.outbox.adapters.nats import NatsPublisher
from obhut.outbox.adapters.webhook import WebhookSender
from obhut.outbox.models import OutboxEvent
from obhut.outbox.rules import Outgoing
from obhut.outbox.tasks import Relay, RelayConfig

NATS_URL = "nats://127.0.0.1:4222"
RECEIVER = """
import uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=%d, log_level="error", access_log=False, lifespan="off")
"""


def fill(built: Container, customers: list[str], count: int, *, grants: bool = True) -> None:
    """`count` consent events in the outbox, as appends would leave them: half grants (which the relay
    checks against the customer's consent before sending them to a recipient), half withdrawals."""
    with unit_of_work(built.sessions) as session:
        for start in range(0, count, 10_000):
            rows = []
            for n in range(start, min(count, start + 10_000)):
                kind = "granted" if grants and n % 2 else "withdrawn"
                rows.append({"workspace_id": WORKSPACE, "event_id": new_id(), "position": None,
                             "topic": f"consent.{kind}", "customer_id": customers[n % len(customers)],
                             "purpose_key": PURPOSES[n % 3], "occurred_at": now(),
                             "data": f'{{"kind": "{kind}", "channel": "web", "until": null}}'})  # fmt: skip
            session.execute(insert(OutboxEvent), rows)


class CountingSender(WebhookSender):
    sent = 0

    async def send(self, url: str, secret: str, events: Sequence[Outgoing]) -> list[BaseException | int | None]:
        CountingSender.sent += len(events)
        return await super().send(url, secret, events)


def relay_rate(built: Container, publisher: NatsPublisher | None, count: int) -> float:
    relay = Relay(built.sessions, built.vault, consent_allows, publisher, CountingSender(), RelayConfig(batch=1000))

    async def drain() -> float:
        started = time.perf_counter()
        try:
            await relay.drain()
        finally:
            await relay.close()
        return count / (time.perf_counter() - started)

    return asyncio.run(drain())


def bare_nats_rate(count: int, prefix: str, stream: str) -> float:
    async def publish() -> float:
        client = await nats.connect(NATS_URL)
        js = client.jetstream(publish_async_max_pending=8192)
        body = b'{"data":{"customer":"00000000-0000-0000-0000-000000000000","kind":"withdrawn"}}' * 2
        started = time.perf_counter()
        for start in range(0, count, 1000):
            pending = [await js.publish_async(f"{prefix}.bare", body, headers={"Nats-Msg-Id": str(uuid.uuid4())})
                       for _ in range(start, min(count, start + 1000))]  # fmt: skip
            await asyncio.gather(*pending)
        rate = count / (time.perf_counter() - started)
        await js.delete_stream(stream)
        await client.close()
        return rate

    return asyncio.run(publish())


def bare_http_rate(url: str, count: int) -> float:
    """The HTTP client alone: the same number of POSTs, unsigned, no database, the same concurrency."""

    async def post() -> float:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
            body = b'{"data":{"customer":"00000000-0000-0000-0000-000000000000","kind":"withdrawn"}}' * 2

            async def one() -> None:
                async with http.post(url, data=body, headers={"content-type": "application/json"}) as response:
                    await response.read()

            started = time.perf_counter()
            for start in range(0, count, 1000):
                await asyncio.gather(*(one() for _ in range(start, min(count, start + 1000))))
            return count / (time.perf_counter() - started)

    return asyncio.run(post())


def seed_customers(built: Container, count: int) -> list[str]:
    """Consent states (bench_consent's seed) and the customer rows the relay's gate looks for."""
    customers = seed(built, count)
    moment = now()
    rows = [{"workspace_id": WORKSPACE, "id": c, "created_at": moment, "updated_at": moment} for c in customers]
    with unit_of_work(built.sessions) as session:
        session.execute(insert(Customer), rows)
    return customers


def run(backend: str, url: str, nats_events: int, webhook_events: int) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        databases(backend, Path(folder)) as settings,
        container(settings) as built,
    ):
        customers = seed_customers(built, 10_000)
        suffix = uuid.uuid4().hex[:8]
        stream, prefix = f"BENCH_{suffix}".upper(), f"bench{suffix}"
        fill(built, customers, nats_events)
        ours = relay_rate(built, NatsPublisher(NATS_URL, stream, prefix), nats_events)
        bare = bare_nats_rate(nats_events, prefix, stream)
        print(f"{backend:8} relay to NATS JetStream: {ours:9,.0f} events/s"
              f"   publish_async alone, no DB:{bare:9,.0f}/s   target 10,000")  # fmt: skip
        with unit_of_work(built.sessions) as session:
            service.register(
                session, built.vault.open(session, WORKSPACE), WORKSPACE, name="bench",
                role="processor", url=url, topics=["consent"], purposes=PURPOSES, categories=[],
            )  # fmt: skip
        fill(built, customers, webhook_events, grants=False)
        CountingSender.sent = 0
        ours = relay_rate(built, None, webhook_events)
        assert CountingSender.sent == webhook_events
        bare = bare_http_rate(url, webhook_events)
        print(f"{backend:8} relay to a webhook:        {ours:9,.0f} events/s"
              f"   aiohttp alone, unsigned:    {bare:9,.0f} POSTs/s   target 2,000 (every event sent)")  # fmt: skip
        fill(built, customers, webhook_events)
        CountingSender.sent = 0
        ours = relay_rate(built, None, webhook_events)
        granted = CountingSender.sent - webhook_events // 2
        print(f"{backend:8}   half of them grants:     {ours:9,.0f} events/s   (checked against consent at delivery:"
              f" {granted:,} of {webhook_events // 2:,} grants allowed now and sent)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nats-events", type=int, default=50_000)
    parser.add_argument("--webhook-events", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER % args.port])
    url = f"http://127.0.0.1:{args.port}/hooks"
    try:
        for _ in range(100):
            try:
                httpx2.post(url, content=b"{}")
                break
            except httpx2.HTTPError:
                time.sleep(0.1)
        for backend in args.backends.split(","):
            run(backend, url, args.nats_events, args.webhook_events)
    finally:
        receiver.terminate()
        receiver.wait()


if __name__ == "__main__":
    main()
