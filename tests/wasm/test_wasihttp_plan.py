"""Pure parts of the wasi:http executor: the command line, request encoding, CPU attribution."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from tests.wasm.wasihttp_support import request
from zerowatt.wasm.wasihttp.client import UpstreamError, UpstreamPool
from zerowatt.wasm.wasihttp.plan import (
    CpuLedger,
    ServePlan,
    child_environment,
    encode_request,
    outbound_violation,
    ready_port,
    response_headers,
    serve_argv,
    world_imports,
)


def _plan(**changes: object) -> ServePlan:
    base: dict[str, object] = {
        "binary": "/opt/wasmtime",
        "source": Path("/apps/hello.wasm"),
        "request_timeout": 2.0,
        "memory_limit": 64 << 20,
    }
    base.update(changes)
    return ServePlan(**base)  # type: ignore[arg-type]


def test_serve_argv_maps_every_limit_to_a_wasmtime_option() -> None:
    argv = serve_argv(
        _plan(
            environment=(("A", "1"), ("B", "x=y"), ("LD_PRELOAD", "evil.so")),
            preopens=((Path("/snap/0"), "/assets"),),
            pooling_allocator=True,
        )
    )
    assert argv[:4] == ["/opt/wasmtime", "serve", "--addr", "127.0.0.1:0"]
    assert argv[-1] == "/apps/hello.wasm"
    pairs = list(itertools.pairwise(argv))
    assert ("-W", "timeout=2500ms") in pairs  # the proxy deadline plus the margin
    assert ("-W", f"max-memory-size={64 << 20}") in pairs
    assert ("-S", "cli=y") in pairs and ("-S", "inherit-env=n") in pairs
    assert ("-S", "allow-ip-name-lookup=n") in pairs
    assert ("-O", "pooling-allocator=y") in pairs
    # values go through the child's environment, never the command line (secrets stay out of ps) ...
    assert ("--env", "A") in pairs and ("--env", "B") in pairs and "x=y" not in " ".join(argv)
    # ... except names that would steer the wasmtime process itself, which must not be in its environment
    assert ("--env", "LD_PRELOAD=evil.so") in pairs
    assert child_environment((("A", "1"), ("B", "x=y"), ("LD_PRELOAD", "evil.so"))) == {"A": "1", "B": "x=y"}
    assert ("--dir", "/snap/0::/assets") in pairs
    assert "inherit-network" not in " ".join(argv)


def test_outbound_http_enables_name_lookup_only_when_allowed() -> None:
    assert "allow-ip-name-lookup=y" in serve_argv(_plan(outbound_http=True))
    assert "-O" not in serve_argv(_plan())


def test_ready_port_reads_wasmtimes_serving_line() -> None:
    assert ready_port("Serving HTTP on http://127.0.0.1:41039/") == 41039
    assert ready_port("stderr [0] :: Serving HTTP on nothing") is None
    assert ready_port("") is None


def test_outbound_violation_only_for_undeclared_outgoing_handler() -> None:
    imports = ["wasi:http/types@0.2.0", "wasi:http/outgoing-handler@0.2.3"]
    message = outbound_violation(imports, ())
    assert message is not None and "wasi:http/outgoing-handler@0.2.3" in message
    assert outbound_violation(imports, ("https://api.example.com",)) is None
    assert outbound_violation(["wasi:http/types@0.2.0"], ()) is None


def test_encode_request_keeps_end_to_end_headers_and_reframes_the_body() -> None:
    raw = encode_request(
        request(
            "/api/x",
            method="POST",
            query="q=1",
            headers=(
                ("transfer-encoding", "chunked"),
                ("connection", "close"),
                ("expect", "100-continue"),
                ("x-a", "b"),
                ("spin-path-info", "/evil"),
            ),
            body=b"hello",
        ),
        "127.0.0.1:9",
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/x?q=1 HTTP/1.1"
    assert "host: example.test" in lines and "x-a: b" in lines
    assert "content-length: 5" in lines
    assert not any(line.startswith(("transfer-encoding", "connection", "expect")) for line in lines)
    assert "spin-path-info: /api/x" in lines and "spin-path-info: /evil" not in lines
    assert body == b"hello"


def test_response_headers_drop_framing_hop_by_hop_and_front_server_headers() -> None:
    kept = response_headers(
        [("content-type", "a"), ("transfer-encoding", "chunked"), ("content-length", "3"), ("date", "x"), ("x", "y")]
    )
    assert kept == [("content-type", "a"), ("x", "y")]


def test_cpu_ledger_splits_concurrent_cpu_evenly() -> None:
    ledger = CpuLedger()
    ledger.begin("a", 0.0)
    ledger.begin("b", 0.010)  # 10 ms with only a in flight
    assert ledger.end("a", 0.030) == pytest.approx(0.010 + 0.010)  # 20 ms shared by a and b
    ledger.begin("c", 0.030)
    assert ledger.end("b", 0.050) == pytest.approx(0.010 + 0.010)
    assert ledger.end("c", 0.060) == pytest.approx(0.010 + 0.010)
    assert ledger.inflight == 0 and ledger.unattributed == 0
    ledger.begin("d", 0.100)  # 40 ms of idle housekeeping
    assert ledger.unattributed == pytest.approx(0.040)
    ledger.reset(0.0)  # a restarted process counts from zero again
    assert ledger.end("d", 0.005) == pytest.approx(0.005)


async def _serve_raw(responses: list[bytes]) -> tuple[asyncio.Server, list[bytes]]:
    """A loopback server that answers each request with the next canned response (then closes)."""
    seen: list[bytes] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while responses:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head)
            writer.write(responses.pop(0))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    return server, seen


async def test_pool_reads_chunked_and_sized_bodies_over_one_connection() -> None:
    server, seen = await _serve_raw(
        [
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\nabc",
        ]
    )
    pool = UpstreamPool("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        first = await pool.request(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        assert (first.status, first.body) == (200, b"hello world")
        assert ("content-type", "text/plain") in first.headers
        second = await pool.request(b"GET /2 HTTP/1.1\r\nhost: x\r\n\r\n")
        assert (second.status, second.body) == (201, b"abc")
        assert len(seen) == 2  # both went over the same kept-alive connection
    finally:
        pool.close()
        server.close()


async def test_pool_rejects_garbage_and_truncated_answers() -> None:
    server, _ = await _serve_raw([b"SSH-2.0-nope\r\n\r\n"])
    pool = UpstreamPool("127.0.0.1", server.sockets[0].getsockname()[1])
    with pytest.raises(UpstreamError, match=r"not an HTTP/1\.x status line"):
        await pool.request(b"GET / HTTP/1.1\r\n\r\n")
    server.close()
    server, _ = await _serve_raw([b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"])
    pool = UpstreamPool("127.0.0.1", server.sockets[0].getsockname()[1])
    with pytest.raises(UpstreamError, match="in the middle of a response"):
        await pool.request(b"GET / HTTP/1.1\r\n\r\n")
    pool.close()
    server.close()


def test_world_imports_reads_only_the_components_world() -> None:
    wit = (
        "package root:component;\n\nworld root {\n  import wasi:io/error@0.2.0;\n"
        "  import wasi:http/outgoing-handler@0.2.0;\n\n  export wasi:http/incoming-handler@0.2.0;\n}\n"
        "package wasi:http@0.2.0 {\n  world proxy {\n    import wasi:cli/stdout@0.2.0;\n  }\n}\n"
    )
    assert world_imports(wit) == ("wasi:io/error@0.2.0", "wasi:http/outgoing-handler@0.2.0")


async def test_pool_retries_once_when_a_kept_alive_connection_was_closed() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    connections = 0

    async def one_answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)  # keep-alive promised, but the server closes after one answer
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(one_answer_then_close, "127.0.0.1", 0)
    pool = UpstreamPool("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        for _ in range(3):
            assert (await pool.request(b"GET / HTTP/1.1\r\n\r\n")).body == b"ok"
        assert connections == 3
    finally:
        pool.close()
        server.close()


async def test_pool_reports_refused_when_nothing_listens() -> None:
    from tests.conftest import free_port
    from zerowatt.wasm.wasihttp.client import UpstreamRefused

    pool = UpstreamPool("127.0.0.1", free_port())
    with pytest.raises(UpstreamRefused):
        await pool.request(b"GET / HTTP/1.1\r\n\r\n")
