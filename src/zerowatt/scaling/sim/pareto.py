"""The fixed keep-alive frontier and Shahrad et al.'s Pareto comparison (§5.2), over a prepared trace.

:func:`keepalive_sweep` replays the fixed keep-alive at several windows (the frontier the other policies
are plotted against); :func:`pareto` puts fixed keep-alive windows and hybrid histogram ranges on the
paper's axes: 3rd-quartile per-function cold-start share against wasted memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zerowatt.scaling.sim.driver import SimulationConfig
from zerowatt.scaling.sim.hybrid_batch import hybrid_gap_windows
from zerowatt.scaling.sim.periods import FloatArray, PolicyResult, Prepared, simulate_windows
from zerowatt.units import Seconds


def keepalive_sweep(prep: Prepared, config: SimulationConfig, windows: Sequence[Seconds]) -> list[PolicyResult]:
    """Fixed keep-alive at several windows: the frontier the hybrid policy is compared against."""
    out = []
    for w in windows:
        k = np.full(prep.gaps.fid.size, float(w))
        out.append(
            simulate_windows(
                f"keepalive-{w:g}s",
                prep.inv,
                prep.periods,
                prep.gaps,
                np.zeros_like(k),
                k,
                config.cold_start,
                config.power,
                {"keep_alive_s": float(w)},
            )
        )
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
        params = dataclasses.replace(config.hybrid, range=float(rng))
        p, k = hybrid_gap_windows(params, prep.gaps, prep.inv.n_functions, prep.inv.horizon)
        hy.append(point("hybrid", float(rng), window_metrics(prep, p, k, warmup)))
    return Pareto(ka, hy, base, warmup)
