"""Live autoscaling: a time-compressed slice of the Azure trace replayed as real HTTP requests against
``zerowatt up --policy NAME``, next to what the simulator predicts for the very same slice.

``python -m benchmarks live [--minutes 60] [--start-minute 720] [--compression 60] [--policies ...]``

1. The slice: minutes ``[start, start + minutes)`` of the 200-function sample; the functions invoked at least
   once and at most ``--max-per-function`` times in it, the first ``--max-functions`` of them, fewer if the
   total exceeds ``--max-requests``. Invocations are spread inside each minute exactly as the simulator
   does (``trace.expand``, seeded) and every arrival time is divided by ``--compression``.
2. The host: one ``zerowatt up`` (one worker) per policy, serving one WAGI component per function (all the
   same hand-written WAT guest, so every function is a separate component with its own autoscaler), with
   ``--policy NAME --policy-option compression=C``: keep-alive, hybrid bins/range and every KPA window,
   tick, bucket and grace are divided by C, as the trace is. The energy-aware policy's break-even comes
   from the physical start latency (0.3 ms) and is not compressed, on either side.
3. The replay: each request is sent at its compressed arrival time (asyncio, keep-alive connections, one
   coroutine per request, so a slow answer never delays the next arrival); client latency, status, and from
   the host's shutdown summary cold starts (requests that waited for an instance), instance starts,
   instance-seconds and idle instance-seconds; the worker's CPU seconds from /proc.
4. The prediction: ``zerowatt.scaling.sim.driver`` on the same invocations, the same compressed windows and
   the same 0.3 ms start; durations are the guest's measured service time (the host-side mean request
   duration of a calibration burst), since the WAT guest answers in well under a millisecond instead of
   running the trace's durations (a guest that sleeps for seconds would tie up the 2 shared cores; see
   docs/scaling.md); memory 0.128 GB for every function, the live energy policy's default.

Results go to stdout and ``benchmarks/results/live.json``. Only 127.0.0.1; requests bounded by
``--max-requests``; one policy's run lasts ``minutes * 60 / compression`` seconds plus start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tests.host.serving import metric, wait_ready

from benchmarks.machine import describe
from zerowatt.scaling.policies import POLICY_NAMES
from zerowatt.scaling.policies.hybrid import HybridParams
from zerowatt.scaling.policies.keepalive import FixedKeepAlive
from zerowatt.scaling.policies.kpa import KpaParams
from zerowatt.scaling.sim.driver import SimulationConfig, prepare, run_policy
from zerowatt.scaling.sim.trace import Invocations, Trace, expand, read_trace
from zerowatt.wasm.wasihttp.client import UpstreamError, UpstreamPool

ROOT = Path(__file__).resolve().parent.parent
TRACE_DIRS = (ROOT / "data" / "azure-functions-2019",)
GUEST = ROOT / "examples" / "hello-wat" / "hello.wat"
RESULTS = Path(__file__).resolve().parent / "results" / "live.json"
COLD_START = 0.0003  # the live energy policy's start latency for WAGI (zerowatt.host.autoscale)
MEMORY_GB = 0.128  # the live energy policy's default memory per instance


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------ the slice


def take_slice(args: argparse.Namespace) -> tuple[Trace, list[int]]:
    trace_dir = Path(args.trace) if args.trace else next((d for d in TRACE_DIRS if d.is_dir()), TRACE_DIRS[-1])
    full = read_trace(trace_dir, args.functions)
    lo, hi = args.start_minute, args.start_minute + args.minutes
    counts = full.counts[:, lo:hi]
    per_fn = counts.sum(axis=1)
    chosen = [i for i in range(full.n_functions) if 1 <= per_fn[i] <= args.max_per_function][: args.max_functions]
    while chosen and int(per_fn[chosen].sum()) > args.max_requests:
        chosen.pop()
    idx = np.array(chosen, dtype=np.int64)
    sliced = Trace(
        tuple(full.function_ids[i] for i in chosen),
        tuple(full.app_ids[i] for i in chosen),
        counts[idx],
        full.duration_percentiles[idx],
        np.full(len(chosen), MEMORY_GB),
        f"{full.source} minutes {lo}..{hi}",
    )
    return sliced, chosen


def compressed_invocations(trace: Trace, seed: int, compression: float, service: float) -> Invocations:
    inv = expand(trace, seed)
    return Invocations(
        inv.fid,
        inv.arrival / compression,
        np.full(inv.size, service),
        inv.n_functions,
        trace.horizon / compression,
        inv.memory_gb,
    )


def manifest(n: int) -> str:
    lines = ["spin_manifest_version = 2", "[application]", 'name = "trace"']
    for name in [*(f"f{i}" for i in range(n)), "calib"]:
        lines += ["[[trigger.http]]", f'route = "/{name}"', f'component = "{name}"', 'executor = { type = "wagi" }']
    for name in [*(f"f{i}" for i in range(n)), "calib"]:
        lines += [f"[component.{name}]", f'source = "{GUEST}"']
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- the host


class Host:
    def __init__(self, work: Path, policy: str, compression: float) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.log = work / f"{policy}.log"
        env = dict(os.environ, ZEROWATT_CACHE_DIR=str(work / "cache"))
        env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
        argv = [sys.executable, "-m", "zerowatt", "up", str(work / "spin.toml")]
        argv += ["--listen", f"127.0.0.1:{self.port}", "--admin", f"127.0.0.1:{self.admin_port}", "--workers", "1"]
        argv += ["--policy", policy, "--policy-option", f"compression={compression:g}", "--energy-summary", "0"]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        wait_ready(f"http://127.0.0.1:{self.admin_port}", self.proc, self.log)
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        workers = [int(p) for p in children if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        self.worker = workers[0]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.worker}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=10).text

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.log.read_text()


def calibrate(host: Host, n: int = 200) -> float:
    """Mean host-side duration of a warm request to the guest (the simulator's duration)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{host.port}", timeout=10) as client:
        for _ in range(n):
            client.get("/calib").raise_for_status()
    text = host.metrics()
    total = metric(text, "zerowatt_request_duration_seconds_sum", component="calib")
    count = metric(text, "zerowatt_request_duration_seconds_count", component="calib")
    return total / count


async def replay(port: int, inv: Invocations, lead: float = 0.5) -> tuple[list[float], list[int], float]:
    """Send every invocation at its (compressed) arrival; returns latencies, statuses and the schedule lag.

    The client is zerowatt's lean HTTP/1.1 keep-alive pool (:mod:`zerowatt.wasm.wasihttp.client`): on 2 shared
    cores, httpx's per-request CPU would add milliseconds of client-side queueing to every latency.
    """
    pool = UpstreamPool("127.0.0.1", port, max_idle=256)
    order = np.argsort(inv.arrival, kind="stable")
    latencies = [0.0] * inv.size
    statuses = [0] * inv.size
    lags: list[float] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time() + lead

    async def one(k: int, raw: bytes) -> None:
        started = time.perf_counter()
        try:
            statuses[k] = (await pool.request(raw)).status
        except (UpstreamError, OSError):
            statuses[k] = 0
        latencies[k] = time.perf_counter() - started

    tasks = []
    try:
        for k in order:
            at = t0 + float(inv.arrival[k])
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(loop.time() - at)
            raw = f"GET /f{int(inv.fid[k])} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()
            tasks.append(asyncio.create_task(one(int(k), raw)))
        await asyncio.gather(*tasks)
        end = t0 + inv.horizon
        if end > loop.time():
            await asyncio.sleep(end - loop.time())
    finally:
        pool.close()
    return latencies, statuses, float(np.percentile(lags, 99)) if lags else 0.0


def summaries(log: str) -> list[dict[str, Any]]:
    out = []
    for line in log.splitlines():
        _, sep, text = line.partition("autoscale summary ")
        if sep:
            out.append(json.loads(text))
    return out


# ------------------------------------------------------------------------------------------- the run


def sim_config(compression: float) -> SimulationConfig:
    return SimulationConfig(
        cold_start=COLD_START,
        keepalive=FixedKeepAlive(FixedKeepAlive().keep_alive / compression),
        hybrid=HybridParams().compressed(compression),
        kpa=KpaParams().compressed(compression),
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    trace, chosen = take_slice(args)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    for p in policies:
        if p not in POLICY_NAMES:
            raise SystemExit(f"unknown policy {p!r}; expected some of {', '.join(POLICY_NAMES)}")
    c = args.compression
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="zerowatt-live-") as tmp:
        work = Path(tmp)
        (work / "spin.toml").write_text(manifest(trace.n_functions))
        service: float | None = None
        inv: Invocations | None = None
        for policy in policies:
            host = Host(work, policy, c)
            try:
                if service is None:
                    service = calibrate(host)
                    inv = compressed_invocations(trace, args.seed, c, service)
                    print(
                        f"slice: {trace.n_functions} functions (of {args.functions}), minutes "
                        f"{args.start_minute}..{args.start_minute + args.minutes}, {inv.size} requests, "
                        f"compression {c:g} -> {inv.horizon:.1f} s; guest service time {service * 1e3:.3f} ms",
                        flush=True,
                    )
                assert inv is not None
                before = host.metrics()
                cpu0 = host.cpu_seconds()
                wall0 = time.perf_counter()
                latencies, statuses, lag_p99 = asyncio.run(replay(host.port, inv))
                wall = time.perf_counter() - wall0
                cpu = host.cpu_seconds() - cpu0
                after = host.metrics()
            finally:
                log = host.stop()
            live = [s for s in summaries(log) if s["component"] != "calib"]
            cold = sum(int(s["cold_starts"]) for s in live)
            sim = run_policy(policy, prepare(inv), sim_config(c))
            lat = np.array(latencies) * 1e3
            results[policy] = {
                "requests": len(statuses),
                "errors": int(sum(1 for s in statuses if s != 200)),
                "cold_starts": cold,
                "instance_starts": sum(int(s["instance_starts"]) for s in live),
                "decisions": sum(int(s["decisions"]) for s in live),
                "cold_starts_metrics": metric(after, "zerowatt_cold_starts_total")
                - metric(before, "zerowatt_cold_starts_total"),
                "instance_seconds": sum(float(s["instance_seconds"]) for s in live),
                "idle_instance_seconds": sum(float(s["idle_instance_seconds"]) for s in live),
                "worker_cpu_seconds": cpu,
                "wall_seconds": wall,
                "latency_ms": {
                    "p50": float(np.percentile(lat, 50)),
                    "p99": float(np.percentile(lat, 99)),
                    "p999": float(np.percentile(lat, 99.9)),
                },
                "schedule_lag_p99_ms": lag_p99 * 1e3,
                "sim": {
                    "cold_starts": sim.cold_starts,
                    "instance_seconds": sim.instance_seconds,
                    "idle_instance_seconds": sim.idle_instance_seconds,
                },
            }
            r = results[policy]
            diff = (cold - sim.cold_starts) / max(sim.cold_starts, 1) * 100
            print(
                f"{policy:>9}: cold starts live {cold} / sim {sim.cold_starts} ({diff:+.1f} %), errors {r['errors']}, "
                f"latency p50/p99/p99.9 {r['latency_ms']['p50']:.2f}/{r['latency_ms']['p99']:.2f}/"
                f"{r['latency_ms']['p999']:.2f} ms, idle instance-s live {r['idle_instance_seconds']:.1f} / sim "
                f"{sim.idle_instance_seconds:.1f}, worker CPU {cpu:.2f} s in {wall:.1f} s",
                flush=True,
            )
    assert inv is not None and service is not None
    return {
        "machine": describe(),
        "command": "PYTHONPATH=src python -m benchmarks live " + " ".join(sys.argv[2:]),
        "slice": {
            "functions": trace.n_functions,
            "function_rows": chosen,
            "start_minute": args.start_minute,
            "minutes": args.minutes,
            "requests": inv.size,
            "compression": c,
            "horizon_s": inv.horizon,
            "seed": args.seed,
            "service_time_ms": service * 1e3,
        },
        "policies": results,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks live", description=__doc__.split("\n\n")[0])
    ap.add_argument("--trace", help="Azure 2019 trace directory (default data/azure-functions-2019)")
    ap.add_argument("--functions", type=int, default=200, help="which N_*.csv set (default 200)")
    ap.add_argument("--start-minute", type=int, default=720)
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--compression", type=float, default=60.0)
    ap.add_argument("--max-functions", type=int, default=40)
    ap.add_argument("--max-per-function", type=int, default=200)
    ap.add_argument("--max-requests", type=int, default=3000)
    ap.add_argument("--policies", default=",".join(POLICY_NAMES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    if args.compression <= 0 or args.minutes < 1 or args.max_requests < 1:
        ap.error("--compression, --minutes and --max-requests must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    out = run(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"machine: {out['machine']}\nwrote {args.out}")
    return 0
