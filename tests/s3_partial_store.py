"""An S3 endpoint that lacks what AWS offers, or breaks an answer on purpose: a proxy in front of moto.

    async with PartialStore(moto_endpoint, conditions="ignore", list_uploads=False) as store:
        ... point a client at store.url ...

- `conditions`: what a write (PUT, POST, DELETE) carrying If-Match / If-None-Match gets: "honour"
  (forwarded; moto judges it), "ignore" (the headers are dropped, as a store without conditional writes
  does), "reject" (501 NotImplemented, not forwarded).
- `list_uploads=False`: ListMultipartUploads (GET ?uploads) is answered 501 NotImplemented.
- `cut_gets(n, after, gate)`: the next n ranged GETs are forwarded, then their answers stop after
  `after` bytes of the body (the headers announce all of it) and the connection is closed. With a
  `gate`, the close waits until the test sets it, so the test knows what the client had received.

`seen` lists every request (method, path and query, Range and If-Match headers). moto does not check
signatures, so changing headers is harmless.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal, Self

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from s3_faults import answer, error_body, forwarded_headers, relay

Conditions = Literal["honour", "ignore", "reject"]

_CONDITIONS = ("If-Match", "If-None-Match")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query
    range: str | None
    if_match: str | None


class PartialStore:
    def __init__(
        self, upstream: str, *, conditions: Conditions = "honour", list_uploads: bool = True
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.conditions: Conditions = conditions
        self.list_uploads = list_uploads
        self.seen: list[Seen] = []
        self.url = ""
        self._cuts = 0
        self._cut_after = 0
        self._gate: asyncio.Event | None = None
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def cut_gets(self, count: int, after: int, gate: asyncio.Event | None = None) -> None:
        self._cuts, self._cut_after, self._gate = count, after, gate

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
        self._runner = web.ServerRunner(web.Server(self._handle), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        asked = request.headers
        self.seen.append(Seen(request.method, request.path_qs, asked.get("Range"), asked.get("If-Match")))
        headers = forwarded_headers(request)
        if request.method == "GET" and "uploads" in request.query and not self.list_uploads:
            return _not_implemented(request)
        if request.method != "GET" and any(h in headers for h in _CONDITIONS):
            if self.conditions == "reject":
                return _not_implemented(request)
            if self.conditions == "ignore":
                for name in _CONDITIONS:
                    headers.popall(name, None)
        cut = request.method == "GET" and "Range" in headers and self._cuts > 0
        if cut:
            self._cuts -= 1
        assert self._session is not None
        status, reason, answer_headers, payload = await relay(
            self._session, self.upstream, request, body, headers
        )
        if cut and status == 206:
            return await self._cut(request, answer_headers, payload)
        return answer(request, status, reason, answer_headers, payload)

    async def _cut(
        self, request: web.BaseRequest, headers: CIMultiDict[str], payload: bytes
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=206, headers=headers)
        response.content_length = len(payload)
        await response.prepare(request)
        if self._cut_after:
            await response.write(payload[: self._cut_after])
        if self._gate is not None:
            await self._gate.wait()
        assert request.transport is not None
        request.transport.close()  # a FIN after what was written: the client gets those bytes, then EOF
        return response


def _not_implemented(request: web.BaseRequest) -> web.Response:
    message = "A header you provided implies functionality that is not implemented"
    body = error_body("NotImplemented", message, request.path)
    return web.Response(status=501, body=body, content_type="application/xml")
