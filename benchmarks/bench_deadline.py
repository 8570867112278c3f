"""Deadlines under contention, and how one tenant's runaway guests hurt another app (issue 10).

``python -m benchmarks deadline [--deadline S] [--spinners N] [--seconds S] [--conns N] [--configs A,B]``

One worker (``zerowatt.host.server.serve`` with ``workers=1``, in a child process) serves two apps: a
runaway tenant (``examples/slow-wat``: ``_start`` loops forever; its ``request_timeout`` is
``--deadline``) and a good app (``examples/hello-wat``). For each configuration:

- accuracy: ``--spinners`` concurrent requests to the runaway route, each on its own connection; the
  time from sending the request to the 504 (observed) against the requested deadline: p50 and max, and
  whether the max is within 10% + 50 ms (the issue's bar);
- isolation: ``--conns`` keep-alive connections send the good app's ``/hello`` back to back for
  ``--seconds``: requests/s and p99, first alone, then while ``--spinners`` connections keep the
  runaway route busy (each re-sent as soon as its 504 comes).

Configurations (``--configs``): ``default`` (native ticker and deadline check, per-app cap of half
the guest threads, guest threads at nice +10), ``nocap`` (no per-app cap), ``nonice`` (guest threads
at the event loop's priority), ``neither`` (no cap, no nice: the old isolation) and ``ctypes`` (the
fallback: ctypes path, Python ticker). The client runs in this process (asyncio, raw HTTP/1.1); the
machine is shared, so compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.host.serving import wait_ready

from benchmarks.machine import describe
from zerowatt.host.settings import HostSettings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RESULTS = Path(__file__).resolve().parent / "results"

#: name → (HostSettings overrides, extra environment)
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "default": ({}, {}),
    "nocap": ({"guest_threads_per_app": 16}, {}),
    "nonice": ({"guest_nice": 0}, {}),
    "neither": ({"guest_threads_per_app": 16, "guest_nice": 0}, {}),
    "ctypes": ({}, {"ZEROWATT_WAGI_BACKEND": "ctypes"}),
}
SERVE = (
    "import sys\nfrom zerowatt.host.server import serve\nfrom zerowatt.host.settings import HostSettings\n"
    "sys.exit(serve(HostSettings.from_json(sys.argv[1]), lambda apps, settings: None))\n"
)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def write_apps(work: Path, deadline: float) -> tuple[str, str]:
    runaway, good = work / "runaway", work / "good"
    runaway.mkdir()
    good.mkdir()
    shutil.copy(EXAMPLES / "slow-wat" / "slow.wat", runaway / "slow.wat")
    shutil.copy(EXAMPLES / "hello-wat" / "hello.wat", good / "hello.wat")
    (runaway / "spin.toml").write_text(
        'spin_manifest_version = 2\n[application]\nname = "runaway"\n'
        '[[trigger.http]]\nroute = "/slow"\ncomponent = "slow"\nexecutor = { type = "wagi" }\n'
        f'[component.slow]\nsource = "slow.wat"\n[component.slow.tool.zerowatt]\nrequest_timeout = {deadline}\n'
    )
    (good / "spin.toml").write_text(
        'spin_manifest_version = 2\n[application]\nname = "good"\n'
        '[[trigger.http]]\nroute = "/hello"\ncomponent = "hello"\nexecutor = { type = "wagi" }\n'
        '[component.hello]\nsource = "hello.wat"\n'
    )
    return str(runaway / "spin.toml"), str(good / "spin.toml")


class Server:
    """One ``serve()`` with one worker in a child process."""

    def __init__(self, work: Path, manifests: tuple[str, str], overrides: dict[str, Any], env: dict[str, str]) -> None:
        self.port, admin = free_port(), free_port()
        settings = HostSettings(
            manifests=manifests,
            listen_port=self.port,
            admin_port=admin,
            workers=1,
            idle_unload=None,
            energy_summary=None,
            log_level="warning",
            cache_dir=str(work / "cache"),
            **overrides,
        )
        environ = dict(os.environ, **env)
        environ["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + environ.get("PYTHONPATH", "")
        self.log = work / "server.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, settings.to_json()], stdout=out, stderr=subprocess.STDOUT, env=environ
            )
        wait_ready(f"http://127.0.0.1:{admin}", self.proc, self.log)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    """Send one request, read one response (Content-Length framed); returns the status."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def one_slow(port: int) -> tuple[int, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    status = await request(reader, writer, b"GET /slow HTTP/1.1\r\nHost: b\r\n\r\n")
    elapsed = time.perf_counter() - started
    writer.close()
    return status, elapsed


async def accuracy(port: int, spinners: int, deadline: float) -> dict[str, Any]:
    results = await asyncio.gather(*(one_slow(port) for _ in range(spinners)))
    observed = [t for _, t in results]
    bound = deadline * 1.1 + 0.05
    return {
        "requested_s": deadline,
        "statuses": sorted({s for s, _ in results}),
        "p50_s": percentile(observed, 0.5),
        "max_s": max(observed),
        "bound_s": bound,
        "within_bound": max(observed) <= bound,
    }


async def good_traffic(port: int, conns: int, seconds: float, spinners: int) -> dict[str, float]:
    stop = asyncio.Event()
    latencies: list[float] = []
    errors = 0
    spun = 0

    async def good() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        raw = b"GET /hello HTTP/1.1\r\nHost: b\r\n\r\n"
        while not stop.is_set():
            started = time.perf_counter()
            if await request(reader, writer, raw) != 200:
                errors += 1
            latencies.append(time.perf_counter() - started)
        writer.close()

    async def spin() -> None:
        nonlocal spun
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not stop.is_set():
            await request(reader, writer, b"GET /slow HTTP/1.1\r\nHost: b\r\n\r\n")
            spun += 1
        writer.close()

    spinning = [asyncio.create_task(spin()) for _ in range(spinners)]
    if spinners:
        await asyncio.sleep(0.5)  # the runaway guests are on the pool
    tasks = [asyncio.create_task(good()) for _ in range(conns)]
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    stop.set()
    count = len(latencies)
    elapsed = time.perf_counter() - started
    await asyncio.gather(*tasks)
    for task in spinning:
        task.cancel()
    await asyncio.gather(*spinning, return_exceptions=True)
    return {
        "req_per_s": count / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "errors": float(errors),
        "runaway_504s": float(spun),
    }


def run_config(name: str, args: argparse.Namespace, work: Path, manifests: tuple[str, str]) -> dict[str, Any]:
    overrides, env = CONFIGS[name]
    server = Server(work, manifests, overrides, env)
    try:
        asyncio.run(good_traffic(server.port, 4, 0.5, 0))  # warm up: components loaded, caches hot
        result: dict[str, Any] = {"config": name}
        result["accuracy"] = asyncio.run(accuracy(server.port, args.spinners, args.deadline))
        result["alone"] = asyncio.run(good_traffic(server.port, args.conns, args.seconds, 0))
        result["with_runaway"] = asyncio.run(good_traffic(server.port, args.conns, args.seconds, args.spinners))
        return result
    finally:
        server.stop()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks deadline", description=__doc__.split("\n")[0])
    parser.add_argument("--deadline", type=float, default=2.0, help="the runaway route's request_timeout (s)")
    parser.add_argument("--spinners", type=int, default=16, help="concurrent runaway requests")
    parser.add_argument("--seconds", type=float, default=5.0, help="good-traffic measurement per phase (s)")
    parser.add_argument("--conns", type=int, default=16, help="good-traffic connections")
    parser.add_argument("--configs", default="default,neither,nocap,nonice,ctypes", help="comma-separated")
    args = parser.parse_args(argv)
    for name in args.configs.split(","):
        if name not in CONFIGS:
            parser.error(f"--configs: unknown {name!r}; known: {', '.join(CONFIGS)}")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="zerowatt-deadline-") as tmp:
        manifests = write_apps(Path(tmp), args.deadline)
        for name in args.configs.split(","):
            work = Path(tmp) / name
            work.mkdir()
            result = run_config(name, args, work, manifests)
            results.append(result)
            acc, alone, busy = result["accuracy"], result["alone"], result["with_runaway"]
            print(
                f"{name:8s} deadline {acc['requested_s']:g} s: observed p50 {acc['p50_s']:.3f} s, "
                f"max {acc['max_s']:.3f} s (bound {acc['bound_s']:.3f} s: {'ok' if acc['within_bound'] else 'MISSED'}) "
                f"| good alone {alone['req_per_s']:.0f} req/s p99 {alone['p99_ms']:.1f} ms "
                f"| with runaway {busy['req_per_s']:.0f} req/s p99 {busy['p99_ms']:.1f} ms "
                f"({busy['runaway_504s']:.0f} runaway 504s, {busy['errors']:.0f} good errors)",
                flush=True,
            )
    record = {
        "machine": describe(),
        "command": "python -m benchmarks deadline " + " ".join(argv),
        "args": vars(args),
        "defaults": {k: v for k, v in asdict(HostSettings()).items() if k.startswith("guest")},
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "deadline.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"machine: {record['machine']}")
    return 0
