"""A client that disconnects from a spinning guest (issue 10): the guest is stopped, counted and logged.

A real listener on 127.0.0.1 (the native HTTP front), a real client socket, the probe guest's ``/loop``
with a 60 s deadline: the abort must come long before it. Both WAGI paths (native and ctypes).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.host.conftest import make_host
from zerowatt.host.app import HostApp
from zerowatt.host.http import HttpServer
from zerowatt.host.pool import ComponentPool
from zerowatt.host.registry import ExecutorContext
from zerowatt.wasm import native
from zerowatt.wasm.compile_cache import ModuleCache
from zerowatt.wasm.engine import Runtime
from zerowatt.wasm.model import App
from zerowatt.wasm.wagi.fairness import AppSlots

DEADLINE = 60.0


@pytest.fixture(params=["native", "ctypes"])
async def served(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    apps: list[App],
    runtime: Runtime,
    tmp_path: Path,
) -> AsyncIterator[tuple[HostApp, AppSlots, int, list[tuple[object, ...]]]]:
    monkeypatch.setenv(native.BACKEND_ENV, request.param)
    threads = ThreadPoolExecutor(4)
    slots = AppSlots(2)
    ctx = ExecutorContext(
        runtime=runtime,
        cache=ModuleCache(runtime.engine, runtime.settings.fingerprint(), tmp_path / "cache"),
        request_timeout=DEADLINE,
        memory_limit=32 << 20,
        idle_timeout=60.0,
        threads=threads,
        slots=slots,
    )
    seen: list[tuple[object, ...]] = []
    host = make_host(apps, ComponentPool(apps, ctx), seen)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await host.startup()
    server = HttpServer(host, max_body=1024)
    await server.start([sock])
    try:
        yield host, slots, sock.getsockname()[1], seen
    finally:
        await server.shutdown(timeout=2.0)
        await host.shutdown()
        threads.shutdown(wait=False, cancel_futures=True)


def aborted(host: HostApp) -> float:
    assert host.metrics is not None
    value = host.metrics.registry.get_sample_value(
        "zerowatt_requests_aborted_total", {"app": "probe-app", "component": "probe"}
    )
    return value or 0.0


async def wait_for(condition: object, timeout: float = 30.0) -> bool:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_client_that_leaves_a_spinning_guest_stops_it(
    served: tuple[HostApp, AppSlots, int, list[tuple[object, ...]]],
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    host, slots, port, seen = served
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"GET /probe/loop HTTP/1.1\r\nHost: t\r\n\r\n")
    # The guest outlives the inline budget and spins on the guest pool.
    assert await wait_for(lambda: slots.held("probe-app") == 1)
    if how == "reset":  # an RST instead of a FIN
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    # Counted once the guest has stopped; long before its deadline.
    assert await wait_for(lambda: aborted(host) == 1)
    assert slots.held("probe-app") == 0  # its pool thread is free again
    assert time.monotonic() - started < DEADLINE / 2
    assert [s[:3] for s in seen] == [("probe-app", "probe", 499)]
    lines = [r.getMessage() for r in caplog.records if "GuestAborted" in r.getMessage()]
    assert len(lines) == 1 and "error " in lines[0] and "client went away" in lines[0]
    # The server still serves.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 30)).startswith(b"HTTP/1.1 200")
    writer.close()
