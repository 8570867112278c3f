"""Per-request energy attribution (issue 16): its cost per request, and the host's throughput with it on and off.

``python -m benchmarks attribution [--seconds S] [--rounds R] [--requests N]``

- micro: the accounting's own work per request, in-process: the loop-thread checkpoint (``LoopCpu.take``),
  the ledger charge (worst case: a batch of one request), one interval close per 1,000 requests; CPU µs
  per request, and the ``thread_time`` call alone (the floor: one clock read per request).
- sampler: the once-a-second rate refresh of the host's processes (``LiveRate.refresh``): the supervisor's
  scans every process's ``stat`` (so that a CPU-second is priced as the exporter prices it) and publishes
  the sum, on this node's ``/proc`` and on a synthetic one of 1,000 processes; a worker's reads
  ``/proc/stat``, the source and the board. CPU ms per refresh.
- http: requests/s of ``zerowatt up`` (hello-wat, one worker, native front) with the accounting on (the
  default) and off (``--energy-summary 0``); both servers run at once pinned to CPU 0, ``wrk -t1 -c32``
  pinned to CPU 1 gives each ``seconds`` in turn per round (interleaved), medians. The ratio is what counts.

Results go to stdout and ``benchmarks/results/attribution.json``. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_host import Served, free_port, wait_http, wrk
from benchmarks.machine import describe
from zerowatt.energy.request import ActiveRate
from zerowatt.host.energy import EnergyAccounting, LoopCpu

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "attribution.json"


def micro(n: int) -> dict[str, float]:
    """CPU µs per request of the accounting path (what a worker adds to each request): the checkpoint (every
    request), the charge (once per batch of observations: a batch of 1 is the worst case, a loaded worker
    answers several per event-loop iteration), the interval close (once a second, here once per 1,000)."""
    loop = LoopCpu()
    loop.bind()
    acct = EnergyAccounting(rate=lambda: ActiveRate(2.0, "model"), interval=1e9, tree_cpu=time.process_time, loop=loop)

    def per_request(step: Callable[[int], object]) -> float:
        t0 = time.thread_time()
        for i in range(n):
            step(i)
        return (time.thread_time() - t0) / n * 1e6

    def checkpoint(_: int) -> None:
        loop.in_flight += 1
        loop.in_flight -= 1
        loop.take()

    one = [("app", "c", 200, 0.0001, 0.0002)]
    many = one * 16

    def charge_one(i: int) -> None:
        acct.observe_many(one)
        if i % 1000 == 999:
            acct.close_interval()

    def charge_many(i: int) -> None:
        if i % 16 == 0:
            acct.observe_many(many)
        if i % 1000 == 999:
            acct.close_interval()

    return {
        "requests": n,
        "us_thread_time_call": per_request(lambda _: time.thread_time()),
        "us_checkpoint": per_request(checkpoint),
        "us_charge_batch_of_1": per_request(charge_one),
        "us_charge_batch_of_16": per_request(charge_many),
    }


def _synthetic_proc(root: Path, processes: int) -> None:
    """A ``/proc`` of ``processes`` processes (each a ``stat`` file) and a two-CPU ``stat``."""
    root.mkdir()
    cpus = "cpu  500 0 100 4000 0 0 0 0 0 0\ncpu0 250 0 50 2000 0 0 0 0 0 0\ncpu1 250 0 50 2000 0 0 0 0 0 0\n"
    (root / "stat").write_text(cpus)
    for pid in range(1000, 1000 + processes):
        (root / str(pid)).mkdir()
        (root / str(pid) / "stat").write_text(
            f"{pid} (worker {pid}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 {pid % 97} {pid % 13} 0 0 20 0 1 0 {pid * 7} 0 0\n"
        )


def sampler(refreshes: int, work: Path) -> dict[str, Any]:
    """CPU per ``LiveRate.refresh``: the supervisor's (a scan of every process's ``stat``, published on the
    board) and a worker's (``/proc/stat`` and the source, the sum read from the board), once per interval."""
    from zerowatt.energy.board import SeenBoard
    from zerowatt.energy.model import ModelChoice, NodePowerModel
    from zerowatt.energy.request import LiveRate
    from zerowatt.energy.sources.model import ModelSource

    synthetic = work / "proc-1000"
    _synthetic_proc(synthetic, 1000)
    board = SeenBoard(work / "seen")
    out: dict[str, Any] = {}
    for name, root, publish in (
        ("supervisor, this node", "/proc", True),
        ("supervisor, 1,000 processes", str(synthetic), True),
        ("worker, this node", "/proc", False),
    ):
        source = ModelSource(ModelChoice(NodePowerModel(10.0, 50.0, 2), "configured", "bench"))
        live = LiveRate(source, ActiveRate(1.0, "initial"), proc_root=root, board=board, publish=publish)
        live.refresh(0.0, tick=0)
        cpu = 0.0
        for i in range(1, refreshes + 1):
            if not publish:
                board.publish(i, 1.0)  # the supervisor's record for this tick, outside the measurement
            t0 = time.process_time()
            live.refresh(float(i), tick=i)
            cpu += time.process_time() - t0
        ms = cpu / refreshes * 1e3
        out[name] = {
            "processes scanned": len(live.meter.procs.known),
            "ms_per_refresh": ms,
            "percent_of_a_core_at_1_hz": ms / 10,
        }
    return out


def http(seconds: float, rounds: int, work: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), ZEROWATT_CACHE_DIR=str(work / "cache"))
    hello = ROOT / "examples" / "hello-wat" / "spin.toml"
    servers: list[Served] = []
    try:
        for name, extra in (("accounting on", []), ("accounting off", ["--energy-summary", "0"])):
            port, admin = free_port(), free_port()
            up = [sys.executable, "-m", "zerowatt", "up", str(hello), "--workers", "1", "--idle-unload", "0"]
            up += ["--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--log-level", "warning", *extra]
            servers.append(Served(name, up, f"http://127.0.0.1:{port}/hello", env))
        for server in servers:
            wait_http(server.url)
            wrk(server.url, 1.0, 1)  # warm-up
        for _ in range(rounds):
            for server in servers:
                server.samples.append(wrk(server.url, seconds, 1))
    finally:
        for server in servers:
            server.stop()
    out: dict[str, Any] = {s.name: {"median": statistics.median(s.samples), "rounds": s.samples} for s in servers}
    on, off = out["accounting on"]["median"], out["accounting off"]["median"]
    out["ratio on / off"] = on / off
    out["cost per request, µs (1/on - 1/off)"] = (1 / on - 1 / off) * 1e6
    paired = [a / b for a, b in zip(out["accounting on"]["rounds"], out["accounting off"]["rounds"], strict=True)]
    out["ratio on / off, median of interleaved rounds"] = statistics.median(paired)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks attribution", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="wrk duration per server and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200_000, help="in-process requests for the micro part")
    parser.add_argument("--refreshes", type=int, default=200, help="rate refreshes for the sampler part")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": describe(), "command": "python -m benchmarks attribution " + " ".join(argv)}
    results["micro"] = micro(args.requests)
    print(json.dumps(results["micro"]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results["sampler"] = sampler(args.refreshes, Path(tmp))
        print(json.dumps(results["sampler"]), flush=True)
        results["http"] = http(args.seconds, args.rounds, Path(tmp))
    print(json.dumps(results, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0
