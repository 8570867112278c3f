"""Replay a trace through any policy: the driver behind ``zerowatt simulate`` and the benchmark.

``prepare()`` computes what every policy shares (busy periods, idle gaps); ``run_policy(name, ...)`` runs
one policy (``kpa``, ``keepalive``, ``hybrid``, ``energy``) and returns a :class:`PolicyResult`. The
model and its assumptions are in :mod:`.replay` and ``docs/scaling.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zerowatt.errors import UsageError
from zerowatt.scaling import kpa as kpa_core
from zerowatt.scaling.energy import EnergyParams
from zerowatt.scaling.hybrid_replay import hybrid_gap_windows
from zerowatt.scaling.kpa_replay import simulate_kpa
from zerowatt.scaling.policies import EnergyAware, FixedKeepAlive, HybridHistogram
from zerowatt.scaling.replay import (
    FloatArray,
    Gaps,
    Periods,
    PolicyResult,
    Progress,
    busy_periods,
    gaps_of,
    simulate_windows,
)
from zerowatt.scaling.trace import Invocations
from zerowatt.units import Seconds

__all__ = [
    "POLICY_NAMES",
    "PolicyResult",
    "Prepared",
    "SimulationConfig",
    "keepalive_matching_idle_memory",
    "keepalive_sweep",
    "pareto",
    "parse_policies",
    "prepare",
    "run_policies",
    "run_policy",
    "window_metrics",
]

POLICY_NAMES = ("kpa", "keepalive", "hybrid", "energy")


def parse_policies(spec: str) -> list[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError("--policy: give at least one of " + ", ".join(POLICY_NAMES))
    for n in names:
        if n not in POLICY_NAMES:
            raise UsageError(f"--policy: unknown policy {n!r}; expected one of {', '.join(POLICY_NAMES)}")
    return list(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Everything a run depends on besides the invocations."""

    cold_start: Seconds = 0.0003
    energy: EnergyParams = field(default_factory=EnergyParams)
    keepalive: FixedKeepAlive = field(default_factory=FixedKeepAlive)
    hybrid: HybridHistogram = field(default_factory=HybridHistogram)
    kpa: kpa_core.KpaParams = field(default_factory=kpa_core.KpaParams)
    energy_latency_watts: float = 0.0


@dataclass(frozen=True, slots=True)
class Prepared:
    """Per-trace work shared by every policy: busy periods and the gaps between them."""

    inv: Invocations
    periods: Periods
    gaps: Gaps


def prepare(inv: Invocations) -> Prepared:
    periods = busy_periods(inv)
    return Prepared(inv, periods, gaps_of(periods, inv.horizon))


def _replay_windows(
    name: str, prep: Prepared, config: SimulationConfig, prewarm: FloatArray, keep: FloatArray, params: dict[str, Any]
) -> PolicyResult:
    """Replay a window policy's (pre-warm, keep-alive) decision for every gap of ``prep`` under ``config``."""
    return simulate_windows(
        name, prep.inv, prep.periods, prep.gaps, prewarm, keep, config.cold_start, config.energy, params
    )


def run_policy(name: str, prep: Prepared, config: SimulationConfig, progress: Progress | None = None) -> PolicyResult:
    inv, periods, gaps = prep.inv, prep.periods, prep.gaps
    mem_of_gap = inv.memory_gb[gaps.fid] if gaps.fid.size else np.zeros(0)
    if name == "keepalive":
        p, k = config.keepalive.windows(mem_of_gap)
        return _replay_windows(name, prep, config, p, k, {"keep_alive_s": config.keepalive.keep_alive})
    if name == "energy":
        pol = EnergyAware(config.cold_start, config.energy, latency_watts=config.energy_latency_watts)
        p, k = pol.windows(mem_of_gap)
        kf = pol.windows(inv.memory_gb)[1]
        return _replay_windows(
            name,
            prep,
            config,
            p,
            k,
            {
                "keep_alive_s_median": float(np.median(kf)) if kf.size else 0.0,
                "keep_alive_s_max": float(kf.max()) if kf.size else 0.0,
            },
        )
    if name == "hybrid":
        hp = config.hybrid.params
        p, k = hybrid_gap_windows(hp, gaps, inv.n_functions, inv.horizon, progress)
        return _replay_windows(
            name,
            prep,
            config,
            p,
            k,
            {
                "bin_width_s": hp.bin_width,
                "range_s": hp.range,
                "margin": hp.margin,
                "fallback_keep_alive_s": hp.fallback,
                "forecast_margin": hp.forecast_margin,
            },
        )
    if name == "kpa":
        return simulate_kpa(inv, periods, gaps, config.kpa, config.cold_start, config.energy, progress)
    raise UsageError(f"unknown policy {name!r}; expected one of {', '.join(POLICY_NAMES)}")


def run_policies(
    names: Sequence[str], prep: Prepared, config: SimulationConfig, progress: Progress | None = None
) -> dict[str, PolicyResult]:
    return {n: run_policy(n, prep, config, progress) for n in names}


def keepalive_sweep(prep: Prepared, config: SimulationConfig, windows: Sequence[Seconds]) -> list[PolicyResult]:
    """Fixed keep-alive at several windows: the frontier the hybrid policy is compared against."""
    out = []
    for w in windows:
        k = np.full(prep.gaps.fid.size, float(w))
        out.append(_replay_windows(f"keepalive-{w:g}s", prep, config, np.zeros_like(k), k, {"keep_alive_s": float(w)}))
    return out


def keepalive_matching_idle_memory(
    prep: Prepared, config: SimulationConfig, target_gb_s: float, hi: Seconds = 24 * 3600.0
) -> PolicyResult:
    """The fixed keep-alive whose idle memory (GB-s) equals ``target_gb_s`` (bisection; idle memory grows
    monotonically with the window)."""
    lo_w, hi_w = 0.0, hi
    best = keepalive_sweep(prep, config, [hi_w])[0]
    for _ in range(40):
        mid = (lo_w + hi_w) / 2
        r = keepalive_sweep(prep, config, [mid])[0]
        if r.idle_memory_gb_seconds < target_gb_s:
            lo_w = mid
        else:
            hi_w, best = mid, r
    return best


#: Default sweeps of the Pareto comparison: fixed keep-alive windows (1 minute to 4 hours) and hybrid
#: histogram ranges (1 to 4 hours), as Shahrad et al. §5.2 sweep them for their Pareto plots.
PARETO_KEEPALIVE = (60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0, 10800.0, 14400.0)
PARETO_HYBRID_RANGES = (3600.0, 7200.0, 10800.0, 14400.0)


@dataclass(frozen=True, slots=True)
class ParetoPoint:
    """One policy setting on the paper's axes."""

    policy: str  # "keepalive" or "hybrid"
    param_s: float  # keep-alive window, or histogram range
    cold_start_share_p75: float  # 3rd quartile over functions of each function's cold-start share
    memory_norm: float  # idle (wasted) memory GB-s relative to the 10-minute fixed keep-alive
    cold_starts: int
    idle_memory_gb_seconds: float

    def to_json(self) -> dict[str, float | int | str]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Pareto:
    keepalive: list[ParetoPoint]
    hybrid: list[ParetoPoint]
    baseline_gb_s: float  # the 10-minute keep-alive's idle memory
    warmup_s: float = 0.0

    def keepalive_at(self, memory_norm: float) -> tuple[float, float]:
        """(p75 share, cold starts) of the fixed keep-alive curve at ``memory_norm``, linear between sweep
        points in log(memory) (NaN outside the swept range)."""
        pts = sorted(self.keepalive, key=lambda q: q.memory_norm)
        xs = np.log([max(q.memory_norm, 1e-12) for q in pts])
        x = np.log(max(memory_norm, 1e-12))
        if not pts or x < xs[0] or x > xs[-1]:
            return float("nan"), float("nan")
        share = float(np.interp(x, xs, [q.cold_start_share_p75 for q in pts]))
        cold = float(np.interp(x, xs, [q.cold_starts for q in pts]))
        return share, cold

    def to_json(self) -> dict[str, object]:
        rows = []
        for h in self.hybrid:
            share, cold = self.keepalive_at(h.memory_norm)
            rows.append({**h.to_json(), "keepalive_p75_at_same_memory": share, "keepalive_cold_at_same_memory": cold})
        return {
            "baseline_idle_memory_gb_seconds": self.baseline_gb_s,
            "warmup_s": self.warmup_s,
            "keepalive": [q.to_json() for q in self.keepalive],
            "hybrid": rows,
        }


def window_metrics(
    prep: Prepared, prewarm: FloatArray, keep: FloatArray, measure_from: Seconds = 0.0
) -> tuple[int, float, float]:
    """(cold starts, 3rd-quartile per-function cold-start share, idle memory GB-s) of a window policy,
    counting only what happens from ``measure_from`` on: the policy still learns from the whole trace, so a
    warm-up splits one trace into training and evaluation as Shahrad et al. evaluate histograms that have
    seen days of history. With ``measure_from = 0`` these are :func:`simulate_windows`' figures."""
    inv, periods, gaps = prep.inv, prep.periods, prep.gaps
    f = inv.n_functions
    g = gaps.length
    hit = (g >= prewarm) & (g <= prewarm + keep) & ~gaps.censored
    cold_period = periods.first_of_function.copy()
    cold_period[1:] |= ~hit[:-1] & ~periods.first_of_function[1:]
    cold_period &= periods.start >= measure_from
    lo = np.maximum(gaps.idle_start + prewarm, measure_from)
    hi = np.minimum(gaps.idle_start + np.minimum(g, prewarm + keep), inv.horizon)
    idle = np.maximum(hi - lo, 0.0)
    cold_by_fn = np.bincount(periods.fid[cold_period], minlength=f)
    n_by_fn = np.bincount(inv.fid[inv.arrival >= measure_from], minlength=f)
    seen = n_by_fn > 0
    share = cold_by_fn[seen] / n_by_fn[seen]
    p75 = float(np.percentile(share, 75)) if share.size else 0.0
    idle_gb_s = float((np.bincount(gaps.fid, weights=idle, minlength=f) * inv.memory_gb).sum())
    return int(cold_by_fn.sum()), p75, idle_gb_s


def pareto(
    prep: Prepared,
    config: SimulationConfig,
    keepalive_windows: Sequence[Seconds] = PARETO_KEEPALIVE,
    hybrid_ranges: Sequence[Seconds] = PARETO_HYBRID_RANGES,
    warmup: Seconds = 0.0,
) -> Pareto:
    """Shahrad et al.'s comparison (§5.2, Figs. 14–15): 3rd-quartile per-function cold-start share against
    wasted memory normalised to the 10-minute fixed keep-alive, for a sweep of fixed keep-alive windows and
    of hybrid histogram ranges (each hybrid with its paper defaults otherwise: fallback = the range).
    ``warmup``: count only from this time on (every policy runs, and the hybrid learns, from the start)."""
    zeros = np.zeros(prep.gaps.fid.size)

    def ka_point(w: float) -> tuple[int, float, float]:
        return window_metrics(prep, zeros, zeros + w, warmup)

    base = ka_point(600.0)[2]
    norm = base if base > 0 else 1.0

    def point(policy: str, param: float, m: tuple[int, float, float]) -> ParetoPoint:
        return ParetoPoint(policy, param, m[1], m[2] / norm, m[0], m[2])

    ka = [point("keepalive", float(w), ka_point(float(w))) for w in keepalive_windows]
    hy = []
    for rng in hybrid_ranges:
        params = dataclasses.replace(config.hybrid.params, range=float(rng))
        p, k = hybrid_gap_windows(params, prep.gaps, prep.inv.n_functions, prep.inv.horizon)
        hy.append(point("hybrid", float(rng), window_metrics(prep, p, k, warmup)))
    return Pareto(ka, hy, base, warmup)
