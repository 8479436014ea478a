"""The pages' way to the JSON API: an in-process call through ASGI, with the caller's credential, address,
user agent and language passed on, so the access log records the person in front of the browser."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httpx
from fastapi import Request, Response

from obhut.kit.ids import new_id

API = "/api/v1"
FORWARDED = ("user-agent", "accept-language", "sec-gpc")


@dataclass
class ProblemError(Exception):
    """An RFC 9457 answer from the API, kept whole so a page can show its detail and field errors."""

    status: int
    title: str
    detail: str
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, reply: httpx.Response) -> ProblemError:
        try:
            body = reply.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        errors = {str(e.get("pointer", "/")).strip("/"): str(e.get("detail", "")) for e in body.get("errors", [])}
        title = str(body.get("title", reply.reason_phrase))
        return cls(reply.status_code, title, str(body.get("detail", title)), errors)


class Api:
    """One per page request. `token` is the staff session or None (the privacy centre, sign-in)."""

    def __init__(self, request: Request, token: str | None = None) -> None:
        self._request = request
        self._headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
        self._headers["x-request-id"] = request.headers.get("x-request-id") or new_id()
        if token:
            self._headers["authorization"] = f"Bearer {token}"

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """The API's answer; a problem (4xx, 5xx) is raised as `ProblemError`. `headers` adds to those passed on."""
        client = self._request.client
        transport = httpx.ASGITransport(
            app=self._request.app, client=(client.host, client.port) if client else ("127.0.0.1", 0)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://obhut.internal") as http:
            reply = await http.request(method, API + path, headers=self._headers | (headers or {}), **kwargs)
        if reply.status_code >= HTTPStatus.BAD_REQUEST:
            raise ProblemError.of(reply)
        return reply

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.call("GET", path, params=_given(params))).json()

    async def download(self, path: str, fallback: str, **params: Any) -> Response:
        """A file from the API as it is: its content type and the file name it gives (else `fallback`)."""
        reply = await self.call("GET", path, params=_given(params))
        disposition = reply.headers.get("content-disposition", f'attachment; filename="{fallback}"')
        return Response(reply.content, media_type=reply.headers.get("content-type"),
                        headers={"Content-Disposition": disposition})  # fmt: skip

    async def send(self, method: str, path: str, body: Any = None) -> Any:
        reply = await self.call(method, path, json=body)
        return reply.json() if reply.content and "json" in reply.headers.get("content-type", "") else None


def _given(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters with a value: an empty filter field means no filter."""
    return {k: v for k, v in params.items() if v not in (None, "")}
