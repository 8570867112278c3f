"""The native HTTP/1.1 front of a worker: ``asyncio.Protocol`` + httptools, straight into the host.

Why not an ASGI server: for a guest that answers in ~0.1 ms, uvicorn's per-request ASGI machinery
(scope and message dicts, a request-response cycle object, two ``send`` awaits, header list
re-encoding) is a large share of the request (docs/benchmarks.md, "App host"). This server parses
with httptools (the llhttp parser uvicorn uses), calls :meth:`HostApp.respond` directly and writes
each response with one ``transport.write``.

What it implements (RFC 9112): keep-alive (HTTP/1.1 by default, HTTP/1.0 on request), pipelining
(requests on one connection answered in order, reading paused while a backlog waits), bodies framed by
Content-Length or chunked, ``max_body`` (413, announced or actual; the rest of the body is read and
dropped so the client sees the answer), ``Expect: 100-continue``, malformed requests (400, then
close), ``Upgrade`` requests (answered as plain HTTP, then closed), request heads over
:data:`MAX_HEAD` (431), an idle keep-alive timeout, and a
graceful shutdown (stop accepting, finish what is in flight, close). Request deadlines are the
executors' (epoch interruption, answered 504 by the host). A client that closes or resets its connection
while its request runs raises the request's :class:`AbortSignal` (a guest on the pool is stopped; 499).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import httptools

from zerowatt.wasm.executor import AbortSignal

from .asgi import HostApp

log = logging.getLogger(__name__)

#: Largest request line + headers accepted (bytes); above it: 431. As uvicorn/h11's default.
MAX_HEAD = 64 * 1024
#: Close a connection that has been idle this long between requests (uvicorn's default keep-alive).
KEEP_ALIVE_TIMEOUT = 5.0
#: Close a connection whose partial request has made no progress for this long.
STALLED_TIMEOUT = 60.0
#: Requests parsed ahead on one pipelined connection before reading pauses.
MAX_PIPELINE = 16
#: Bytes of an oversized (413) body read and dropped before the connection is simply closed.
MAX_DISCARD = 64 << 20

_STATUS_LINES: dict[int, bytes] = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:  # a code without a registered reason phrase: the reason may be empty (RFC 9112 4)
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} \r\n".encode()
    return line


def _plain(status: int, text: str, *, close: bool = True) -> bytes:
    body = text.encode()
    head = f"content-type: text/plain; charset=utf-8\r\ncontent-length: {len(body)}\r\n"
    return status_line(status) + (head + ("connection: close\r\n" if close else "") + "\r\n").encode() + body


class _Clock:
    """The ``Date`` header, formatted once a second (RFC 9110 6.6.1: origin servers send it)."""

    def __init__(self) -> None:
        self.second = -1
        self.header = ""
        self.refresh()

    def refresh(self) -> str:
        now = time.time()
        if int(now) != self.second:
            self.second = int(now)
            self.header = f"date: {email.utils.formatdate(now, usegmt=True)}\r\n"
        return self.header


class HttpServer:
    """Serves one :class:`HostApp` on listening sockets; the per-connection protocol is :class:`Connection`."""

    def __init__(self, host: HostApp, *, max_body: int, keep_alive: float = KEEP_ALIVE_TIMEOUT) -> None:
        self.host = host
        self.max_body = max_body
        self.keep_alive = keep_alive
        self.connections: set[Connection] = set()
        self.clock = _Clock()
        self.closing = False
        self._servers: list[asyncio.AbstractServer] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._drained: asyncio.Event | None = None

    async def start(self, sockets: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        for sock in sockets:
            self._servers.append(await loop.create_server(lambda: Connection(self), sock=sock, backlog=2048))
        self._sweeper = loop.call_later(1.0, self._sweep)

    def _sweep(self) -> None:
        """Once a second: refresh the Date header, close idle and stalled connections."""
        self.clock.refresh()
        now = time.monotonic()
        for conn in list(self.connections):
            conn.expire(now)
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if self._drained is not None and not self.connections:
            self._drained.set()

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish (up to ``timeout``), then close everything."""
        self.closing = True
        for server in self._servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._drained = asyncio.Event()
        for conn in list(self.connections):
            conn.close_when_idle()
        if self.connections:
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except TimeoutError:
                log.warning("%d connection(s) still busy after %g s; closing them", len(self.connections), timeout)
        for conn in list(self.connections):
            conn.abort()
        for server in self._servers:
            await server.wait_closed()


class Connection(asyncio.Protocol):
    """One client connection: parse, queue (pipelining), answer in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.host = server.host
        self.max_body = server.max_body
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.sockname: tuple[str, int] | Any = ("127.0.0.1", 80)
        self.peername: tuple[str, int] | Any = ("", 0)
        self.queue: deque[tuple[Any, ...]] = deque()
        self.busy = False  # a request of this connection is being answered
        self.closing = False  # close once the queue is answered
        self.reading = True
        self.can_write: asyncio.Future[None] | None = None
        self.last_active = time.monotonic()
        self.partial = False  # bytes of an unfinished request have arrived
        self.in_flight: AbortSignal | None = None  # the request being answered: aborted if the client leaves
        self._clear_request()

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport
        self.sockname = transport.get_extra_info("sockname") or self.sockname
        self.peername = transport.get_extra_info("peername") or self.peername
        self.server.connections.add(self)
        if self.server.closing:
            self.closing = True
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight is not None:
            self.in_flight.abort()
        self.server.forget(self)
        self.queue.clear()
        self.closing = True
        if self.can_write is not None and not self.can_write.done():
            self.can_write.set_result(None)

    def pause_writing(self) -> None:
        if self.can_write is None or self.can_write.done():
            self.can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.can_write is not None and not self.can_write.done():
            self.can_write.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request itself is complete and queued: answer it as plain HTTP (a server may ignore
            # Upgrade, RFC 9110 7.8), then close, since whatever follows is not HTTP/1.1.
            self.closing = True
            if self.reading and self.transport is not None:
                self.reading = False
                self.transport.pause_reading()
            if not self.busy and not self.queue and self.transport is not None:
                self.transport.close()
        except httptools.HttpParserError as exc:
            if self._head > MAX_HEAD:
                self._reject(431, "request header fields too large\n")
            elif self._too_large and self._discarded > MAX_DISCARD:
                self._reject(413, "request body too large\n")
            else:
                self._reject(400, f"malformed HTTP request: {exc}\n")

    def eof_received(self) -> bool | None:
        """The client is done sending: answer what it already sent, then close."""
        if self.busy or self.queue:
            self.closing = True
            if self.in_flight is not None:
                # Taken as the client leaving, as nginx does (499): a guest still running on the thread pool
                # is stopped. Requests that finish inline (within the inline budget) are still answered.
                self.in_flight.abort()
            return True  # keep our side open until the queue is answered (_answer_queue closes)
        return None  # nothing pending: close now

    # -- httptools callbacks ---------------------------------------------------------------------
    def _clear_request(self) -> None:
        """The state of the request being parsed, empty."""
        self._url: list[bytes] = []
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._head = 0
        self._too_large = False
        self._discarded = 0
        self._started = 0.0

    def on_message_begin(self) -> None:
        self.partial = True
        self._clear_request()
        self._started = time.perf_counter()

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._head += len(url)
        if self._head > MAX_HEAD:
            raise ValueError("request head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head += len(name) + len(value) + 4
        if self._head > MAX_HEAD:
            raise ValueError("request head too large")
        self._headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        expect = False
        for name, value in self._headers:
            if name == "content-length":
                if value.isdigit() and int(value) > self.max_body:
                    self._too_large = True
            elif name == "expect" and value.lower() == "100-continue":
                expect = True
        if not expect or self.transport is None or self.parser.get_http_version() != "1.1":
            return
        if self._too_large:  # answer now instead of inviting a body we would drop (RFC 9110 10.1.1)
            self._reject(413, "request body too large\n")
        else:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            self._discarded += len(body)
            if self._discarded > MAX_DISCARD:
                raise ValueError("oversized body")
            return
        self._size += len(body)
        if self._size > self.max_body:
            self._too_large = True
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.partial = False
        parser = self.parser
        keep_alive = parser.should_keep_alive()
        url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        if self._too_large:
            item: tuple[Any, ...] = (None, 413, keep_alive, "request body too large\n")
        else:
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            item = (parser.get_method(), url, self._headers, body, keep_alive, parser.get_http_version(), self._started)
        self.queue.append(item)
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._answer_queue())
        elif len(self.queue) >= MAX_PIPELINE and self.reading and self.transport is not None:
            self.reading = False
            self.transport.pause_reading()

    # -- answering -------------------------------------------------------------------------------
    async def _answer_queue(self) -> None:
        try:
            while self.queue and not self.transport_gone():
                item = self.queue.popleft()
                if item[0] is None:  # answered without the host: (None, status, keep-alive, text)
                    _, status, keep_alive, text = item
                    self._write(_plain(status, text, close=not keep_alive), keep_alive)
                else:
                    await self._answer(*item)
                if self.can_write is not None and not self.can_write.done():
                    await self.can_write
                if not self.reading and len(self.queue) < MAX_PIPELINE // 2 and self.transport is not None:
                    self.reading = True
                    self.transport.resume_reading()
        except Exception:  # never leave a connection hanging on a bug
            log.exception("HTTP connection failed")
            self.abort()
        finally:
            self.busy = False
            self.last_active = time.monotonic()
        if self.closing and not self.queue and self.transport is not None:
            self.transport.close()

    def transport_gone(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    async def _answer(
        self,
        method: bytes,
        url: bytes,
        headers: list[tuple[str, str]],
        body: bytes,
        keep: bool,
        version: str,
        t0: float,
    ) -> None:
        raw_path, _, raw_query = url.partition(b"?")
        path = raw_path.decode("latin-1")
        host = self.host
        match = host.match(path)
        if match is None:
            self._write(_plain(404, "not found\n", close=not keep), keep)
            return
        self.in_flight = signal = AbortSignal()  # respond() never raises: reset below
        status, out, reply = await host.respond(
            match,
            method.decode("latin-1"),
            path,
            raw_query.decode("latin-1"),
            headers,
            body,
            self.sockname,
            self.peername,
            "http",
            t0,
            signal,
        )
        self.in_flight = None
        if signal.aborted and status == 499:  # the guest was stopped because the client left: nothing to send
            self.closing = True
            if self.transport is not None:
                self.transport.close()
            return
        keep = keep and not self.closing  # shutting down, or the client asked to upgrade: last answer
        head = "".join([f"{k}: {v}\r\n" for k, v in out])
        connection = (
            "" if keep and version == "1.1" else "connection: keep-alive\r\n" if keep else "connection: close\r\n"
        )
        framing = f"{self.server.clock.header}content-length: {len(reply)}\r\n{connection}\r\n"
        self._write(status_line(status) + (head + framing).encode() + reply, keep)

    def _write(self, data: bytes, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if not keep_alive or self.server.closing:
            self.closing = True
            self.queue.clear()
            transport.close()

    def _reject(self, status: int, text: str) -> None:
        """A request that cannot be parsed: answer after what is queued, then close."""
        self.partial = False
        self.closing = True
        if self.reading and self.transport is not None:
            self.reading = False
            self.transport.pause_reading()
        self.queue.append((None, status, False, text))
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._answer_queue())

    # -- lifecycle -------------------------------------------------------------------------------
    def expire(self, now: float) -> None:
        if self.busy or self.transport is None:
            return
        idle = now - self.last_active
        if idle > STALLED_TIMEOUT or (not self.partial and idle > self.server.keep_alive):
            self.transport.close()

    def close_when_idle(self) -> None:
        self.closing = True
        if not self.busy and not self.queue and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def serve_native(
    host: HostApp, sockets: list[Any], *, max_body: int, ready: Callable[[], None], stop: asyncio.Event
) -> None:
    """Run the host's lifespan and the server until ``stop`` is set, then shut down gracefully."""
    await host.startup()
    server = HttpServer(host, max_body=max_body)
    try:
        await server.start(sockets)
        ready()
        await stop.wait()
        await server.shutdown()
    finally:
        await host.shutdown()
