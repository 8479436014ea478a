"""NATS JetStream: every event on `<prefix>.<workspace>.<type>`, with its event id as `Nats-Msg-Id`, so the
server drops a redelivered duplicate within the stream's duplicate window. A batch is published
asynchronously and counts only when the server has acknowledged every message of it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from obhut.outbox.rules import Outgoing


class NatsPublisher:
    name = "nats"

    def __init__(self, url: str, stream: str, prefix: str, timeout: float = 10.0) -> None:
        self._url, self._stream, self.prefix, self._timeout = url, stream, prefix, timeout
        self._client: Client | None = None
        self._js: JetStreamContext | None = None

    async def _jetstream(self) -> JetStreamContext:
        if self._js is None or self._client is None or self._client.is_closed:
            self._client = await nats.connect(
                self._url, connect_timeout=3, max_reconnect_attempts=2, reconnect_time_wait=0.5
            )
            self._js = self._client.jetstream(timeout=self._timeout, publish_async_max_pending=8192)
            try:
                await self._js.stream_info(self._stream)
            except NotFoundError:
                await self._js.add_stream(name=self._stream, subjects=[f"{self.prefix}.>"], duplicate_window=600.0)
        return self._js

    async def publish(self, events: Sequence[Outgoing]) -> None:
        js = await self._jetstream()
        pending = [
            await js.publish_async(e.subject(self.prefix), e.body(), headers={"Nats-Msg-Id": e.event_id})
            for e in events
        ]
        async with asyncio.timeout(self._timeout):
            await asyncio.gather(*pending)

    async def close(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.drain()
        self._client = self._js = None
