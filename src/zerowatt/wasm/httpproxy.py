"""A small HTTP/1.1 client for one loopback upstream, with keep-alive connection reuse.

Why not httpx: the executor proxies every request of a wasi:http component to its ``wasmtime
serve`` child, so the client is on the hot path. This one only has to speak HTTP/1.1 to a known,
local, trusted server (hyper), and on asyncio streams it costs a fraction of httpx's per-request
overhead (``benchmarks/bench_wasihttp.py`` measures both).
"""

from __future__ import annotations

import asyncio
import contextlib

#: Largest response head (status line + headers) accepted from the child.
MAX_HEAD: int = 1 << 20


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
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

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
        try:
            conn.writer.write(raw)
            try:
                head = await conn.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                raise UpstreamError(
                    "the upstream closed the connection before answering", nothing_received=not exc.partial
                ) from None
            except ConnectionError as exc:
                raise UpstreamError(f"the upstream connection failed: {exc}", nothing_received=True) from None
            except asyncio.LimitOverrunError:
                raise UpstreamError("the upstream's response head is too large") from None
            status, headers, length, chunked, close = _parse_head(head)
            while 100 <= status < 200 and status != 101:  # interim answers (100 Continue, 103 ...): skip
                head = await conn.reader.readuntil(b"\r\n\r\n")
                status, headers, length, chunked, close = _parse_head(head)
            if head_only or status in (204, 304) or 100 <= status < 200:
                body = b""
            elif chunked:
                body = await _read_chunked(conn.reader)
            elif length is not None:
                body = await conn.reader.readexactly(length)
            else:
                body = await conn.reader.read()
                close = True
            # after 101 Switching Protocols the connection no longer speaks HTTP/1.1: never reuse it
            reuse = not close and status != 101
            return UpstreamResponse(status, headers, body)
        except asyncio.IncompleteReadError:
            raise UpstreamError("the upstream closed the connection in the middle of a response") from None
        finally:
            if reuse and not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()


def _parse_head(head: bytes) -> tuple[int, list[tuple[str, str]], int | None, bool, bool]:
    """(status, headers with lower-case names, content-length, chunked, connection-close)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise UpstreamError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(parts[1])
    headers: list[tuple[str, str]] = []
    length: int | None = None
    chunked = False
    close = parts[0] == "HTTP/1.0"
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise UpstreamError(f"malformed response header line: {line[:80]!r}")
        name = name.strip().lower()
        value = value.strip()
        if name == "content-length":
            if not value.isdigit():
                raise UpstreamError(f"bad content-length {value!r}")
            length = int(value)
        elif name == "transfer-encoding":
            chunked = value.lower().endswith("chunked")
        elif name == "connection":
            close = "close" in value.lower()
        headers.append((name, value))
    return status, headers, length, chunked, close


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise UpstreamError(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            # trailers (ignored) up to the empty line
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise UpstreamError("chunk not followed by CRLF")
