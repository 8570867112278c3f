"""The host in-process: HostApp over a ComponentPool with real WAGI executors (no HTTP server)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest

from tests.host.conftest import make_host
from tests.waiting import await_until
from tests.wasm.wasihttp_support import PROBE as PROBE_COMPONENT
from zerowatt.host.app import HostApp
from zerowatt.host.asgi import AsgiApp
from zerowatt.host.pool import ComponentPool, executor_kinds
from zerowatt.host.settings import HostSettings
from zerowatt.wasm.model import App, ExecutorKind
from zerowatt.wasm.modules import ModuleError, executor_kind
from zerowatt.wasm.router import Router


@pytest.fixture
async def client(apps: list[App], pool: ComponentPool) -> AsyncIterator[tuple[httpx.AsyncClient, HostApp, list[tuple]]]:
    seen: list[tuple] = []
    host = make_host(apps, pool, seen)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=AsgiApp(host)), base_url="http://test") as c:
        yield c, host, seen


async def test_serves_routes_and_reports_every_request_to_observers(client: tuple) -> None:
    c, _host, seen = client
    assert (await c.get("/hello")).status_code == 200
    assert (await c.get("/probe/status")).status_code == 418
    trap = await c.get("/probe/trap")
    assert trap.status_code == 500 and trap.headers["x-error-id"] in trap.text
    assert (await c.get("/nowhere")).status_code == 404  # unrouted: no observer call
    assert [(a, comp, status) for a, comp, status, _d, _cpu in seen] == [
        ("hello-app", "hello", 200),
        ("probe-app", "probe", 418),
        ("probe-app", "probe", 500),
    ]
    assert all(duration > 0 and cpu >= 0 for *_, duration, cpu in seen)


async def test_host_owns_framing_and_hop_by_hop_headers(client: tuple) -> None:
    c, _host, _seen = client
    r = await c.get("/probe/hop")
    assert r.status_code == 200 and r.content == b"body"
    assert r.headers["content-length"] == "4"
    assert "transfer-encoding" not in r.headers and "connection" not in r.headers
    assert r.headers.raw[[k for k, _ in r.headers.raw].index(b"x-utf8")][1] == "héllo".encode()


async def test_body_limit_is_413_announced_or_not(client: tuple) -> None:
    c, _host, _seen = client
    assert (await c.post("/probe/echo", content=b"x" * 1024)).content == b"x" * 1024
    assert (await c.post("/probe/echo", content=b"x" * 1025)).status_code == 413

    async def stream() -> AsyncIterator[bytes]:  # no Content-Length: the limit is applied while reading
        for _ in range(4):
            yield b"y" * 400

    assert (await c.post("/probe/echo", content=stream())).status_code == 413


async def test_a_failing_observer_does_not_fail_the_request(client: tuple) -> None:
    c, host, _seen = client

    def broken(*args: object) -> None:
        raise RuntimeError("observer bug")

    host.observers.append(broken)
    assert (await c.get("/hello")).status_code == 200


async def test_pool_idle_decisions_take_the_time_as_an_argument(client: tuple, pool: ComponentPool) -> None:
    c, _host, _seen = client
    await c.get("/hello")
    slot = pool.slot("hello-app", "hello")
    assert pool.loaded() == [("hello-app", "hello")]
    now = slot.last_used
    assert pool.idle(now + 0.5, idle_after=1.0) == []
    assert pool.next_expiry(1.0) == pytest.approx(now + 1.0)
    assert await pool.unload_idle(now + 1.0, idle_after=1.0) == [("hello-app", "hello")]
    assert pool.loaded() == [] and pool.next_expiry(1.0) is None
    again = await c.get("/hello")
    assert again.status_code == 200 and slot.cold_starts == 2


async def test_reaper_unloads_idle_components(apps: list[App], pool: ComponentPool) -> None:
    host = HostApp(Router(apps).match, pool, HostSettings(idle_unload=0.2))
    await host.startup()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=AsgiApp(host)), base_url="http://test") as c:
            assert (await c.get("/hello")).status_code == 200
            assert pool.loaded() == [("hello-app", "hello")]
            await await_until(lambda: not pool.loaded(), "the reaper unloads the idle component")
            assert (await c.get("/hello")).status_code == 200  # reloaded on demand
    finally:
        await host.shutdown()
    assert pool.loaded() == []


async def test_cold_starts_are_counted_once_and_in_flight_goes_back_to_zero(client: tuple, pool: ComponentPool) -> None:
    """One path whether or not ``--policy`` is given: the component's scaler admits every request, counts
    its cold start (slot, scaler and metric agree) and owns ``in_flight``, errors included."""
    c, host, _seen = client
    for path in ("/hello", "/hello", "/probe/trap", "/probe/status", "/probe/trap"):
        await c.get(path)
    hello, probe = pool.slot("hello-app", "hello"), pool.slot("probe-app", "probe")
    assert (hello.cold_starts, probe.cold_starts) == (1, 1)  # a guest that fails after loading: still cold
    assert (hello.in_flight, probe.in_flight) == (0, 0)
    scaler = host.autoscaler.scalers[("probe-app", "probe")]
    assert scaler.autoscaler.name == "keepalive" and scaler.stats.cold_starts == 1 and scaler.stats.requests == 3
    metrics = generate_latest(host.metrics.registry).decode()
    assert 'zerowatt_cold_starts_total{app="probe-app",component="probe"} 1.0' in metrics
    assert 'zerowatt_instance_starts_total{app="probe-app",component="probe"} 1.0' in metrics


def test_hand_built_apps_resolve_auto_with_the_loaders_detection(apps: list[App]) -> None:
    """An app built without the manifest loader may leave the executor AUTO: the pool resolves it with
    :func:`zerowatt.wasm.modules.executor_kind`, the loader's own decision (core module: WAGI)."""
    hello = apps[1]
    auto = dataclasses.replace(
        hello, triggers=tuple(dataclasses.replace(t, executor=ExecutorKind.AUTO) for t in hello.triggers)
    )
    assert executor_kinds(auto) == {"hello": ExecutorKind.WAGI}
    assert executor_kind(PROBE_COMPONENT) is ExecutorKind.WASI_HTTP


def test_executor_detection_refuses_what_is_not_webassembly(tmp_path: Path) -> None:
    odd = tmp_path / "odd.wasm"
    odd.write_bytes(b"\0asm\x01\x00\x02\x00")  # a layer that is neither a core module (0) nor a component (1)
    with pytest.raises(ModuleError, match="layer 2"):
        executor_kind(odd)
    short = tmp_path / "short.wasm"
    short.write_bytes(b"\0asm")
    with pytest.raises(ModuleError, match="truncated"):
        executor_kind(short)
