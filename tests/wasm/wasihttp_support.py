"""Helpers for the wasi:http executor tests: build App/Component objects for the WAT probe."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES
from zerowatt.wasm.executor import GuestRequest
from zerowatt.wasm.model import App, Component, Limits, Preopen
from zerowatt.wasm.wasihttp.executor import WasiHttpExecutor

PROBE = Path(__file__).parent / "components" / "probe.wat"
HELLO = EXAMPLES / "hello-wasi-http" / "hello.wat"


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process.

    A process reaped between ``open`` and ``read`` makes the read fail with ESRCH rather than ENOENT, so any
    OSError means "gone".
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def make_component(
    source: Path = PROBE,
    *,
    environment: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    files: tuple[Preopen, ...] = (),
    allowed_outbound_hosts: tuple[str, ...] = (),
    limits: Limits | None = None,
    component_id: str = "probe",
) -> tuple[App, Component]:
    component = Component(
        id=component_id,
        source=source,
        source_digest="sha256:" + hashlib.sha256(source.read_bytes()).hexdigest(),
        environment=dict(environment or {}),
        variables=dict(variables or {}),
        files=files,
        allowed_outbound_hosts=allowed_outbound_hosts,
        limits=limits or Limits(),
    )
    app = App(
        name="testapp", manifest_path=source.parent / "spin.toml", components={component_id: component}, triggers=()
    )
    return app, component


def request(
    path: str = "/",
    *,
    method: str = "GET",
    query: str = "",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    request_id: str = "req-1",
) -> GuestRequest:
    return GuestRequest(
        request_id=request_id,
        method=method,
        path=path,
        query=query,
        headers=(("host", "example.test"), *headers),
        body=body,
        matched_route="/...",
        path_info=path,
        host="example.test",
        port=3000,
    )


@asynccontextmanager
async def running(app: App, component: Component, **options: Any) -> AsyncIterator[WasiHttpExecutor]:
    """An executor that is always unloaded (its child stopped) when the test ends."""
    settings: dict[str, Any] = {"request_timeout": 10.0, "memory_limit": 128 << 20, "idle_timeout": 60.0}
    settings.update(options)
    executor = WasiHttpExecutor(app, component, **settings)
    try:
        yield executor
    finally:
        await executor.unload()
