"""The native HTTP/1.1 front fed random bytes and mangled request heads over a real loopback socket.

The property: whatever a client sends, every answer is a well-formed status line with a status below 500
(a 4xx for what cannot be parsed, 2xx/404 for what can; 505 for a well-formed request of an HTTP version
other than 1.0 and 1.1, RFC 9110 §15.6.6: the client's fault, not the server's), or no answer at all for a
request that never completes; and the server still answers a good request afterwards. The parser is httptools driven by
:class:`zerowatt.host.http.Connection` (there is no separate sans-I/O parse function), so the test drives
the real server, running on its own event loop in a thread so that hypothesis can call it synchronously.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.host.conftest import make_host
from zerowatt.host.http import HttpServer
from zerowatt.host.pool import ComponentPool
from zerowatt.wasm.model import App

STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@pytest.fixture
def port(apps: list[App], pool: ComponentPool) -> Iterator[int]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="http-fuzz-loop", daemon=True)
    thread.start()
    host = make_host(apps, pool, [])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = HttpServer(host, max_body=1024)

    async def start() -> None:
        await host.startup()
        await server.start([sock])

    async def stop() -> None:
        await server.shutdown(timeout=2.0)
        await host.shutdown()

    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield sock.getsockname()[1]
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, read until the server closes (a generous timeout: CI machines are loaded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        try:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer 4xx and close before reading everything: its answer is still there
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def assert_no_5xx(reply: bytes) -> None:
    if not reply:
        return  # an incomplete request, then EOF: nothing to answer
    assert STATUS.match(reply), reply[:200]
    statuses = [int(s) for s in STATUS.findall(reply)]
    assert all(s < 500 or s == 505 for s in statuses), reply[:400]


def still_serves(port: int) -> None:
    reply = exchange(port, b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"BREW", b"", b"G\x00T"])
TARGETS = st.one_of(
    st.sampled_from([b"/hello", b"/nope", b"/probe/echo", b"/probe/env", b"*", b"http://x/hello", b""]),
    st.binary(max_size=40).map(lambda b: b"/hello?" + b.replace(b" ", b"%20").replace(b"\r", b"").replace(b"\n", b"")),
    st.binary(max_size=40),
)
VERSIONS = st.sampled_from([b" HTTP/1.1", b" HTTP/1.0", b" HTTP/2.0", b" HTTP/1.1x", b"", b" HTTP/9", b" http/1.1"])
HEADER_NAMES = st.sampled_from(
    [b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect", b"Upgrade", b"Proxy", b"X-A",
     b"Cookie", b"", b"Bad Name", b"\xff\xfe"]
)  # fmt: skip
HEADER_VALUES = st.one_of(
    st.sampled_from(
        [b"t", b"0", b"5", b"-1", b"1e3", b"99999999999999999999999", "²".encode(), b"chunked", b"gzip, chunked",
         b"100-continue", b"close", b"keep-alive, Upgrade", b"websocket", b"\x00", b"a" * 9000]
    ),
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)  # fmt: skip
heads = st.builds(
    lambda method, target, version, headers, body: method + b" " + target + version + b"\r\n"
    + b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body,
    METHODS,
    TARGETS,
    VERSIONS,
    st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6),
    st.binary(max_size=60),
)  # fmt: skip
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.binary(max_size=400) | heads | st.lists(heads, min_size=2, max_size=3).map(b"".join))
@example(data=b"GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n")
@example(data="GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: ²\r\n\r\n".encode())
@example(data=b"POST /probe/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
@example(data=b"GET /probe/env?\xff\xfe HTTP/1.1\r\nHost: t\r\nX-A: \xff\x00\r\n\r\n")
def test_any_bytes_get_a_4xx_or_a_real_answer_never_a_5xx(port: int, data: bytes) -> None:
    assert_no_5xx(exchange(port, data))
    still_serves(port)
