"""Slow and malformed clients against the native HTTP/1.1 front: real sockets, a real server, real guests.

Deadlines here are short (a 0.5 s head timeout) so that the server acts quickly; every wait on the client
side has a generous upper bound (30 s) and no test asserts how long anything took: a slow machine only
makes them slower, never wrong. Without the deadlines the trickling clients would be served until the
bound and the tests fail.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.host.conftest import make_host
from tests.host.guestbuild import component
from tests.wasm.wasihttp_support import PROBE
from zerowatt.host.asgi import AsgiApp
from zerowatt.host.http import HttpServer
from zerowatt.host.pool import ComponentPool
from zerowatt.host.registry import ExecutorContext
from zerowatt.wasm.compile_cache import ModuleCache
from zerowatt.wasm.engine import Runtime
from zerowatt.wasm.model import App, ExecutorKind, HttpTrigger, Route

pytestmark = pytest.mark.timeout(120)

HEAD_TIMEOUT = 0.5
MIN_BODY_RATE = 1000.0  # bytes/s; the trickles below send ~20 bytes/s
BOUND = 30.0  # the longest any client here waits for the server to act


@pytest.fixture
async def port(apps: list[App], pool: ComponentPool) -> AsyncIterator[int]:
    host = make_host(apps, pool, [])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await host.startup()
    server = HttpServer(host, max_body=1024, keep_alive=60.0, head_timeout=HEAD_TIMEOUT, min_body_rate=MIN_BODY_RATE)
    await server.start([sock])
    try:
        yield sock.getsockname()[1]
    finally:
        await server.shutdown(timeout=2.0)
        await host.shutdown()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One response framed by Content-Length: (head, body)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await asyncio.wait_for(reader.readexactly(length), BOUND)


async def trickle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, drip: bytes, every: float = 0.05
) -> tuple[bytes, bool, int]:
    """Send ``drip`` one byte at a time, ``every`` seconds, until the server answers and closes (or BOUND).

    Returns (what the server sent, whether it closed the connection, bytes dripped).
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + BOUND
    reply = b""
    sent = 0
    try:
        while loop.time() < end:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), every)
            except TimeoutError:
                assert sent < len(drip), "the drip ran out before the server acted"
                writer.write(drip[sent : sent + 1])
                await writer.drain()
                sent += 1
                continue
            if not chunk:
                return reply, True, sent
            reply += chunk
    except ConnectionResetError:
        return reply, True, sent
    return reply, False, sent


async def test_a_trickled_head_is_answered_408_while_the_client_is_still_sending(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /hello HTTP/1.1\r\nHost: t\r\n")
    # one header byte every 50 ms: each byte would have reset the old inactivity timer
    reply, closed, sent = await trickle(reader, writer, b"X-Slow: " + b"a" * 10_000)
    writer.close()
    assert closed, f"still open after {BOUND} s of trickling ({sent} bytes)"
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), reply[:200]
    assert b"connection: close" in reply and b"request head" in reply


async def test_the_next_head_on_a_keep_alive_connection_has_a_deadline_too(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
    head, body = await read_response(reader)
    assert head.startswith(b"HTTP/1.1 200") and body
    writer.write(b"GET /hello HTTP/1.1\r\n")
    reply, closed, _ = await trickle(reader, writer, b"Host: " + b"t" * 10_000)
    writer.close()
    assert closed and reply.startswith(b"HTTP/1.1 408"), reply[:200]


async def test_a_trickled_body_is_answered_408(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /probe/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nfirst bytes ")
    reply, closed, sent = await trickle(reader, writer, b"b" * 980)
    writer.close()
    assert closed, f"still open after {BOUND} s of trickling ({sent} bytes)"
    assert reply.startswith(b"HTTP/1.1 408") and b"request body" in reply, reply[:200]


async def test_a_prompt_client_is_not_cut_by_the_deadlines(port: int) -> None:
    """Heads in pieces, a body in pieces and an idle pause longer than the head timeout: all answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for piece in (b"POST /probe/echo HTTP/1.1\r\n", b"Host: t\r\nContent-Length: 10\r\n", b"\r\n", b"01234", b"56789"):
        writer.write(piece)
        await writer.drain()
    head, body = await read_response(reader)
    assert head.startswith(b"HTTP/1.1 200") and body == b"0123456789"
    await asyncio.sleep(HEAD_TIMEOUT * 3)  # idle between requests: bounded by keep-alive (60 s), not the head
    writer.write(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
    head, body = await read_response(reader)
    assert head.startswith(b"HTTP/1.1 200"), head
    writer.close()


async def test_an_announced_body_over_max_body_is_answered_413_before_any_of_it_arrives(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /probe/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2147483648\r\n\r\n")  # 2 GiB, never sent
    await writer.drain()
    head, body = await read_response(reader)
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head, head
    assert body == b"request body too large\n"
    assert await asyncio.wait_for(reader.read(), BOUND) == b""  # then the server ends the connection
    writer.close()


async def test_a_body_over_max_body_sent_in_full_still_gets_its_413(port: int) -> None:
    """The staged close: the server answers while the body is still coming and drops the rest unread."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /probe/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 262144\r\n\r\n" + b"x" * 262144)
    head, _ = await read_response(reader)
    assert head.startswith(b"HTTP/1.1 413"), head
    writer.close()


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), BOUND)
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /hello HTTP/1.1\r\n\r\n", b"400"),  # HTTP/1.1 without Host
        (b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),  # two Hosts
        (b"GET /hello\r\n\r\n", b"400"),  # HTTP/0.9 request line, no version
        (b"GET /hello\r\n", b"400"),  # the same, as an HTTP/0.9 client sends it (no empty line), then waits
        (b"GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", b"505"),
        (b"GET /hello HTTP/1.0\r\n\r\n", b"200"),  # HTTP/1.0 needs no Host
    ],
)
async def test_host_and_version_rules(port: int, request_bytes: bytes, status: bytes) -> None:
    reply = await exchange(port, request_bytes)
    assert reply.startswith(b"HTTP/1.1 " + status + b" "), reply[:200]
    if status == b"400":
        assert b"Host" in reply or b"no HTTP version" in reply


async def keep_alive(port: int, requests: list[tuple[str, str]]) -> list[tuple[int, dict[str, str], bytes]]:
    """Requests one after the other on one keep-alive connection, each answer read as RFC 9112 6.3 says.

    A response to HEAD, and any 1xx, 204 or 304 response, ends with its head; others have Content-Length
    bytes. Whatever a server sends beyond that would be read as the start of the next response, so a
    desynchronised connection fails here (the next "response" does not start with a status line).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        for method, path in requests:
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)).decode("latin-1")
            assert head.startswith("HTTP/1.1 "), f"not a status line: {head[:80]!r}"
            status = int(head.split(" ", 2)[1])
            headers = dict(line.lower().split(": ", 1) for line in head.split("\r\n")[1:] if line)
            no_content = method == "HEAD" or status < 200 or status in (204, 304)
            length = 0 if no_content else int(headers["content-length"])
            body = await asyncio.wait_for(reader.readexactly(length), BOUND)
            assert headers.get("connection") != "close", "the server closed the connection"
            out.append((status, headers, body))
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), BOUND) == b"", "bytes after the last response"
    finally:
        writer.close()
    return out


@pytest.mark.parametrize("status", [204, 304])
async def test_no_content_answers_carry_no_body_and_keep_the_connection_in_step(port: int, status: int) -> None:
    answers = await keep_alive(port, [("GET", f"/probe/answer?{status}"), ("GET", "/hello"), ("GET", "/hello")])
    assert [a[0] for a in answers] == [status, 200, 200]
    (_, headers, body), (_, _, hello), _ = answers
    assert body == b"" and "content-length" not in headers and "transfer-encoding" not in headers
    assert hello == b"hello\n"


async def test_head_answers_carry_the_length_but_no_body(port: int) -> None:
    requests = [("HEAD", "/hello"), ("GET", "/hello"), ("HEAD", "/probe/answer?200"), ("HEAD", "/nope"), ("GET", "/")]
    answers = await keep_alive(port, requests)
    assert [a[0] for a in answers] == [200, 200, 200, 404, 404]
    (_, headers, _), (_, _, hello), (_, probe_headers, _), *_ = answers
    assert hello == b"hello\n" and headers["content-length"] == str(len(hello))
    assert probe_headers["content-length"] == "27"  # what a GET would carry


@pytest.mark.parametrize("status", [101, 103, 100])
async def test_an_interim_status_from_a_wagi_guest_is_refused_with_a_logged_error_id(
    port: int, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    answers = await keep_alive(port, [("GET", f"/probe/answer?{status}"), ("GET", "/hello")])
    (code, headers, body), (code2, _, _) = answers
    assert code == 500 and code2 == 200
    error_id = headers["x-error-id"]
    assert error_id.encode() in body
    assert any(error_id in r.getMessage() and "interim" in r.getMessage() for r in caplog.records)


#: Request fields after the request line and Host: the ones a guest must never see, and one it must.
HOP_BY_HOP_AND_HTTPOXY = (
    b"Proxy: http://attacker.example:8080\r\nProxy-Authorization: Basic c2VjcmV0\r\n"
    b"Connection: keep-alive, X-Nominated\r\nX-Nominated: 1\r\nKeep-Alive: timeout=5\r\n"
    b"TE: trailers\r\nTrailer: X-Late\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n"
    b"Connection: close\r\n\r\n"
)


async def test_hop_by_hop_and_httpoxy_headers_never_reach_a_wagi_guest(port: int) -> None:
    request = b"GET /probe/env HTTP/1.1\r\nHost: t\r\n" + HOP_BY_HOP_AND_HTTPOXY
    reply = await exchange(port, request)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    env = dict(line.split("=", 1) for line in reply.split(b"\r\n\r\n", 1)[1].decode().splitlines() if "=" in line)
    assert env["HTTP_X_KEPT"] == "yes" and env["HTTP_HOST"] == "t"  # the rest still gets through
    for dropped in (
        "HTTP_PROXY",
        "HTTP_PROXY_AUTHORIZATION",
        "HTTP_CONNECTION",
        "HTTP_X_NOMINATED",
        "HTTP_KEEP_ALIVE",
        "HTTP_TE",
        "HTTP_TRAILER",
        "HTTP_PROXY_CONNECTION",
    ):
        assert dropped not in env, dropped


@pytest.fixture
async def wasi_port(runtime: Runtime, tmp_path: Path) -> AsyncIterator[int]:
    """The native front over the wasi:http probe component (a real ``wasmtime serve`` child) at /echo."""
    probe = component(PROBE, "wprobe")
    trigger = HttpTrigger(route=Route("/echo"), component_id="wprobe", executor=ExecutorKind.WASI_HTTP)
    manifest = PROBE.parent / "spin.toml"
    apps = [App(name="wasi", manifest_path=manifest, components={"wprobe": probe}, triggers=(trigger,))]
    threads = ThreadPoolExecutor(1)
    ctx = ExecutorContext(
        runtime=runtime,
        cache=ModuleCache(runtime.engine, runtime.settings.fingerprint(), tmp_path / "cache"),
        request_timeout=10.0,
        memory_limit=64 << 20,
        idle_timeout=60.0,
        threads=threads,
    )
    host = make_host(apps, ComponentPool(apps, ctx), [])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await host.startup()
    server = HttpServer(host, max_body=1024, head_timeout=HEAD_TIMEOUT, min_body_rate=MIN_BODY_RATE)
    await server.start([sock])
    try:
        yield sock.getsockname()[1]
    finally:
        await server.shutdown(timeout=2.0)
        await host.shutdown()
        threads.shutdown(wait=False, cancel_futures=True)


async def test_wasi_http_interim_and_no_content_answers_keep_the_connection_in_step(
    wasi_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The probe answers the status of its ``x-status`` header with the request body echoed back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", wasi_port)
    answers = []
    try:
        for status in (101, 204, 304, 200):
            writer.write(
                f"POST /echo HTTP/1.1\r\nHost: t\r\nx-status: {status}\r\ncontent-length: 4\r\n\r\nbody".encode()
            )
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)).decode("latin-1")
            assert head.startswith("HTTP/1.1 "), f"not a status line: {head[:80]!r}"
            code = int(head.split(" ", 2)[1])
            headers = dict(line.lower().split(": ", 1) for line in head.split("\r\n")[1:] if line)
            length = 0 if code in (204, 304) else int(headers["content-length"])
            answers.append((code, headers, await asyncio.wait_for(reader.readexactly(length), BOUND)))
    finally:
        writer.close()
    assert [a[0] for a in answers] == [500, 204, 304, 200]
    error_id = answers[0][1]["x-error-id"]
    assert any(error_id in r.getMessage() and "interim status 101" in r.getMessage() for r in caplog.records)
    assert "content-length" not in answers[1][1] and "content-length" not in answers[2][1]
    assert answers[3][2] == b"body"


async def test_hop_by_hop_and_httpoxy_headers_never_reach_a_wasi_http_guest(wasi_port: int) -> None:
    """The probe's /echo copies the request's headers into its response: what it got is what it shows."""
    request = b"GET /echo HTTP/1.1\r\nHost: t\r\n" + HOP_BY_HOP_AND_HTTPOXY
    reply = await exchange(wasi_port, request)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    names = {line.split(":", 1)[0].lower() for line in head.split("\r\n")[1:]}
    assert "x-kept" in names and "spin-full-url" in names  # the guest's echo came through
    dropped = {"proxy", "proxy-authorization", "x-nominated", "keep-alive", "te", "trailer", "proxy-connection"}
    assert not names & dropped, names & dropped


@pytest.fixture
async def uvicorn_port(apps: list[App], pool: ComponentPool) -> AsyncIterator[int]:
    """The same host behind ``--http uvicorn``'s server (uvicorn + httptools), in this event loop."""
    import uvicorn

    host = make_host(apps, pool, [])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await host.startup()
    server = uvicorn.Server(uvicorn.Config(AsgiApp(host), http="httptools", lifespan="off", access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(BOUND):
            while not server.started:
                await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await serving
        await host.shutdown()


@pytest.mark.parametrize("status", [204, 304])
async def test_uvicorn_front_sends_no_content_for_204_and_304(uvicorn_port: int, status: int) -> None:
    answers = await keep_alive(
        uvicorn_port, [("GET", f"/probe/answer?{status}"), ("HEAD", "/hello"), ("GET", "/probe/answer?101")]
    )
    assert [a[0] for a in answers] == [status, 200, 500]
    assert "content-length" not in answers[0][1] and "transfer-encoding" not in answers[0][1]
