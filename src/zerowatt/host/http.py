"""The native HTTP/1.1 front of a worker: ``asyncio.Protocol`` + httptools, straight into the host.

Why not an ASGI server: for a guest that answers in ~0.1 ms, uvicorn's per-request ASGI machinery
(scope and message dicts, a request-response cycle object, two ``send`` awaits, header list
re-encoding) is a large share of the request (docs/benchmarks.md, "App host"). This server parses
with httptools (the llhttp parser uvicorn uses), calls :meth:`HostApp.respond` directly and writes
each response with one ``transport.write``.

What it implements (RFC 9112): keep-alive (HTTP/1.1 by default, HTTP/1.0 on request), pipelining
(requests on one connection answered in order, reading paused while a backlog waits), bodies framed by
Content-Length or chunked, ``max_body`` (413 as soon as the announced length or the bytes received
exceed it), ``Expect: 100-continue``, malformed requests (400, then close: no ``Host`` on HTTP/1.1,
several ``Host`` fields, a request line without a version), ``Upgrade`` requests (answered as plain
HTTP, then closed), request heads over :data:`MAX_HEAD` (431), no body and no Content-Length on 204,
304 and HEAD answers (RFC 9110 8.6, 9.3.2), an idle keep-alive timeout, a total deadline for each
request head and a minimum rate for its body (slowloris: 408, then close; see :class:`HttpServer`), a
staged close after an error so the client can read it (RFC 9112 9.6), and a graceful shutdown (stop
accepting, finish what is in flight, close). Request deadlines are the executors' (epoch
interruption, answered 504 by the host). A client that closes or resets its connection
while its request runs raises the request's :class:`AbortSignal` (a guest on the pool is stopped; 499).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import httptools

from zerowatt.wasm.executor import AbortSignal, new_error_id

from .app import NO_CONTENT, TEXT_PLAIN, HostApp

log = logging.getLogger(__name__)

#: Largest request line + headers accepted (bytes); above it: 431. As uvicorn/h11's default.
MAX_HEAD = 64 * 1024
#: Close a connection that has been idle this long between requests (uvicorn's default keep-alive).
KEEP_ALIVE_TIMEOUT = 5.0
#: After an error answer with ``connection: close``, read and drop what the client still sends for at
#: most this long before closing (a close with unread input resets the connection, and the reset can
#: destroy the answer before the client reads it: RFC 9112 9.6).
LINGER = 2.0
#: Requests parsed ahead on one pipelined connection before reading pauses.
MAX_PIPELINE = 16
#: Bytes read and dropped during a staged close (after a 413, 408 ...) before the connection is simply closed.
MAX_DISCARD = 64 << 20
#: At shutdown, how long a connection that has not sent a request yet may still send its first one.
FIRST_REQUEST_GRACE = 1.0

_STATUS_LINES: dict[int, bytes] = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


_NO_VERSION = "malformed HTTP request: the request line has no HTTP version\n"


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that is answered with an error."""


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
    """Serves one :class:`HostApp` on listening sockets; the per-connection protocol is :class:`Connection`.

    Slow clients are bounded by deadlines measured on the monotonic clock and checked by a sweep
    (twice per ``head_timeout``, at least once a second), never reset by a trickle of bytes:

    * a connection without a request in progress is closed ``keep_alive`` seconds after it was
      accepted or after its last answer (nothing is answered: there is no request);
    * a request head (request line and headers) must be complete ``head_timeout`` seconds after its
      first byte arrived, or after the previous answer on the connection if that came later;
    * a body must keep arriving at ``min_body_rate`` bytes per second after an allowance of
      ``head_timeout`` seconds: its deadline is ``head_timeout + received / min_body_rate`` seconds
      after the head was complete (Apache's mod_reqtimeout ``MinRate`` rule).

    A request that misses its deadline is answered 408 and the connection closed. ``head_timeout``
    and ``min_body_rate`` default to the host's settings (``--head-timeout``, ``--min-body-rate``).
    """

    def __init__(
        self,
        host: HostApp,
        *,
        max_body: int,
        keep_alive: float = KEEP_ALIVE_TIMEOUT,
        head_timeout: float | None = None,
        min_body_rate: float | None = None,
    ) -> None:
        self.host = host
        self.max_body = max_body
        self.keep_alive = keep_alive
        self.head_timeout = host.settings.head_timeout if head_timeout is None else head_timeout
        self.min_body_rate = host.settings.min_body_rate if min_body_rate is None else min_body_rate
        self.sweep_interval = min(1.0, self.head_timeout / 2)
        self.connections: set[Connection] = set()
        self.clock = _Clock()
        self.closing = False
        self._servers: list[asyncio.AbstractServer] = []
        self._sockets: list[socket.socket] = []
        self._accepting: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._drained: asyncio.Event | None = None

    async def start(self, sockets: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        self._sockets = list(sockets)
        for sock in sockets:
            self._servers.append(await loop.create_server(lambda: Connection(self), sock=sock, backlog=2048))
        self._sweeper = loop.call_later(self.sweep_interval, self._sweep)

    def _sweep(self) -> None:
        """Refresh the Date header; close idle connections, answer late requests 408."""
        self.clock.refresh()
        now = time.monotonic()
        for conn in list(self.connections):
            conn.expire(now)
        self._sweeper = asyncio.get_running_loop().call_later(self.sweep_interval, self._sweep)

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if self._drained is not None and not self.connections:
            self._drained.set()

    async def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop accepting, finish what is in flight (up to ``timeout`` seconds), answer the rest 503, close.

        Returns True when everything in flight finished within ``timeout``. In order: connections the
        kernel already completed (the accept backlog, which closing the listener would reset) are
        accepted and served like the others; the listeners close; idle keep-alive connections close;
        a request being received or answered is finished and answered with ``Connection: close``.
        After ``timeout`` seconds, each request still running is answered 503 (``Connection: close``,
        with an error id that is logged), and its connection is closed gracefully: our side is
        shut for writing and what the client still sends is read and dropped (for up to
        :data:`LINGER` seconds) so that the client reads the answer instead of a reset.
        """
        self.closing = True
        self._drained = asyncio.Event()
        for sock in self._sockets:
            self._accept_backlog(sock)
        for server in self._servers:
            server.close()
        if self._accepting:
            await asyncio.gather(*self._accepting, return_exceptions=True)
        for conn in list(self.connections):
            conn.close_when_idle()
        fresh = asyncio.get_running_loop().call_later(FIRST_REQUEST_GRACE, self._close_fresh)
        finished = True
        if self.connections:
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except TimeoutError:
                finished = False
                busy = [conn for conn in self.connections if conn.busy or conn.partial]
                log.warning("drain: %d request(s) still in flight after %g s; answering them 503", len(busy), timeout)
                for conn in list(self.connections):
                    conn.give_up()
                if self.connections:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._drained.wait(), LINGER)
        fresh.cancel()
        for conn in list(self.connections):
            conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            await server.wait_closed()
        return finished

    def _close_fresh(self) -> None:
        for conn in list(self.connections):
            conn.close_when_idle(fresh=True)

    def _accept_backlog(self, sock: socket.socket) -> None:
        """Take the connections waiting in ``sock``'s accept queue: clients that connected before the
        stop and may have sent a request already (closing the listener would reset them)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = sock.accept()
            except OSError:  # BlockingIOError: the queue is empty
                return
            client.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(lambda: Connection(self), client))
            self._accepting.add(task)
            task.add_done_callback(self._accepting.discard)


class Connection(asyncio.Protocol):
    """One client connection: parse, queue (pipelining), answer in order."""

    _head_started: float  # monotonic: the head deadline runs from here (0: not yet started)
    _body_started: float  # monotonic: the body deadline runs from here (0: not yet started)

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
        self.responding = False  # the host is computing an answer that has not been written yet
        self.served = False  # at least one request has been answered on this connection
        self.closing = False  # close once the queue is answered
        self.lingering = 0.0  # when > 0: answered and half-closed; input is dropped until then (monotonic)
        self.reading = True
        self.can_write: asyncio.Future[None] | None = None
        self.last_active = time.monotonic()  # accepted, or the last answer written (not: the last byte read)
        self.partial = False  # bytes of an unfinished request have arrived
        self.in_flight: AbortSignal | None = None  # the request being answered: aborted if the client leaves
        self.in_body = False  # ... and its head is complete
        self.peer_eof = False  # the client has shut down its sending side
        self._error: tuple[int, str] | None = None  # the answer to a request refused from a parser callback
        self._discarded = 0  # bytes dropped while lingering
        self._clear_request()

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport
        self.sockname = transport.get_extra_info("sockname") or self.sockname
        self.peername = transport.get_extra_info("peername") or self.peername
        self.server.connections.add(self)
        if self.server.closing:  # accepted from the backlog at shutdown: its request is answered, then it closes
            self.closing = True

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
        if self.lingering:  # answered and closing: what the client still sends is dropped
            self._discarded += len(data)
            if self._discarded > MAX_DISCARD and self.transport is not None:
                self.transport.close()
            return
        try:
            self.parser.feed_data(data)
            if self.partial:  # a request is not complete yet (rare: most arrive in one piece)
                self._unfinished(data)
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
            if self._error is not None:  # refused from a callback (_Refused)
                self._reject(*self._error)
            elif self._head > MAX_HEAD:
                self._reject(431, "request header fields too large\n")
            else:
                self._reject(400, f"malformed HTTP request: {exc}\n")

    def _unfinished(self, data: bytes) -> None:
        """After a chunk that left a request unfinished: start its deadline clocks, spot HTTP/0.9.

        The clocks start here rather than in the parser callbacks (every callback of one chunk happens
        at the same instant), which keeps clock reads off the path of requests that arrive whole.
        """
        if self.in_body:
            if not self._body_started:
                self._body_started = time.monotonic()
            return
        if not self._head_started:
            self._head_started = time.monotonic()
        if data[-1:] == b"\n" and self.parser.get_http_version()[0] == "0":
            # a request line ended without a version ("GET /" alone): HTTP/0.9, not served (RFC 9112 2.3)
            self._reject(400, _NO_VERSION)

    def eof_received(self) -> bool | None:
        """The client is done sending: answer what it already sent, then close."""
        if self.lingering:
            return None
        self.peer_eof = True
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
        self._started = 0.0
        self._version = ""
        self._head_started = 0.0
        self._body_started = 0.0

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

    def _refuse(self, status: int, text: str) -> None:
        """Stop parsing: the request is answered ``status`` (by :meth:`data_received`), then the connection closes."""
        self._error = (status, text)
        raise _Refused(text)

    def on_headers_complete(self) -> None:
        self.in_body = True
        self._version = version = self.parser.get_http_version()
        if version != "1.1" and version != "1.0":
            if version.startswith("0."):  # "GET /" alone: HTTP/0.9 is not served (RFC 9112 2.3)
                self._refuse(400, _NO_VERSION)
            self._refuse(505, f"HTTP/{version} is not supported\n")
        expect = False
        hosts = 0
        for name, value in self._headers:
            if name == "content-length":
                if value.isascii() and value.isdigit() and int(value) > self.max_body:
                    # answered at once, before any body arrives (and instead of inviting one with 100 Continue)
                    self._refuse(413, "request body too large\n")
            elif name == "host":
                hosts += 1
            elif name == "expect" and value.lower() == "100-continue":
                expect = True
        if hosts != 1 and (hosts or version == "1.1"):  # RFC 9112 3.2: exactly one Host on HTTP/1.1
            self._refuse(400, f"malformed HTTP request: {'several Host headers' if hosts else 'no Host header'}\n")
        if expect and self.transport is not None and version == "1.1":
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body:
            self._refuse(413, "request body too large\n")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.partial = self.in_body = False
        parser = self.parser
        keep_alive = parser.should_keep_alive()
        url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        item = (parser.get_method(), url, self._headers, body, keep_alive, self._version, self._started)
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
                    self.responding = True
                    try:
                        await self._answer(*item)
                    finally:
                        self.responding = False
                self.served = True
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
        if self.closing and not self.queue and not self.lingering and self.transport is not None:
            self.transport.close()

    def transport_gone(self) -> bool:
        return self.transport is None or self.transport.is_closing() or self.lingering > 0

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
            status, out, reply = 404, TEXT_PLAIN, b"not found\n"
        else:
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
        if status in NO_CONTENT:  # no content, no Content-Length (RFC 9110 8.6); respond() dropped any body
            framing = f"{self.server.clock.header}{connection}\r\n"
        else:
            framing = f"{self.server.clock.header}content-length: {len(reply)}\r\n{connection}\r\n"
            if method == b"HEAD":  # the length a GET would have, never the content (RFC 9110 9.3.2)
                reply = b""
        self._write(status_line(status) + (head + framing).encode() + reply, keep)

    def _write(self, data: bytes, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or self.lingering:
            return
        transport.write(data)
        if not keep_alive or self.server.closing:
            self.closing = True
            self.queue.clear()
            self._close_after_answer(transport)

    def _close_after_answer(self, transport: asyncio.Transport) -> None:
        """Close after the last answer; with input possibly still coming, a staged close (RFC 9112 9.6).

        Closing a socket with unread input makes the kernel reset the connection, and a reset can
        destroy the answer before the client has read it (a 413 or 408 sent while the client is still
        sending). Instead: shut down our sending side (the client sees the end of the answer), read and
        drop its input until it closes too, for at most :data:`LINGER` seconds (or :data:`MAX_DISCARD`
        bytes), then close.
        """
        if self.peer_eof or self.server.closing or not transport.can_write_eof():
            transport.close()
            return
        self.lingering = time.monotonic() + LINGER
        self._discarded = 0
        transport.write_eof()
        if not self.reading:
            self.reading = True
            transport.resume_reading()

    def _reject(self, status: int, text: str) -> None:
        """A request that is refused (unparsable, too large, too slow): answer after what is queued, then close."""
        self.partial = self.in_body = False
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
        """Enforce the deadlines of :class:`HttpServer` (called by its sweep)."""
        if self.busy or self.transport is None:
            return  # answering: the executor's deadline bounds it; the next request's clock starts after
        if self.lingering:
            if now > self.lingering:
                self.transport.close()
            return
        server = self.server
        if self.in_body:
            deadline = self._body_started + server.head_timeout + self._size / server.min_body_rate
            if now > deadline:
                self._timed_out("the request body did not arrive in time")
        elif self.partial:
            if now > max(self._head_started, self.last_active) + server.head_timeout:
                self._timed_out("the request head did not arrive in time")
        elif now - self.last_active > server.keep_alive:
            self.transport.close()

    def _timed_out(self, why: str) -> None:
        log.debug("408 for %s: %s", self.peername[0] if isinstance(self.peername, tuple) else self.peername, why)
        self._reject(408, f"request timeout: {why}\n")

    def close_when_idle(self, *, fresh: bool = False) -> None:
        """Shutting down: answer what is in flight with ``Connection: close``; close an idle
        keep-alive connection (or one lingering after an error answer) now. One that has not sent a request
        yet is closed only with ``fresh`` (:data:`FIRST_REQUEST_GRACE` later): it connected before the stop,
        its request may be on the way."""
        self.closing = True
        idle = not self.busy and not self.queue and not self.partial
        if self.transport is not None and (self.lingering or (idle and (self.served or fresh))):
            self.transport.close()

    def give_up(self) -> None:
        """The drain is over: answer a request still running (or still arriving) 503, then linger-close."""
        transport = self.transport
        if transport is None or transport.is_closing() or self.lingering:
            return
        self.queue.clear()
        if not (self.responding or self.partial):
            transport.close()  # idle, or its answer is written: nothing unread to reset
            return
        error_id = new_error_id()
        log.warning(
            "drain: a request from %s did not finish before shutdown; answered 503 [error %s]",
            self.peername[0] if self.peername else "?",
            error_id,
        )
        body = f"service unavailable: the server is shutting down (error id {error_id})\n".encode()
        transport.write(
            status_line(503)
            + (
                f"content-type: text/plain; charset=utf-8\r\nx-error-id: {error_id}\r\n"
                f"{self.server.clock.header}content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            ).encode()
            + body
        )
        self.lingering = time.monotonic() + LINGER
        if not self.reading:
            self.reading = True
            transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        else:  # pragma: no cover - TCP transports can
            transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def serve_native(
    host: HostApp,
    sockets: list[Any],
    *,
    max_body: int,
    ready: Callable[[], None],
    stop: asyncio.Event,
    drain: float = 5.0,
) -> bool:
    """Run the host's lifespan and the server until ``stop`` is set, then shut down gracefully
    (:meth:`HttpServer.shutdown`, up to ``drain`` seconds). True when nothing was cut short."""
    await host.startup()
    server = HttpServer(host, max_body=max_body)
    try:
        await server.start(sockets)
        ready()
        await stop.wait()
        return await server.shutdown(drain)
    finally:
        await host.shutdown()
