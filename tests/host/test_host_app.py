"""The host in-process: HostApp over a ComponentPool with real WAGI executors (no HTTP server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.host.conftest import make_host
from tests.waiting import await_until
from zerowatt.host.asgi import HostApp
from zerowatt.host.pool import ComponentPool
from zerowatt.host.settings import HostSettings
from zerowatt.wasm.model import App
from zerowatt.wasm.router import Router


@pytest.fixture
async def client(apps: list[App], pool: ComponentPool) -> AsyncIterator[tuple[httpx.AsyncClient, HostApp, list[tuple]]]:
    seen: list[tuple] = []
    host = make_host(apps, pool, seen)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url="http://test") as c:
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
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url="http://test") as c:
            assert (await c.get("/hello")).status_code == 200
            assert pool.loaded() == [("hello-app", "hello")]
            await await_until(lambda: not pool.loaded(), "the reaper unloads the idle component")
            assert (await c.get("/hello")).status_code == 200  # reloaded on demand
    finally:
        await host.shutdown()
    assert pool.loaded() == []
