"""Energy meter: the meter's own CPU cost sampling ~1,000 processes, and the model against SPECpower.

``python -m benchmarks energy [--processes N] [--samples K]``. Spawns N sleeping processes (killed at the
end, and each sleeps at most 120 s anyway), then times K full samples (``/proc/stat`` + every
``/proc/<pid>/stat`` + attribution) with the process's own CPU clock. At one sample a second, cost per sample
in seconds is the fraction of one core. Then checks every shipped SPECpower system: the model for a node
with that CPU and thread count must reproduce its published idle and 100% watts within 1%.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.machine import describe
from zerowatt.energy.catalog import choose_model, specpower_table
from zerowatt.energy.cpu import CpuIdentity, cpu_key
from zerowatt.energy.meter import Meter
from zerowatt.energy.model import ModelChoice, NodePowerModel
from zerowatt.energy.procfs import ProcReader
from zerowatt.energy.sources.model import ModelSource

SPECPOWER = Path(__file__).resolve().parent.parent / "data" / "power" / "specpower-2026-03-09.csv"


def sampling_cost(processes: int, samples: int) -> dict[str, float]:
    children = [
        subprocess.Popen(["sleep", "120"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    try:
        reader = ProcReader()
        _, cpus = reader.node()
        meter = Meter(ModelSource(ModelChoice(NodePowerModel(10, 50, cpus), "configured", "bench")), reader)
        c0 = time.process_time()
        meter.sample(time.monotonic())
        first = time.process_time() - c0
        seen = len(reader.known)
        costs = []
        for _ in range(samples):
            c0 = time.process_time()
            meter.sample(time.monotonic())
            costs.append(time.process_time() - c0)
        naive = []  # baseline in the same run: open().read() text + split per process, as a plain reader would
        for _ in range(samples):
            c0 = time.process_time()
            _naive_scan()
            naive.append(time.process_time() - c0)
        return {
            "naive_sample_cpu_s": statistics.median(naive),
            "processes_seen": float(seen),
            "first_sample_cpu_s": first,
            "median_sample_cpu_s": statistics.median(costs),
            "max_sample_cpu_s": max(costs),
        }
    finally:
        for c in children:
            c.kill()
        for c in children:
            c.wait()


def _naive_scan() -> dict[int, int]:
    out: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[int(name)] = int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                continue
    return out


def model_accuracy() -> dict[str, float]:
    worst = 0.0
    for row in specpower_table():
        m = choose_model(CpuIdentity(row.cpu), logical_cpus=row.threads).model
        worst = max(worst, abs(m.watts(0) / row.idle_watts - 1), abs(m.watts(1) / row.max_watts - 1))
    out = {"shipped_systems": float(len(specpower_table())), "worst_error_on_matched_system": worst}
    if SPECPOWER.is_file():  # context: the representative system as a predictor of the other published ones
        idle_err, max_err = [], []
        table = {r.key: r for r in specpower_table()}
        with SPECPOWER.open() as f:
            for r in csv.DictReader(f):
                row = table.get(cpu_key(r["CPU Description"]))
                if row is None:
                    continue
                m = row.model().scaled(int(r["Total Threads"]))
                idle_err.append(abs(m.watts(0) / float(r["avg. watts @ active idle"]) - 1))
                max_err.append(abs(m.watts(1) / float(r["avg. watts @ 100%"]) - 1))
        out |= {
            "published_results": float(len(idle_err)),
            "median_error_idle_other_systems": statistics.median(idle_err),
            "median_error_100pct_other_systems": statistics.median(max_err),
        }
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks energy")
    p.add_argument("--processes", type=int, default=1000)
    p.add_argument("--samples", type=int, default=10)
    args = p.parse_args(argv)
    cost = sampling_cost(args.processes, args.samples)
    acc = model_accuracy()
    print(f"machine: {describe()}")
    print(f"sampling {cost['processes_seen']:.0f} processes (spawned {args.processes} sleepers):")
    print(f"  first sample (names, cgroups, exe once per process): {cost['first_sample_cpu_s'] * 1000:.1f} ms CPU")
    print(
        f"  steady sample: median {cost['median_sample_cpu_s'] * 1000:.1f} ms CPU, max "
        f"{cost['max_sample_cpu_s'] * 1000:.1f} ms = {cost['median_sample_cpu_s'] * 100:.2f}% of one core at 1 Hz"
    )
    print(
        f"  baseline in the same run (open().read() + split per process, no attribution): "
        f"{cost['naive_sample_cpu_s'] * 1000:.1f} ms; meter/baseline = "
        f"{cost['median_sample_cpu_s'] / cost['naive_sample_cpu_s']:.2f}"
    )
    print(f"model vs SPECpower: {acc['shipped_systems']:.0f} systems, worst error on the matched system ", end="")
    print(f"{acc['worst_error_on_matched_system'] * 100:.2e}%")
    if "published_results" in acc:
        print(
            f"  context: per-thread scaling of the representative system predicts the other "
            f"{acc['published_results']:.0f} published results with median error "
            f"{acc['median_error_idle_other_systems'] * 100:.0f}% (idle), "
            f"{acc['median_error_100pct_other_systems'] * 100:.0f}% (100%)"
        )
    ok = cost["median_sample_cpu_s"] <= 0.01 and acc["worst_error_on_matched_system"] <= 0.01
    print("targets (≤ 1% of a core; ≤ 1% model error):", "met" if ok else "NOT met")
    return 0 if ok else 1
