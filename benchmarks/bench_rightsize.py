"""Right-sizing from files: 10,000 containers × 14 days of 1-minute samples (≈200 M samples) on one core.

``python -m benchmarks rightsize [--containers 10000] [--days 14] [--also 1000] [--cache DIR]``
(``python -m benchmarks rightsize --prometheus ...``: from a real Prometheus, see ``rightsize_prometheus.py``)

The sample file is generated once (Parquet, one row group per 50 containers, names dictionary-encoded,
``timestamp`` in Unix seconds, current requests included) into ``.zerowatt-cache/bench_rightsize/`` and reused.
Each scale is then measured in a fresh single-threaded subprocess (pyarrow's thread pools limited to one
thread) that streams the file through :func:`zerowatt.rightsize.samples.load_samples` and computes the
VPA recommendations; it reports wall time, CPU time and peak RSS (``ru_maxrss``) of that process only.
Targets (issue 6): ≤ 60 s and ≤ 2 GiB at 10,000 containers. The machine is shared and noisy: the smaller
scale, measured in the same run, shows how time scales with the number of samples.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".zerowatt-cache" / "bench_rightsize"
NOW = 1_764_288_000  # 2025-11-28T00:00:00Z
STEP = 60
PER_GROUP = 50
#: Robusta KRR 1.8.2-dev `simple`, real Prometheus 2.42, 14 d × 1 min, one container per workload, same kind of
#: machine (shared/notes/anchor-figures.md): 1,000 containers in 95–111 s wall.
KRR_1000_WALL_S = (95.0, 111.0)


def generate(path: Path, containers: int, days: int) -> float:
    """Write the sample file; returns the seconds it took."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    n_t = days * 1440
    times = NOW - (n_t - 1) * STEP + np.arange(n_t, dtype=np.int64) * STEP
    rng = np.random.default_rng(6)
    namespaces = pa.array([f"team-{i:02d}" for i in range(20)])
    container_names = pa.array(["app"])
    schema = pa.schema(
        [
            ("timestamp", pa.int64()),
            ("namespace", pa.dictionary(pa.int32(), pa.string())),
            ("pod", pa.dictionary(pa.int32(), pa.string())),
            ("container", pa.dictionary(pa.int32(), pa.string())),
            ("workload", pa.dictionary(pa.int32(), pa.string())),
            ("cpu", pa.float32()),
            ("memory", pa.int64()),
            ("cpu_request", pa.float32()),
            ("memory_request", pa.int64()),
        ]
    )
    tmp = path.with_suffix(".tmp")
    dict_cols = ["timestamp", "namespace", "pod", "container", "workload", "cpu_request", "memory_request"]
    with pq.ParquetWriter(tmp, schema, use_dictionary=dict_cols, compression="snappy") as writer:
        for g0 in range(0, containers, PER_GROUP):
            ids = np.arange(g0, min(containers, g0 + PER_GROUP))
            b = ids.size
            n = b * n_t
            rows = np.repeat(np.arange(b, dtype=np.int32), n_t)
            base_cpu = np.exp(rng.uniform(np.log(0.01), np.log(2.0), b)).astype(np.float32)
            base_mem = np.exp(rng.uniform(np.log(50e6), np.log(4e9), b))
            cpu = base_cpu[rows] * (np.float32(0.4) + rng.random(n, dtype=np.float32))
            mem = (base_mem[rows] * (0.9 + 0.1 * rng.random(n))).astype(np.int64)
            pods = pa.array([f"svc-{i:05d}-5d8f7c-x{i % 7}" for i in ids])
            workloads = pa.array([f"Deployment/svc-{i:05d}" for i in ids])
            ns_idx = pa.array((ids % 20).astype(np.int32)[rows])
            table = pa.table(
                {
                    "timestamp": np.tile(times, b),
                    "namespace": pa.DictionaryArray.from_arrays(ns_idx, namespaces),
                    "pod": pa.DictionaryArray.from_arrays(pa.array(rows), pods),
                    "container": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), container_names),
                    "workload": pa.DictionaryArray.from_arrays(pa.array(rows), workloads),
                    "cpu": cpu,
                    "memory": mem,
                    "cpu_request": (base_cpu * 3)[rows],
                    "memory_request": (base_mem * 2).astype(np.int64)[rows],
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=n)
    tmp.rename(path)
    return time.perf_counter() - t0


def measure(path: Path, days: int) -> dict[str, float]:
    """Stream the file into the estimator on one core; runs in its own process."""
    # One core: one thread doing the work (pyarrow's pools limited to one thread, NumPy has no threads here).
    # Not pinned to a CPU: on a shared machine a pinned process waits behind whoever else runs on that CPU.
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    from zerowatt.rightsize.samples import load_samples

    t0 = time.perf_counter()
    acc, stats = load_samples(path, days * 86400.0, track_simple=False, batch_rows=1 << 20)
    t_read = time.perf_counter() - t0
    recs = acc.recommend("vpa")
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    freed = sum(r.freed()[0] for r in recs)
    import threading

    return {
        "threads": threading.active_count(),
        "samples": stats.rows,
        "recommendations": len(recs),
        "wall_s": wall,
        "read_and_aggregate_s": t_read,
        "estimate_s": wall - t_read,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "peak_rss_mib": ru.ru_maxrss / 1024,
        "freed_cores": freed,
    }


def same_run_baseline(containers: int, days: int) -> dict[str, float]:
    """Sample-by-sample port of upstream's Go control flow vs. the vectorised estimator, same data, in memory.

    The reference (``tests/rightsize/vpa_reference.py``) is what a straightforward per-sample implementation
    costs in Python; both give identical recommendations (``tests/rightsize/test_reference.py``).
    """
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))
    import numpy as np
    from tests.rightsize import vpa_reference as ref

    from zerowatt.rightsize.accumulator import UsageAccumulator

    rng = np.random.default_rng(1)
    n_t = days * 1440
    t = (NOW - (n_t - 1) * STEP + np.arange(n_t) * STEP).astype(np.float64)
    data = [(rng.random(n_t) * 0.5 + 0.05, 3e8 + rng.random(n_t) * 1e7) for _ in range(containers)]
    mem_start = NOW - 8 * 86400
    t0 = time.process_time()
    for cpu, mem in data:
        agg = ref.Aggregate()
        state = ref.Container(agg)
        for j in range(n_t):
            agg.add_cpu(float(cpu[j]), float(t[j]))
            if t[j] >= mem_start:
                state.add_memory(float(mem[j]), float(t[j]))
        ref.recommend(agg, 1)
    t_ref = time.process_time() - t0
    t0 = time.process_time()
    acc = UsageAccumulator(NOW, days * 86400.0, track_simple=False)
    for i, (cpu, mem) in enumerate(data):
        sid = acc.series_id("ns", f"p{i}", "c", f"w{i}")
        acc.add_samples(np.full(n_t, sid), t, cpu=cpu, memory=mem)
    acc.recommend()
    t_vec = time.process_time() - t0
    n = containers * n_t
    return {"samples": n, "reference_ns": t_ref / n * 1e9, "vectorised_ns": t_vec / n * 1e9, "ratio": t_ref / t_vec}


def run_scale(containers: int, days: int, cache: Path, regen: bool) -> dict[str, float]:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"samples-{containers}x{days}d.parquet"
    gen_s = 0.0
    if regen or not path.exists():
        print(f"generating {path} ({containers} containers × {days} days)...", file=sys.stderr, flush=True)
        gen_s = generate(path, containers, days)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_rightsize", "--measure", str(path), "--days", str(days)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    res: dict[str, float] = json.loads(out.stdout)
    res.update({"containers": containers, "generate_s": gen_s, "file_mib": path.stat().st_size / 2**20})
    return res


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--prometheus":  # from a real Prometheus instead of files: its own module
        from benchmarks import rightsize_prometheus

        return rightsize_prometheus.main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m benchmarks rightsize", description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--also", type=int, default=1_000, help="a smaller scale measured in the same run (0: none)")
    ap.add_argument("--baseline", type=int, default=20, help="containers for the same-run reference (0: none)")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--regen", action="store_true")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.days)))
        return 0
    from benchmarks.machine import describe

    scales = [s for s in (args.also, args.containers) if s]
    results = [run_scale(s, args.days, args.cache, args.regen) for s in scales]
    print(f"right-sizing from Parquet, {args.days} days × 1-minute samples, VPA strategy, one core")
    print(f"{'containers':>10} {'samples':>12} {'wall s':>8} {'cpu s':>8} {'peak RSS MiB':>13} {'ns/sample':>10}")
    for r in results:
        print(
            f"{r['containers']:>10} {r['samples']:>12,} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} "
            f"{r['peak_rss_mib']:>13.0f} {r['wall_s'] / r['samples'] * 1e9:>10.1f}"
        )
    base = same_run_baseline(args.baseline, args.days) if args.baseline else None
    if base:
        print(
            f"same run, {args.baseline} containers in memory: sample-by-sample reference "
            f"{base['reference_ns']:.0f} ns/sample CPU, vectorised {base['vectorised_ns']:.0f} ns/sample "
            f"→ {base['ratio']:.0f}× less CPU"
        )
    big = results[-1]
    if len(results) > 1:
        small = results[0]
        print(
            f"scaling: {big['samples'] / small['samples']:.1f}× the samples took "
            f"{big['wall_s'] / small['wall_s']:.1f}× the time"
        )
    per_1000 = big["wall_s"] / big["containers"] * 1000
    print(
        f"per 1,000 containers: {per_1000:.1f} s; KRR (anchor notes, same kind of machine, from Prometheus): "
        f"{KRR_1000_WALL_S[0]:.0f}–{KRR_1000_WALL_S[1]:.0f} s → {KRR_1000_WALL_S[0] / per_1000:.0f}–"
        f"{KRR_1000_WALL_S[1] / per_1000:.0f}× less wall time (different input path: files vs. Prometheus)"
    )
    ok = big["wall_s"] <= 60 and big["peak_rss_mib"] <= 2048
    print(f"target ≤ 60 s and ≤ 2 GiB at {big['containers']:,} containers: {'met' if ok else 'NOT met'}")
    print("machine:", describe())
    print("command: python -m benchmarks rightsize " + " ".join(argv))
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"results": results, "baseline": base, "machine": describe()}
    (out_dir / "rightsize.json").write_text(json.dumps(doc, indent=2))
    return 0 if ok or big["containers"] < 10_000 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
