"""Which executor runs a component: a small registry from :class:`ExecutorKind` to a factory.

The host never imports a concrete executor directly; the autoscaler and tests can register their own
factories. WAGI is in-process (:mod:`zerowatt.wasm.wagi.executor`); wasi:http components are served by
:mod:`zerowatt.wasm.wasihttp.executor` (a supervised ``wasmtime serve``), imported lazily so that a build
without it fails with a clear load-time error naming the component instead of at import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from zerowatt.errors import ValidationError
from zerowatt.units import Bytes, Seconds
from zerowatt.wasm.compile_cache import ModuleCache
from zerowatt.wasm.engine import Runtime
from zerowatt.wasm.executor import Executor
from zerowatt.wasm.model import App, Component, ExecutorKind, WagiOptions
from zerowatt.wasm.wagi.executor import Offload, WagiExecutor
from zerowatt.wasm.wagi.fairness import AppSlots
from zerowatt.wasm.wagi.stdio import InheritedStdout


@dataclass(slots=True)
class ExecutorContext:
    """What factories need from the host: the engine, the cache, the limits and the guest threads."""

    runtime: Runtime
    cache: ModuleCache
    request_timeout: Seconds
    memory_limit: Bytes
    idle_timeout: Seconds
    threads: ThreadPoolExecutor | None
    offload: Offload = Offload.HYBRID
    stdout: InheritedStdout | None = None  # set in worker processes: inline guests inherit fd 1
    slots: AppSlots | None = None  # the per-app cap on the guest threads (None: none)


ExecutorFactory = Callable[[App, Component, Mapping[str, WagiOptions], ExecutorContext], Executor]


def wagi_factory(app: App, component: Component, options: Mapping[str, WagiOptions], ctx: ExecutorContext) -> Executor:
    return WagiExecutor(
        app,
        component,
        runtime=ctx.runtime,
        cache=ctx.cache,
        request_timeout=ctx.request_timeout,
        memory_limit=ctx.memory_limit,
        options=options,
        threads=ctx.threads,
        offload=ctx.offload,
        stdout=ctx.stdout,
        slots=ctx.slots,
    )


def wasi_http_factory(
    app: App, component: Component, options: Mapping[str, WagiOptions], ctx: ExecutorContext
) -> Executor:
    del options
    try:
        module = importlib.import_module("zerowatt.wasm.wasihttp.executor")
    except ImportError:
        raise ValidationError(
            f"{app.manifest_path}: component.{component.id}",
            "is a wasi:http component, but this build has no wasi:http executor (zerowatt.wasm.wasihttp.executor)",
        ) from None
    executor: Executor = module.WasiHttpExecutor(
        app,
        component,
        request_timeout=ctx.request_timeout,
        memory_limit=ctx.memory_limit,
        idle_timeout=ctx.idle_timeout,
    )
    return executor


DEFAULT_FACTORIES: dict[ExecutorKind, ExecutorFactory] = {
    ExecutorKind.WAGI: wagi_factory,
    ExecutorKind.WASI_HTTP: wasi_http_factory,
}


def detect_kind(source: Path) -> ExecutorKind:
    """AUTO resolved from the file: a core module is WAGI, a component is wasi:http.

    The manifest loader normally resolves AUTO; this covers apps built by hand (tests, embedding).
    """
    head = source.read_bytes()[:8] if source.suffix != ".wat" else b""
    if head[:4] == b"\0asm":
        return ExecutorKind.WASI_HTTP if head[4:8] != b"\x01\0\0\0" else ExecutorKind.WAGI
    text = source.read_text(errors="replace").lstrip() if source.suffix == ".wat" else ""
    return ExecutorKind.WASI_HTTP if text.startswith("(component") else ExecutorKind.WAGI
