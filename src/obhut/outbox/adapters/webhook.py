"""Webhooks in the Standard Webhooks style: one POST per event with `webhook-id` (the idempotency key),
`webhook-timestamp` and `webhook-signature` (HMAC-SHA256 over id, timestamp and body, signed by the
`standardwebhooks` reference library), sent concurrently over kept-alive connections."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx2
from standardwebhooks.webhooks import Webhook

from obhut.outbox.rules import Outgoing


class WebhookSender:
    def __init__(self, timeout: float = 5.0, concurrency: int = 32) -> None:
        limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._http = httpx2.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)
        self._slots = asyncio.Semaphore(concurrency)

    async def _one(self, url: str, signer: Webhook, event: Outgoing) -> BaseException | int | None:
        body = event.body()
        stamp = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": event.event_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": signer.sign(event.event_id, stamp, body.decode()),
        }
        async with self._slots:
            try:
                response = await self._http.post(url, content=body, headers=headers)
            except Exception as error:  # noqa: BLE001 - any failure is this event's, retried on its own
                return error
        return None if 200 <= response.status_code < 300 else response.status_code  # noqa: PLR2004

    async def send(self, url: str, secret: str, events: Sequence[Outgoing]) -> list[BaseException | int | None]:
        signer = Webhook(secret)
        return list(await asyncio.gather(*(self._one(url, signer, e) for e in events)))

    async def close(self) -> None:
        await self._http.aclose()
