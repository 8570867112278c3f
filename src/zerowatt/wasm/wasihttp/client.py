"""A small HTTP/1.1 client for one loopback upstream, with keep-alive connection reuse.

Why not httpx: the executor proxies every request of a wasi:http component to its ``wasmtime
serve`` child, so the client is on the hot path. This one only has to speak HTTP/1.1 to a known,
local, trusted server (hyper), and on asyncio streams it costs a fraction of httpx's per-request
overhead (``benchmarks/bench_wasihttp.py`` measures both).
"""

from __future__ import annotations

import asyncio
import contextlib

from zerowatt.http1 import MAX_HEAD, IncompleteResponse, ProtocolError, ResponseParser

#: Bytes asked of the stream per read: whatever has arrived, up to this, goes to the parser at once.
_READ_SIZE: int = 1 << 16


class UpstreamError(Exception):
    """The upstream closed the connection or answered something that is not HTTP/1.1.

    ``nothing_received`` marks a connection that failed before a single byte of the answer came
    back: on a pooled keep-alive connection that means the server had closed it meanwhile.
    """

    def __init__(self, message: str, nothing_received: bool = False) -> None:
        super().__init__(message)
        self.nothing_received = nothing_received


class UpstreamRefused(UpstreamError):
    """Nothing listens on the port (connection refused).

    ``sent`` tells whether the request had first gone out on a pooled connection that then closed
    without an answer (the server may have died before or while handling it); when it is False the
    request reached nobody and is always safe to retry.
    """

    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message, nothing_received=True)
        self.sent = sent


class UpstreamResponse:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Conn:
    __slots__ = ("parser", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = ResponseParser(MAX_HEAD)  # the responses are framed by the shared sans-I/O parser

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class UpstreamPool:
    """Keep-alive connections to ``127.0.0.1:port``; a connection serves one request at a time."""

    def __init__(self, host: str, port: int, max_idle: int = 64) -> None:
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self._idle: list[_Conn] = []
        self._closed = False

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
        return _Conn(reader, writer)

    async def request(self, raw: bytes, head_only: bool = False) -> UpstreamResponse:
        """Send one encoded request and read the whole response.

        A connection taken from the idle pool may have been closed by the server meanwhile; such a
        request is retried once on a fresh connection (safe: nothing was read back).
        """
        sent = False
        while self._idle:
            conn = self._idle.pop()
            if conn.reader.at_eof() or conn.writer.is_closing():  # the server closed it while idle
                conn.close()
                continue
            try:
                return await self._exchange(conn, raw, head_only)
            except UpstreamError as exc:
                if not exc.nothing_received:
                    raise
            sent = True
            break
        try:
            fresh = await self._connect()
        except ConnectionRefusedError:
            raise UpstreamRefused(f"nothing listens on {self.host}:{self.port}", sent=sent) from None
        return await self._exchange(fresh, raw, head_only)

    async def _exchange(self, conn: _Conn, raw: bytes, head_only: bool) -> UpstreamResponse:
        reuse = False
        parser = conn.parser
        try:
            conn.writer.write(raw)
            while (resp := parser.next_response(head_request=head_only)) is None:
                try:
                    data = await conn.reader.read(_READ_SIZE)
                except ConnectionError as exc:
                    raise UpstreamError(
                        f"the upstream connection failed: {exc}", nothing_received=parser.idle
                    ) from None
                if data:
                    parser.feed(data)
                else:
                    parser.feed_eof()
            # after 101 Switching Protocols the connection no longer speaks HTTP/1.1: never reuse it
            reuse = resp.keep_alive and parser.idle and resp.status != 101
            return UpstreamResponse(resp.status, resp.headers, resp.body)
        except IncompleteResponse as exc:
            raise UpstreamError(
                "the upstream closed the connection before answering"
                if exc.nothing_received
                else "the upstream closed the connection in the middle of a response",
                nothing_received=exc.nothing_received,
            ) from None
        except ProtocolError as exc:
            raise UpstreamError(str(exc)) from None
        finally:
            if reuse and not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
