"""Autoscaling simulator: speed on 1,000 functions x one day, and where each policy lands on the Azure trace.

``python -m benchmarks scaling [--repeat N] [--quick]``

1. Speed: the 200-function Azure sample resampled to 1,000 functions (seed 2026), expanded and replayed
   through all four policies on one core (NumPy's element-wise kernels are single-threaded); best and
   median of ``--repeat`` runs, per stage. Target: under 10 s.
2. Policies on the 200-function sample with a WebAssembly cold start (0.3 ms, the host's measured order)
   and a container-like one (1 s): the comparison table, the energy-aware policy against the 10-minute
   keep-alive, and the hybrid policy against the fixed keep-alive tuned to the same idle memory.
3. Shahrad et al.'s Pareto comparison at a 1 s cold start (§5.2: 3rd-quartile per-function cold-start share
   against wasted memory normalised to the 10-minute keep-alive), sweeping fixed keep-alive windows and
   hybrid ranges, for both arrival-spreading models and with and without a 12-hour warm-up; ``--plots DIR``
   writes the two Pareto plots there.

Results go to stdout and ``benchmarks/results/scaling.json``. Trace: Azure Public Dataset, Microsoft
(CC-BY 4.0). The machine is shared and noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import describe
from zerowatt.scaling.policies import POLICY_NAMES
from zerowatt.scaling.sim.driver import PolicyResult, SimulationConfig, prepare, run_policy
from zerowatt.scaling.sim.pareto import Pareto, keepalive_matching_idle_memory, pareto
from zerowatt.scaling.sim.trace import expand, read_trace

ROOT = Path(__file__).resolve().parent.parent
TRACE_DIR = ROOT / "data" / "azure-functions-2019"
RESULTS = Path(__file__).resolve().parent / "results" / "scaling.json"
SEED = 1
RESAMPLE_SEED = 2026


def speed(repeat: int) -> dict[str, Any]:
    base = read_trace(TRACE_DIR, 200)
    trace = base.resample(1000, RESAMPLE_SEED)
    stages: dict[str, list[float]] = {
        "expand": [], "prepare": [], **{n: [] for n in POLICY_NAMES}, "total": [], "expand (phase)": [],
    }  # fmt: skip
    config = SimulationConfig(cold_start=0.0003)
    for _ in range(repeat):
        t0 = time.perf_counter()
        inv = expand(trace, SEED)
        t1 = time.perf_counter()
        prep = prepare(inv)
        t2 = time.perf_counter()
        stages["expand"].append(t1 - t0)
        stages["prepare"].append(t2 - t1)
        for name in POLICY_NAMES:
            s = time.perf_counter()
            run_policy(name, prep, config)
            stages[name].append(time.perf_counter() - s)
        stages["total"].append(time.perf_counter() - t0)
        t3 = time.perf_counter()
        expand(trace, SEED, "phase")
        stages["expand (phase)"].append(time.perf_counter() - t3)
    return {
        "functions": trace.n_functions,
        "invocations": trace.invocations,
        "repeat": repeat,
        "best_s": {k: min(v) for k, v in stages.items()},
        "median_s": {k: statistics.median(v) for k, v in stages.items()},
    }


def row(r: PolicyResult) -> str:
    lat = r.latency_added_ms
    return (
        f"  {r.policy:10s} cold {r.cold_starts:>9,d} ({r.cold_start_share:7.2%}, p75/fn {r.cold_start_share_p75:6.1%})"
        f"  p50/p99/p99.9 {lat['p50']:6.4g}/{lat['p99']:6.4g}/{lat['p999']:6.4g} ms"
        f"  inst {r.instance_seconds:>12,.0f} s  idle {r.idle_instance_seconds:>11,.0f} s"
        f"  idle mem {r.idle_memory_gb_seconds:>11,.0f} GB-s  IT {r.energy_joules / 1e6:7.2f} MJ"
        f"  facility {r.facility_energy_joules / 1e6:7.2f} MJ"
    )


def policies() -> dict[str, Any]:
    trace = read_trace(TRACE_DIR, 200)
    prep = prepare(expand(trace, SEED))
    out: dict[str, Any] = {"functions": trace.n_functions, "invocations": trace.invocations}
    for label, cold in (("wasm", 0.0003), ("container", 1.0)):
        config = SimulationConfig(cold_start=cold)
        res = {n: run_policy(n, prep, config) for n in POLICY_NAMES}
        print(f"\ncold start {cold * 1000:g} ms (200 functions, {trace.invocations:,} invocations):")
        for r in res.values():
            print(row(r))
        ka, en, hy = res["keepalive"], res["energy"], res["hybrid"]
        matched = keepalive_matching_idle_memory(prep, config, hy.idle_memory_gb_seconds)
        print(row(matched))
        entry: dict[str, Any] = {n: r.to_json() for n, r in res.items()}
        entry["energy_vs_keepalive_idle_ratio"] = en.idle_instance_seconds / ka.idle_instance_seconds
        entry["keepalive_matching_hybrid_idle_memory"] = matched.to_json()
        print(
            f"  energy-aware idle instance-s = {entry['energy_vs_keepalive_idle_ratio']:.4%} of keep-alive's;"
            f" added p99 {en.latency_added_ms['p99']:.4g} ms"
        )
        print(
            f"  hybrid vs fixed keep-alive at the same idle memory ({matched.params['keep_alive_s']:.0f} s window):"
            f" cold starts {hy.cold_starts:,} vs {matched.cold_starts:,};"
            f" p75 per-function cold share {hy.cold_start_share_p75:.1%} vs {matched.cold_start_share_p75:.1%}"
        )
        out[label] = entry
    return out


def pareto_section(plots: Path | None) -> dict[str, Any]:
    trace = read_trace(TRACE_DIR, 200)
    config = SimulationConfig(cold_start=1.0)
    out: dict[str, Any] = {}
    curves: dict[float, dict[str, Pareto]] = {0.0: {}, 43200.0: {}}
    for spread in ("uniform", "phase"):
        prep = prepare(expand(trace, SEED, spread))
        for warmup in curves:
            t0 = time.perf_counter()
            sweep = pareto(prep, config, warmup=warmup)
            took = time.perf_counter() - t0
            curves[warmup][spread] = sweep
            out[f"{spread}_warmup_{warmup:g}s"] = sweep.to_json()
            print(f"\nPareto, 1 s cold start, {spread} arrivals, counted from {warmup / 3600:g} h ({took:.1f} s):")
            ka = "  ".join(f"{q.param_s / 60:g}m {100 * q.cold_start_share_p75:.1f}%@{q.memory_norm:.2f}"
                           for q in sweep.keepalive)  # fmt: skip
            print(f"  keep-alive p75%@memory: {ka}")
            for q in sweep.hybrid:
                share, cold = sweep.keepalive_at(q.memory_norm)
                verdict = "hybrid better" if q.cold_start_share_p75 < share else "keep-alive better or equal"
                print(
                    f"  hybrid range {q.param_s / 3600:g} h: p75 {100 * q.cold_start_share_p75:.1f} %, memory"
                    f" {q.memory_norm:.2f}x, {q.cold_starts:,} cold | keep-alive at that memory: p75"
                    f" {100 * share:.1f} %, {cold:,.0f} cold -> {verdict}"
                )
    if plots is not None:
        from zerowatt.scaling.sim.plot import write_pareto_plot

        plots.mkdir(parents=True, exist_ok=True)
        for warmup, name in ((0.0, "scaling-pareto.png"), (43200.0, "scaling-pareto-warmup.png")):
            title = f"200 functions, 1 s cold start, seed {SEED}, counted from {warmup / 3600:g} h"
            write_pareto_plot(plots / name, curves[warmup], title)
            print(f"plot written to {plots / name}")
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks scaling", description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="speed runs (best and median are reported)")
    ap.add_argument("--quick", action="store_true", help="one speed run")
    ap.add_argument("--plots", type=Path, default=None, help="write the Pareto plots into this directory")
    args = ap.parse_args(argv)
    if not TRACE_DIR.is_dir():
        print(f"trace sample not found at {TRACE_DIR}", file=sys.stderr)
        return 2
    print("machine:", describe())
    print("command: python -m benchmarks scaling " + " ".join(argv))
    sp = speed(1 if args.quick else max(1, args.repeat))
    print(f"\nspeed: {sp['functions']} functions, {sp['invocations']:,} invocations, one day, all four policies")
    for k in sp["best_s"]:
        print(f"  {k:14s} best {sp['best_s'][k]:6.2f} s   median {sp['median_s'][k]:6.2f} s")
    ok_speed = sp["best_s"]["total"] < 10.0
    print(f"  target < 10 s for the whole run: {'met' if ok_speed else 'NOT met'}")
    pol = policies()
    pol["pareto_container"] = pareto_section(args.plots)
    wasm = pol["wasm"]
    ok_energy = wasm["energy_vs_keepalive_idle_ratio"] <= 0.05 and wasm["energy"]["latency_added_ms"]["p99"] <= 1.0
    verdict = "met" if ok_energy else "NOT met"
    print(f"\nenergy-aware <= 5 % of keep-alive idle with p99 <= 1 ms (wasm start): {verdict}")
    print("Trace: Azure Public Dataset, Microsoft (CC-BY 4.0)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": describe(), "speed": sp, "policies": pol}, indent=2) + "\n")
    print(f"results written to {RESULTS.relative_to(ROOT)}")
    return 0 if ok_energy else 1
