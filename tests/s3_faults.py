"""A fault-injecting HTTP proxy in front of an S3 endpoint (moto's server), for tests and benchmarks.

Every request is forwarded as it came (method, path and query, headers, body) and the answer relayed,
except those a seeded RNG picks, one draw per request, for one of these faults (or that a test scripted
with `script()`, to meet one request whatever the order of the others):

    slowdown     503 SlowDown, answered without forwarding: the request had no effect, as with S3's own
    internal     500 InternalError, likewise
    upload_part  500 InternalError to an UploadPart (PUT ?partNumber=..&uploadId=..), likewise
    reset        forwarded, so it took effect, then the answer is cut: status, headers and half the body,
                 then a TCP reset (before any byte when the answer has no body). The client cannot know.

moto's own API (`/moto-api/`) is never faulted nor counted. SigV4 signs the Host header and moto does not
check signatures, so headers are forwarded as they are. Bodies are buffered: objects here are a few MB.

In a test: `async with S3FaultProxy(moto_endpoint, FaultRates(reset=0.05), seed=1) as proxy:` and point
the client at `proxy.url`. Elsewhere: `with proxy_in_thread(...) as proxy:` runs it on a loop of its own.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Literal, Self
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

Fault = Literal["upload_part", "slowdown", "internal", "reset"]

# Headers that describe one hop, not the message: each side of the proxy sets its own.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "expect", "proxy-connection"}
)
_ERRORS: dict[Fault, tuple[int, str, str]] = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
    "upload_part": (500, "InternalError", "We encountered an internal error. Please try again."),
}


@dataclass(frozen=True)
class FaultRates:
    """The chance of each fault per request (upload_part: per UploadPart request)."""

    slowdown: float = 0.0
    internal: float = 0.0
    reset: float = 0.0
    upload_part: float = 0.0

    def __post_init__(self) -> None:
        rates = [getattr(self, f.name) for f in fields(self)]
        # One draw decides a request's fault, so the rates that can apply to one request share [0, 1].
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0:
            raise ValueError(f"fault rates must be in [0, 1] and sum to at most 1: {self}")

    @classmethod
    def each(cls, rate: float) -> FaultRates:
        return cls(slowdown=rate, internal=rate, reset=rate, upload_part=rate)


@dataclass
class FaultCounts:
    """What the proxy saw: S3 requests (moto's API excluded) and the faults it injected, by kind."""

    requests: int = 0
    slowdown: int = 0
    internal: int = 0
    reset: int = 0
    upload_part: int = 0


def is_upload_part(method: str, query: Mapping[str, str]) -> bool:
    return method == "PUT" and "partNumber" in query and "uploadId" in query


def choose_fault(rates: FaultRates, upload_part: bool, draw: float) -> Fault | None:
    """The fault a request gets for a uniform `draw` in [0, 1), or None: each applicable kind owns a
    slice of [0, 1) as wide as its rate."""
    kinds: list[tuple[Fault, float]] = [
        ("upload_part", rates.upload_part if upload_part else 0.0),
        ("slowdown", rates.slowdown),
        ("internal", rates.internal),
        ("reset", rates.reset),
    ]
    edge = 0.0
    for kind, rate in kinds:
        edge += rate
        if draw < edge:
            return kind
    return None


def error_body(code: str, message: str, resource: str) -> bytes:
    """S3's XML error document."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>{escape(resource)}</Resource>"
        "<RequestId>fault-proxy</RequestId></Error>"
    ).encode()


@dataclass
class _Scripted:
    kind: Fault
    method: str
    path_part: str
    skip: int  # matching requests to let through first


class S3FaultProxy:
    """The proxy on 127.0.0.1 (a free port); `rates` may be changed between requests."""

    def __init__(self, upstream: str, rates: FaultRates | None = None, *, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.rates = rates or FaultRates()
        self.counts = FaultCounts()
        self.injected: list[tuple[Fault, str, str]] = []  # (kind, method, path and query), in order
        self._rng = random.Random(seed)
        self._scripted: list[_Scripted] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        # No cookie jar and no decompression: the answer is relayed byte for byte.
        self._session = aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=120),
        )
        app = web.Application(client_max_size=1024**3)
        # A route rather than a bare web.Server: it answers `Expect: 100-continue`, which botocore sends.
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def script(self, kind: Fault, method: str, path_part: str, *, skip: int = 0) -> None:
        """Give `kind` to one request, whatever the rates: the first whose method is `method` and whose
        path contains `path_part`, after `skip` such requests."""
        self._scripted.append(_Scripted(kind, method, path_part, skip))

    def _scripted_fault(self, request: web.Request) -> Fault | None:
        for s in self._scripted:
            if request.method == s.method and s.path_part in request.path:
                if s.skip == 0:
                    self._scripted.remove(s)
                    return s.kind
                s.skip -= 1
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path.startswith("/moto-api/"):
            return await self._forward(request, body)
        self.counts.requests += 1
        fault = self._scripted_fault(request) or choose_fault(
            self.rates, is_upload_part(request.method, request.query), self._rng.random()
        )
        if fault is None:
            return await self._forward(request, body)
        setattr(self.counts, fault, getattr(self.counts, fault) + 1)
        self.injected.append((fault, request.method, request.path_qs))
        if fault == "reset":
            return await self._forward(request, body, cut=True)
        status, code, message = _ERRORS[fault]
        return web.Response(
            status=status, body=error_body(code, message, request.path), content_type="application/xml"
        )

    async def _forward(self, request: web.Request, body: bytes, *, cut: bool = False) -> web.StreamResponse:
        assert self._session is not None, "the proxy is not started"
        status, reason, answer_headers, payload = await relay(
            self._session, self.upstream, request, body, forwarded_headers(request)
        )
        if not cut:
            return answer(request, status, reason, answer_headers, payload)
        return await _cut_answer(request, status, reason, answer_headers, payload)


def forwarded_headers(request: web.BaseRequest) -> CIMultiDict[str]:
    """The request's headers for the next hop: hop-by-hop ones dropped, Content-Length set again."""
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP)
    headers.popall("Content-Length", None)
    return headers


async def relay(
    session: aiohttp.ClientSession,
    upstream: str,
    request: web.BaseRequest,
    body: bytes,
    headers: CIMultiDict[str],
) -> tuple[int, str | None, CIMultiDict[str], bytes]:
    """Send the request on to `upstream` as it came; its status, reason, end-to-end headers and body."""
    async with session.request(
        request.method,
        upstream + request.raw_path,
        headers=headers,
        data=body,
        allow_redirects=False,
        skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
    ) as answered:
        payload = await answered.read()
        answer_headers = CIMultiDict(
            (k, v) for k, v in answered.headers.items() if k.lower() not in _HOP_BY_HOP
        )
        return answered.status, answered.reason, answer_headers, payload


def answer(
    request: web.BaseRequest, status: int, reason: str | None, headers: CIMultiDict[str], payload: bytes
) -> web.Response:
    # A HEAD keeps upstream's Content-Length (the object's size); other answers get the body's.
    if request.method != "HEAD":
        headers.popall("Content-Length", None)
    return web.Response(status=status, reason=reason, headers=headers, body=payload)


async def _cut_answer(
    request: web.Request, status: int, reason: str | None, headers: CIMultiDict[str], payload: bytes
) -> web.StreamResponse:
    """Send the status, the headers and half the body (announcing all of it), then reset the connection."""
    response = web.StreamResponse(status=status, reason=reason, headers=headers)
    if payload and request.method != "HEAD":
        response.content_length = len(payload)
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close() sends RST, not FIN, as a dropped connection or a crashed front end does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # aiohttp finishes the response on a closed transport, sees ConnectionError and drops it quietly.
    return response


@contextmanager
def proxy_in_thread(
    upstream: str, rates: FaultRates | None = None, *, seed: int = 0
) -> Iterator[S3FaultProxy]:
    """The proxy on an event loop in a thread of its own, for code that is not async (benchmarks).
    Read `counts` after the traffic is over: the proxy's thread writes them."""
    proxy = S3FaultProxy(upstream, rates, seed=seed)
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = Future()

    async def serve() -> None:
        stop = asyncio.Event()
        async with proxy:
            started.set_result((asyncio.get_running_loop(), stop))
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    thread = threading.Thread(target=run, name="s3-fault-proxy", daemon=True)
    thread.start()
    loop, stop = started.result(timeout=30)
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
