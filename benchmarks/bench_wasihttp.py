"""Baseline numbers for wasi:http components: ``wasmtime serve`` alone, and through zerowatt's executor.

``python -m benchmarks wasihttp [--seconds 5] [--connections 32] [--starts 15]``

1. process start → first response of ``wasmtime serve`` with the hello component (.wasm and .wat);
2. throughput of ``wasmtime serve`` on one core (server pinned to CPU 0, ``wrk -t1`` on CPU 1), with
   and without ``-O pooling-allocator=y`` — the reference the app host's throughput is compared to;
3. the same load through :class:`WasiHttpExecutor` behind a minimal asyncio HTTP server (server and
   its wasmtime child both on CPU 0), as a ratio to (2) measured in the same run;
4. the proxy client's cost per request, sequentially, against httpx.AsyncClient on the same child.

The machine is shared and noisy: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.machine import describe

ROOT = Path(__file__).resolve().parent.parent
HELLO_WAT = ROOT / "examples" / "hello-wasi-http" / "hello.wat"
sys.path.insert(0, str(ROOT / "src"))

from zerowatt.wasm.executor import GuestRequest  # noqa: E402
from zerowatt.wasm.model import App, Component  # noqa: E402
from zerowatt.wasm.wasihttp.client import UpstreamPool  # noqa: E402
from zerowatt.wasm.wasihttp.executor import WasiHttpExecutor, find_wasmtime  # noqa: E402
from zerowatt.wasm.wasihttp.plan import ready_port  # noqa: E402

_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_LAT = re.compile(r"Latency\s+([\d.]+)(us|ms|s)")


def _start_serve(wasmtime: str, source: Path, extra: list[str], cpus: str | None) -> tuple[subprocess.Popen[str], int]:
    argv = [wasmtime, "serve", "--addr", "127.0.0.1:0", *extra, str(source)]
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        port = ready_port(line)
        if port is not None:
            # keep draining stderr so the child never blocks on a full pipe
            _drain(proc)
            return proc, port
    raise RuntimeError(f"wasmtime serve exited with {proc.wait()}")


def _drain(proc: subprocess.Popen[str]) -> None:
    """Keep reading the child's stderr in a thread so it never blocks on a full pipe."""

    def drain() -> None:
        assert proc.stderr is not None
        for _ in proc.stderr:
            pass

    threading.Thread(target=drain, daemon=True).start()


def _get(port: int, path: str = "/hello-http") -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def start_to_first_response(wasmtime: str, source: Path, runs: int) -> list[float]:
    """Wall time from spawning ``wasmtime serve`` to the end of the first response."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc, port = _start_serve(wasmtime, source, [], None)
        answer = _get(port)
        times.append(time.perf_counter() - started)
        proc.terminate()
        proc.wait()
        assert b"Hello from wasi:http" in answer, answer[:200]
    return times


def wrk(port: int, seconds: float, connections: int) -> tuple[float, str]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            f"http://127.0.0.1:{port}/hello-http",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = _WRK_RPS.search(out)
    lat = _WRK_LAT.search(out)
    if rps is None:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    return float(rps.group(1)), (lat.group(1) + lat.group(2)) if lat else "?"


def direct_throughput(
    wasmtime: str, source: Path, pooling: bool, seconds: float, connections: int
) -> tuple[float, str]:
    proc, port = _start_serve(wasmtime, source, ["-O", "pooling-allocator=y"] if pooling else [], "0")
    try:
        _get(port)
        return wrk(port, seconds, connections)
    finally:
        proc.terminate()
        proc.wait()


# -- the executor behind a minimal asyncio HTTP/1.1 server -------------------------------------------

_PROXY_SERVER = r"""
import asyncio, hashlib, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from zerowatt.wasm.executor import GuestError, GuestRequest
from zerowatt.wasm.model import App, Component
from zerowatt.wasm.wasihttp.executor import WasiHttpExecutor

source = Path(sys.argv[2])
pooling = sys.argv[3] == "1"
digest = "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()
component = Component(id="hello", source=source, source_digest=digest)
app = App(name="bench", manifest_path=source.parent / "spin.toml", components={"hello": component}, triggers=())

async def main() -> None:
    executor = WasiHttpExecutor(app, component, request_timeout=30, memory_limit=128 << 20, idle_timeout=600,
                                pooling_allocator=pooling)
    counter = 0

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal counter
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = []
                length = 0
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        name = name.strip().lower()
                        value = value.strip()
                        headers.append((name, value))
                        if name == "content-length":
                            length = int(value)
                body = await reader.readexactly(length) if length else b""
                path, _, query = target.partition("?")
                counter += 1
                request = GuestRequest(str(counter), method, path, query, tuple(headers), body, "/hello-http", "")
                try:
                    response = await executor.handle(request)
                    status, out_headers, out_body = response.status, response.headers, response.body
                except GuestError as exc:
                    status, out_headers, out_body = exc.status, [], str(exc).encode()
                parts = [f"HTTP/1.1 {status} X"]
                parts += [f"{n}: {v}" for n, v in out_headers]
                parts.append(f"content-length: {len(out_body)}")
                writer.write(("\r\n".join(parts) + "\r\n\r\n").encode("latin-1") + out_body)
                if ("connection", "close") in headers:
                    await writer.drain()
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    try:
        await asyncio.sleep(3600)
    finally:
        await executor.unload()

try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
asyncio.run(main())
"""


def proxied_throughput(source: Path, pooling: bool, seconds: float, connections: int) -> tuple[float, str]:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(_PROXY_SERVER)
        script = f.name
    proc = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, script, str(ROOT / "src"), str(source), "1" if pooling else "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        assert b"Hello from wasi:http" in _get(port)  # the cold start happens here, not under load
        return wrk(port, seconds, connections)
    finally:
        proc.terminate()
        proc.wait()
        os.unlink(script)


# -- client cost per request ---------------------------------------------------------------------------


async def client_costs(wasmtime: str, source: Path, requests: int) -> dict[str, float]:
    """Sequential µs/request to the same child: our pool, httpx, and the whole executor."""
    import httpx

    proc, port = _start_serve(wasmtime, source, [], None)
    try:
        raw = f"GET /hello-http HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 0\r\n\r\n".encode()
        pool = UpstreamPool("127.0.0.1", port)
        results: dict[str, float] = {}
        for _ in range(2):  # second round is the one kept (warm)
            started = time.perf_counter()
            for _ in range(requests):
                await pool.request(raw)
            results["own pool"] = (time.perf_counter() - started) / requests * 1e6
        pool.close()
        async with httpx.AsyncClient() as client:
            for _ in range(2):
                started = time.perf_counter()
                for _ in range(requests):
                    await client.get(f"http://127.0.0.1:{port}/hello-http")
                results["httpx.AsyncClient"] = (time.perf_counter() - started) / requests * 1e6
    finally:
        proc.terminate()
        proc.wait()
    component = Component(
        id="hello", source=source, source_digest="sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()
    )
    app = App(name="bench", manifest_path=source.parent / "spin.toml", components={"hello": component}, triggers=())
    executor = WasiHttpExecutor(app, component, request_timeout=30, memory_limit=128 << 20, idle_timeout=600)
    request = GuestRequest("r", "GET", "/hello-http", "", (("host", "bench"),), b"", "/hello-http", "")
    try:
        await executor.handle(request)
        for _ in range(2):
            started = time.perf_counter()
            for _ in range(requests):
                await executor.handle(request)
            results["WasiHttpExecutor.handle"] = (time.perf_counter() - started) / requests * 1e6
    finally:
        await executor.unload()
    return results


async def executor_cold_starts(source: Path, runs: int) -> list[float]:
    """``cold_start_seconds`` of the first request through the executor (child stopped in between)."""
    digest = "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()
    component = Component(id="hello", source=source, source_digest=digest)
    app = App(name="bench", manifest_path=source.parent / "spin.toml", components={"hello": component}, triggers=())
    executor = WasiHttpExecutor(app, component, request_timeout=30, memory_limit=128 << 20, idle_timeout=600)
    request = GuestRequest("r", "GET", "/hello-http", "", (("host", "bench"),), b"", "/hello-http", "")
    times = []
    for _ in range(runs):
        response = await executor.handle(request)
        assert response.cold_start_seconds is not None
        times.append(response.cold_start_seconds)
        await executor.unload()
    return sorted(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks wasihttp")
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--starts", type=int, default=15, help="process starts measured per source format")
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per client")
    args = parser.parse_args(argv)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (apt-get install {tool})", file=sys.stderr)
            return 2
    wasmtime = find_wasmtime()
    version = subprocess.run([wasmtime, "--version"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        wasm = Path(tmp) / "hello.wasm"
        wasm_tools = shutil.which("wasm-tools") or str(Path(sys.executable).parent / "wasm-tools")
        subprocess.run([wasm_tools, "parse", str(HELLO_WAT), "-o", str(wasm)], check=True)
        print(f"machine: {describe()}")
        print(f"{version}; hello component {wasm.stat().st_size} B (.wasm), {HELLO_WAT.stat().st_size} B (.wat)")
        print("\n# process start -> first response (wasmtime serve, spawn to last byte)")
        for source in (wasm, HELLO_WAT):
            times = sorted(start_to_first_response(wasmtime, source, args.starts))
            print(
                f"  {source.suffix:5}  p50 {statistics.median(times) * 1e3:6.1f} ms   "
                f"min {times[0] * 1e3:6.1f} ms   max {times[-1] * 1e3:6.1f} ms   (n={len(times)})"
            )
        times = asyncio.run(executor_cold_starts(wasm, args.starts))
        print(
            f"  WasiHttpExecutor cold_start_seconds (.wasm)  p50 {statistics.median(times) * 1e3:6.1f} ms   "
            f"min {times[0] * 1e3:6.1f} ms   max {times[-1] * 1e3:6.1f} ms"
        )
        print(f"\n# throughput, wrk -t1 -c{args.connections} -d{args.seconds:g}s; server on CPU 0, wrk on CPU 1")
        rows: dict[str, tuple[float, str]] = {}
        rows["wasmtime serve"] = direct_throughput(wasmtime, wasm, False, args.seconds, args.connections)
        rows["wasmtime serve -O pooling-allocator=y"] = direct_throughput(
            wasmtime, wasm, True, args.seconds, args.connections
        )
        rows["asyncio server + WasiHttpExecutor"] = proxied_throughput(wasm, False, args.seconds, args.connections)
        rows["asyncio server + WasiHttpExecutor (pooling)"] = proxied_throughput(
            wasm, True, args.seconds, args.connections
        )
        base = rows["wasmtime serve"][0]
        for name, (rps, latency) in rows.items():
            print(f"  {name:45} {rps:9.0f} req/s   avg latency {latency:>8}   {rps / base:5.2f}x")
        print(f"\n# sequential cost per request to a warm child ({args.requests} requests, no pinning)")
        for name, micros in asyncio.run(client_costs(wasmtime, wasm, args.requests)).items():
            print(f"  {name:25} {micros:7.0f} us/request")
    print(f"\ncommand: python -m benchmarks wasihttp {' '.join(argv)}".rstrip())
    return 0
