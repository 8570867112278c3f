"""Right-sizing from a real Prometheus: history built here, backfilled with promtool, served by Debian's prometheus.

``python -m benchmarks rightsize --prometheus [--containers 1000] [--days 14] [--strategy simple] [--runs 2]``

1. Writes OpenMetrics history of ``--containers`` containers (one pod each, 20 namespaces) × ``--days`` days of
   1-minute samples with this module's own generator: four shapes in turn, constant, diurnal, noisy and
   spiky (1 minute in 20 at 4× the base), a CPU counter (``container_cpu_usage_seconds_total``) and a working
   set, plus kube-state-metrics requests and owners. Cached under ``.zerowatt-cache/bench_rightsize_prom/``.
2. ``promtool tsdb create-blocks-from openmetrics`` into a TSDB directory (cached too), one input file per day
   (promtool 2.42 rereads its whole input for every 2-hour block), then one Prometheus start that waits for
   the blocks' compaction, so that no compaction runs during a measurement.
3. Starts ``prometheus`` on 127.0.0.1 with that TSDB, then per run starts ``zerowatt rightsize`` in a
   subprocess and reports its wall time, its own CPU and peak RSS (``wait4``), Prometheus' CPU over the run
   (``/proc/PID/stat``) and the HTTP requests Prometheus served (its own ``prometheus_http_requests_total``).

KRR is not on PyPI: run it beside this benchmark on the same Prometheus (the URL is printed and the server
is kept while ``--hold`` seconds pass) to compare; the anchor figures are in ``shared/notes/anchor-figures.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tests.rightsize.promfixture import serve_tsdb, stop_prometheus
from tests.waiting import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".zerowatt-cache" / "bench_rightsize_prom"
NOW = 1_764_288_000  # 2025-11-28T00:00:00Z
STEP = 60
NAMESPACES = 20
SHAPES = ("constant", "diurnal", "noisy", "spiky")


def shape_series(i: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(cores, working-set bytes) per minute of container ``i``: its shape is ``SHAPES[i % 4]``."""
    base = float(np.exp(rng.uniform(np.log(0.02), np.log(2.0))))
    mem0 = float(np.exp(rng.uniform(np.log(50e6), np.log(4e9))))
    k = np.arange(n)
    shape = SHAPES[i % len(SHAPES)]
    if shape == "constant":
        cpu = np.full(n, base)
    elif shape == "diurnal":
        cpu = base * (1.0 + 0.8 * np.sin(2 * np.pi * k / 1440.0))
    elif shape == "noisy":
        cpu = base * (0.4 + rng.random(n))
    else:
        cpu = np.where(k % 20 == 0, 4.0 * base, 0.5 * base)
    mem = np.floor(mem0 * (0.9 + 0.1 * rng.random(n)))
    return np.round(cpu, 6), mem


def _lines(containers: int, days: int) -> Iterator[str]:
    """OpenMetrics lines, each metric family together, each series in time order."""
    n = days * 1440
    t = NOW - (n - 1) * STEP + np.arange(n) * STEP
    ct = np.concatenate(([t[0] - STEP], t))
    names = [(f"team-{i % NAMESPACES:02d}", f"svc-{i:05d}-5d8f7c-x{i % 7}", f"svc-{i:05d}") for i in range(containers)]
    for family in ("cpu", "memory"):
        rng = np.random.default_rng(15)
        for i, (ns, pod, _) in enumerate(names):
            cpu, mem = shape_series(i, n, rng)
            lab = f'{{namespace="{ns}",pod="{pod}",container="app",job="kubelet"}}'
            if family == "cpu":
                counter = 1000.0 + np.concatenate(([0.0], np.cumsum(cpu * STEP)))
                yield from (f"container_cpu_usage_seconds_total{lab} {c!r} {s}" for c, s in zip(
                    counter.tolist(), ct.tolist(), strict=True))  # fmt: skip
            else:
                yield from (f"container_memory_working_set_bytes{lab} {int(m)} {s}" for m, s in zip(
                    mem.tolist(), t.tolist(), strict=True))  # fmt: skip
    recent = t[-120::5].tolist()
    for metric, res in (("kube_pod_container_resource_requests", "cpu"),
                        ("kube_pod_container_resource_requests", "memory")):  # fmt: skip
        for ns, pod, _ in names:
            value = "0.5" if res == "cpu" else "1073741824"
            lab = f'{{namespace="{ns}",pod="{pod}",container="app",resource="{res}"}}'
            yield from (f"{metric}{lab} {value} {s}" for s in recent)
    hourly = t[::60].tolist()
    for ns, pod, svc in names:
        lab = f'{{namespace="{ns}",pod="{pod}",owner_kind="ReplicaSet",owner_name="{svc}-5d8f7c"}}'
        yield from (f"kube_pod_owner{lab} 1 {s}" for s in hourly)
    for ns, _, svc in names:
        lab = f'{{namespace="{ns}",replicaset="{svc}-5d8f7c",owner_kind="Deployment",owner_name="{svc}"}}'
        yield from (f"kube_replicaset_owner{lab} 1 {s}" for s in hourly)
    yield "# EOF"


def write_history(containers: int, days: int, out: Path) -> list[Path]:
    """The OpenMetrics history as one file per day (each with every metric family, in order).

    promtool 2.42 reads its whole input once per 2-hour block it writes: one 14-day file costs 168 passes over
    everything, one file per day 12 passes over a fourteenth of it.
    """
    out.mkdir(parents=True, exist_ok=True)
    start = NOW - (days * 1440 - 1) * STEP - STEP
    paths = [out / f"day-{d:02d}.om" for d in range(days + 1)]
    files = [p.open("w") for p in paths]
    try:
        for line in _lines(containers, days):
            if line.startswith("#"):
                continue
            ts = int(line.rsplit(" ", 1)[1])
            files[min(days, (ts - start) // 86400)].write(line + "\n")
        for f in files:
            f.write("# EOF\n")
    finally:
        for f in files:
            f.close()
    return paths


def build_tsdb(containers: int, days: int, cache: Path) -> tuple[Path, float]:
    """The cached TSDB directory for this size (generated and backfilled on first use) and seconds spent."""
    data = cache / f"tsdb-{containers}x{days}d"
    if (data / "done").exists():
        return data, 0.0
    promtool = shutil.which("promtool")
    if not promtool:
        raise SystemExit("Debian's prometheus package (prometheus, promtool) is required: make sysdeps")
    t0 = time.perf_counter()
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    src = cache / f"history-{containers}x{days}d"
    for path in write_history(containers, days, src):
        subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(data)],
                       check=True, capture_output=True)  # fmt: skip
    shutil.rmtree(src)
    settle(data, cache)
    (data / "done").write_text("ok\n")
    return data, time.perf_counter() - t0


def settle(data: Path, cache: Path) -> None:
    """Run Prometheus once until it has compacted the backfilled 2-hour blocks (it starts after a minute),
    so that no compaction runs during a measurement."""
    work = cache / "settle"
    work.mkdir(parents=True, exist_ok=True)
    proc, _ = serve_tsdb(data, work, timeout=120)
    try:
        t_end = time.monotonic() + 1800
        time.sleep(75)
        while time.monotonic() < t_end:
            c0 = cpu_seconds(proc.pid)
            time.sleep(10)
            if cpu_seconds(proc.pid) - c0 < 0.3:
                break
    finally:
        stop_prometheus(proc, timeout=60)


def wait_idle(pid: int, limit: float = 300.0) -> None:
    """Wait until Prometheus uses under 5 % of a core over 2 s (nothing else running in it)."""
    t_end = time.monotonic() + limit
    while time.monotonic() < t_end:
        c0 = cpu_seconds(pid)
        time.sleep(2)
        if cpu_seconds(pid) - c0 < 0.1:
            return


def _requests(url: str) -> float:
    import httpx

    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and "/api/v1/" in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_once(url: str, prom_pid: int, days: int, strategy: str, extra: list[str]) -> dict[str, float]:
    """One ``zerowatt rightsize`` run: wall, own CPU, peak RSS, Prometheus CPU and HTTP requests."""
    cmd = [sys.executable, "-m", "zerowatt", "rightsize", "-p", url, "--end", str(NOW), "--history", f"{days}d",
           "--strategy", strategy, "--json", "--output", os.devnull, *extra]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    wait_idle(prom_pid)
    q0, p0, t0 = _requests(url), cpu_seconds(prom_pid), time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    p1, q1 = cpu_seconds(prom_pid), _requests(url)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"zerowatt failed: {err[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "prometheus_cpu_s": p1 - p0,
        "queries": q1 - q0,  # /metrics itself is not under /api/v1/
    }


def main(argv: list[str]) -> int:
    doc = (__doc__ or "").splitlines()[0]
    ap = argparse.ArgumentParser(prog="python -m benchmarks rightsize --prometheus", description=doc)
    ap.add_argument("--containers", type=int, default=100)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--strategy", default="simple")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--hold", type=float, default=0.0, help="keep Prometheus up this many seconds (to run KRR)")
    ap.add_argument("zerowatt_args", nargs="*", help="extra flags for zerowatt rightsize (after --)")
    args = ap.parse_args(argv)
    from benchmarks.machine import describe

    data, built = build_tsdb(args.containers, args.days, args.cache)
    work = args.cache / "run"
    work.mkdir(parents=True, exist_ok=True)
    proc, url = serve_tsdb(data, work, timeout=120)
    try:
        _requests(url)  # warm the HTTP path once
        runs = [run_once(url, proc.pid, args.days, args.strategy, args.zerowatt_args) for _ in range(args.runs)]
        if args.hold > 0:
            print(f"Prometheus at {url} (TSDB {data}) for {args.hold:g} s more", flush=True)
            time.sleep(args.hold)
    finally:
        stop_prometheus(proc)
    samples = 2 * args.containers * args.days * 1440
    print(f"right-sizing from Prometheus 2.42 (promtool backfill), {args.containers} containers × {args.days} d × "
          f"1 min ({samples / 1e6:.1f} M samples), strategy {args.strategy}; built in {built:.0f} s")  # fmt: skip
    print(f"{'run':>4} {'wall s':>8} {'own CPU s':>10} {'peak RSS MiB':>13} {'Prometheus CPU s':>17} {'queries':>8}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>4} {r['wall_s']:>8.1f} {r['cpu_s']:>10.1f} {r['peak_rss_mib']:>13.0f} "
              f"{r['prometheus_cpu_s']:>17.1f} {r['queries']:>8.0f}")  # fmt: skip
    best = min(runs, key=lambda r: r["wall_s"])
    per_1000 = best["wall_s"] / args.containers * 1000
    print(f"per 1,000 containers: {per_1000:.1f} s wall (KRR anchor at 1,000: 95–111 s; scale is not linear "
          f"below ~300 containers: process start and discovery are fixed costs)")  # fmt: skip
    print("machine:", describe())
    print("command: python -m benchmarks rightsize --prometheus " + " ".join(argv))
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"containers": args.containers, "days": args.days, "strategy": args.strategy, "runs": runs,
           "machine": describe(), "samples": samples}  # fmt: skip
    (out_dir / f"rightsize-prometheus-{args.containers}.json").write_text(json.dumps(result, indent=2))
    return 0 if all(math.isfinite(r["wall_s"]) for r in runs) else 1
