"""Webhooks: signed checkpoints as text/plain (to a witness, a SIEM, another operator) and new alerts as JSON
(to the security team's channel). A receiver that is down is logged, never raised: nothing is lost, since
every later checkpoint covers the earlier ones and alerts stay listed in Obhut."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2

log = logging.getLogger("obhut.audit")


def _post(url: str, body: bytes, content_type: str, workspace_id: str, what: str, timeout: float) -> None:
    headers = {"Content-Type": content_type, "X-Obhut-Workspace": workspace_id}
    try:
        response = httpx2.post(url, content=body, headers=headers, timeout=timeout)
    except httpx2.HTTPError as error:
        log.warning("%s of '%s' not delivered to the webhook: %s", what, workspace_id, type(error).__name__)
        return
    if response.status_code >= 300:  # noqa: PLR2004
        log.warning("%s of '%s' refused by the webhook: HTTP %s", what, workspace_id, response.status_code)


class WebhookSink:
    name = "webhook"

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self.url = url
        self._timeout = timeout

    def publish(self, workspace_id: str, note: str) -> None:
        _post(self.url, note.encode(), "text/plain; charset=utf-8", workspace_id, "checkpoint", self._timeout)


class AlertWebhook:
    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self.url = url
        self._timeout = timeout

    def publish(self, workspace_id: str, alert: dict[str, Any]) -> None:
        body = json.dumps({"type": "obhut.audit.alert", "alert": alert}).encode()
        _post(self.url, body, "application/json", workspace_id, "alert", self._timeout)
