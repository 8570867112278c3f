"""The native HTTP/1.1 front (zerowatt.host.http) in-process: a real listener on 127.0.0.1, raw sockets.

What the shared e2e server does not show: head and body limits, malformed input, batched observers and
the graceful shutdown (a request in flight is answered, new connections are refused).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from tests.host.conftest import make_host
from tests.waiting import await_until
from zerowatt.host.http import MAX_HEAD, HttpServer
from zerowatt.host.pool import ComponentPool
from zerowatt.wasm.model import App


@pytest.fixture
async def served(
    apps: list[App], pool: ComponentPool
) -> AsyncIterator[tuple[HttpServer, int, list[tuple[object, ...]]]]:
    seen: list[tuple[object, ...]] = []
    host = make_host(apps, pool, seen, batch_observers=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await host.startup()
    server = HttpServer(host, max_body=1024)
    await server.start([sock])
    try:
        yield server, sock.getsockname()[1], seen
    finally:
        await server.shutdown(timeout=2.0)
        await host.shutdown()


async def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return reply


async def test_keep_alive_and_batched_observers(served: tuple[HttpServer, int, list[tuple[object, ...]]]) -> None:
    _server, port, seen = served
    get = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
    reply = await exchange(port, get * 2 + b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 2 and reply.count(b"\r\n\r\nhello") == 2
    assert b"HTTP/1.1 404" in reply and b"connection: close" in reply
    assert b"content-length: " in reply and b"date: " in reply
    await await_until(lambda: len(seen) >= 2, "the batched observers run once the loop has gone round")
    assert [s[:3] for s in seen] == [("hello-app", "hello", 200)] * 2


async def test_a_client_that_half_closes_still_gets_its_answers(
    served: tuple[HttpServer, int, list[tuple[object, ...]]],
) -> None:
    _server, port, _seen = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n" * 2)
    writer.write_eof()
    reply = await asyncio.wait_for(reader.read(), 10)
    assert reply.count(b"HTTP/1.1 200 OK") == 2
    writer.close()


async def test_limits_and_malformed_requests(served: tuple[HttpServer, int, list[tuple[object, ...]]]) -> None:
    _server, port, _seen = served
    big_head = b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * MAX_HEAD + b"\r\n\r\n"
    assert (await exchange(port, big_head)).startswith(b"HTTP/1.1 431")
    announced = b"POST /probe/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n"
    assert (await exchange(port, announced)).startswith(b"HTTP/1.1 413")  # answered before any body
    chunked = b"POST /probe/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"800\r\n" + b"x" * 2048 + b"\r\n0\r\n\r\n"
    assert (await exchange(port, chunked)).startswith(b"HTTP/1.1 413")
    assert (await exchange(port, b"NOT HTTP AT ALL\r\n\r\n")).startswith(b"HTTP/1.1 400")
    upgrade = b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    upgraded = await exchange(port, upgrade + b"\x00\x01 not http")
    assert upgraded.startswith(b"HTTP/1.1 200") and upgraded.count(b"HTTP/1.1") == 1  # Upgrade ignored, then closed
    ok = await exchange(port, b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")  # none of that hurt the server


async def test_graceful_shutdown_answers_the_request_in_flight(
    served: tuple[HttpServer, int, list[tuple[object, ...]]],
) -> None:
    server, port, _seen = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /probe/loop HTTP/1.1\r\nHost: t\r\n\r\n")  # runs on the pool until its 2 s deadline
    await writer.drain()
    await await_until(lambda: any(c.busy for c in server.connections), "the looping request in flight")
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    await await_until(lambda: len(server.connections) == 2, "the idle connection accepted")
    shutdown = asyncio.create_task(server.shutdown(timeout=5.0))
    reply = await asyncio.wait_for(reader.read(), 10)
    assert reply.startswith(b"HTTP/1.1 504") and b"connection: close" in reply
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""  # the idle connection was closed
    await shutdown
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    idle_writer.close()


def _read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    reply = b""
    while chunk := sock.recv(65536):  # a reset raises ConnectionResetError
        reply += chunk
    sock.close()
    return reply


async def test_shutdown_answers_the_connections_waiting_in_the_accept_queue(
    served: tuple[HttpServer, int, list[tuple[object, ...]]],
) -> None:
    server, port, _seen = served
    clients = []
    for _ in range(3):  # blocking calls: the loop cannot accept meanwhile, the kernel queues them
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        clients.append(sock)
    shutdown = asyncio.create_task(server.shutdown(timeout=5.0))
    replies = await asyncio.gather(*(asyncio.to_thread(_read_until_closed, sock) for sock in clients))
    assert await shutdown  # everything in flight finished
    for reply in replies:  # answered (not reset by the listener's close), and told the connection ends
        assert (
            reply.startswith(b"HTTP/1.1 200 OK")
            and b"connection: close" in reply
            and reply.endswith(b"\r\n\r\nhello\n")
        )
