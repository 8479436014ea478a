"""A webhook receiver on loopback for tests and benchmarks: a real HTTP server (uvicorn) in a thread that
keeps what it was sent and can be told to refuse the next deliveries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    refuse: int = 0  # answer 503 to this many deliveries, then 204
    refuse_ids: set[str] = field(default_factory=set)  # and always to these events
    refused: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if self.refuse > 0 or headers.get("webhook-id") in self.refuse_ids:
            self.refuse = max(0, self.refuse - 1)
            self.refused += 1
            status = 503
        else:
            self.received.append(Received(headers, body))
            status = 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        """Polls until `count` distinct events arrived (a test waits on the outcome, not on time)."""
        deadline = time.monotonic() + timeout
        while len(set(self.ids())) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(set(self.ids()))} of {count} events arrived")
            time.sleep(0.05)


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    config = uvicorn.Config(receiver, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield receiver
    finally:
        server.should_exit = True
        thread.join(timeout=10)
