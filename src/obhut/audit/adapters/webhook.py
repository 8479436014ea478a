"""Checkpoints posted to a webhook (a witness, the business's SIEM, another operator) as text/plain."""

from __future__ import annotations

import logging

import httpx2

log = logging.getLogger("obhut.audit")


class WebhookSink:
    name = "webhook"

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self.url = url
        self._timeout = timeout

    def publish(self, workspace_id: str, note: str) -> None:
        headers = {"Content-Type": "text/plain; charset=utf-8", "X-Obhut-Workspace": workspace_id}
        try:
            response = httpx2.post(self.url, content=note.encode(), headers=headers, timeout=self._timeout)
        except httpx2.HTTPError as error:
            log.warning("checkpoint of '%s' not delivered to the webhook: %s", workspace_id, type(error).__name__)
            return
        if response.status_code >= 300:  # noqa: PLR2004
            log.warning("checkpoint of '%s' refused by the webhook: HTTP %s", workspace_id, response.status_code)
