"""Fixtures of the in-process host tests: two real guests and a component pool (the runtime is tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.host.guestbuild import GUESTS, app, build_c, component
from zerowatt.host.app import HostApp
from zerowatt.host.metrics import HostMetrics
from zerowatt.host.pool import ComponentPool
from zerowatt.host.registry import ExecutorContext
from zerowatt.host.settings import HostSettings
from zerowatt.wasm.compile_cache import ModuleCache
from zerowatt.wasm.engine import Runtime
from zerowatt.wasm.model import App
from zerowatt.wasm.router import Router


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> list[App]:
    probe = build_c("probe", tmp_path_factory.mktemp("guests"))
    return [
        app([component(probe)], {"/probe/...": "probe"}, name="probe-app"),
        app([component(GUESTS / "hello.wat", "hello")], {"/hello": "hello"}, name="hello-app"),
    ]


@pytest.fixture
def pool(apps: list[App], runtime: Runtime, tmp_path: Path) -> Iterator[ComponentPool]:
    threads = ThreadPoolExecutor(2)
    ctx = ExecutorContext(
        runtime=runtime,
        cache=ModuleCache(runtime.engine, runtime.settings.fingerprint(), tmp_path / "cache"),
        request_timeout=2.0,
        memory_limit=32 << 20,
        idle_timeout=60.0,
        threads=threads,
    )
    yield ComponentPool(apps, ctx)
    threads.shutdown(wait=False, cancel_futures=True)


def make_host(
    apps: list[App], pool: ComponentPool, seen: list[tuple[object, ...]], *, batch_observers: bool = False
) -> HostApp:
    """A HostApp over ``pool`` (1 KiB body limit, no idle unloading) that records each observed request in ``seen``."""
    return HostApp(
        Router(apps).match,
        pool,
        HostSettings(max_body=1024, idle_unload=None),
        HostMetrics(),
        observers=[lambda *args: seen.append(args)],
        batch_observers=batch_observers,
    )
