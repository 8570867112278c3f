"""Which executor runs a component: a small registry from :class:`ExecutorKind` to a factory.

The host never imports a concrete executor directly; tests can register their own factories. Every
factory returns a :class:`~zerowatt.wasm.executor.Scalable`: the host's autoscaler needs nothing else.
WAGI is in-process (:mod:`zerowatt.wasm.wagi.executor`); wasi:http components are served by
:mod:`zerowatt.wasm.wasihttp.executor` (a supervised ``wasmtime serve``), imported lazily so that a build
without it fails with a clear load-time error naming the component instead of at import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from zerowatt.errors import ValidationError
from zerowatt.units import Bytes, Seconds
from zerowatt.wasm.compile_cache import ModuleCache
from zerowatt.wasm.engine import Runtime
from zerowatt.wasm.executor import Scalable
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


ExecutorFactory = Callable[[App, Component, Mapping[str, WagiOptions], ExecutorContext], Scalable]


def wagi_factory(app: App, component: Component, options: Mapping[str, WagiOptions], ctx: ExecutorContext) -> Scalable:
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
) -> Scalable:
    del options
    try:
        module = importlib.import_module("zerowatt.wasm.wasihttp.executor")
    except ImportError:
        raise ValidationError(
            f"{app.manifest_path}: component.{component.id}",
            "is a wasi:http component, but this build has no wasi:http executor (zerowatt.wasm.wasihttp.executor)",
        ) from None
    executor: Scalable = module.WasiHttpExecutor(
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
